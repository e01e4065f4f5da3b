package t2i_test

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"tessera/data"
	"tessera/eval"
	"tessera/imagegen"
	"tessera/internal/parallel"
	"tessera/internal/progress"
	"tessera/models"
	"tessera/t2i"
	"tessera/tensor"
)

// TestEmojiCacheSweep measures block caching on the embedded emoji model
// as blockcache/README.md reports it: eval-emoji's prompts (each held-out
// emoji's name twice, seed 0, and as many seen emoji, seed 1), Euler,
// guidance 4, FID on the emoji-scorer's embeddings and caption retrieval
// as eval-emoji computes them, PSNR to the 32-step baseline; calibration
// on 64 training-split names. It needs the emoji data and takes minutes,
// so it runs only when TESSERA_CACHE_SWEEP lists the runs, for instance
//
//	TESSERA_CACHE_SWEEP=base-32,steps-20,ss:0.05,plan:0.05,ss:0.1,dynamic:0.05 \
//	  go test ./t2i -run EmojiCacheSweep -v -timeout 2h
//
// (base-32 first: the others are compared with it). Each run prints one
// JSON line.
func TestEmojiCacheSweep(t *testing.T) {
	spec := os.Getenv("TESSERA_CACHE_SWEEP")
	if spec == "" {
		t.Skip("set TESSERA_CACHE_SWEEP to the runs to measure")
	}
	parallel.SetThreads(1)
	mfs, err := models.Open("emoji")
	if err != nil {
		t.Fatal(err)
	}
	m, err := t2i.LoadFS(mfs)
	if err != nil {
		t.Fatal(err)
	}
	sfs, err := models.Open("emoji-scorer")
	if err != nil {
		t.Fatal(err)
	}
	s, err := t2i.LoadScorerFS(sfs)
	if err != nil {
		t.Fatal(err)
	}
	trainSet, err := data.LoadEmoji("", data.Train, m.Config.InputSize)
	if err != nil {
		t.Skip(err)
	}
	heldSet, err := data.LoadEmoji("", data.HeldOut, m.Config.InputSize)
	if err != nil {
		t.Skip(err)
	}
	// The caption pool and the real images of n emoji spread over a split,
	// as eval-emoji picks them.
	var names []string
	index := map[string]int{}
	for _, set := range []*data.EmojiSet{trainSet, heldSet} {
		for k := range set.Emoji {
			n := set.Prompt(k)
			if _, ok := index[n]; !ok {
				index[n] = len(names)
				names = append(names, n)
			}
		}
	}
	real := func(set *data.EmojiSet, n int) ([]*tensor.Tensor, []int) {
		var imgs []*tensor.Tensor
		var truth []int
		pick := map[int]bool{}
		for i := 0; i < n; i++ {
			pick[i*len(set.Emoji)/n] = true
		}
		for i := 0; i < set.Len(); i++ {
			if pick[set.EmojiOf(i)] {
				img := tensor.New(3, set.Size, set.Size)
				set.Example(i, img.Data())
				imgs = append(imgs, img)
				truth = append(truth, index[set.Prompt(set.EmojiOf(i))])
			}
		}
		return imgs, truth
	}
	nEmoji := len(heldSet.Emoji)
	realHeld, truthHeld := real(heldSet, nEmoji)
	realSeen, truthSeen := real(trainSet, nEmoji)
	calib := trainSet.SpreadPrompts(64)
	for i, p := range calib {
		calib[i] = m.Config.Text.Fit(p)
	}
	fid := func(gen, real []*tensor.Tensor) float64 {
		a, err := eval.NewFeatures(s.ImageEmbeddings(gen))
		if err != nil {
			t.Fatal(err)
		}
		b, err := eval.NewFeatures(s.ImageEmbeddings(real))
		if err != nil {
			t.Fatal(err)
		}
		v, err := eval.FID(a, b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dir := t.TempDir()
	var base []*tensor.Tensor
	var baseFLOPs float64
	for _, run := range strings.Split(spec, ",") {
		steps, cache := 32, "off"
		if k, ok := strings.CutPrefix(run, "steps-"); ok {
			if steps, err = strconv.Atoi(k); err != nil {
				t.Fatalf("run %q: %v", run, err)
			}
		} else if run != "base-32" {
			cache = run
		}
		copts, err := imagegen.ParseCache(cache)
		if err != nil {
			t.Fatal(err)
		}
		copts.Dir = dir
		gen := func(truth []int, seed uint64) ([]*tensor.Tensor, imagegen.AccelStats) {
			prompts := make([]string, len(truth))
			for i, k := range truth {
				prompts[i] = m.Config.Text.Fit(names[k])
			}
			imgs, st, err := t2i.GenerateAccel(m, prompts, t2i.GenerateOptions{Seed: seed, Steps: steps, CFG: 4,
				Cache: copts, CalibrationPrompts: calib, Progress: progress.Options{Mode: progress.Silent}})
			if err != nil {
				t.Fatal(err)
			}
			return imgs, st
		}
		gHeld, stHeld := gen(truthHeld, 0)
		gSeen, stSeen := gen(truthSeen, 1)
		all := append(append([]*tensor.Tensor(nil), gHeld...), gSeen...)
		flops := stHeld.FLOPs + stSeen.FLOPs
		hit := 0.0
		if stHeld.Cache != nil {
			hit = (stHeld.Cache.HitRate + stSeen.Cache.HitRate) / 2
		}
		out := map[string]any{"run": run, "n_heldout": len(gHeld), "n_seen": len(gSeen), "steps": steps, "hit_rate": hit,
			"block_fraction": float64(steps) / 32 * (1 - hit), "flops": flops,
			"fid_heldout": fid(gHeld, realHeld), "fid_seen": fid(gSeen, realSeen),
			"wall_seconds": stHeld.WallSeconds + stSeen.WallSeconds}
		for key, r := range map[string]struct {
			imgs  []*tensor.Tensor
			truth []int
		}{"retrieval_heldout": {gHeld, truthHeld}, "retrieval_seen": {gSeen, truthSeen}} {
			if out[key], err = s.Retrieval(r.imgs, r.truth, names, 31, 7); err != nil {
				t.Fatal(err)
			}
		}
		if stHeld.Cache != nil {
			out["hits_per_block_heldout"] = stHeld.Cache.HitsPerBlock
		}
		if run == "base-32" {
			base, baseFLOPs = all, flops
		} else if base != nil {
			var sum float64
			for i := range all {
				p, err := eval.PSNR(all[i].Data(), base[i].Data())
				if err != nil {
					t.Fatal(err)
				}
				sum += math.Min(p, 100) // identical images: +Inf
			}
			out["psnr_to_base"] = sum / float64(len(all))
			out["flops_fraction"] = flops / baseFLOPs
			if hit > 0 && !(flops < baseFLOPs) {
				t.Errorf("%s: %.3g FLOPs with hit rate %.2f, baseline %.3g", run, flops, hit, baseFLOPs)
			}
		}
		line, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(string(line))
	}
}
