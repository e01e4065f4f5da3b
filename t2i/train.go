package t2i

import (
	"context"
	"fmt"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/tensor"
	"tessera/train"
)

// Dataset is a captioned image set with values in [-1, 1];
// *data.EmojiSet is one.
type Dataset interface {
	Len() int
	// Example writes image i ([C, H, W] values) into dst.
	Example(i int, dst []float32)
	// Caption returns a caption of image i for draw number draw; the same
	// (i, draw) gives the same caption.
	Caption(i int, draw uint64) string
	// Shape is [C, H, W].
	Shape() [3]int
}

// TrainOptions configures Train.
type TrainOptions struct {
	Config         Config
	Steps          int     // optimiser steps
	Batch          int     // images per step
	LR             float32 // peak learning rate (warmup then cosine)
	Warmup         int     // warmup steps (default Steps/50)
	EMADecay       float32 // default 0.999
	CaptionDropout float64 // probability of the empty prompt, for guidance (default 0.1)
	Seed           uint64
	// CheckpointDir, when set, holds resumable checkpoints written every
	// CheckpointEvery steps (default 500); a run resumes from the newest.
	CheckpointDir   string
	CheckpointEvery int
	Progress        progress.Options
	// Snapshot, when set, is called every SnapshotEvery steps with the
	// model holding the EMA weights (e.g. to write a sample grid).
	Snapshot      func(m *Model, done int) error
	SnapshotEvery int
}

// TrainResult is a finished run: the model holding the EMA weights.
type TrainResult struct {
	Model  *Model
	Result train.Result
}

// Train fits a text-conditioned DiT and its text encoder jointly to ds with
// the flow-matching objective (logit-normal noise levels), AdamW, an EMA of
// the weights and caption dropout for classifier-free guidance, and
// returns the model with the EMA weights swapped in. It mirrors
// imagegen.TrainDiT with prompts in place of labels.
func Train(ctx context.Context, ds Dataset, o TrainOptions) (*TrainResult, error) {
	if o.Steps < 1 || o.Batch < 1 || o.LR <= 0 {
		return nil, fmt.Errorf("train t2i: steps, batch and lr must be positive (have %d, %d, %g)", o.Steps, o.Batch, o.LR)
	}
	sh := ds.Shape()
	if o.Config.InChannels != sh[0] || o.Config.InputSize != sh[1] || sh[1] != sh[2] {
		return nil, fmt.Errorf("train t2i: model takes %d×%d×%d images, data set has %v", o.Config.InChannels, o.Config.InputSize, o.Config.InputSize, sh)
	}
	if ds.Len() < 1 {
		return nil, fmt.Errorf("train t2i: empty data set")
	}
	if o.EMADecay == 0 {
		o.EMADecay = 0.999
	}
	if o.CaptionDropout == 0 {
		o.CaptionDropout = 0.1
	}
	if o.Warmup == 0 {
		o.Warmup = max(1, o.Steps/50)
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 500
	}
	rng := tensor.NewRNG(o.Seed)
	model, err := New(o.Config, rng)
	if err != nil {
		return nil, err
	}
	per := sh[0] * sh[1] * sh[2]
	step := func(stepNo int) (float32, error) {
		x := tensor.New(o.Batch, sh[0], sh[1], sh[2])
		xd := x.Data()
		prompts := make([]string, o.Batch)
		for i := range prompts {
			k := rng.Intn(ds.Len())
			ds.Example(k, xd[i*per:(i+1)*per])
			if rng.Float64() >= o.CaptionDropout {
				prompts[i] = ds.Caption(k, uint64(stepNo)*uint64(o.Batch)+uint64(i))
			}
		}
		g := autodiff.NewGraph()
		defer g.Release()
		net := bound{model, model.Text.Forward(g, prompts)}
		loss, err := diffusion.Loss(g, net, x, make([]int, o.Batch), rng)
		if err != nil {
			return 0, err
		}
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	recipe := imagegen.Recipe{Model: model, RNG: rng, Step: step, Steps: o.Steps, Batch: o.Batch, LR: o.LR, Warmup: o.Warmup,
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

// bound is the model with one batch's prompt embeddings bound, as the
// diffusion.Network the flow-matching loss trains (labels are unused).
type bound struct {
	m    *Model
	text *autodiff.Var // [B, D]
}

func (b bound) Forward(g *autodiff.Graph, x *autodiff.Var, t []float32, _ []int) *autodiff.Var {
	return b.m.Forward(g, x, t, b.text)
}
