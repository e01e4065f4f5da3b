package t2i

import (
	"math"
	"os"
	"strings"
	"testing"

	"tessera/autodiff"
	"tessera/blockcache"
	"tessera/dit"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/tensor"
)

var quiet = progress.Options{Mode: progress.Silent}

// The prompted model's forward pass in parts is its Predict.
func TestPromptedStagedMatchesPredict(t *testing.T) {
	m := randomized(t)
	p := NewPrompted(m, []string{"red", "blue square"})
	x := tensor.NewRNG(3).Normal(3, 3, 8, 8)
	tt, y := []float32{100, 500, 900}, []int{0, 1, p.Null()}
	want, err := p.Predict(x, tt, y)
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	got, err := dit.PredictStaged(p, x, tt, y, func(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
		blocks++
		return p.RunBlock(g, i, h, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if blocks != m.Config.Depth {
		t.Errorf("ran %d blocks, want %d", blocks, m.Config.Depth)
	}
	if d := maxAbsDiff(got.Data(), want.Data()); d > 1e-5 {
		t.Errorf("staged forward differs from Predict by %g", d)
	}
	if s := p.SampleShape(); len(s) != 3 || s[0] != 3 || s[1] != 8 || s[2] != 8 {
		t.Errorf("sample shape %v, want [3 8 8]", s)
	}
}

// A cache that never reuses gives the uncached images in every mode and
// sampler.
func TestCachedGenerationWithoutReuseEqualsUncached(t *testing.T) {
	m := randomized(t)
	prompts := []string{"red", "blue", "red"}
	tests := []struct {
		sampler string
		cache   string
	}{
		{"euler", "plan:1e-9"}, {"euler", "ss:1e-9"}, {"euler", "res:1e-9"}, {"heun", "fc:1e-9"}, {"heun", "plan:1e-9"}, {"dpm++2m", "plan:1e-9"}, {"euler", "dynamic:1e-12"},
	}
	for _, tc := range tests {
		t.Run(tc.sampler+"/"+tc.cache, func(t *testing.T) {
			o := GenerateOptions{Seed: 3, Steps: 4, CFG: 2, Sampler: tc.sampler, Batch: 2, Progress: quiet}
			want, base, err := Generate(m, prompts, o)
			if err != nil {
				t.Fatal(err)
			}
			if o.Cache, err = imagegen.ParseCache(tc.cache); err != nil {
				t.Fatal(err)
			}
			o.Cache.Dir, o.Cache.Calibration = t.TempDir(), 3
			got, st, err := GenerateAccel(m, prompts, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if d := maxAbsDiff(got[i].Data(), want[i].Data()); d > 1e-5 {
					t.Errorf("image %d differs from the uncached one by %g", i, d)
				}
			}
			if st.Cache == nil || st.Cache.HitRate != 0 {
				t.Fatalf("cache report %+v, want one with hit rate 0", st.Cache)
			}
			if st.BlockEvals != base.BlockEvals || math.Abs(st.FLOPs-base.FLOPs) > 1e-6*base.FLOPs || st.NetworkEvals != base.NetworkEvals {
				t.Errorf("stats %+v, want the uncached %+v", st.Stats, base)
			}
		})
	}
}

// With reuse, every branch evaluation of every block is either computed
// or reused, the hit rates follow from the counts, and block evaluations
// and FLOPs fall.
func TestCacheStatisticsAddUp(t *testing.T) {
	m := randomized(t)
	prompts := []string{"red", "green", "blue"}
	for _, spec := range []string{"ss:10", "plan:0.3", "fc-plan:0.3", "dynamic:10"} {
		t.Run(spec, func(t *testing.T) {
			o := GenerateOptions{Seed: 1, Steps: 5, CFG: 3, Batch: 2, Progress: quiet, CalibrationPrompts: []string{"black", "red"}}
			_, base, err := Generate(m, prompts, o)
			if err != nil {
				t.Fatal(err)
			}
			if o.Cache, err = imagegen.ParseCache(spec); err != nil {
				t.Fatal(err)
			}
			o.Cache.Dir, o.Cache.Calibration = t.TempDir(), 2
			_, st, err := GenerateAccel(m, prompts, o)
			if err != nil {
				t.Fatal(err)
			}
			rep := st.Cache
			if rep == nil || len(rep.Blocks) != m.Config.Depth || len(rep.HitsPerBlock) != m.Config.Depth || len(rep.HitRatePerBlock) != m.Config.Depth {
				t.Fatalf("cache report %+v, want one entry per block", rep)
			}
			reused := 0
			for i, b := range rep.Blocks {
				for br := range b.Computed {
					// Guided: both branches run in every network evaluation.
					if got := b.Computed[br] + b.Reused[br]; got != st.NetworkEvals {
						t.Errorf("block %d branch %d: %d computed + %d reused, want %d evaluations", i, br, b.Computed[br], b.Reused[br], st.NetworkEvals)
					}
				}
				if rep.HitsPerBlock[i] != b.Reused[0]+b.Reused[1] {
					t.Errorf("block %d: %d hits, want %d", i, rep.HitsPerBlock[i], b.Reused[0]+b.Reused[1])
				}
				if want := float64(b.Reused[0]+b.Reused[1]) / float64(2*st.NetworkEvals); math.Abs(rep.HitRatePerBlock[i]-want) > 1e-12 {
					t.Errorf("block %d: hit rate %g, want %g", i, rep.HitRatePerBlock[i], want)
				}
				reused += b.Reused[0] + b.Reused[1]
			}
			// Both branches carry as many rows, so the row-weighted hit
			// rate is the branch-evaluation one.
			if want := float64(reused) / float64(2*st.NetworkEvals*m.Config.Depth); math.Abs(rep.HitRate-want) > 1e-12 || reused == 0 {
				t.Errorf("hit rate %g with %d reuses, want %g > 0", rep.HitRate, reused, want)
			}
			if !(st.FLOPs < base.FLOPs) || !(st.BlockEvals < base.BlockEvals) {
				t.Errorf("FLOPs %g and block evaluations %d, want fewer than uncached %g and %d", st.FLOPs, st.BlockEvals, base.FLOPs, base.BlockEvals)
			}
			if rep.Mode != "dynamic" {
				if _, err := os.Stat(rep.PlanFile); err != nil {
					t.Errorf("plan file: %v", err)
				}
			}
		})
	}
}

// The conditional and unconditional branches keep separate caches: a
// branch whose blocks all run matches the uncached model on a new input,
// while the branch reusing every block repeats its previous output.
func TestCacheBranchesKeepSeparateState(t *testing.T) {
	m := randomized(t)
	p := NewPrompted(m, []string{"red", "green"})
	rng := tensor.NewRNG(4)
	x1, x2 := rng.Normal(4, 3, 8, 8), rng.Normal(4, 3, 8, 8)
	tt := []float32{500, 500, 500, 500}
	y := []int{1, 0, p.Null(), p.Null()}
	for _, reuse := range []int{blockcache.Cond, blockcache.Uncond} {
		pl := &blockcache.Plan{}
		for b := range pl.Compute {
			pl.Compute[b] = make([][]bool, m.Config.Depth)
			for i := range pl.Compute[b] {
				pl.Compute[b][i] = []bool{true, b != reuse}
			}
		}
		c, err := blockcache.New(p, pl)
		if err != nil {
			t.Fatal(err)
		}
		first, err := c.Predict(x1, tt, y)
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.Predict(x2, tt, y)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := p.Predict(x2, tt, y)
		if err != nil {
			t.Fatal(err)
		}
		half := len(first.Data()) / 2
		runs, reuses := [2][]float32{second.Data()[:half], second.Data()[half:]}, [2][]float32{first.Data()[:half], first.Data()[half:]}
		freshRows := [2][]float32{fresh.Data()[:half], fresh.Data()[half:]}
		other := 1 - reuse
		if d := maxAbsDiff(runs[other], freshRows[other]); d > 1e-5 {
			t.Errorf("reusing branch %d: branch %d differs from the uncached model by %g", reuse, other, d)
		}
		if d := maxAbsDiff(runs[reuse], reuses[reuse]); d > 1e-6 {
			t.Errorf("branch %d changed by %g despite reusing every block", reuse, d)
		}
		if d := maxAbsDiff(runs[reuse], freshRows[reuse]); d < 1e-4 {
			t.Errorf("branch %d equals the fresh prediction: the test input does not tell reuse from computation", reuse)
		}
		st := c.Stats()
		for i, b := range st.Blocks {
			if b.Reused[reuse] != 1 || b.Reused[other] != 0 || b.Computed[reuse] != 1 || b.Computed[other] != 2 {
				t.Errorf("block %d: computed %v reused %v", i, b.Computed, b.Reused)
			}
		}
	}
}

// Plans are stored per calibration list: other calibration prompts give
// another profile, the same ones load the stored plan.
func TestCachePlanStoredPerCalibration(t *testing.T) {
	m := randomized(t)
	o := GenerateOptions{Steps: 3, CFG: 2}
	var logs []string
	c := imagegen.CacheOptions{Mode: "ss", Threshold: 0.5, Dir: t.TempDir(), Calibration: 2, Log: func(s string) { logs = append(logs, s) }}
	_, a, err := CachePlan(m, o, c, []string{"red"})
	if err != nil {
		t.Fatal(err)
	}
	n := len(logs)
	_, again, err := CachePlan(m, o, c, []string{"red"})
	if err != nil {
		t.Fatal(err)
	}
	if again != a || len(logs) != n {
		t.Errorf("second call computed again (%q) or used another file (%s, %s)", logs[n:], again, a)
	}
	_, b, err := CachePlan(m, o, c, []string{"blue"})
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Errorf("calibration on other prompts stored in the same file %s", a)
	}
	prof, _, err := CacheProfile(m, o, c, []string{"red"})
	if err != nil {
		t.Fatal(err)
	}
	if prof.Model != m.Fingerprint() || prof.Calibration == "" || prof.Evals() != 3 {
		t.Errorf("profile setting %+v, %d evaluations", prof.Setting, prof.Evals())
	}
}

func TestCacheRejectsBadInput(t *testing.T) {
	m := randomized(t)
	dir := t.TempDir()
	base := GenerateOptions{Steps: 3, CFG: 2, Progress: quiet}
	tests := []struct {
		name string
		edit func(o *GenerateOptions)
		want string
	}{
		{"unknown mode", func(o *GenerateOptions) { o.Cache.Mode = "fast" }, "unknown mode"},
		{"negative threshold", func(o *GenerateOptions) { o.Cache = imagegen.CacheOptions{Mode: "plan", Threshold: -1} }, "threshold"},
		{"no calibration prompts", func(o *GenerateOptions) {
			o.Cache = imagegen.CacheOptions{Mode: "ss", Dir: dir}
			o.CalibrationPrompts = []string{}
		}, "calibration prompts"},
		{"negative calibration", func(o *GenerateOptions) { o.Cache = imagegen.CacheOptions{Mode: "plan", Dir: dir, Calibration: -2} }, "calibration"},
		{"ddim", func(o *GenerateOptions) { o.Cache = imagegen.CacheOptions{Mode: "plan", Dir: dir}; o.Sampler = "ddim" }, "ddim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, _, err := GenerateAccel(m, []string{"red"}, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// The cache checks its batches and its plan.
	p := NewPrompted(m, []string{"red"})
	c := blockcache.NewDynamic(p, 0.1)
	x := tensor.New(2, 3, 8, 8)
	for name, call := range map[string]func() error{
		"label beyond the empty prompt": func() error { _, err := c.Predict(x, []float32{1, 1}, []int{0, 2}); return err },
		"wrong channels":                func() error { _, err := c.Predict(tensor.New(2, 1, 8, 8), []float32{1, 1}, []int{0, 1}); return err },
		"time not finite":               func() error { _, err := c.Predict(x, []float32{1, float32(math.NaN())}, []int{0, 1}); return err },
		"plan for another depth": func() error {
			_, err := blockcache.New(p, &blockcache.Plan{Compute: [2][][]bool{{{true}}, {{true}}}})
			return err
		},
	} {
		if call() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
