// Package autodiff is reverse-mode automatic differentiation over
// tensor.Tensor. A Graph records the operations applied to Vars that need a
// gradient (a tape of backward closures); Backward walks the tape in reverse
// and accumulates gradients into the trainable leaves. The same model code
// runs under NoGrad, where operations only compute and nothing is kept.
//
// Gradients flowing between operations are treated as read-only: an
// operation never modifies the gradient it receives, and a Var stores a
// received gradient without copying until a second contribution arrives
// (then it adds into a buffer of its own). Leaves always own their Grad, so
// optimisers may update it in place.
package autodiff

import (
	"errors"
	"fmt"

	"tessera/tensor"
)

// Var is a node of the computation: a value and, for trainable leaves and
// recorded results, a gradient.
type Var struct {
	Value *tensor.Tensor
	Grad  *tensor.Tensor // nil until Backward touches it; same shape as Value

	requiresGrad bool
	leaf         bool
	gradOwned    bool   // Grad is a buffer only this Var references
	graph        *Graph // the graph that recorded this Var, nil for leaves
}

// Param returns a trainable leaf: Backward accumulates into its Grad.
func Param(t *tensor.Tensor) *Var { return &Var{Value: t, requiresGrad: true, leaf: true} }

// Const returns a leaf that takes no gradient.
func Const(t *tensor.Tensor) *Var { return &Var{Value: t, leaf: true} }

// RequiresGrad reports whether gradients flow into v.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// SetRequiresGrad freezes (false) or unfreezes (true) a leaf. Operations
// recorded afterwards compute no gradient for a frozen leaf.
func (v *Var) SetRequiresGrad(b bool) { v.requiresGrad = b }

// Shape returns the shape of v's value.
func (v *Var) Shape() []int { return v.Value.Shape() }

// ZeroGrad drops v's gradient; the next Backward starts it afresh.
func (v *Var) ZeroGrad() { v.Grad, v.gradOwned = nil, false }

// Tensor returns v's value, so that checkpoint code can treat a *Var as a
// weight slot.
func (v *Var) Tensor() *tensor.Tensor { return v.Value }

// SetTensor replaces v's value.
func (v *Var) SetTensor(t *tensor.Tensor) { v.Value = t }

// node is one recorded operation: how to push out's gradient to its inputs.
type node struct {
	out      *Var
	backward func(gy *tensor.Tensor)
}

// Graph records operations for Backward, or with NoGrad records nothing.
type Graph struct {
	recording bool
	tape      []node
}

// NewGraph returns a recording graph for training: every operation with an
// input that requires a gradient is recorded.
func NewGraph() *Graph { return &Graph{recording: true} }

// NoGrad returns a graph for inference: operations compute their values
// only, and no intermediate is retained.
func NoGrad() *Graph { return &Graph{} }

// Recording reports whether g records operations.
func (g *Graph) Recording() bool { return g.recording }

// Len is the number of operations recorded so far.
func (g *Graph) Len() int { return len(g.tape) }

// Release drops the tape and everything it keeps alive.
func (g *Graph) Release() {
	clear(g.tape)
	g.tape = nil
}

// Backward propagates the gradient of loss (a one-element tensor, seeded
// with 1) through the recorded operations and accumulates it into the Grad
// of every leaf that requires one. Intermediate gradients are dropped as
// soon as they have been used.
func (g *Graph) Backward(loss *Var) error {
	switch {
	case !g.recording:
		return errors.New("autodiff: Backward on a NoGrad graph")
	case loss == nil:
		return errors.New("autodiff: Backward of a nil loss")
	case loss.Value.Numel() != 1:
		return fmt.Errorf("autodiff: loss has shape %v, want a single element", loss.Value.Shape())
	case len(g.tape) == 0 || loss.graph != g:
		return errors.New("autodiff: nothing recorded for this loss (no input requires a gradient, or it was built on another graph)")
	}
	loss.Grad, loss.gradOwned = tensor.Ones(loss.Value.Shape()...), true
	for i := len(g.tape) - 1; i >= 0; i-- {
		n := g.tape[i]
		gy := n.out.Grad
		if gy == nil {
			continue
		}
		n.backward(gy)
		n.out.Grad, n.out.gradOwned = nil, false
	}
	return nil
}

// needs reports whether an operation on these inputs must be recorded.
func (g *Graph) needs(inputs ...*Var) bool {
	if !g.recording {
		return false
	}
	for _, in := range inputs {
		if in != nil && in.requiresGrad {
			return true
		}
	}
	return false
}

// record wraps an operation's value; when g records and some input needs a
// gradient, back is put on the tape to run with the output's gradient.
func (g *Graph) record(value *tensor.Tensor, back func(gy *tensor.Tensor), inputs ...*Var) *Var {
	out := &Var{Value: value}
	if !g.needs(inputs...) {
		return out
	}
	out.requiresGrad, out.graph = true, g
	g.tape = append(g.tape, node{out: out, backward: back})
	return out
}

// wants reports whether v takes a gradient.
func wants(v *Var) bool { return v != nil && v.requiresGrad }

// accum adds d (shaped like v's value) to v's gradient. owned says no one
// else references d, so v may keep and later modify it.
func accum(v *Var, d *tensor.Tensor, owned bool) {
	if !wants(v) {
		return
	}
	if !tensor.SameShape(v.Value, d) {
		panic(fmt.Sprintf("autodiff: gradient of shape %v for a value of shape %v", d.Shape(), v.Value.Shape()))
	}
	switch {
	case v.Grad == nil:
		if v.leaf && (!owned || !d.IsContiguous()) {
			d, owned = d.Clone(), true
		}
		v.Grad, v.gradOwned = d, owned
	case v.gradOwned:
		tensor.AddInPlace(v.Grad, d)
	default:
		v.Grad, v.gradOwned = tensor.Add(v.Grad, d), true
	}
}

// accumView adds d into the part of v's gradient that view selects (for
// example a slice), allocating a zero gradient first when needed.
func accumView(v *Var, view func(*tensor.Tensor) *tensor.Tensor, d *tensor.Tensor) {
	if !wants(v) {
		return
	}
	switch {
	case v.Grad == nil:
		v.Grad = tensor.Zeros(v.Value.Shape()...)
	case !v.gradOwned:
		v.Grad = v.Grad.Clone()
	}
	v.gradOwned = true
	tensor.AddInPlace(view(v.Grad), d)
}
