package blockcache

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/tensor"
)

// tinyModel is a small DiT with every weight random (the reference
// initialisation zeroes adaLN, which would make every block the identity).
func tinyModel(t *testing.T) *dit.Model {
	t.Helper()
	cfg := dit.Config{InputSize: 8, PatchSize: 2, InChannels: 1, HiddenSize: 16, Depth: 3, NumHeads: 2, MLPRatio: 2, NumClasses: 3, Prediction: dit.Velocity}
	m, err := dit.NewRandom(cfg, tensor.NewRNG(7), 0.2)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// plan returns a plan of n evaluations computing everything except the
// listed (branch, block, eval) triples.
func plan(m *dit.Model, n int, cfg float64, reuse ...[3]int) *Plan {
	p := &Plan{Setting: Setting{Sampler: "euler", Schedule: "uniform", Steps: n, CFG: cfg}}
	for b := range p.Compute {
		p.Compute[b] = make([][]bool, len(m.Blocks))
		for i := range p.Compute[b] {
			p.Compute[b][i] = make([]bool, n)
			for e := range p.Compute[b][i] {
				p.Compute[b][i][e] = true
			}
		}
	}
	for _, r := range reuse {
		p.Compute[r[0]][r[1]][r[2]] = false
	}
	return p
}

func TestCacheMatchesUncached(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(1)
	x := rng.Normal(4, 1, 8, 8)
	ts := []float32{900, 900, 900, 900}
	guided := []int{0, 2, 3, 3} // two conditional rows, then two unconditional
	want, err := m.Predict(x, ts, guided)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cache *Cache
	}{
		{"plan computing every block", must(New(m, plan(m, 2, 1)))},
		{"dynamic with threshold 0", NewDynamic(m, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for e := 0; e < 2; e++ {
				got, err := tc.cache.Predict(x, ts, guided)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(got.Data(), want.Data()); d > 1e-5 {
					t.Fatalf("evaluation %d differs from the uncached model by %g", e, d)
				}
			}
			if hr := tc.cache.Stats().HitRate(); hr != 0 {
				t.Errorf("hit rate %g, want 0", hr)
			}
		})
	}
}

func must(c *Cache, err error) *Cache {
	if err != nil {
		panic(err)
	}
	return c
}

