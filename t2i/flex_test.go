package t2i

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"tessera/flexidit"
	"tessera/imagegen"
	"tessera/nn"
	"tessera/tensor"
)

// colourSquares is the colours set as a flexidit.Dataset: each image
// labelled by its colour, whose prompt is the colour's name.
type colourSquares struct{ colours }

func (c colourSquares) Example(i int, dst []float32) int {
	c.colours.Example(i, dst)
	return c.EmojiOf(i)
}

// FlexiDiT on a text-to-image model: the weak passes are conditioned on
// the prompts through Prompted; with no weak step, generation is the
// plain one image for image; with weak steps the schedule, rows and FLOPs
// are reported and the images stay close; fine-tuning leaves the base
// untouched.
func TestFlexWithPrompts(t *testing.T) {
	m := randomized(t)
	f, err := flexidit.Flexify(m.DiT, flexidit.Config{LoRARank: 4}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, p := range nn.NamedParams(m) {
		before[p.Name] = slices.Clone(p.Var.Value.Data())
	}
	f.Cond = NewPrompted(m, colourNames)
	if _, err := flexidit.Train(context.Background(), f, colourSquares{}, flexidit.TrainOptions{Steps: 3, Batch: 4, MinLevel: 0.5, Progress: quiet}); err != nil {
		t.Fatal(err)
	}
	for _, p := range nn.NamedParams(m) {
		if !slices.Equal(before[p.Name], p.Var.Value.Data()) {
			t.Fatalf("fine-tuning the weak parts changed %s", p.Name)
		}
	}
	f.Cond = nil
	if _, err := f.PredictWeak(tensor.New(1, 3, 8, 8), []float32{500}, []int{0}); err == nil {
		t.Fatal("a class-less DiT's weak pass took a class label without prompts")
	}

	prompts := []string{"red", "blue", "green"}
	for _, sampler := range []string{"euler", "heun"} {
		o := GenerateOptions{Seed: 3, Steps: 6, CFG: 2, Sampler: sampler, Batch: 2, Progress: quiet}
		want, base, err := Generate(m, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, weak := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/weak%d", sampler, weak), func(t *testing.T) {
				o := o
				o.Flex = &imagegen.FlexOptions{Model: f, WeakSteps: weak}
				got, st, err := GenerateAccel(m, prompts, o)
				if err != nil {
					t.Fatal(err)
				}
				if f.Cond != nil {
					t.Fatal("the prompts stayed bound to the flexified model")
				}
				worst := 0.0
				for i := range want {
					worst = max(worst, maxAbsDiff(got[i].Data(), want[i].Data()))
				}
				switch {
				case weak == 0 && worst > 1e-5:
					t.Fatalf("no weak step: images differ from plain generation by %g", worst)
				case weak > 0 && (worst == 0 || worst > 1):
					t.Fatalf("%d weak steps: images differ from plain generation by %g", weak, worst)
				}
				if st.Flex == nil || st.Flex.WeakRows == 0 && weak > 0 || st.NetworkEvals != base.NetworkEvals {
					t.Fatalf("flex report %+v, stats %+v (plain %+v)", st.Flex, st.Stats, base)
				}
				if weak > 0 && !(st.FLOPs < base.FLOPs) || weak == 0 && st.FLOPs != base.FLOPs {
					t.Fatalf("%d weak steps: FLOPs %g, plain %g", weak, st.FLOPs, base.FLOPs)
				}
			})
		}
	}
	o := GenerateOptions{Steps: 4, Progress: quiet, Flex: &imagegen.FlexOptions{Model: f, WeakSteps: 5}}
	if _, _, err := GenerateAccel(m, prompts, o); err == nil {
		t.Fatal("5 weak steps of 4: no error")
	}
	other := randomized(t)
	o.Flex.WeakSteps, o.Flex.Model = 2, f
	if _, _, err := GenerateAccel(other, prompts, o); err == nil {
		t.Fatal("another model's FlexiDiT: no error")
	}
}

// FlexiDiT and block caching together on a text-to-image model: the cache
// runs the powerful steps, so a cache that never reuses gives the images
// of FlexiDiT alone, and one that reuses saves block evaluations and
// FLOPs beyond FlexiDiT's.
func TestFlexWithCache(t *testing.T) {
	m := randomized(t)
	f, err := flexidit.Flexify(m.DiT, flexidit.Config{LoRARank: 4}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	prompts := []string{"red", "blue", "green"}
	for _, sampler := range []string{"euler", "heun"} {
		o := GenerateOptions{Seed: 5, Steps: 8, CFG: 2, Sampler: sampler, Batch: 3, Progress: quiet,
			Flex: &imagegen.FlexOptions{Model: f, WeakSteps: 3}}
		want, flexOnly, err := GenerateAccel(m, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range []string{"plan:1e-9", "plan:0.5", "fc-plan:0.5"} {
			t.Run(sampler+"/"+spec, func(t *testing.T) {
				o := o
				if o.Cache, err = imagegen.ParseCache(spec); err != nil {
					t.Fatal(err)
				}
				o.Cache.Dir, o.Cache.Calibration = t.TempDir(), 2
				got, st, err := GenerateAccel(m, prompts, o)
				if err != nil {
					t.Fatal(err)
				}
				if st.Flex == nil || st.Cache == nil || st.Flex.WeakRows != flexOnly.Flex.WeakRows {
					t.Fatalf("flex report %+v, cache report %+v (FlexiDiT alone: %+v)", st.Flex, st.Cache, flexOnly.Flex)
				}
				worst := 0.0
				for i := range want {
					worst = max(worst, maxAbsDiff(got[i].Data(), want[i].Data()))
				}
				if spec == "plan:1e-9" {
					if worst > 1e-5 || st.Cache.HitRate != 0 || st.FLOPs != flexOnly.FLOPs || st.BlockEvals != flexOnly.BlockEvals {
						t.Fatalf("no reuse: images differ by %g, hit rate %g, FLOPs %g (alone %g), block evaluations %d (alone %d)",
							worst, st.Cache.HitRate, st.FLOPs, flexOnly.FLOPs, st.BlockEvals, flexOnly.BlockEvals)
					}
					return
				}
				if !(st.Cache.HitRate > 0) || !(st.FLOPs < flexOnly.FLOPs) || !(st.BlockEvals < flexOnly.BlockEvals) || worst == 0 {
					t.Fatalf("hit rate %g, FLOPs %g (alone %g), block evaluations %d (alone %d), images differ by %g",
						st.Cache.HitRate, st.FLOPs, flexOnly.FLOPs, st.BlockEvals, flexOnly.BlockEvals, worst)
				}
			})
		}
	}
}
