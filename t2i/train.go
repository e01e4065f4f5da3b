package t2i

import (
	"context"
	"fmt"
	"strconv"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
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
	params := nn.Trainable(model)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR, WeightDecay: 0, Beta2: 0.99})
	ema := optim.NewEMA(params, o.EMADecay)
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
	loop := &train.Loop{
		Steps:     o.Steps,
		Step:      step,
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: o.LR, Final: o.LR / 20, Warmup: o.Warmup, Total: o.Steps},
		ClipNorm:  1,
		Params:    params,
		EMA:       ema,
		Progress:  o.Progress,
	}
	if o.Snapshot != nil && o.SnapshotEvery > 0 {
		loop.Callbacks = append(loop.Callbacks, train.Callback{Name: "snapshot", Every: o.SnapshotEvery, Fn: func(done int) error {
			ema.Swap()
			defer ema.Swap()
			return o.Snapshot(model, done)
		}})
	}
	if o.CheckpointDir != "" {
		loop.Checkpoint = &train.Checkpointer{Dir: o.CheckpointDir, KeepLast: 2, Model: model, Optimizer: opt, EMA: ema, RNG: rng,
			User: map[string]string{"batch": strconv.Itoa(o.Batch), "steps": strconv.Itoa(o.Steps)}}
		loop.CheckpointEvery = o.CheckpointEvery
	}
	res, err := loop.Run(ctx)
	if err != nil {
		return nil, err
	}
	ema.Swap()
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
