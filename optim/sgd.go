package optim

import (
	"fmt"
	"strconv"

	"tessera/autodiff"
	"tessera/tensor"
)

// SGDConfig holds the hyper-parameters of SGD, named as in torch.optim.SGD.
type SGDConfig struct {
	LR          float32
	Momentum    float32 // 0 disables the momentum buffer
	Dampening   float32
	WeightDecay float32 // L2 penalty added to the gradient
	Nesterov    bool
}

// SGD is stochastic gradient descent with optional (Nesterov) momentum, the
// update of torch.optim.SGD.
type SGD struct {
	cfg    SGDConfig
	params []*autodiff.Var
	buf    [][]float32 // momentum buffers, allocated on first update
}

// NewSGD returns an SGD optimiser over params.
func NewSGD(params []*autodiff.Var, cfg SGDConfig) *SGD {
	return &SGD{cfg: cfg, params: params, buf: make([][]float32, len(params))}
}

// LR returns the learning rate.
func (o *SGD) LR() float32 { return o.cfg.LR }

// SetLR sets the learning rate for the following steps.
func (o *SGD) SetLR(lr float32) { o.cfg.LR = lr }

// ZeroGrad clears the gradients of the optimiser's parameters.
func (o *SGD) ZeroGrad() { ZeroGrad(o.params) }

// Step applies one update to every parameter with a gradient.
func (o *SGD) Step() {
	type job struct {
		p, g, buf []float32
		first     bool
	}
	var jobs []job
	var sizes []int
	for i, p := range o.params {
		if !active(p) {
			continue
		}
		val, g := values(p), gradOf(p)
		first := false
		if o.cfg.Momentum != 0 && o.buf[i] == nil {
			o.buf[i] = make([]float32, len(val))
			first = true
		}
		jobs = append(jobs, job{val, g, o.buf[i], first})
		sizes = append(sizes, len(val))
	}
	c := o.cfg
	forEachRange(sizes, func(i, lo, hi int) {
		j := jobs[i]
		var buf []float32
		if j.buf != nil {
			buf = j.buf[lo:hi]
		}
		sgdGeneric(j.p[lo:hi], j.g[lo:hi], buf, c.LR, c.Momentum, c.Dampening, c.WeightDecay, c.Nesterov, j.first)
	})
}

// State returns "sgd.i.momentum" for each parameter index i with a buffer.
func (o *SGD) State() map[string]*tensor.Tensor {
	st := map[string]*tensor.Tensor{}
	for i, p := range o.params {
		if o.buf[i] != nil {
			st["sgd."+strconv.Itoa(i)+".momentum"] = stateTensor(o.buf[i], p.Value.Shape())
		}
	}
	return st
}

// Load restores a state saved by State for the same parameter list.
func (o *SGD) Load(state map[string]*tensor.Tensor) error {
	for i, p := range o.params {
		k := "sgd." + strconv.Itoa(i) + ".momentum"
		if _, ok := state[k]; !ok {
			o.buf[i] = nil
			continue
		}
		b := make([]float32, p.Value.Numel())
		if err := loadSlice(state, k, b); err != nil {
			return fmt.Errorf("sgd parameter %d: %w", i, err)
		}
		o.buf[i] = b
	}
	return nil
}
