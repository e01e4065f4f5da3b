// Package optim holds the optimisers (AdamW, SGD with momentum), gradient
// clipping, an exponential moving average of weights and learning-rate
// schedules. Updates follow PyTorch's definitions so that hyper-parameters
// and numbers carry over.
//
// Optimisers work on the *autodiff.Var parameters of a model (see
// nn.Params): after Graph.Backward has filled the gradients, Step updates the
// values in place. Parameters without a gradient (frozen, or not reached by
// the loss) are skipped, as in PyTorch.
package optim

import (
	"fmt"
	"math"

	"tessera/autodiff"
	"tessera/internal/parallel"
	"tessera/tensor"
)

// Optimizer is what a training loop drives.
type Optimizer interface {
	// Step applies one update to every parameter that has a gradient.
	Step()
	// ZeroGrad clears every parameter's gradient.
	ZeroGrad()
	// LR returns the learning rate the next Step uses.
	LR() float32
	// SetLR changes the learning rate (schedules call it before each Step).
	SetLR(lr float32)
	// State returns the optimiser's state (moments, step counts) as named
	// tensors that share nothing with the optimiser, for checkpoints.
	State() map[string]*tensor.Tensor
	// Load restores a state returned by State for the same parameter list.
	Load(state map[string]*tensor.Tensor) error
}

// ZeroGrad clears the gradients of params.
func ZeroGrad(params []*autodiff.Var) {
	for _, p := range params {
		p.ZeroGrad()
	}
}

// active reports whether p takes part in an update.
func active(p *autodiff.Var) bool { return p.RequiresGrad() && p.Grad != nil }

// values returns p's value as a contiguous slice that aliases the
// parameter, panicking if the value is a strided view (parameters are
// created contiguous; updating a copy would silently lose the step).
func values(p *autodiff.Var) []float32 {
	if !p.Value.IsContiguous() {
		panic("optim: parameter value is not contiguous")
	}
	return p.Value.Data()
}

func gradOf(p *autodiff.Var) []float32 {
	if !tensor.SameShape(p.Grad, p.Value) {
		panic(fmt.Sprintf("optim: gradient shape %v differs from parameter shape %v", p.Grad.Shape(), p.Value.Shape()))
	}
	return p.Grad.Data()
}

// stateTensor copies s into a new tensor of the given shape.
func stateTensor(s []float32, shape []int) *tensor.Tensor {
	return tensor.FromData(append([]float32(nil), s...), shape...)
}

// loadSlice copies the tensor named key into dst after checking its size.
func loadSlice(state map[string]*tensor.Tensor, key string, dst []float32) error {
	t, ok := state[key]
	if !ok {
		return fmt.Errorf("optimizer state: missing %q", key)
	}
	if t.Numel() != len(dst) {
		return fmt.Errorf("optimizer state: %q has %d values, parameter has %d", key, t.Numel(), len(dst))
	}
	copy(dst, t.Data())
	return nil
}

// loadInt reads an integer count stored as a one-element tensor.
func loadInt(state map[string]*tensor.Tensor, key string) (int, error) {
	t, ok := state[key]
	if !ok {
		return 0, fmt.Errorf("optimizer state: missing %q", key)
	}
	if t.Numel() != 1 {
		return 0, fmt.Errorf("optimizer state: %q has %d values, want 1", key, t.Numel())
	}
	v := float64(t.Data()[0])
	if v < 0 || v != math.Trunc(v) {
		return 0, fmt.Errorf("optimizer state: %q = %v is not a count", key, v)
	}
	return int(v), nil
}

// GradNorm returns the L2 norm of all gradients of params together. The
// sum is taken over fixed blocks in a fixed order, so the result does not
// depend on the number of threads.
func GradNorm(params []*autodiff.Var) float32 {
	const block = 1 << 13
	type span struct {
		g      []float32
		lo, hi int
	}
	var spans []span
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		g := p.Grad.Data()
		for lo := 0; lo < len(g); lo += block {
			spans = append(spans, span{g, lo, min(lo+block, len(g))})
		}
	}
	sums := make([]float64, len(spans))
	parallel.For(len(spans), grain/block, func(a, b int) {
		for i := a; i < b; i++ {
			s := spans[i]
			sums[i] = sumSquares(s.g[s.lo:s.hi])
		}
	})
	var total float64
	for _, s := range sums {
		total += s
	}
	return float32(math.Sqrt(total))
}

// ClipGradNorm scales all gradients of params together so that their global
// L2 norm is at most maxNorm, like torch.nn.utils.clip_grad_norm_, and
// returns the norm before clipping.
func ClipGradNorm(params []*autodiff.Var, maxNorm float32) float32 {
	norm := GradNorm(params)
	coef := float32(float64(maxNorm) / (float64(norm) + 1e-6))
	if coef >= 1 {
		return norm
	}
	var grads [][]float32
	var sizes []int
	for _, p := range params {
		if p.Grad != nil {
			// Scale in place: a strided gradient is made contiguous first
			// so that Data aliases it.
			p.Grad = p.Grad.Contiguous()
			g := p.Grad.Data()
			grads = append(grads, g)
			sizes = append(sizes, len(g))
		}
	}
	forEachRange(sizes, func(i, lo, hi int) {
		g := grads[i][lo:hi]
		for j := range g {
			g[j] *= coef
		}
	})
	return norm
}
