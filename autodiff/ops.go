package autodiff

import (
	"fmt"

	"tessera/tensor"
)

// reduceTo sums a broadcast gradient back to shape; owned reports whether
// the result is a fresh buffer.
func reduceTo(gy *tensor.Tensor, shape []int) (*tensor.Tensor, bool) {
	r := tensor.SumTo(gy, shape...)
	return r, r != gy
}

// Add returns a + b with NumPy broadcasting.
func (g *Graph) Add(a, b *Var) *Var {
	return g.record(tensor.Add(a.Value, b.Value), func(gy *tensor.Tensor) {
		if wants(a) {
			d, own := reduceTo(gy, a.Value.Shape())
			accum(a, d, own)
		}
		if wants(b) {
			d, own := reduceTo(gy, b.Value.Shape())
			accum(b, d, own)
		}
	}, a, b)
}

// Sub returns a - b with NumPy broadcasting.
func (g *Graph) Sub(a, b *Var) *Var {
	return g.record(tensor.Sub(a.Value, b.Value), func(gy *tensor.Tensor) {
		if wants(a) {
			d, own := reduceTo(gy, a.Value.Shape())
			accum(a, d, own)
		}
		if wants(b) {
			d, _ := reduceTo(gy, b.Value.Shape())
			accum(b, tensor.Neg(d), true)
		}
	}, a, b)
}

// Mul returns a * b (elementwise) with NumPy broadcasting.
func (g *Graph) Mul(a, b *Var) *Var {
	return g.record(tensor.Mul(a.Value, b.Value), func(gy *tensor.Tensor) {
		if wants(a) {
			d, _ := reduceTo(tensor.Mul(gy, b.Value), a.Value.Shape())
			accum(a, d, true)
		}
		if wants(b) {
			d, _ := reduceTo(tensor.Mul(gy, a.Value), b.Value.Shape())
			accum(b, d, true)
		}
	}, a, b)
}

// Div returns a / b (elementwise) with NumPy broadcasting.
func (g *Graph) Div(a, b *Var) *Var {
	y := tensor.Div(a.Value, b.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		ga := tensor.Div(gy, b.Value)
		if wants(a) {
			d, _ := reduceTo(ga, a.Value.Shape())
			accum(a, d, true)
		}
		if wants(b) {
			// d(a/b)/db = -(a/b)/b, so the gradient is -(gy/b)·y.
			d, _ := reduceTo(tensor.Mul(ga, y), b.Value.Shape())
			accum(b, tensor.Neg(d), true)
		}
	}, a, b)
}

// AddScalar returns x + s.
func (g *Graph) AddScalar(x *Var, s float32) *Var {
	return g.record(tensor.AddScalar(x.Value, s), func(gy *tensor.Tensor) { accum(x, gy, false) }, x)
}

// Scale returns x * s.
func (g *Graph) Scale(x *Var, s float32) *Var {
	return g.record(tensor.Scale(x.Value, s), func(gy *tensor.Tensor) { accum(x, tensor.Scale(gy, s), true) }, x)
}

// Neg returns -x.
func (g *Graph) Neg(x *Var) *Var { return g.Scale(x, -1) }

// Exp returns e^x elementwise.
func (g *Graph) Exp(x *Var) *Var {
	y := tensor.Exp(x.Value)
	return g.record(y, func(gy *tensor.Tensor) { accum(x, tensor.Mul(gy, y), true) }, x)
}

// Log returns the natural logarithm elementwise.
func (g *Graph) Log(x *Var) *Var {
	return g.record(tensor.Log(x.Value), func(gy *tensor.Tensor) { accum(x, tensor.Div(gy, x.Value), true) }, x)
}

// Sqrt returns the square root elementwise.
func (g *Graph) Sqrt(x *Var) *Var {
	y := tensor.Sqrt(x.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		accum(x, tensor.Scale(tensor.Div(gy, y), 0.5), true)
	}, x)
}

// Square returns x*x elementwise.
func (g *Graph) Square(x *Var) *Var {
	return g.record(tensor.Square(x.Value), func(gy *tensor.Tensor) {
		accum(x, tensor.Map2(gy, x.Value, func(dst, gv, xv []float32) {
			for i := range dst {
				dst[i] = 2 * gv[i] * xv[i]
			}
		}), true)
	}, x)
}

// Tanh returns tanh elementwise.
func (g *Graph) Tanh(x *Var) *Var {
	y := tensor.Tanh(x.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		accum(x, tensor.Map2(gy, y, func(dst, gv, yv []float32) {
			for i := range dst {
				dst[i] = gv[i] * (1 - yv[i]*yv[i])
			}
		}), true)
	}, x)
}

