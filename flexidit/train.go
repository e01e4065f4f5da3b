package flexidit

import (
	"context"
	"fmt"
	"strings"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
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
	LR      float32 // peak learning rate of the weak parts (default 1e-3)
	Distill float32 // weight of the distillation term (default 1)
	// LabelDropout is the probability of the "no class" label (default 0.1).
	LabelDropout float64
	// Guidance is the weight of a term that distils the direction
	// classifier-free guidance follows (0: off). With it, weak batches run
	// each image twice, with its label and with none, and add
	// Guidance·‖(v_y − v_∅) − (v_powerful,y − v_powerful,∅)‖²: guided
	// sampling adds that difference again, and matching each branch alone
	// leaves it noisy. Label dropout does not apply to these batches.
	Guidance float32
	// GuidanceScale, when positive, makes the guidance term match the
	// guided prediction v_∅ + w·(v_y − v_∅) at this scale w instead of the
	// difference alone (sampling's own combination: with w = 2 the
	// labelled branch weighs four times the unlabelled one).
	GuidanceScale float32
	// MinLevel and MaxLevel bound the noise levels of weak batches, drawn
	// uniformly from [MinLevel, MaxLevel] (default [0, 1]). Uniform levels
	// cover the noisy start of sampling, where the scheduler runs the weak
	// patch size; the base's logit-normal levels almost never reach it
	// (3% of them lie above s = 0.875).
	MinLevel, MaxLevel float64
	// EMA, when positive, is the decay of an exponential moving average
	// of the trained weights, which replaces them when training ends
	// (0: the last step's weights).
	EMA float32
	// Shared-parameters variant only (Config.Shared): WeakFraction is the
	// probability that a step's batch runs at the weak patch size (default
	// 1/2; the others run at the powerful size with the base's
	// logit-normal levels), BaseLR the peak learning rate of the base's
	// weights (default LR/10).
	WeakFraction float64
	BaseLR       float32
	Seed         uint64
	Progress     progress.Options
}

