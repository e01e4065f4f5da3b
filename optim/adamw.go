package optim

import (
	"fmt"
	"strconv"

	"tessera/autodiff"
	"tessera/tensor"
)

// AdamWConfig holds AdamW's hyper-parameters. Zero fields take PyTorch's
// defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8); WeightDecay has no default
// because zero is meaningful (PyTorch's default is 0.01).
type AdamWConfig struct {
	LR          float32
	Beta1       float32
	Beta2       float32
	Eps         float32
	WeightDecay float32
	// DecayMatricesOnly exempts parameters of rank < 2 (biases, norm gains,
	// which rarely benefit from decay) from weight decay.
	DecayMatricesOnly bool
}

func (c AdamWConfig) withDefaults() AdamWConfig {
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), the
// update of torch.optim.AdamW: each parameter keeps its own first and second
// moment and step count, and the step is bias-corrected.
type AdamW struct {
	cfg    AdamWConfig
	params []*autodiff.Var
	m, v   [][]float32 // allocated on a parameter's first update
	steps  []int
}

// NewAdamW returns an AdamW optimiser over params.
func NewAdamW(params []*autodiff.Var, cfg AdamWConfig) *AdamW {
	return &AdamW{
		cfg:    cfg.withDefaults(),
		params: params,
		m:      make([][]float32, len(params)),
		v:      make([][]float32, len(params)),
		steps:  make([]int, len(params)),
	}
}

// Config returns the hyper-parameters in use.
func (o *AdamW) Config() AdamWConfig { return o.cfg }

// LR returns the learning rate.
func (o *AdamW) LR() float32 { return o.cfg.LR }

// SetLR sets the learning rate for the following steps.
func (o *AdamW) SetLR(lr float32) { o.cfg.LR = lr }

// ZeroGrad clears the gradients of the optimiser's parameters.
func (o *AdamW) ZeroGrad() { ZeroGrad(o.params) }

// Step applies one AdamW update to every parameter with a gradient, in one
// pass over values, gradients and moments, spread over the worker pool.
func (o *AdamW) Step() {
	type job struct {
		p, g, m, v []float32
		c          adamwCoef
	}
	var jobs []job
	var sizes []int
	for i, p := range o.params {
		if !active(p) {
			continue
		}
		val, g := values(p), gradOf(p)
		if o.m[i] == nil {
			o.m[i] = make([]float32, len(val))
			o.v[i] = make([]float32, len(val))
		}
		o.steps[i]++
		wd := o.cfg.WeightDecay
		if o.cfg.DecayMatricesOnly && p.Value.Rank() < 2 {
			wd = 0
		}
		c := newAdamWCoef(float64(o.cfg.LR), float64(o.cfg.Beta1), float64(o.cfg.Beta2),
			float64(o.cfg.Eps), float64(wd), o.steps[i])
		jobs = append(jobs, job{val, g, o.m[i], o.v[i], c})
		sizes = append(sizes, len(val))
	}
	forEachRange(sizes, func(i, lo, hi int) {
		j := jobs[i]
		adamw(j.p[lo:hi], j.g[lo:hi], j.m[lo:hi], j.v[lo:hi], j.c)
	})
}

// State returns, for each parameter index i that has been updated,
// "adamw.i.m", "adamw.i.v" (shaped like the parameter) and "adamw.i.step".
func (o *AdamW) State() map[string]*tensor.Tensor {
	st := map[string]*tensor.Tensor{}
	for i, p := range o.params {
		if o.m[i] == nil {
			continue
		}
		k := "adamw." + strconv.Itoa(i) + "."
		st[k+"m"] = stateTensor(o.m[i], p.Value.Shape())
		st[k+"v"] = stateTensor(o.v[i], p.Value.Shape())
		st[k+"step"] = tensor.Scalar(float32(o.steps[i]))
	}
	return st
}

// Load restores a state saved by State for the same parameter list.
// Parameters absent from state start fresh.
func (o *AdamW) Load(state map[string]*tensor.Tensor) error {
	for i, p := range o.params {
		k := "adamw." + strconv.Itoa(i) + "."
		if _, ok := state[k+"step"]; !ok {
			o.m[i], o.v[i], o.steps[i] = nil, nil, 0
			continue
		}
		n := p.Value.Numel()
		m, v := make([]float32, n), make([]float32, n)
		if err := loadSlice(state, k+"m", m); err != nil {
			return fmt.Errorf("adamw parameter %d: %w", i, err)
		}
		if err := loadSlice(state, k+"v", v); err != nil {
			return fmt.Errorf("adamw parameter %d: %w", i, err)
		}
		s, err := loadInt(state, k+"step")
		if err != nil {
			return fmt.Errorf("adamw parameter %d: %w", i, err)
		}
		o.m[i], o.v[i], o.steps[i] = m, v, s
	}
	return nil
}