// Sigmoid returns 1/(1+e^-x) elementwise.
func (g *Graph) Sigmoid(x *Var) *Var {
	y := tensor.Sigmoid(x.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		accum(x, tensor.Map2(gy, y, func(dst, gv, yv []float32) {
			for i := range dst {
				dst[i] = gv[i] * yv[i] * (1 - yv[i])
			}
		}), true)
	}, x)
}

// MatMul multiplies the last two dimensions ([..., m, k] · [..., k, n]),
// broadcasting the leading ones.
func (g *Graph) MatMul(a, b *Var) *Var {
	return g.record(tensor.MatMul(a.Value, b.Value), func(gy *tensor.Tensor) {
		if wants(a) {
			// dA = dY · Bᵀ (a transposed view: a GEMM flag, not a copy).
			d := tensor.MatMul(gy, b.Value.Transpose(-1, -2))
			d, _ = reduceTo(d, a.Value.Shape())
			accum(a, d, true)
		}
		if wants(b) {
			accum(b, matMulGradB(a.Value, b.Value, gy), true)
		}
	}, a, b)
}

// matMulGradB is Aᵀ·dY summed over the batch dimensions B was broadcast
// over. For a 2-d B this is a single GEMM over all rows.
func matMulGradB(a, b, gy *tensor.Tensor) *tensor.Tensor {
	if b.Rank() == 2 {
		k, n := a.Dim(-1), gy.Dim(-1)
		a2, g2 := a.Reshape(-1, k), gy.Reshape(-1, n)
		return tensor.MatMul(a2.Transpose(0, 1), g2)
	}
	d := tensor.MatMul(a.Transpose(-1, -2), gy)
	d, _ = reduceTo(d, b.Shape())
	return d
}

// Linear returns x·wᵀ + b for x [..., in], w [out, in] (PyTorch layout) and
// b [out] or nil: one GEMM over all leading dimensions forward, two (with
// transpose flags) backward.
func (g *Graph) Linear(x, w, b *Var) *Var {
	var bv *tensor.Tensor
	if b != nil {
		bv = b.Value
	}
	return g.record(tensor.Linear(x.Value, w.Value, bv), func(gy *tensor.Tensor) {
		out := w.Value.Dim(0)
		g2 := gy.Reshape(-1, out)
		if wants(x) {
			// dX [..., in] = dY · W
			accum(x, tensor.MatMul(gy, w.Value).Reshape(x.Value.Shape()...), true)
		}
		if wants(w) {
			// dW [out, in] = dYᵀ · X
			x2 := x.Value.Reshape(-1, x.Value.Dim(-1))
			accum(w, tensor.MatMul(g2.Transpose(0, 1), x2), true)
		}
		if wants(b) {
			d, _ := reduceTo(g2, []int{out})
			accum(b, d.Reshape(b.Value.Shape()...), true)
		}
	}, x, w, b)
}

// Reshape returns x with a new shape (one dimension may be -1).
func (g *Graph) Reshape(x *Var, shape ...int) *Var {
	return g.record(x.Value.Reshape(shape...), func(gy *tensor.Tensor) {
		accum(x, gy.Reshape(x.Value.Shape()...), false)
	}, x)
}

// Permute returns x with dimension i taken from x's dimension perm[i].
func (g *Graph) Permute(x *Var, perm ...int) *Var {
	inv := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 {
			p += len(perm)
		}
		inv[p] = i
	}
	return g.record(x.Value.Permute(perm...), func(gy *tensor.Tensor) {
		accum(x, gy.Permute(inv...), false)
	}, x)
}

// Transpose returns x with dimensions d0 and d1 swapped.
func (g *Graph) Transpose(x *Var, d0, d1 int) *Var {
	return g.record(x.Value.Transpose(d0, d1), func(gy *tensor.Tensor) {
		accum(x, gy.Transpose(d0, d1), false)
	}, x)
}

// Slice returns positions [lo, hi) of x along dim.
func (g *Graph) Slice(x *Var, dim, lo, hi int) *Var {
	return g.record(x.Value.Slice(dim, lo, hi), func(gy *tensor.Tensor) {
		accumView(x, func(t *tensor.Tensor) *tensor.Tensor { return t.Slice(dim, lo, hi) }, gy)
	}, x)
}

// Concat joins xs along dim.
func (g *Graph) Concat(dim int, xs ...*Var) *Var {
	vals := make([]*tensor.Tensor, len(xs))
	for i, x := range xs {
		vals[i] = x.Value
	}
	return g.record(tensor.Concat(dim, vals...), func(gy *tensor.Tensor) {
		lo := 0
		for _, x := range xs {
			hi := lo + x.Value.Dim(dim)
			accum(x, gy.Slice(dim, lo, hi), false)
			lo = hi
		}
	}, xs...)
}