// Train fine-tunes f on ds. Each step draws a batch, noise levels and
// noise as flow matching does and minimises
// ‖v_θ − v‖² + Distill·‖v_θ − v_powerful‖², v being the flow-matching
// target and v_powerful the original powerful model's prediction on the
// same noisy batch (distillation). In the LoRA variant every batch runs at
// the weak patch size and only the weak parts learn; the base is not
// touched. In the shared-parameters variant each batch runs at a random
// patch size and the base's weights learn too, distilled to a frozen copy
// of the original.
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
	if !(o.EMA >= 0 && o.EMA < 1) {
		return train.Result{}, fmt.Errorf("flexidit train: EMA decay %g is not in [0, 1)", o.EMA)
	}
	if o.MaxLevel == 0 {
		o.MaxLevel = 1
	}
	if !(0 <= o.MinLevel && o.MinLevel < o.MaxLevel && o.MaxLevel <= 1) {
		return train.Result{}, fmt.Errorf("flexidit train: noise levels [%g, %g] are not a range inside [0, 1]", o.MinLevel, o.MaxLevel)
	}
	if o.WeakFraction == 0 {
		o.WeakFraction = 0.5
	}
	if o.BaseLR == 0 {
		o.BaseLR = o.LR / 10
	}
	f.ResetFolded()
	defer f.ResetFolded()
	m := f.Base
	if f.Cond == nil && m.YEmbedder == nil {
		return train.Result{}, fmt.Errorf("flexidit train: the base DiT has no class embedding: its conditioning (Cond) must be set")
	}
	cfg := m.Config
	sh := ds.Shape()
	if sh[0] != cfg.InChannels || sh[1] != cfg.InputSize || sh[2] != cfg.InputSize {
		return train.Result{}, fmt.Errorf("flexidit train: model takes %d×%d×%d images, data set has %v", cfg.InChannels, cfg.InputSize, cfg.InputSize, sh)
	}
	named := nn.NamedParams(m)
	was := make([]bool, len(named))
	var baseParams []*autodiff.Var
	for k, p := range named {
		was[k] = p.Var.RequiresGrad()
		if was[k] && f.Config.Shared {
			baseParams = append(baseParams, p.Var)
		} else {
			p.Var.SetRequiresGrad(false)
		}
	}
	defer func() {
		for k, p := range named {
			p.Var.SetRequiresGrad(was[k])
		}
	}()
	teacher := f.conditioning()
	if f.Config.Shared {
		if f.Cond != nil {
			return train.Result{}, fmt.Errorf("flexidit train: the shared-parameters variant needs a class-conditional base (use LoRA)")
		}
		c, err := frozenCopy(m)
		if err != nil {
			return train.Result{}, fmt.Errorf("flexidit train: %w", err)
		}
		teacher = c
	}
	weakParams := f.Trainable()
	params := append(append([]*autodiff.Var(nil), weakParams...), baseParams...)
	var opt optim.Optimizer = optim.NewAdamW(weakParams, optim.AdamWConfig{LR: o.LR, Beta2: 0.99})
	if len(baseParams) > 0 {
		opt = &groups{lead: opt, others: []optim.Optimizer{optim.NewAdamW(baseParams, optim.AdamWConfig{LR: o.BaseLR, Beta2: 0.99})},
			ratios: []float32{o.BaseLR / o.LR}}
	}
	rng := tensor.NewRNG(o.Seed)
	per := sh[0] * sh[1] * sh[2]
	if !f.Config.NoFineSkip && f.Config.FineVar == 0 {
		f.Config.FineVar = measureFineVar(f, ds, tensor.NewRNG(o.Seed+1))
	}
	step := func(int) (float32, error) {
		weak := !f.Config.Shared || rng.Float64() < o.WeakFraction
		x0 := tensor.New(o.Batch, sh[0], sh[1], sh[2])
		labels := make([]int, o.Batch)
		for i := range labels {
			labels[i] = ds.Example(rng.Intn(ds.Len()), x0.Data()[i*per:(i+1)*per])
		}
		paired := weak && o.Guidance > 0
		if paired {
			// The same noisy images with their labels, then with none.
			x2 := tensor.New(2*o.Batch, sh[0], sh[1], sh[2])
			copy(x2.Data(), x0.Data())
			copy(x2.Data()[o.Batch*per:], x0.Data())
			x0 = x2
			null := f.conditioning().Null()
			for range o.Batch {
				labels = append(labels, null)
			}
		} else {
			labels = diffusion.DropLabels(rng, labels, f.conditioning().Null(), o.LabelDropout)
		}
		var s []float32
		if weak {
			s = make([]float32, len(labels))
			for i := range o.Batch {
				s[i] = float32(o.MinLevel + (o.MaxLevel-o.MinLevel)*rng.Float64())
			}
			copy(s[o.Batch:], s[:o.Batch]) // paired rows: the same levels
		} else {
			s = diffusion.NoiseLevels(rng, o.Batch, 0, 1) // the base's training levels
		}
		eps := diffusion.Noise(rng, x0.Shape()...)
		if paired {
			copy(eps.Data()[o.Batch*per:], eps.Data()[:o.Batch*per])
		}
		xs, target := diffusion.Interpolate(x0, eps, s)
		t := make([]float32, len(s))
		for i, v := range s {
			t[i] = 1000 * v
		}
		vPow, err := teacher.Predict(xs, t, labels)
		if err != nil {
			return 0, err
		}
		g := autodiff.NewGraph()
		defer g.Release()
		var out *autodiff.Var
		if weak {
			out = f.ForwardWeak(g, autodiff.Const(xs), t, labels)
		} else {
			out = m.Forward(g, autodiff.Const(xs), t, labels)
		}
		if cfg.LearnSigma {
			out = g.Slice(out, 1, 0, cfg.InChannels)
		}
		pow := autodiff.Const(vPow)
		loss := g.Add(g.MSE(out, autodiff.Const(target)), g.Scale(g.MSE(out, pow), o.Distill))
		if paired {
			b := o.Batch
			dw := g.Sub(g.Slice(out, 0, 0, b), g.Slice(out, 0, b, 2*b))
			dp := g.Sub(g.Slice(pow, 0, 0, b), g.Slice(pow, 0, b, 2*b))
			if w := o.GuidanceScale; w > 0 {
				dw = g.Add(g.Slice(out, 0, b, 2*b), g.Scale(dw, w))
				dp = g.Add(g.Slice(pow, 0, b, 2*b), g.Scale(dp, w))
			}
			loss = g.Add(loss, g.Scale(g.MSE(dw, dp), o.Guidance))
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
		Schedule:  optim.WarmupCosine{Peak: o.LR, Final: o.LR / 20, Warmup: max(1, o.Steps/20), Total: o.Steps},
		ClipNorm:  1,
		Params:    params,
		Progress:  o.Progress,
	}
	if o.EMA > 0 {
		loop.EMA = optim.NewEMA(params, o.EMA)
		loop.EMA.Warmup = true
	}
	res, err := loop.Run(ctx)
	if err != nil {
		return res, fmt.Errorf("flexidit train: %w", err)
	}
	if loop.EMA != nil {
		loop.EMA.Swap()
	}
	return res, nil
}

