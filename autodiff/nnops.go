package autodiff

import (
	"fmt"
	"math"

	"tessera/internal/parallel"
	"tessera/internal/vec"
	"tessera/tensor"
)

// rowGrain is the least number of elements worth a worker in row loops.
const rowGrain = 1 << 14

// forRows runs f over chunks of whole rows of length cols, in parallel.
func forRows(n, cols int, f func(lo, hi int)) {
	parallel.For(n/max(cols, 1), max(1, rowGrain/max(cols, 1)), f)
}

func activation(g *Graph, x *Var, fwd func(*tensor.Tensor) *tensor.Tensor, grad func(dx, x, dy []float32)) *Var {
	return g.record(fwd(x.Value), func(gy *tensor.Tensor) {
		accum(x, tensor.Apply2(x.Value, gy, grad), true)
	}, x)
}

// GELUTanh is the tanh approximation of GELU, elementwise.
func (g *Graph) GELUTanh(x *Var) *Var { return activation(g, x, tensor.GELUTanh, vec.GELUTanhGrad) }

// GELU is the exact (erf) GELU, elementwise.
func (g *Graph) GELU(x *Var) *Var { return activation(g, x, tensor.GELU, vec.GELUGrad) }

// SiLU is x*sigmoid(x), elementwise.
func (g *Graph) SiLU(x *Var) *Var { return activation(g, x, tensor.SiLU, vec.SiLUGrad) }

// Softmax is the softmax over the last dimension.
func (g *Graph) Softmax(x *Var) *Var {
	y := tensor.Softmax(x.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		c := y.Dim(-1)
		accum(x, tensor.Apply2(y, gy, func(dx, yd, gd []float32) { vec.SoftmaxRowsGrad(dx, yd, gd, c) }), true)
	}, x)
}

// LogSoftmax is the log of the softmax over the last dimension.
func (g *Graph) LogSoftmax(x *Var) *Var {
	y := tensor.LogSoftmax(x.Value)
	return g.record(y, func(gy *tensor.Tensor) {
		// dx = dy - softmax · Σ dy, per row.
		c := y.Dim(-1)
		yd, gd := y.Data(), gy.Contiguous().Data()
		dx := tensor.New(y.Shape()...)
		d := dx.Data()
		forRows(len(yd), c, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				yr, gr, out := yd[r*c:(r+1)*c], gd[r*c:(r+1)*c], d[r*c:(r+1)*c]
				s := vec.Sum(gr)
				vec.Exp(out, yr)
				for i := range out {
					out[i] = gr[i] - out[i]*s
				}
			}
		})
		accum(x, dx, true)
	}, x)
}

func valueOrNil(v *Var) *tensor.Tensor {
	if v == nil {
		return nil
	}
	return v.Value
}

func dataOrNil(t *tensor.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.Contiguous().Data()
}

// LayerNorm normalises x over its last dimension and applies gamma and beta
// ([C] each) when they are non-nil.
func (g *Graph) LayerNorm(x, gamma, beta *Var, eps float32) *Var {
	y, st := tensor.LayerNormStats(x.Value, valueOrNil(gamma), valueOrNil(beta), eps)
	return g.record(y, func(gy *tensor.Tensor) {
		c := x.Value.Dim(-1)
		xd, gd, gm := x.Value.Contiguous().Data(), gy.Contiguous().Data(), dataOrNil(valueOrNil(gamma))
		dx := make([]float32, len(xd)) // written even when x takes no gradient
		var dgamma, dbeta []float32
		if wants(gamma) {
			dgamma = make([]float32, c)
		}
		if wants(beta) {
			dbeta = make([]float32, c)
		}
		vec.LayerNormGrad(dx, dgamma, dbeta, xd, gd, gm, st.Mean, st.Rstd, c)
		accum(x, tensor.FromData(dx, x.Value.Shape()...), true)
		if dgamma != nil {
			accum(gamma, tensor.FromData(dgamma, gamma.Value.Shape()...), true)
		}
		if dbeta != nil {
			accum(beta, tensor.FromData(dbeta, beta.Value.Shape()...), true)
		}
	}, x, gamma, beta)
}

// RMSNorm scales x by the reciprocal root mean square of its last dimension
// and by gamma ([C]) when non-nil.
func (g *Graph) RMSNorm(x, gamma *Var, eps float32) *Var {
	y, st := tensor.RMSNormStats(x.Value, valueOrNil(gamma), eps)
	return g.record(y, func(gy *tensor.Tensor) {
		c := x.Value.Dim(-1)
		xd, gd, gm := x.Value.Contiguous().Data(), gy.Contiguous().Data(), dataOrNil(valueOrNil(gamma))
		dx := make([]float32, len(xd))
		var dgamma []float32
		if wants(gamma) {
			dgamma = make([]float32, c)
		}
		vec.RMSNormGrad(dx, dgamma, xd, gd, gm, st.Rstd, c)
		accum(x, tensor.FromData(dx, x.Value.Shape()...), true)
		if dgamma != nil {
			accum(gamma, tensor.FromData(dgamma, gamma.Value.Shape()...), true)
		}
	}, x, gamma)
}

// Attention is scaled dot-product attention with q [B, Tq, H, D] and k, v
// [B, Tk, Hkv, D], giving [B, Tq, H, D]. q, k and v may be views into one
// fused projection (for example Slices of a reshaped qkv).
func (g *Graph) Attention(q, k, v *Var, opt tensor.AttentionOptions) *Var {
	if !g.needs(q, k, v) {
		return &Var{Value: tensor.Attention(q.Value, k.Value, v.Value, opt)}
	}
	out, lse := tensor.AttentionLSE(q.Value, k.Value, v.Value, opt)
	return g.record(out, func(gy *tensor.Tensor) {
		dq, dk, dv := tensor.AttentionBackward(q.Value, k.Value, v.Value, out, lse, gy, opt)
		accum(q, dq, true)
		accum(k, dk, true)
		accum(v, dv, true)
	}, q, k, v)
}

