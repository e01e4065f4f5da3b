package optim

import (
	"fmt"
	"strconv"

	"tessera/autodiff"
	"tessera/tensor"
)

// EMA keeps an exponential moving average of parameters, as DiT's training
// script does for sampling: after each optimiser step,
//
//	shadow = decay*shadow + (1-decay)*param
//
// Evaluate with the averaged weights by Swap (twice, to swap back), or copy
// them into a separate model with CopyTo.
type EMA struct {
	// Decay is the weight of the old average, e.g. 0.9999.
	Decay float32
	// Warmup, when set, uses min(Decay, (1+n)/(10+n)) at update n so that
	// early averages are not dominated by the random initialisation.
	Warmup bool

	params  []*autodiff.Var
	shadow  [][]float32
	updates int
}

// NewEMA starts an average of params at their current values.
func NewEMA(params []*autodiff.Var, decay float32) *EMA {
	e := &EMA{Decay: decay, params: params, shadow: make([][]float32, len(params))}
	for i, p := range params {
		e.shadow[i] = append([]float32(nil), values(p)...)
	}
	return e
}

// Updates returns how many times Update has run.
func (e *EMA) Updates() int { return e.updates }

// decay returns the decay used by the next update.
func (e *EMA) decay() float32 {
	if e.Warmup {
		n := float32(e.updates)
		return min(e.Decay, (1+n)/(10+n))
	}
	return e.Decay
}

// Update folds the current parameter values into the average.
func (e *EMA) Update() {
	d := e.decay()
	sizes := make([]int, len(e.params))
	vals := make([][]float32, len(e.params))
	for i, p := range e.params {
		vals[i] = values(p)
		sizes[i] = len(vals[i])
	}
	forEachRange(sizes, func(i, lo, hi int) {
		emaGeneric(e.shadow[i][lo:hi], vals[i][lo:hi], d)
	})
	e.updates++
}

// Swap exchanges the parameters' values with the averages; a second Swap
// restores them.
func (e *EMA) Swap() {
	for i, p := range e.params {
		v := values(p)
		for j := range v {
			v[j], e.shadow[i][j] = e.shadow[i][j], v[j]
		}
	}
}

// CopyTo writes the averages into dst, a parameter list of the same shapes
// (typically nn.Params of a second instance of the model).
func (e *EMA) CopyTo(dst []*autodiff.Var) error {
	if len(dst) != len(e.params) {
		return fmt.Errorf("ema: copy to %d parameters, have %d", len(dst), len(e.params))
	}
	for i, p := range dst {
		if p.Value.Numel() != len(e.shadow[i]) {
			return fmt.Errorf("ema: parameter %d has %d values, average has %d", i, p.Value.Numel(), len(e.shadow[i]))
		}
	}
	for i, p := range dst {
		copy(values(p), e.shadow[i])
	}
	return nil
}

// Average returns a copy of the average of parameter i.
func (e *EMA) Average(i int) *tensor.Tensor {
	return stateTensor(e.shadow[i], e.params[i].Value.Shape())
}

// State returns "ema.i" for each parameter index i and "ema.updates".
func (e *EMA) State() map[string]*tensor.Tensor {
	st := map[string]*tensor.Tensor{"ema.updates": tensor.Scalar(float32(e.updates))}
	for i := range e.params {
		st["ema."+strconv.Itoa(i)] = e.Average(i)
	}
	return st
}

// Load restores a state saved by State for the same parameter list.
func (e *EMA) Load(state map[string]*tensor.Tensor) error {
	n, err := loadInt(state, "ema.updates")
	if err != nil {
		return fmt.Errorf("ema: %w", err)
	}
	shadow := make([][]float32, len(e.params))
	for i, p := range e.params {
		shadow[i] = make([]float32, p.Value.Numel())
		if err := loadSlice(state, "ema."+strconv.Itoa(i), shadow[i]); err != nil {
			return fmt.Errorf("ema: %w", err)
		}
	}
	e.shadow, e.updates = shadow, n
	return nil
}
