package imagegen

import (
	"context"
	"strconv"

	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
	"tessera/train"
)

// Recipe is the training recipe Tessera's image models share: AdamW
// (β2 0.99, no weight decay), warmup then cosine decay to LR/20, gradient
// clipping at 1, an EMA of the weights, periodic snapshots taken with the
// EMA weights, and resumable checkpoints.
type Recipe struct {
	Model    any         // struct of tagged parameters
	RNG      *tensor.RNG // the run's only source of randomness (saved in checkpoints)
	Step     train.StepFunc
	Steps    int
	Batch    int // recorded in checkpoints
	LR       float32
	Warmup   int
	EMADecay float32
	// CheckpointDir, when set, holds checkpoints written every
	// CheckpointEvery steps; a run resumes from the newest.
	CheckpointDir   string
	CheckpointEvery int
	Progress        progress.Options
	// Snapshot runs every SnapshotEvery steps with the EMA weights in place.
	Snapshot      func(done int) error
	SnapshotEvery int
}

// Run trains r.Model and leaves the EMA weights in it.
func (r Recipe) Run(ctx context.Context) (train.Result, error) {
	params := nn.Trainable(r.Model)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: r.LR, WeightDecay: 0, Beta2: 0.99})
	ema := optim.NewEMA(params, r.EMADecay)
	loop := &train.Loop{
		Steps:     r.Steps,
		Step:      r.Step,
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: r.LR, Final: r.LR / 20, Warmup: r.Warmup, Total: r.Steps},
		ClipNorm:  1,
		Params:    params,
		EMA:       ema,
		Progress:  r.Progress,
	}
	if r.Snapshot != nil && r.SnapshotEvery > 0 {
		loop.Callbacks = append(loop.Callbacks, train.Callback{Name: "snapshot", Every: r.SnapshotEvery, Fn: func(done int) error {
			ema.Swap()
			defer ema.Swap()
			return r.Snapshot(done)
		}})
	}
	if r.CheckpointDir != "" {
		loop.Checkpoint = &train.Checkpointer{Dir: r.CheckpointDir, KeepLast: 2, Model: r.Model, Optimizer: opt, EMA: ema, RNG: r.RNG,
			User: map[string]string{"batch": strconv.Itoa(r.Batch), "steps": strconv.Itoa(r.Steps)}}
		loop.CheckpointEvery = r.CheckpointEvery
	}
	res, err := loop.Run(ctx)
	if err != nil {
		return res, err
	}
	ema.Swap()
	return res, nil
}
