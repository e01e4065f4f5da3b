package tensor

import (
	"fmt"
	"math"

	"tessera/internal/parallel"
	"tessera/internal/vec"
)

// splitDim views t (made contiguous) as [outer, d, inner] around dim.
func splitDim(t *Tensor, dim int) (data []float32, outer, d, inner int) {
	dim = t.axis(dim)
	c := t.Contiguous()
	outer, inner = 1, 1
	for i, s := range c.shape {
		switch {
		case i < dim:
			outer *= s
		case i > dim:
			inner *= s
		}
	}
	return c.Data(), outer, c.shape[dim], inner
}

func reducedShape(shape []int, dim int, keepdim bool) []int {
	out := clone(shape[:dim])
	if keepdim {
		out = append(out, 1)
	}
	return append(out, shape[dim+1:]...)
}

// Sum returns the sum over dim, which is kept with size 1 when keepdim.
func Sum(t *Tensor, dim int, keepdim bool) *Tensor {
	x, outer, d, inner := splitDim(t, dim)
	out := New(reducedShape(t.shape, t.axis(dim), keepdim)...)
	o := out.data
	parallel.For(outer, max(1, grainElems/max(1, d*inner)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if inner == 1 {
				o[i] = sum64(x[i*d : (i+1)*d])
				continue
			}
			dst := o[i*inner : (i+1)*inner]
			for j := 0; j < d; j++ {
				src := x[(i*d+j)*inner:][:inner]
				vec.Add(dst, dst, src)
			}
		}
	})
	return out
}

func sum64(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s)
}

// Mean returns the mean over dim, which is kept with size 1 when keepdim.
func Mean(t *Tensor, dim int, keepdim bool) *Tensor {
	s := Sum(t, dim, keepdim)
	vec.Scale(s.data, s.data, 1/float32(t.Dim(dim)))
	return s
}

// Max returns the maximum over dim, which is kept with size 1 when keepdim.
func Max(t *Tensor, dim int, keepdim bool) *Tensor {
	x, outer, d, inner := splitDim(t, dim)
	if d == 0 {
		panic(fmt.Sprintf("tensor.Max: empty dim %d of %v", dim, t.shape))
	}
	out := New(reducedShape(t.shape, t.axis(dim), keepdim)...)
	for i := 0; i < outer; i++ {
		dst := out.data[i*inner : (i+1)*inner]
		copy(dst, x[i*d*inner:][:inner])
		for j := 1; j < d; j++ {
			for k, v := range x[(i*d+j)*inner:][:inner] {
				if v > dst[k] {
					dst[k] = v
				}
			}
		}
	}
	return out
}

// Argmax returns, for every position of the other dimensions (row-major),
// the index along dim of the largest element (the first on ties).
func Argmax(t *Tensor, dim int) []int {
	x, outer, d, inner := splitDim(t, dim)
	if d == 0 {
		panic(fmt.Sprintf("tensor.Argmax: empty dim %d of %v", dim, t.shape))
	}
	out := make([]int, outer*inner)
	for i := 0; i < outer; i++ {
		for k := 0; k < inner; k++ {
			best, bi := x[i*d*inner+k], 0
			for j := 1; j < d; j++ {
				if v := x[(i*d+j)*inner+k]; v > best {
					best, bi = v, j
				}
			}
			out[i*inner+k] = bi
		}
	}
	return out
}

// SumAll returns the sum of every element, accumulated in float64.
func SumAll(t *Tensor) float32 { return sum64(t.Contiguous().Data()) }

// MeanAll returns the mean of every element.
func MeanAll(t *Tensor) float32 {
	return float32(float64(SumAll(t)) / float64(t.Numel()))
}

// rowsOp applies f to chunks of whole rows (of length cols) in parallel.
func rowsOp(n, cols int, f func(lo, hi int)) {
	rows := n / max(1, cols)
	parallel.For(rows, max(1, grainElems/max(1, cols)), f)
}

// Softmax returns the softmax over the last dimension.
func Softmax(t *Tensor) *Tensor {
	x := t.Contiguous().Data()
	out := New(t.shape...)
	c := t.Dim(-1)
	vec.SoftmaxRows(out.data, x, c)
	return out
}

// LogSoftmax returns the log of the softmax over the last dimension,
// computed stably as x - max - log Σ exp(x - max).
func LogSoftmax(t *Tensor) *Tensor {
	x := t.Contiguous().Data()
	out := New(t.shape...)
	c := t.Dim(-1)
	rowsOp(len(x), c, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, dst := x[r*c:(r+1)*c], out.data[r*c:(r+1)*c]
			lse := logSumExp(row)
			vec.AddScalar(dst, row, -lse)
		}
	})
	return out
}

// logSumExp returns log Σ exp(row) for a non-empty row.
func logSumExp(row []float32) float32 {
	m := vec.Max(row)
	if math.IsInf(float64(m), 0) {
		return m
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - m))
	}
	return m + float32(math.Log(s))
}

// LogSumExpRows returns log Σ exp over the last dimension, one value per row.
func LogSumExpRows(t *Tensor) []float32 {
	x := t.Contiguous().Data()
	c := t.Dim(-1)
	out := make([]float32, len(x)/c)
	for r := range out {
		out[r] = logSumExp(x[r*c : (r+1)*c])
	}
	return out
}

// NormStats holds the per-row statistics LayerNorm and RMSNorm save for
// their backward pass (Mean is nil for RMSNorm).
type NormStats struct{ Mean, Rstd []float32 }

// LayerNorm normalises over the last dimension and applies gamma and beta
// ([C] each) when non-nil.
func LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	out, _ := LayerNormStats(x, gamma, beta, eps)
	return out
}

// LayerNormStats is LayerNorm that also returns the per-row statistics.
func LayerNormStats(x, gamma, beta *Tensor, eps float32) (*Tensor, NormStats) {
	c := x.Dim(-1)
	xd := x.Contiguous().Data()
	g, b := affineData("LayerNorm", gamma, c), affineData("LayerNorm", beta, c)
	out := New(x.shape...)
	rows := len(xd) / max(1, c)
	st := NormStats{make([]float32, rows), make([]float32, rows)}
	vec.LayerNorm(out.data, xd, c, eps, g, b, st.Mean, st.Rstd)
	return out, st
}

// RMSNorm scales each row of the last dimension by 1/rms and by gamma ([C])
// when non-nil.
func RMSNorm(x, gamma *Tensor, eps float32) *Tensor {
	out, _ := RMSNormStats(x, gamma, eps)
	return out
}

// RMSNormStats is RMSNorm that also returns the per-row statistics.
func RMSNormStats(x, gamma *Tensor, eps float32) (*Tensor, NormStats) {
	c := x.Dim(-1)
	xd := x.Contiguous().Data()
	g := affineData("RMSNorm", gamma, c)
	out := New(x.shape...)
	rows := len(xd) / max(1, c)
	st := NormStats{Rstd: make([]float32, rows)}
	vec.RMSNorm(out.data, xd, c, eps, g, st.Rstd)
	return out, st
}

func affineData(op string, t *Tensor, c int) []float32 {
	if t == nil {
		return nil
	}
	if t.Numel() != c {
		panic(fmt.Sprintf("tensor.%s: affine parameter of shape %v for %d features", op, t.shape, c))
	}
	return t.Contiguous().Data()
}
