package imagegen

import (
	"context"
	"math"
	"strings"
	"testing"

	"tessera/dit"
	"tessera/internal/progress"
	"tessera/tensor"
)

func tinyConfig() dit.Config {
	return dit.Config{InputSize: 8, PatchSize: 4, InChannels: 1, HiddenSize: 16, Depth: 2, NumHeads: 2,
		MLPRatio: 2, NumClasses: 3, Prediction: dit.Velocity}
}

func tinyModel(t *testing.T) *dit.Model {
	t.Helper()
	m, err := dit.New(tinyConfig(), tensor.NewRNG(3))
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero adaLN and output layers, so that the output depends on the
	// input (DiT zero-initialises them).
	rng := tensor.NewRNG(4)
	for _, p := range append([]*tensor.Tensor{m.FinalLayer.Linear.Weight.Value, m.FinalLayer.AdaLN.Weight.Value}, m.Blocks[0].AdaLN.Weight.Value) {
		p.CopyFrom(tensor.Scale(rng.Normal(p.Shape()...), 0.1))
	}
	return m
}

var silent = progress.Options{Mode: progress.Silent}

// The same seed gives the same images whatever the batch size, and a
// different seed gives different images.
func TestGenerateDeterministic(t *testing.T) {
	m := tinyModel(t)
	opts := GenerateOptions{N: 5, Seed: 7, Steps: 4, CFG: 2, Progress: silent}
	a, st, err := Generate(m, withBatch(opts, 5))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Generate(m, withBatch(opts, 2))
	if err != nil {
		t.Fatal(err)
	}
	opts.Seed = 8
	c, _, _ := Generate(m, opts)
	for i := range a {
		if d := maxDiff(a[i], b[i]); d > 1e-5 {
			t.Fatalf("image %d differs by %g between batch sizes", i, d)
		}
	}
	if maxDiff(a[0], c[0]) < 1e-3 {
		t.Fatal("a different seed gave the same image")
	}
	if st.NetworkEvals != 4 || st.BlockEvals != 8 {
		t.Fatalf("network evals %d, block evals %d; want 4 and 8 for 4 steps in one batch", st.NetworkEvals, st.BlockEvals)
	}
	// Guidance doubles the batch of every pass.
	if want := 4 * FLOPs(m.Config, 10); math.Abs(st.FLOPs-want) > 1e-6*want {
		t.Fatalf("flops %g, want %g", st.FLOPs, want)
	}
	for _, img := range a {
		for _, v := range img.Data() {
			if v < -1 || v > 1 {
				t.Fatalf("pixel %v outside [-1, 1]", v)
			}
		}
	}
}

func withBatch(o GenerateOptions, b int) GenerateOptions { o.Batch = b; return o }

func maxDiff(a, b *tensor.Tensor) float64 {
	var m float64
	for i, v := range a.Data() {
		m = math.Max(m, math.Abs(float64(v-b.Data()[i])))
	}
	return m
}

func TestGenerateErrors(t *testing.T) {
	m := tinyModel(t)
	tests := []struct {
		name string
		o    GenerateOptions
		msg  string
	}{
		{"no images", GenerateOptions{N: 0}, "n must be"},
		{"negative steps", GenerateOptions{N: 1, Steps: -1}, "steps"},
		{"class out of range", GenerateOptions{N: 1, Classes: []int{7}}, "class 7"},
		{"class count", GenerateOptions{N: 2, Classes: []int{1}}, "1 classes for 2 images"},
		{"ddim on a flow model", GenerateOptions{N: 1, Sampler: "ddim"}, "epsilon"},
		{"unknown sampler", GenerateOptions{N: 1, Sampler: "rk45"}, "rk45"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Progress = silent
			_, _, err := Generate(m, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.msg)
			}
		})
	}
}

// FLOPs grows linearly with the batch and matches a hand count for a
// one-block model.
func TestFLOPs(t *testing.T) {
	c := tinyConfig()
	c.Depth = 1
	if FLOPs(c, 4) != 4*FLOPs(c, 1) {
		t.Fatal("FLOPs not linear in the batch")
	}
	// T=4 tokens, h=16, p²=16, mlp hidden 32, 1 channel in and out.
	h, tok := 16.0, 4.0
	want := 2*tok*h*16 + 2*(256*h+h*h) + // embeddings
		2*h*6*h + 2*tok*h*3*h + 2*2*tok*tok*h + 2*tok*h*h + 2*2*tok*h*32 + // block
		2*h*2*h + 2*tok*h*16 // final layer
	if got := FLOPs(c, 1); got != want {
		t.Fatalf("FLOPs %g, want %g", got, want)
	}
}

type toyData struct{}

func (toyData) Len() int { return 30 }
func (toyData) Example(i int, dst []float32) int {
	for j := range dst[:64] {
		dst[j] = -1
		if (j%8+i%3)%3 == 0 {
			dst[j] = 1
		}
	}
	return i % 3
}
func (toyData) Shape() [3]int { return [3]int{1, 8, 8} }

func TestTrainDiTLearns(t *testing.T) {
	opts := TrainOptions{Config: tinyConfig(), Steps: 60, Batch: 16, LR: 3e-3, Progress: silent}
	res, err := TrainDiT(context.Background(), toyData{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result.Steps != 60 {
		t.Fatalf("ran %d steps, want 60", res.Result.Steps)
	}
	// The velocity target ε - x0 has mean square 2 here (unit noise, ±1
	// pixels), which is the loss of the zero-initialised output layer; a
	// model that learned the data's structure gets well below it.
	if res.Result.MeanLoss > 1.5 {
		t.Fatalf("smoothed loss %.3f after training, want < 1.5 (2 at initialisation)", res.Result.MeanLoss)
	}
	bad := opts
	bad.Config.InputSize = 16
	if _, err := TrainDiT(context.Background(), toyData{}, bad); err == nil {
		t.Fatal("want an error for a model that does not fit the data")
	}
}