// Embedding gathers rows of table [V, D]: [len(ids), D]. The gradient
// scatter-adds into the rows used.
func (g *Graph) Embedding(table *Var, ids []int) *Var {
	ids = append([]int(nil), ids...)
	return g.record(tensor.Embedding(table.Value, ids), func(gy *tensor.Tensor) {
		d := table.Value.Dim(1)
		gt := tensor.Zeros(table.Value.Shape()...)
		td, gd := gt.Data(), gy.Contiguous().Data()
		for i, id := range ids {
			row := td[id*d : (id+1)*d]
			vec.Add(row, row, gd[i*d:(i+1)*d])
		}
		accum(table, gt, true)
	}, table)
}

// Conv2d convolves x [N, C, H, W] with w [O, C, kh, kw] and adds b [O]
// (when non-nil) at the given stride and zero padding.
func (g *Graph) Conv2d(x, w, b *Var, stride, pad int) *Var {
	return g.record(tensor.Conv2d(x.Value, w.Value, valueOrNil(b), stride, pad), func(gy *tensor.Tensor) {
		dx, dw, db := tensor.Conv2dBackward(x.Value, w.Value, gy, stride, pad, wants(x), wants(w), wants(b))
		if dx != nil {
			accum(x, dx, true)
		}
		if dw != nil {
			accum(w, dw, true)
		}
		if db != nil {
			accum(b, db.Reshape(b.Value.Shape()...), true)
		}
	}, x, w, b)
}

// ConvTranspose2d is the transposed convolution of x [N, Cin, H, W] with
// w [Cin, Cout, kh, kw] (PyTorch layout) plus b [Cout] when non-nil.
func (g *Graph) ConvTranspose2d(x, w, b *Var, stride, pad int) *Var {
	return g.record(tensor.ConvTranspose2d(x.Value, w.Value, valueOrNil(b), stride, pad), func(gy *tensor.Tensor) {
		dx, dw, db := tensor.ConvTranspose2dBackward(x.Value, w.Value, gy, stride, pad, wants(x), wants(w), wants(b))
		if dx != nil {
			accum(x, dx, true)
		}
		if dw != nil {
			accum(w, dw, true)
		}
		if db != nil {
			accum(b, db.Reshape(b.Value.Shape()...), true)
		}
	}, x, w, b)
}

// CrossEntropy returns the mean over rows of -log softmax(logits)[target]
// for logits [N, C] and N targets in [0, C).
func (g *Graph) CrossEntropy(logits *Var, targets []int) *Var {
	if logits.Value.Rank() != 2 || logits.Value.Dim(0) != len(targets) {
		panic(fmt.Sprintf("autodiff.CrossEntropy: logits %v for %d targets", logits.Value.Shape(), len(targets)))
	}
	n, c := logits.Value.Dim(0), logits.Value.Dim(1)
	x := logits.Value.Contiguous().Data()
	lse := tensor.LogSumExpRows(logits.Value)
	var s float64
	for i, t := range targets {
		if t < 0 || t >= c {
			panic(fmt.Sprintf("autodiff.CrossEntropy: target %d out of range [0, %d)", t, c))
		}
		s += float64(lse[i]) - float64(x[i*c+t])
	}
	loss := tensor.FromData([]float32{float32(s / float64(n))}, 1)
	return g.record(loss, func(gy *tensor.Tensor) {
		k := gy.Data()[0] / float32(n)
		d := tensor.New(n, c)
		dd := d.Data()
		for i, t := range targets {
			row := dd[i*c : (i+1)*c]
			vec.AddScalar(row, x[i*c:(i+1)*c], -lse[i])
			vec.Exp(row, row)
			row[t]--
			vec.Scale(row, row, k)
		}
		accum(logits, d, true)
	}, logits)
}

// BCEWithLogits returns the mean binary cross-entropy of sigmoid(logits)
// against targets in [0, 1] (same shape), computed stably from the logits.
func (g *Graph) BCEWithLogits(logits, targets *Var) *Var {
	if !tensor.SameShape(logits.Value, targets.Value) {
		panic(fmt.Sprintf("autodiff.BCEWithLogits: shapes %v and %v differ", logits.Value.Shape(), targets.Value.Shape()))
	}
	x, t := logits.Value.Contiguous().Data(), targets.Value.Contiguous().Data()
	n := float32(len(x))
	var s float64
	for i, v := range x {
		xv, tv := float64(v), float64(t[i])
		s += math.Max(xv, 0) - xv*tv + math.Log1p(math.Exp(-math.Abs(xv)))
	}
	loss := tensor.FromData([]float32{float32(s / float64(n))}, 1)
	return g.record(loss, func(gy *tensor.Tensor) {
		k := gy.Data()[0] / n
		if wants(logits) {
			d := make([]float32, len(x))
			for i, v := range x {
				d[i] = k * (float32(1/(1+math.Exp(-float64(v)))) - t[i])
			}
			accum(logits, tensor.FromData(d, logits.Value.Shape()...), true)
		}
		if wants(targets) {
			d := make([]float32, len(x))
			for i, v := range x {
				d[i] = -k * v
			}
			accum(targets, tensor.FromData(d, targets.Value.Shape()...), true)
		}
	}, logits, targets)
}
