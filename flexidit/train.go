package flexidit

import (
	"context"
	"fmt"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
	"tessera/train"
)

// Dataset is a labelled image set with values in [-1, 1]
// (imagegen.MNIST32 is one).
type Dataset interface {
	Len() int
	// Example writes item i ([C, H, W] values) into dst and returns its
	// class label.
	Example(i int, dst []float32) int
	// Shape is [C, H, W].
	Shape() [3]int
}

// TrainOptions configures Train.
type TrainOptions struct {
	Steps   int     // optimiser steps (FlexiDiT's budget: ≤ 10% of the base's)
	Batch   int     // images per step (default 64)
	LR      float32 // peak learning rate (default 1e-3)
	Distill float32 // weight of the distillation term (default 1)
	// LabelDropout is the probability of the "no class" label (default 0.1).
	LabelDropout float64
	Seed         uint64
	Progress     progress.Options
}

// Train fine-tunes the weak parts of f on ds: each step draws a batch,
// noise levels and noise as flow matching does, and minimises
// ‖v_weak − v‖² + Distill·‖v_weak − v_powerful‖², v being the
// flow-matching target and v_powerful the frozen base's prediction on the
// same noisy batch (distillation to the powerful model). The base model's
// weights are not touched.
func Train(ctx context.Context, f *Model, ds Dataset, o TrainOptions) (train.Result, error) {
	if o.Steps < 1 {
		return train.Result{}, fmt.Errorf("flexidit train: steps must be positive (have %d)", o.Steps)
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.Distill == 0 {
		o.Distill = 1
	}
	if o.LabelDropout == 0 {
		o.LabelDropout = 0.1
	}
	m := f.Base
	cfg := m.Config
	sh := ds.Shape()
	if sh[0] != cfg.InChannels || sh[1] != cfg.InputSize {
		return train.Result{}, fmt.Errorf("flexidit train: model takes %d×%d×%d images, data set has %v", cfg.InChannels, cfg.InputSize, cfg.InputSize, sh)
	}
	named := nn.NamedParams(m)
	was := make([]bool, len(named))
	for k, p := range named {
		was[k] = p.Var.RequiresGrad()
		p.Var.SetRequiresGrad(false)
	}
	defer func() {
		for k, p := range named {
			p.Var.SetRequiresGrad(was[k])
		}
	}()
	params := f.Trainable()
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR, Beta2: 0.99})
	rng := tensor.NewRNG(o.Seed)
	per := sh[0] * sh[1] * sh[2]
	step := func(int) (float32, error) {
		x0 := tensor.New(o.Batch, sh[0], sh[1], sh[2])
		labels := make([]int, o.Batch)
		for i := range labels {
			labels[i] = ds.Example(rng.Intn(ds.Len()), x0.Data()[i*per:(i+1)*per])
		}
		labels = diffusion.DropLabels(rng, labels, cfg.NumClasses, o.LabelDropout)
		s := diffusion.NoiseLevels(rng, o.Batch, 0, 1)
		eps := diffusion.Noise(rng, x0.Shape()...)
		xs, target := diffusion.Interpolate(x0, eps, s)
		t := make([]float32, o.Batch)
		for i, v := range s {
			t[i] = 1000 * v
		}
		teacher, err := m.Predict(xs, t, labels)
		if err != nil {
			return 0, err
		}
		g := autodiff.NewGraph()
		defer g.Release()
		out := f.ForwardWeak(g, autodiff.Const(xs), t, labels)
		if cfg.LearnSigma {
			out = g.Slice(out, 1, 0, cfg.InChannels)
		}
		loss := g.Add(g.MSE(out, autodiff.Const(target)), g.Scale(g.MSE(out, autodiff.Const(teacher)), o.Distill))
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	loop := &train.Loop{
		Steps:     o.Steps,
		Step:      step,
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: o.LR, Final: o.LR / 20, Warmup: max(1, o.Steps/20), Total: o.Steps},
		ClipNorm:  1,
		Params:    params,
		Progress:  o.Progress,
	}
	res, err := loop.Run(ctx)
	if err != nil {
		return res, fmt.Errorf("flexidit train: %w", err)
	}
	return res, nil
}