// Split cuts x along dim into pieces of the given sizes.
func (g *Graph) Split(x *Var, dim int, sizes ...int) []*Var {
	x.Value.Split(dim, sizes...) // validates the sizes
	out := make([]*Var, len(sizes))
	lo := 0
	for i, s := range sizes {
		out[i] = g.Slice(x, dim, lo, lo+s)
		lo += s
	}
	return out
}

// Chunk cuts x into n (nearly) equal pieces along dim.
func (g *Graph) Chunk(x *Var, n, dim int) []*Var {
	return g.Split(x, dim, tensor.ChunkSizes(x.Value.Dim(dim), n)...)
}

// Unsqueeze inserts a size-1 dimension at dim.
func (g *Graph) Unsqueeze(x *Var, dim int) *Var {
	return g.record(x.Value.Unsqueeze(dim), func(gy *tensor.Tensor) {
		accum(x, gy.Reshape(x.Value.Shape()...), false)
	}, x)
}

// Squeeze removes the given size-1 dimensions (all of them when none are
// given).
func (g *Graph) Squeeze(x *Var, dims ...int) *Var {
	return g.record(x.Value.Squeeze(dims...), func(gy *tensor.Tensor) {
		accum(x, gy.Reshape(x.Value.Shape()...), false)
	}, x)
}

// BroadcastTo expands x to shape by NumPy rules.
func (g *Graph) BroadcastTo(x *Var, shape ...int) *Var {
	return g.record(x.Value.BroadcastTo(shape...).Contiguous(), func(gy *tensor.Tensor) {
		d, own := reduceTo(gy, x.Value.Shape())
		accum(x, d, own)
	}, x)
}

// expandGrad broadcasts a reduced gradient back over dim of shape.
func expandGrad(gy *tensor.Tensor, shape []int, dim int, keepdim bool) *tensor.Tensor {
	if !keepdim {
		gy = gy.Unsqueeze(dim)
	}
	return gy.BroadcastTo(shape...)
}

// Sum sums x over dim, keeping it with size 1 when keepdim.
func (g *Graph) Sum(x *Var, dim int, keepdim bool) *Var {
	dim = axis(x, dim)
	return g.record(tensor.Sum(x.Value, dim, keepdim), func(gy *tensor.Tensor) {
		accum(x, expandGrad(gy, x.Value.Shape(), dim, keepdim), false)
	}, x)
}

// Mean averages x over dim, keeping it with size 1 when keepdim.
func (g *Graph) Mean(x *Var, dim int, keepdim bool) *Var {
	dim = axis(x, dim)
	n := float32(x.Value.Dim(dim))
	return g.record(tensor.Mean(x.Value, dim, keepdim), func(gy *tensor.Tensor) {
		accum(x, expandGrad(tensor.Scale(gy, 1/n), x.Value.Shape(), dim, keepdim), false)
	}, x)
}

func axis(x *Var, dim int) int {
	if dim < 0 {
		dim += x.Value.Rank()
	}
	return dim
}

// SumAll returns the sum of every element as a 1-element tensor.
func (g *Graph) SumAll(x *Var) *Var {
	return g.record(tensor.FromData([]float32{tensor.SumAll(x.Value)}, 1), func(gy *tensor.Tensor) {
		accum(x, tensor.Full(gy.Data()[0], x.Value.Shape()...), true)
	}, x)
}

// MeanAll returns the mean of every element as a 1-element tensor.
func (g *Graph) MeanAll(x *Var) *Var {
	n := float32(x.Value.Numel())
	return g.record(tensor.FromData([]float32{tensor.MeanAll(x.Value)}, 1), func(gy *tensor.Tensor) {
		accum(x, tensor.Full(gy.Data()[0]/n, x.Value.Shape()...), true)
	}, x)
}

// MSE returns the mean of (a-b)² as a 1-element tensor; a and b have the
// same shape.
func (g *Graph) MSE(a, b *Var) *Var {
	if !tensor.SameShape(a.Value, b.Value) {
		panic(fmt.Sprintf("autodiff.MSE: shapes %v and %v differ", a.Value.Shape(), b.Value.Shape()))
	}
	d := tensor.Sub(a.Value, b.Value)
	n := float32(d.Numel())
	var s float64
	for _, v := range d.Data() {
		s += float64(v) * float64(v)
	}
	loss := tensor.FromData([]float32{float32(s / float64(n))}, 1)
	return g.record(loss, func(gy *tensor.Tensor) {
		k := 2 * gy.Data()[0] / n
		if wants(a) {
			accum(a, tensor.Scale(d, k), true)
		}
		if wants(b) {
			accum(b, tensor.Scale(d, -k), true)
		}
	}, a, b)
}
