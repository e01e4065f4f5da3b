// Package train runs training loops: a step function called for a number of
// steps, with a learning-rate schedule, gradient clipping, an EMA of the
// weights, periodic callbacks (evaluation, samples), a progress bar and
// resumable checkpoints.
//
//	loop := &train.Loop{
//		Steps:     10000,
//		Step:      func(step int) (float32, error) { … forward, g.Backward(loss) … },
//		Optimizer: opt,
//		Schedule:  optim.WarmupCosine{Peak: 3e-4, Warmup: 500, Total: 10000},
//		EMA:       ema,
//		Checkpoint: &train.Checkpointer{Dir: "runs/x", KeepLast: 3, Model: m, Optimizer: opt, EMA: ema, RNG: rng},
//		CheckpointEvery: 1000,
//	}
//	res, err := loop.Run(ctx)
package train

import (
	"context"
	"fmt"
	"math"
	"time"

	"tessera/autodiff"
	"tessera/internal/progress"
	"tessera/optim"
)

// StepFunc runs training step step (counting from 0): it computes the loss
// on a batch and its gradients (Graph.Backward) and returns the loss. The
// loop clears gradients before and applies the optimiser after. For exact
// resumption, all randomness must come from the Checkpointer's RNG.
type StepFunc func(step int) (loss float32, err error)

// Callback runs every Every completed steps (0: never periodically), and
// once more at the end if AtEnd is set and the last step was not already a
// multiple of Every. done is the number of completed steps.
type Callback struct {
	Name  string
	Every int
	AtEnd bool
	Fn    func(done int) error
}

// Loop is a training run's configuration. Only Steps and Step are
// required.
type Loop struct {
	Steps int      // total number of steps of the run
	Step  StepFunc // one step's loss and gradients

	Optimizer optim.Optimizer // applied after each Step when set
	Schedule  optim.Schedule  // sets the optimiser's learning rate before each step when set
	ClipNorm  float32         // clip the global gradient norm to this when > 0
	Params    []*autodiff.Var // parameters to clip (e.g. nn.Trainable(model)); required with ClipNorm
	EMA       *optim.EMA      // updated after each optimiser step when set

	Callbacks []Callback

	// Checkpoint, when set, resumes from the newest checkpoint in its Dir
	// (unless Fresh) and saves every CheckpointEvery steps, at the end, and
	// when the context is cancelled.
	Checkpoint      *Checkpointer
	CheckpointEvery int
	Fresh           bool

	Progress progress.Options
}

// Result summarises a run.
type Result struct {
	Start     int           // step the run started at (non-zero when resumed)
	Steps     int           // steps completed in total
	LastLoss  float32       // loss of the last step
	MeanLoss  float64       // smoothed loss at the end (as the progress bar shows it)
	GradNorm  float32       // global gradient norm of the last step, when clipping
	Duration  time.Duration // wall time of this run
	LastSaved string        // path of the last checkpoint written
}

// Run trains from step 0, or from the newest checkpoint, to Steps.
func (l *Loop) Run(ctx context.Context) (res Result, err error) {
	if l.Step == nil || l.Steps < 0 {
		return res, fmt.Errorf("train: a Loop needs a Step function and Steps >= 0")
	}
	if l.ClipNorm > 0 && l.Params == nil {
		return res, fmt.Errorf("train: ClipNorm needs Params")
	}
	start := 0
	if l.Checkpoint != nil && !l.Fresh {
		meta, err := l.Checkpoint.Resume()
		if err != nil {
			return res, fmt.Errorf("train: resume: %w", err)
		}
		start = meta.Step
	}
	res.Start, res.Steps = start, start
	bar := progress.New(l.Steps, l.Progress)
	bar.Resume(start)
	if start > 0 {
		bar.Printf("resumed from step %d", start)
	}
	began := time.Now()
	defer func() { res.Duration = time.Since(began) }()

	save := func(done int) error {
		if l.Checkpoint == nil {
			return nil
		}
		path, err := l.Checkpoint.Save(done, bar.Loss())
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		res.LastSaved = path
		return nil
	}

	for step := start; step < l.Steps; step++ {
		if err := ctx.Err(); err != nil {
			bar.Finish()
			if serr := save(step); serr != nil {
				return res, fmt.Errorf("%w (and saving on interrupt: %v)", err, serr)
			}
			return res, fmt.Errorf("train: stopped at step %d: %w", step, err)
		}
		if l.Optimizer != nil {
			l.Optimizer.ZeroGrad()
			if l.Schedule != nil {
				l.Optimizer.SetLR(l.Schedule.LR(step))
			}
		}
		loss, err := l.Step(step)
		if err != nil {
			bar.Finish()
			return res, fmt.Errorf("train: step %d: %w", step, err)
		}
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			bar.Finish()
			return res, fmt.Errorf("train: step %d: loss is %v", step, loss)
		}
		if l.ClipNorm > 0 {
			res.GradNorm = optim.ClipGradNorm(l.Params, l.ClipNorm)
		}
		if l.Optimizer != nil {
			l.Optimizer.Step()
		}
		if l.EMA != nil {
			l.EMA.Update()
		}
		done := step + 1
		res.Steps, res.LastLoss = done, loss
		if l.Optimizer != nil {
			bar.Set("lr", float64(l.Optimizer.LR()))
		}
		if l.ClipNorm > 0 {
			bar.Set("gnorm", float64(res.GradNorm))
		}
		bar.Update(done, float64(loss))

		last := done == l.Steps
		for _, cb := range l.Callbacks {
			periodic := cb.Every > 0 && done%cb.Every == 0
			if periodic || (last && cb.AtEnd) {
				if err := cb.Fn(done); err != nil {
					bar.Finish()
					return res, fmt.Errorf("train: callback %q at step %d: %w", cb.Name, done, err)
				}
			}
		}
		if l.Checkpoint != nil && (last || (l.CheckpointEvery > 0 && done%l.CheckpointEvery == 0)) {
			if err := save(done); err != nil {
				bar.Finish()
				return res, err
			}
		}
	}
	bar.Finish()
	res.MeanLoss = bar.Loss()
	return res, nil
}