// TestReuseAndBranches checks that a reused block returns the output it
// computed last, and that the two guidance branches keep separate state:
// a branch whose blocks all run matches the uncached model on the new
// input, while a branch that reuses every block returns its previous
// output.
func TestReuseAndBranches(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(2)
	x1, x2 := rng.Normal(4, 1, 8, 8), rng.Normal(4, 1, 8, 8)
	ts := []float32{500, 500, 500, 500}
	y := []int{1, 0, 3, 3}
	var reuse [][3]int
	for i := range m.Blocks {
		reuse = append(reuse, [3]int{Uncond, i, 1})
	}
	c := must(New(m, plan(m, 2, 4, reuse...)))
	first, err := c.Predict(x1, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Predict(x2, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := m.Predict(x2, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	half := len(first.Data()) / 2
	if d := maxDiff(second.Data()[:half], fresh.Data()[:half]); d > 1e-5 {
		t.Errorf("conditional rows differ from the uncached model by %g", d)
	}
	// The unconditional rows reused every block at the same time and
	// labels, so they repeat the first evaluation exactly.
	if d := maxDiff(second.Data()[half:], first.Data()[half:]); d > 1e-6 {
		t.Errorf("unconditional rows changed by %g despite reusing every block", d)
	}
	st := c.Stats()
	for i, b := range st.Blocks {
		if b.Reused != [2]int{0, 1} || b.Computed != [2]int{2, 1} {
			t.Errorf("block %d: computed %v reused %v, want [2 1] and [0 1]", i, b.Computed, b.Reused)
		}
	}
	if _, err := c.Predict(x2, ts, y); err == nil {
		t.Error("an evaluation beyond the plan was accepted")
	}
}

func TestScaleShiftApplied(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(3)
	x := rng.Normal(2, 1, 8, 8)
	ts := []float32{300, 300}
	y := []int{0, 1}
	last := len(m.Blocks) - 1
	p := plan(m, 2, 1, [3]int{Cond, last, 1})
	p.Scale[Cond] = [][]float32{{1, 1}, {1, 1}, {1, 2}}
	p.Bias[Cond] = [][]float32{{0, 0}, {0, 0}, {0, 0.5}}
	p.Scale[Uncond], p.Bias[Uncond] = p.Scale[Cond], p.Bias[Cond]
	c := must(New(m, p))
	var lastOut *tensor.Tensor
	if _, err := c.Predict(x, ts, y); err != nil {
		t.Fatal(err)
	}
	lastOut = c.state[Cond].out[last].Contiguous()
	got, err := c.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	// Reference: the model with the last block's output replaced by
	// 2·o + 0.5.
	want, err := m.PredictBlocks(x, ts, y, func(g *autodiff.Graph, i int, h, cv *autodiff.Var) *autodiff.Var {
		if i == last {
			return autodiff.Const(affine(lastOut, 2, 0.5))
		}
		return m.Blocks[i].Forward(g, h, cv)
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got.Data(), want.Data()); d > 1e-5 {
		t.Errorf("scale-shift output differs from the reference by %g", d)
	}
}

// TestResidualReuse checks residual reuse: a skipped block adds its last
// residual (output minus input, with the plan's scale-shift) to its fresh
// input, and the blocks it does not skip match the uncached model.
func TestResidualReuse(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(4)
	x1, x2 := rng.Normal(2, 1, 8, 8), rng.Normal(2, 1, 8, 8)
	ts := []float32{400, 400}
	y := []int{0, 1}
	const mid = 1
	for _, tc := range []struct {
		name string
		a, b float32
	}{{"plain", 1, 0}, {"scale-shift", 2, 0.5}} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(m, 2, 1, [3]int{Cond, mid, 1})
			p.Reuse = ReuseResidual
			if tc.a != 1 || tc.b != 0 {
				p.Scale[Cond] = [][]float32{{1, 1}, {1, tc.a}, {1, 1}}
				p.Bias[Cond] = [][]float32{{0, 0}, {0, tc.b}, {0, 0}}
				p.Scale[Uncond], p.Bias[Uncond] = p.Scale[Cond], p.Bias[Cond]
			}
			c := must(New(m, p))
			if _, err := c.Predict(x1, ts, y); err != nil {
				t.Fatal(err)
			}
			got, err := c.Predict(x2, ts, y)
			if err != nil {
				t.Fatal(err)
			}
			// Reference: block mid's residual on x1, then x2 with block
			// mid replaced by h + a·r + b.
			r := blockResidual(t, m, x1, ts, y, mid)
			want, err := m.PredictBlocks(x2, ts, y, func(g *autodiff.Graph, i int, h, cv *autodiff.Var) *autodiff.Var {
				if i == mid {
					return g.Add(h, autodiff.Const(affine(r, tc.a, tc.b)))
				}
				return m.Blocks[i].Forward(g, h, cv)
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got.Data(), want.Data()); d > 1e-5 {
				t.Errorf("residual reuse differs from the reference by %g", d)
			}
			// A second trajectory (the residual buffers reused) repeats it.
			c.Reset()
			if _, err := c.Predict(x1, ts, y); err != nil {
				t.Fatal(err)
			}
			again, err := c.Predict(x2, ts, y)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(again.Data(), got.Data()); d != 0 {
				t.Errorf("second trajectory differs from the first by %g", d)
			}
			// Output reuse of the same plan gives something else.
			po := *p
			po.Reuse = ReuseOutput
			co := must(New(m, &po))
			if _, err := co.Predict(x1, ts, y); err != nil {
				t.Fatal(err)
			}
			other, err := co.Predict(x2, ts, y)
			if err != nil {
				t.Fatal(err)
			}
			if maxDiff(other.Data(), got.Data()) < 1e-4 {
				t.Error("residual and output reuse gave the same prediction")
			}
		})
	}
}

// blockResidual is block mid's residual (output minus input) when m runs
// uncached on x.
func blockResidual(t *testing.T, m *dit.Model, x *tensor.Tensor, ts []float32, y []int, mid int) *tensor.Tensor {
	t.Helper()
	var r *tensor.Tensor
	if _, err := m.PredictBlocks(x, ts, y, func(g *autodiff.Graph, i int, h, cv *autodiff.Var) *autodiff.Var {
		o := m.Blocks[i].Forward(g, h, cv)
		if i == mid {
			r = tensor.New(o.Shape()...)
			hv, ov := h.Value.Contiguous().Data(), o.Value.Contiguous().Data()
			for j := range ov {
				r.Data()[j] = ov[j] - hv[j]
			}
		}
		return o
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func affine(t *tensor.Tensor, a, b float32) *tensor.Tensor {
	out := tensor.New(t.Shape()...)
	for i, v := range t.Data() {
		out.Data()[i] = a*v + b
	}
	return out
}

func TestNewPlanAccumulates(t *testing.T) {
	p := &Profile{Delta: [2][][]float64{{{0, 0.1, 0.1, 0.1, 0.1, 0.5, 0.05}}, nil}}
	got := NewPlan(p, 0.25)
	want := []bool{true, false, false, true, false, true, false}
	for e, w := range want {
		if got.Compute[Cond][0][e] != w {
			t.Fatalf("cond schedule %v, want %v", got.Compute[Cond][0], want)
		}
		if !got.Compute[Uncond][0][e] {
			t.Fatalf("a branch missing from the profile must always compute, got %v", got.Compute[Uncond][0])
		}
	}
	if f := got.ComputeFraction(Cond); math.Abs(f-3.0/7) > 1e-12 {
		t.Errorf("compute fraction %g, want 3/7", f)
	}
	// A larger threshold never computes more.
	for _, d := range []float64{0.05, 0.1, 0.3, 1} {
		if NewPlan(p, d*2).ComputeFraction(Cond) > NewPlan(p, d).ComputeFraction(Cond) {
			t.Errorf("threshold %g computes more than %g", d*2, d)
		}
	}
}

// The forecast schedule computes the first two evaluations, then weighs
// the residual's second differences by how far they carry: through the
// slope of the last interval and through the extrapolation.
func TestNewForecastPlan(t *testing.T) {
	p := &Profile{Delta: [2][][]float64{{make([]float64, 8)}, nil},
		Delta2: [2][][]float64{{{0, 0, 0.01, 0.01, 0.01, 0.1, 0.01, 0.01}}, nil}}
	got := NewForecastPlan(p, 0.05)
	// e2: 0.01; e3: 2·0.01 + 0.01; e4: 0.06 > d computes; e5: slope over
	// (1, 4] 0.02 + 0.1; e6: slope 0.1; e7: 0.01 + 0.01.
	want := []bool{true, true, false, false, true, true, true, false}
	for e, w := range want {
		if got.Compute[Cond][0][e] != w {
			t.Fatalf("cond schedule %v, want %v", got.Compute[Cond][0], want)
		}
		if !got.Compute[Uncond][0][e] {
			t.Fatalf("a branch missing from the profile must always compute, got %v", got.Compute[Uncond][0])
		}
	}
	if got.Reuse != ReuseForecast {
		t.Errorf("reuse %q", got.Reuse)
	}
	for _, d := range []float64{0.01, 0.05, 0.2} {
		if NewForecastPlan(p, d*2).ComputeFraction(Cond) > NewForecastPlan(p, d).ComputeFraction(Cond) {
			t.Errorf("threshold %g computes more than %g", d*2, d)
		}
	}
	// Without second differences it is the accumulated-change schedule.
	p.Delta2 = [2][][]float64{}
	p.Delta[Cond][0] = []float64{0, 0.1, 0.1, 0.1, 0.1, 0.5, 0.05, 0}
	if a, b := NewForecastPlan(p, 0.25), NewPlan(p, 0.25); fmt.Sprint(a.Compute) != fmt.Sprint(b.Compute) {
		t.Errorf("no Δ2: schedule %v, want %v", a.Compute, b.Compute)
	}
}

func TestProfileAndRoundTrip(t *testing.T) {
	m := tinyModel(t)
	for _, cfg := range []float64{1, 3} {
		prof, err := ProfileModel(m, ProfileOptions{Steps: 5, CFG: cfg, Samples: 6, Batch: 4})
		if err != nil {
			t.Fatal(err)
		}
		if prof.Evals() != 5 || len(prof.Delta[Cond]) != len(m.Blocks) {
			t.Fatalf("profile covers %d evaluations of %d blocks, want 5 of %d", prof.Evals(), len(prof.Delta[Cond]), len(m.Blocks))
		}
		if (prof.Delta[Uncond] != nil) != (cfg != 1) {
			t.Errorf("cfg %g: unconditional profile present = %v", cfg, prof.Delta[Uncond] != nil)
		}
		for _, row := range prof.Delta[Cond] {
			if row[0] != 0 {
				t.Errorf("change at evaluation 0 is %g, want 0", row[0])
			}
			for _, v := range row[1:] {
				if !(v > 0) || math.IsInf(v, 0) {
					t.Errorf("change %g, want a positive finite value", v)
				}
			}
		}
		for _, row := range prof.Delta2[Cond] {
			if len(row) != 5 || row[0] != 0 || row[1] != 0 {
				t.Errorf("residual second differences %v, want 5 starting with two zeros", row)
				continue
			}
			for _, v := range row[2:] {
				if !(v > 0) || math.IsInf(v, 0) {
					t.Errorf("second difference %g, want a positive finite value", v)
				}
			}
		}
		path := filepath.Join(t.TempDir(), "p.json")
		pl := NewPlan(prof, 0.2)
		if err := SaveJSON(path, pl); err != nil {
			t.Fatal(err)
		}
		var back Plan
		if err := LoadJSON(path, &back); err != nil {
			t.Fatal(err)
		}
		if back.Setting != pl.Setting || back.ComputeFraction(Cond) != pl.ComputeFraction(Cond) {
			t.Errorf("plan round trip: %+v, want %+v", back.Setting, pl.Setting)
		}
	}
}

func TestTrainScaleShiftReducesLoss(t *testing.T) {
	m := tinyModel(t)
	prof, err := ProfileModel(m, ProfileOptions{Steps: 6, CFG: 2, Samples: 4, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	pl := NewPlan(prof, 1e9) // reuse every block after the first evaluation
	trained, rep, err := TrainScaleShift(m, pl, ScaleShiftOptions{Samples: 4, Batch: 4, Epochs: 12, LR: 0.03})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loss) != 12 || !(rep.Loss[11] < rep.Loss[0]) {
		t.Fatalf("loss per epoch %v does not fall", rep.Loss)
	}
	for b := range trained.Scale {
		for i := range trained.Scale[b] {
			if trained.Scale[b][i][0] != 1 || trained.Bias[b][i][0] != 0 {
				t.Errorf("computed evaluation 0 has scale-shift %g, %g", trained.Scale[b][i][0], trained.Bias[b][i][0])
			}
		}
	}
	// The trained plan runs as a cache under every sampler's control.
	c := must(New(m, trained))
	_, _, err = diffusion.Sample(diffusion.Guided{Model: c, Scale: 2, Null: 3}, tensor.NewRNG(9).Normal(2, 1, 8, 8), []int{0, 1}, diffusion.Options{Steps: 6})
	if err != nil {
		t.Fatal(err)
	}
	if hr := c.Stats().HitRate(); !(hr > 0.5) {
		t.Errorf("hit rate %g with an all-reuse plan", hr)
	}
}

// staged is a network that is not a *dit.Model, as t2i.Prompted is not:
// the cache runs it through dit.Staged alone.
type staged struct{ m *dit.Model }

func (s staged) Check(x []int, t []float32, y []int) error { return s.m.Check(x, t, y) }
func (s staged) SampleShape() []int                        { return s.m.SampleShape() }
func (s staged) Embed(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return s.m.Embed(g, x)
}
func (s staged) Condition(g *autodiff.Graph, t []float32, y []int) *autodiff.Var {
	return s.m.Condition(g, t, y)
}
func (s staged) Depth() int { return s.m.Depth() }
func (s staged) RunBlock(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
	return s.m.RunBlock(g, i, h, c)
}
func (s staged) Decode(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var {
	return s.m.Decode(g, h, c)
}
func (s staged) Channels(out *tensor.Tensor) *tensor.Tensor { return s.m.Channels(out) }
func (s staged) Null() int                                  { return s.m.Null() }
func (s staged) Weights() any                               { return s.m }

// Store computes a profile and a trained plan once and loads them
// afterwards; a network that is not a DiT needs its fingerprint given.
func TestStoreComputesOnce(t *testing.T) {
	m := tinyModel(t)
	var logs []string
	st := Store{Dir: t.TempDir(), Log: func(s string) { logs = append(logs, s) }}
	o := ProfileOptions{Steps: 4, CFG: 2, Samples: 3, Batch: 3}
	for _, net := range []dit.Staged{m, staged{m}} {
		oo := o
		if _, ok := net.(*dit.Model); !ok {
			if _, _, err := st.Profile(net, oo); err == nil {
				t.Fatal("a network without a fingerprint was stored")
			}
			oo.Model, oo.Calibration = "wrapped", "x"
		}
		logs = nil
		p1, path1, err := st.Plan(net, oo, 10, true, ReuseOutput) // reuse after evaluation 0
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 2 {
			t.Errorf("first plan logged %q, want profiling and training", logs)
		}
		p2, path2, err := st.Plan(net, oo, 10, true, ReuseOutput)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 2 || path1 != path2 || p2.Setting != p1.Setting || p2.Scale[Cond] == nil {
			t.Errorf("second plan: logs %q, path %s (first %s), setting %+v", logs, path2, path1, p2.Setting)
		}
		// Residual reuse trains and stores its own scalars.
		p3, path3, err := st.Plan(net, oo, 10, true, ReuseResidual)
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 3 || path3 == path1 || p3.Reuse != ReuseResidual || p3.Scale[Cond] == nil {
			t.Errorf("residual plan: logs %q, path %s (output plan %s), reuse %q", logs, path3, path1, p3.Reuse)
		}
		if p4, _, err := st.Plan(net, oo, 10, true, ReuseResidual); err != nil || len(logs) != 3 || p4.Reuse != ReuseResidual {
			t.Errorf("stored residual plan not loaded: %v, logs %q", err, logs)
		}
		if _, _, err := st.Plan(net, oo, 10, true, "sideways"); err == nil {
			t.Error("unknown reuse accepted")
		}
		if _, _, err := st.Plan(net, oo, 0, false, ReuseOutput); err == nil {
			t.Error("threshold 0 accepted")
		}
	}
}

// The cache runs any dit.Staged network as it runs the DiT itself.
func TestCacheOnStagedNetwork(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(5)
	x := rng.Normal(4, 1, 8, 8)
	ts := []float32{700, 700, 700, 700}
	y := []int{2, 1, 3, 3}
	p := plan(m, 2, 2, [3]int{Cond, 1, 1}, [3]int{Uncond, 2, 1})
	a, b := must(New(m, p)), must(New(staged{m}, p))
	for e := 0; e < 2; e++ {
		x := tensor.Scale(x, float32(1+e))
		ga, err := a.Predict(x, ts, y)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := b.Predict(x, ts, y)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(ga.Data(), gb.Data()); d > 1e-6 {
			t.Errorf("evaluation %d: the staged network differs from the DiT by %g", e, d)
		}
	}
	if a.Stats().HitRate() != b.Stats().HitRate() || b.Stats().Blocks[1].Reused != [2]int{1, 0} || b.Stats().Blocks[2].Reused != [2]int{0, 1} {
		t.Errorf("statistics %+v, want those of the DiT %+v", b.Stats(), a.Stats())
	}
	if r := b.Stats().HitRates(); len(r) != 3 || r[0] != 0 || r[1] != 0.25 {
		t.Errorf("per-block hit rates %v, want [0 0.25 0.25]", r)
	}
}

func TestMalformedPlansRejected(t *testing.T) {
	m := tinyModel(t)
	short := plan(m, 3, 2)
	short.Compute[Uncond][1] = short.Compute[Uncond][1][:2]
	scaled := plan(m, 2, 2)
	scaled.Scale[Cond] = [][]float32{{1, 1}, {1, 1}, {1, 1}}
	deep := plan(m, 2, 2)
	deep.Compute[Cond] = deep.Compute[Cond][:2]
	for name, p := range map[string]*Plan{"row too short": short, "scale without bias": scaled, "too few blocks": deep} {
		if _, err := New(m, p); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, _, err := TrainScaleShift(m, p, ScaleShiftOptions{Samples: 1, Batch: 1, Epochs: 1}); err == nil {
			t.Errorf("%s: scale-shift training accepted it", name)
		}
	}
}

// TestForecastReuse checks forecast reuse: a block skipped after two
// computations adds its residual extrapolated linearly in the sampler's
// time (with the plan's scale-shift) to its fresh input; skipped after one
// computation it is residual reuse.
func TestForecastReuse(t *testing.T) {
	m := tinyModel(t)
	rng := tensor.NewRNG(5)
	xs := []*tensor.Tensor{rng.Normal(2, 1, 8, 8), rng.Normal(2, 1, 8, 8), rng.Normal(2, 1, 8, 8)}
	times := []float32{900, 800, 600} // the third extrapolates by (600−800)/(800−900) = 2
	y := []int{0, 1}
	const mid = 1
	at := func(e int) []float32 { return []float32{times[e], times[e]} }
	r0, r1 := blockResidual(t, m, xs[0], at(0), y, mid), blockResidual(t, m, xs[1], at(1), y, mid)
	for _, tc := range []struct {
		name string
		a, b float32
	}{{"plain", 1, 0}, {"scale-shift", 0.5, 0.25}} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(m, 3, 1, [3]int{Cond, mid, 2})
			p.Reuse = ReuseForecast
			if tc.a != 1 || tc.b != 0 {
				p.Scale[Cond] = [][]float32{{1, 1, 1}, {1, 1, tc.a}, {1, 1, 1}}
				p.Bias[Cond] = [][]float32{{0, 0, 0}, {0, 0, tc.b}, {0, 0, 0}}
				p.Scale[Uncond], p.Bias[Uncond] = p.Scale[Cond], p.Bias[Cond]
			}
			c := must(New(m, p))
			var last [2]*tensor.Tensor
			for run := range last { // the second trajectory reuses the buffers
				c.Reset()
				for e := range xs {
					out, err := c.Predict(xs[e], at(e), y)
					if err != nil {
						t.Fatal(err)
					}
					last[run] = out
				}
			}
			got := last[0]
			if d := maxDiff(last[1].Data(), got.Data()); d != 0 {
				t.Errorf("second trajectory differs from the first by %g", d)
			}
			f := tensor.New(r1.Shape()...)
			for j := range f.Data() {
				f.Data()[j] = r1.Data()[j] + 2*(r1.Data()[j]-r0.Data()[j])
			}
			want, err := m.PredictBlocks(xs[2], at(2), y, func(g *autodiff.Graph, i int, h, cv *autodiff.Var) *autodiff.Var {
				if i == mid {
					return g.Add(h, autodiff.Const(affine(f, tc.a, tc.b)))
				}
				return m.Blocks[i].Forward(g, h, cv)
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got.Data(), want.Data()); d > 1e-4 {
				t.Errorf("forecast reuse differs from the reference by %g", d)
			}
		})
	}
	t.Run("one computation", func(t *testing.T) {
		p := plan(m, 2, 1, [3]int{Cond, mid, 1})
		p.Reuse = ReuseForecast
		pr := *p
		pr.Reuse = ReuseResidual
		var outs [2]*tensor.Tensor
		for k, q := range []*Plan{p, &pr} {
			c := must(New(m, q))
			if _, err := c.Predict(xs[0], at(0), y); err != nil {
				t.Fatal(err)
			}
			out, err := c.Predict(xs[1], at(1), y)
			if err != nil {
				t.Fatal(err)
			}
			outs[k] = out
		}
		if d := maxDiff(outs[0].Data(), outs[1].Data()); d != 0 {
			t.Errorf("forecast after one computation differs from residual reuse by %g", d)
		}
	})
}
