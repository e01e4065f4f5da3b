package dit

import (
	"tessera/autodiff"
	"tessera/internal/parallel"
	"tessera/internal/vec"
	"tessera/tensor"
)

// The adaLN arithmetic around each sub-layer, in two forms: while training,
// autodiff ops (so gradients flow to the modulation); at inference, one
// pass per row with the vector kernels (LayerNorm with per-sample gain
// 1 + scale and bias shift; gate and residual fused), which saves the
// intermediate tensors and memory passes of the op-by-op form.

// modulateNorm returns LN(x)·(1 + scale) + shift for x [B, T, D] and
// scale, shift [B, 1, D].
func modulateNorm(g *autodiff.Graph, x, shift, scale *autodiff.Var) *autodiff.Var {
	if g.Recording() {
		return g.Add(g.Mul(g.LayerNorm(x, nil, nil, lnEps), g.AddScalar(scale, 1)), shift)
	}
	return autodiff.Const(modulateNormInto(nil, x.Value, shift.Value, scale.Value))
}

// modulateNormInto is modulateNorm at inference on tensors, writing into
// dst (contiguous [B, T, D]; nil: a new tensor), which it returns.
func modulateNormInto(dst, x, shift, scale *tensor.Tensor) *tensor.Tensor {
	b, t, d := dims3(x)
	src := x.Contiguous().Data()
	if dst == nil {
		dst = tensor.New(b, t, d)
	}
	dd := dst.Data()
	forSamples(b, t*d, func(i int) {
		gain := make([]float32, d)
		vec.AddScalar(gain, row(scale, i), 1)
		lo, hi := i*t*d, (i+1)*t*d
		vec.LayerNorm(dd[lo:hi], src[lo:hi], d, lnEps, gain, row(shift, i), nil, nil)
	})
	return dst
}

// gatedResidual returns h + gate·y for h, y [B, T, D] and gate [B, 1, D].
// At inference it overwrites y, a sub-layer output nobody else holds.
func gatedResidual(g *autodiff.Graph, h, gate, y *autodiff.Var) *autodiff.Var {
	if g.Recording() {
		return g.Add(h, g.Mul(gate, y))
	}
	yt := y.Value
	if !yt.IsContiguous() {
		yt = yt.Contiguous()
	}
	gatedResidualInPlace(yt, h.Value, gate.Value)
	return autodiff.Const(yt)
}

// gatedResidualInPlace sets y = h + gate·y for contiguous y [B, T, D].
func gatedResidualInPlace(y, h, gate *tensor.Tensor) {
	b, t, d := dims3(h)
	hv := h.Contiguous().Data()
	yv := y.Data()
	forSamples(b, t*d, func(i int) {
		gr := row(gate, i)
		for r := i * t; r < (i+1)*t; r++ {
			yr := yv[r*d : (r+1)*d]
			vec.Mul(yr, yr, gr)
			vec.Add(yr, yr, hv[r*d:(r+1)*d])
		}
	})
}

func dims3(t *tensor.Tensor) (b, n, d int) { return t.Dim(0), t.Dim(1), t.Dim(2) }

// row returns sample i's D values of a [B, 1, D] view whose last dimension
// is contiguous (a slice of the modulation output).
func row(t *tensor.Tensor, i int) []float32 {
	d := t.Dim(2)
	if t.Strides()[2] != 1 {
		t = t.Contiguous()
	}
	o := t.Offset() + i*t.Strides()[0]
	return t.Storage()[o : o+d]
}

// forSamples runs fn for every sample, in parallel across samples when each
// is small enough that the vector kernels run it on one goroutine (they
// split work of 2^15 elements or more themselves, and parallel calls must
// not nest).
func forSamples(b, per int, fn func(i int)) {
	if per >= 1<<15 {
		for i := 0; i < b; i++ {
			fn(i)
		}
		return
	}
	parallel.For(b, max(1, (1<<14)/per), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(i)
		}
	})
}
