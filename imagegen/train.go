// Package imagegen trains and runs Tessera's image generators: the recipe
// that fits a DiT to a data set with flow matching, and generation with a
// sampler, classifier-free guidance and accelerators, reporting what each
// run cost. The CLI and the HTTP server both call it.
package imagegen

import (
	"context"
	"fmt"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/data"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
	"tessera/train"
)

// Dataset is a labelled image set with values in [-1, 1].
type Dataset interface {
	Len() int
	// Example writes item i ([C, H, W] values) into dst and returns its
	// class label.
	Example(i int, dst []float32) int
	// Shape is [C, H, W].
	Shape() [3]int
}

// MNIST32 is MNIST padded to 32×32, one channel.
type MNIST32 struct{ Set *data.MNIST }

// Len implements Dataset.
func (m MNIST32) Len() int { return len(m.Set.Images) }

// Example implements Dataset.
func (m MNIST32) Example(i int, dst []float32) int {
	m.Set.Padded32(i, dst[:1024])
	return m.Set.Labels[i]
}

// Shape implements Dataset.
func (m MNIST32) Shape() [3]int { return [3]int{1, 32, 32} }

// TrainOptions configures TrainDiT.
type TrainOptions struct {
	Config dit.Config
	// Init, when set, is the starting point (fine-tuning); its config must
	// equal Config.
	Init         *dit.Model
	Steps        int     // optimiser steps
	Batch        int     // images per step
	LR           float32 // peak learning rate (warmup then cosine)
	Warmup       int     // warmup steps (default Steps/50)
	EMADecay     float32 // default 0.999
	LabelDropout float64 // probability of the "no class" label, for guidance (default 0.1)
	Seed         uint64
	// CheckpointDir, when set, holds resumable checkpoints written every
	// CheckpointEvery steps (default 500); a run resumes from the newest.
	CheckpointDir   string
	CheckpointEvery int
	Progress        progress.Options
	// Snapshot, when set, is called every SnapshotEvery steps with the
	// model holding the EMA weights (e.g. to write a sample grid).
	Snapshot      func(m *dit.Model, done int) error
	SnapshotEvery int
}

// TrainResult is a finished run: the model holding the EMA weights.
type TrainResult struct {
	Model  *dit.Model
	Result train.Result
}

// TrainDiT fits a DiT to ds with the flow-matching objective, AdamW, an EMA
// of the weights and label dropout for classifier-free guidance, and returns
// the model with the EMA weights swapped in.
func TrainDiT(ctx context.Context, ds Dataset, o TrainOptions) (*TrainResult, error) {
	if o.Steps < 1 || o.Batch < 1 || o.LR <= 0 {
		return nil, fmt.Errorf("train dit: steps, batch and lr must be positive (have %d, %d, %g)", o.Steps, o.Batch, o.LR)
	}
	sh := ds.Shape()
	if o.Config.InChannels != sh[0] || o.Config.InputSize != sh[1] || sh[1] != sh[2] {
		return nil, fmt.Errorf("train dit: model takes %d×%d×%d images, data set has %v", o.Config.InChannels, o.Config.InputSize, o.Config.InputSize, sh)
	}
	if o.EMADecay == 0 {
		o.EMADecay = 0.999
	}
	if o.LabelDropout == 0 {
		o.LabelDropout = 0.1
	}
	if o.Warmup == 0 {
		o.Warmup = max(1, o.Steps/50)
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 500
	}
	rng := tensor.NewRNG(o.Seed)
	model, err := dit.New(o.Config, rng)
	if err != nil {
		return nil, err
	}
	if o.Init != nil {
		if o.Init.Config != o.Config {
			return nil, fmt.Errorf("train dit: initial model has config %+v, training config is %+v", o.Init.Config, o.Config)
		}
		src := nn.NamedParams(o.Init)
		for i, p := range nn.NamedParams(model) {
			p.Var.Value.CopyFrom(src[i].Var.Value)
		}
	}
	per := sh[0] * sh[1] * sh[2]
	step := func(int) (float32, error) {
		x := tensor.New(o.Batch, sh[0], sh[1], sh[2])
		xd := x.Data()
		labels := make([]int, o.Batch)
		for i := range labels {
			labels[i] = ds.Example(rng.Intn(ds.Len()), xd[i*per:(i+1)*per])
		}
		labels = diffusion.DropLabels(rng, labels, o.Config.NumClasses, o.LabelDropout)
		g := autodiff.NewGraph()
		defer g.Release()
		loss, err := diffusion.Loss(g, model, x, labels, rng)
		if err != nil {
			return 0, err
		}
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	recipe := Recipe{Model: model, RNG: rng, Step: step, Steps: o.Steps, Batch: o.Batch, LR: o.LR, Warmup: o.Warmup,
		EMADecay: o.EMADecay, CheckpointDir: o.CheckpointDir, CheckpointEvery: o.CheckpointEvery, Progress: o.Progress,
		SnapshotEvery: o.SnapshotEvery}
	if o.Snapshot != nil {
		recipe.Snapshot = func(done int) error { return o.Snapshot(model, done) }
	}
	res, err := recipe.Run(ctx)
	if err != nil {
		return nil, err
	}
	return &TrainResult{Model: model, Result: res}, nil
}

// SaveShipped writes a model for shipping: config.json and float16
// weights.
func SaveShipped(dir string, m *dit.Model) error {
	return checkpoint.SaveDir(dir, m.Config, m, &safetensors.SaveOptions{DType: safetensors.F16})
}