// measureFineVar is the data's energy outside the weak patches' coarse
// subspace relative to white noise's, on up to 512 images.
func measureFineVar(f *Model, ds Dataset, rng *tensor.RNG) float64 {
	sh := ds.Shape()
	n := min(512, ds.Len())
	per := sh[0] * sh[1] * sh[2]
	x := tensor.New(n, sh[0], sh[1], sh[2])
	for i := 0; i < n; i++ {
		ds.Example(rng.Intn(ds.Len()), x.Data()[i*per:(i+1)*per])
	}
	p, pw := float64(f.Base.Config.PatchSize), float64(f.Config.WeakPatch)
	return max(f.FineEnergy(x)/(1-(p*p)/(pw*pw)), 1e-3)
}

// frozenCopy returns a copy of m that shares no weights with it.
func frozenCopy(m *dit.Model) (*dit.Model, error) {
	c, err := dit.New(m.Config, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	src, dst := nn.NamedParams(m), nn.NamedParams(c)
	if len(src) != len(dst) {
		return nil, fmt.Errorf("copy of the base has %d parameters, the base %d", len(dst), len(src))
	}
	for k := range src {
		dst[k].Var.Value = src[k].Var.Value.Clone()
		dst[k].Var.SetRequiresGrad(false)
	}
	return c, nil
}

// groups is several optimisers stepped together, the learning rate of the
// others kept at a fixed ratio to the lead's (schedules set the lead's).
type groups struct {
	lead   optim.Optimizer
	others []optim.Optimizer
	ratios []float32
}

func (o *groups) Step() {
	o.lead.Step()
	for _, x := range o.others {
		x.Step()
	}
}

func (o *groups) ZeroGrad() {
	o.lead.ZeroGrad()
	for _, x := range o.others {
		x.ZeroGrad()
	}
}

func (o *groups) LR() float32 { return o.lead.LR() }

func (o *groups) SetLR(lr float32) {
	o.lead.SetLR(lr)
	for i, x := range o.others {
		x.SetLR(lr * o.ratios[i])
	}
}

func (o *groups) State() map[string]*tensor.Tensor {
	st := map[string]*tensor.Tensor{}
	for i, x := range append([]optim.Optimizer{o.lead}, o.others...) {
		for k, v := range x.State() {
			st[fmt.Sprintf("group%d.%s", i, k)] = v
		}
	}
	return st
}

func (o *groups) Load(state map[string]*tensor.Tensor) error {
	for i, x := range append([]optim.Optimizer{o.lead}, o.others...) {
		sub := map[string]*tensor.Tensor{}
		prefix := fmt.Sprintf("group%d.", i)
		for k, v := range state {
			if strings.HasPrefix(k, prefix) {
				sub[strings.TrimPrefix(k, prefix)] = v
			}
		}
		if err := x.Load(sub); err != nil {
			return fmt.Errorf("optimiser group %d: %w", i, err)
		}
	}
	return nil
}
