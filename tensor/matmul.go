package tensor

import (
	"fmt"
	"slices"

	"tessera/internal/gemm"
)

// gemmLayout tells how to hand the last two dimensions [r, c] of t to Sgemm
// without copying: row-major with leading dimension ld, or (trans) as the
// transpose of a row-major c×r matrix. ok is false when neither fits.
func gemmLayout(t *Tensor) (trans bool, ld int, ok bool) {
	n := len(t.shape)
	r, c := t.shape[n-2], t.shape[n-1]
	s0, s1 := t.strides[n-2], t.strides[n-1]
	if (s1 == 1 || c == 1) && (s0 >= c || r == 1) {
		if r == 1 {
			s0 = max(s0, c)
		}
		return false, max(s0, 1), true
	}
	if (s0 == 1 || r == 1) && (s1 >= r || c == 1) {
		if c == 1 {
			s1 = max(s1, r)
		}
		return true, max(s1, 1), true
	}
	return false, 0, false
}

// operand returns t (or a contiguous copy) with its GEMM layout.
func operand(t *Tensor) (*Tensor, bool, int) {
	if trans, ld, ok := gemmLayout(t); ok {
		return t, trans, ld
	}
	t = t.Contiguous()
	trans, ld, _ := gemmLayout(t)
	return t, trans, ld
}

// foldRows reports whether the leading dimensions of a non-transposed
// operand [..., m, k] with row stride ld are evenly spaced rows, so that the
// whole tensor is one (rows × k) matrix with leading dimension ld.
func foldRows(t *Tensor, ld int) bool {
	n := len(t.shape)
	st := ld
	for i := n - 2; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != st {
			return false
		}
		st *= t.shape[i]
	}
	return true
}

// MatMul multiplies the last two dimensions ([..., m, k] · [..., k, n]) and
// broadcasts the leading ones; 1-d operands are not promoted. Transposed
// views are passed to the GEMM as transpose flags, not copied.
func MatMul(a, b *Tensor) *Tensor {
	if a.Rank() < 2 || b.Rank() < 2 {
		panic(fmt.Sprintf("tensor.MatMul: operands of shapes %v and %v need rank >= 2", a.shape, b.shape))
	}
	ab, bb := a.shape[:len(a.shape)-2], b.shape[:len(b.shape)-2]
	batch, ok := BroadcastShape(ab, bb)
	m, k, n := a.Dim(-2), a.Dim(-1), b.Dim(-1)
	if !ok || b.Dim(-2) != k {
		panic(fmt.Sprintf("tensor.MatMul: shapes %v and %v do not multiply", a.shape, b.shape))
	}
	out := New(append(batch, m, n)...)
	MatMulInto(out, a, b, 1, 0)
	return out
}

// MatMulInto computes out = alpha·(a·b) + beta·out with MatMul's shape rules;
// out must be contiguous with the broadcast result shape.
func MatMulInto(out, a, b *Tensor, alpha, beta float32) {
	if !out.IsContiguous() {
		panic("tensor.MatMulInto: output must be contiguous")
	}
	m, k, n := a.Dim(-2), a.Dim(-1), b.Dim(-1)
	a, ta, lda := operand(a)
	b, tb, ldb := operand(b)
	c := out.data[out.offset:]
	r := len(out.shape)
	batchN := 1
	for _, d := range out.shape[:r-2] {
		batchN *= d
	}
	if len(b.shape) == 2 && !ta && foldRows(a, lda) {
		gemm.Sgemm(false, tb, batchN*m, n, k, alpha, a.data[a.offset:], lda, b.data[b.offset:], ldb, beta, c, n)
		return
	}
	batch := out.shape[:r-2]
	av := a.BroadcastTo(append(clone(batch), m, k)...)
	bv := b.BroadcastTo(append(clone(batch), k, n)...)
	idx := make([]int, len(batch))
	for p := 0; p < batchN; p++ {
		oa, ob := av.offset, bv.offset
		for d, i := range idx {
			oa += i * av.strides[d]
			ob += i * bv.strides[d]
		}
		gemm.Sgemm(ta, tb, m, n, k, alpha, a.data[oa:], lda, b.data[ob:], ldb, beta, c[p*m*n:], n)
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < batch[d] {
				break
			}
			idx[d] = 0
		}
	}
}

// linearOut returns out, checked to be a contiguous [..., outF] tensor
// for x [..., in], or a new one when out is nil.
func linearOut(op string, out, x *Tensor, outF int) *Tensor {
	shape := append(clone(x.shape[:len(x.shape)-1]), outF)
	if out == nil {
		return New(shape...)
	}
	if !out.IsContiguous() || !slices.Equal(out.shape, shape) {
		panic(fmt.Sprintf("tensor.%s: out %v, want contiguous %v", op, out.shape, shape))
	}
	return out
}

// Linear returns x·wᵀ + b for x [..., in], w [out, in] (PyTorch layout) and
// b [out] or nil, as one GEMM over all leading dimensions.
func Linear(x, w, b *Tensor) *Tensor { return LinearInto(nil, x, w, b) }

// LinearInto is Linear writing into out, a contiguous tensor of the
// result's shape (nil: a new one). It returns out.
func LinearInto(out, x, w, b *Tensor) *Tensor {
	in, outF := x.Dim(-1), w.Dim(0)
	if w.Rank() != 2 || w.Dim(1) != in || (b != nil && b.Numel() != outF) {
		bs := []int(nil)
		if b != nil {
			bs = b.shape
		}
		panic(fmt.Sprintf("tensor.Linear: x %v, w %v, b %v do not fit", x.shape, w.shape, bs))
	}
	out = linearOut("LinearInto", out, x, outF)
	beta := float32(0)
	if b != nil {
		bd := b.Contiguous().Data()
		od := out.Data()
		for o := 0; o < len(od); o += outF {
			copy(od[o:o+outF], bd)
		}
		beta = 1
	}
	x2, o2 := x, out
	if x.Rank() == 1 {
		x2, o2 = x.Unsqueeze(0), out.Unsqueeze(0)
	}
	MatMulInto(o2, x2, w.Transpose(0, 1), 1, beta)
	return out
}
