package tensor

import (
	"fmt"
	"math"

	"tessera/internal/parallel"
	"tessera/internal/vec"
)

// grainElems is the least work (in elements) worth handing to a worker.
const grainElems = 1 << 14

type binOp int

const (
	opCopy binOp = iota // dst = a
	opAcc               // dst += a
	opAdd               // dst = a + b
	opSub               // dst = a - b
	opMul               // dst = a * b
	opDiv               // dst = a / b
)

var opNames = [...]string{"Copy", "Acc", "Add", "Sub", "Mul", "Div"}

// layout is one operand of a strided loop.
type layout struct {
	data []float32
	off  int
	st   []int
}

// binaryInto runs op elementwise over dst's shape; a and b (b may be nil for
// Copy and Acc) must already have dst's shape (broadcast views are fine).
// dst may have stride-0 dimensions only for opAcc, which then reduces.
func binaryInto(dst, a, b *Tensor, op binOp) {
	n := dst.Numel()
	if n == 0 {
		return
	}
	ops := []*Tensor{dst, a}
	if b != nil {
		ops = append(ops, b)
	}
	shape, sts := coalesce(dst.shape, ops)
	ls := make([]layout, len(ops))
	for i, t := range ops {
		ls[i] = layout{t.data, t.offset, sts[i]}
	}
	r := len(shape)
	inner := shape[r-1]
	rows := n / inner
	reduces := false
	for i, s := range sts[0] {
		if s == 0 && shape[i] > 1 {
			reduces = true
		}
	}
	run := func(lo, hi int) { stridedRows(op, shape, ls, lo, hi) }
	if reduces || n < 2*grainElems {
		run(0, rows)
		return
	}
	parallel.For(rows, max(1, grainElems/inner), run)
}

// coalesce drops size-1 dimensions and merges neighbours that are
// contiguous with each other in every operand. The result has rank >= 1.
func coalesce(shape []int, ops []*Tensor) ([]int, [][]int) {
	var sh []int
	sts := make([][]int, len(ops))
	for d := range shape {
		if shape[d] == 1 {
			continue
		}
		if k := len(sh); k > 0 {
			ok := true
			for i, t := range ops {
				// The kept dimension k-1 merges with d if its stride spans d.
				if sts[i][k-1] != t.strides[d]*shape[d] {
					ok = false
					break
				}
			}
			if ok {
				sh[k-1] *= shape[d]
				for i, t := range ops {
					sts[i][k-1] = t.strides[d]
				}
				continue
			}
		}
		sh = append(sh, shape[d])
		for i, t := range ops {
			sts[i] = append(sts[i], t.strides[d])
		}
	}
	if len(sh) == 0 {
		sh = []int{1}
		for i := range ops {
			sts[i] = []int{1}
		}
	}
	return sh, sts
}

// stridedRows runs op over rows [lo, hi) of the coalesced iteration space.
func stridedRows(op binOp, shape []int, ls []layout, lo, hi int) {
	r := len(shape)
	inner := shape[r-1]
	idx := make([]int, r-1)
	rem := lo
	for d := r - 2; d >= 0; d-- {
		idx[d] = rem % shape[d]
		rem /= shape[d]
	}
	offs := make([]int, len(ls))
	for row := lo; row < hi; row++ {
		for i, l := range ls {
			o := l.off
			for d, x := range idx {
				o += x * l.st[d]
			}
			offs[i] = o
		}
		innerKernel(op, ls, offs, inner)
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func innerKernel(op binOp, ls []layout, offs []int, n int) {
	d, a := ls[0], ls[1]
	sd, sa := d.st[len(d.st)-1], a.st[len(a.st)-1]
	od, oa := offs[0], offs[1]
	switch op {
	case opCopy:
		switch {
		case sd == 1 && sa == 1:
			copy(d.data[od:od+n], a.data[oa:oa+n])
		case sd == 1 && sa == 0:
			v := a.data[oa]
			dd := d.data[od : od+n]
			for i := range dd {
				dd[i] = v
			}
		default:
			for i := 0; i < n; i++ {
				d.data[od+i*sd] = a.data[oa+i*sa]
			}
		}
		return
	case opAcc:
		switch {
		case sd == 1 && sa == 1:
			dd := d.data[od : od+n]
			vec.Add(dd, dd, a.data[oa:oa+n])
		case sd == 0 && sa == 1:
			d.data[od] += vec.Sum(a.data[oa : oa+n])
		default:
			for i := 0; i < n; i++ {
				d.data[od+i*sd] += a.data[oa+i*sa]
			}
		}
		return
	}
	b := ls[2]
	sb, ob := b.st[len(b.st)-1], offs[2]
	switch {
	case sd == 1 && sa == 1 && sb == 1:
		dd, av, bv := d.data[od:od+n], a.data[oa:oa+n], b.data[ob:ob+n]
		switch op {
		case opAdd:
			vec.Add(dd, av, bv)
		case opSub:
			vec.Sub(dd, av, bv)
		case opMul:
			vec.Mul(dd, av, bv)
		case opDiv:
			vec.Div(dd, av, bv)
		}
		return
	case sd == 1 && sa == 1 && sb == 0 && op != opDiv:
		dd, av, s := d.data[od:od+n], a.data[oa:oa+n], b.data[ob]
		switch op {
		case opAdd:
			vec.AddScalar(dd, av, s)
		case opSub:
			vec.AddScalar(dd, av, -s)
		case opMul:
			vec.Scale(dd, av, s)
		}
		return
	case sd == 1 && sa == 0 && sb == 1 && (op == opAdd || op == opMul):
		dd, s, bv := d.data[od:od+n], a.data[oa], b.data[ob:ob+n]
		if op == opAdd {
			vec.AddScalar(dd, bv, s)
		} else {
			vec.Scale(dd, bv, s)
		}
		return
	}
	for i := 0; i < n; i++ {
		x, y := a.data[oa+i*sa], b.data[ob+i*sb]
		var v float32
		switch op {
		case opAdd:
			v = x + y
		case opSub:
			v = x - y
		case opMul:
			v = x * y
		case opDiv:
			v = x / y
		}
		d.data[od+i*sd] = v
	}
}

func binary(a, b *Tensor, op binOp) *Tensor {
	shape, ok := BroadcastShape(a.shape, b.shape)
	if !ok {
		panic(fmt.Sprintf("tensor.%s: shapes %v and %v do not broadcast", opNames[op], a.shape, b.shape))
	}
	out := New(shape...)
	binaryInto(out, a.BroadcastTo(shape...), b.BroadcastTo(shape...), op)
	return out
}

// Add returns a + b with NumPy broadcasting.
func Add(a, b *Tensor) *Tensor { return binary(a, b, opAdd) }

// Sub returns a - b with NumPy broadcasting.
func Sub(a, b *Tensor) *Tensor { return binary(a, b, opSub) }

// Mul returns a * b (elementwise) with NumPy broadcasting.
func Mul(a, b *Tensor) *Tensor { return binary(a, b, opMul) }

// Div returns a / b (elementwise) with NumPy broadcasting.
func Div(a, b *Tensor) *Tensor { return binary(a, b, opDiv) }

// AddInPlace adds src (broadcast to dst's shape) into dst, which may be a
// view; when dst has stride-0 (broadcast) dimensions the additions to one
// element accumulate, which sums src over them.
func AddInPlace(dst, src *Tensor) {
	binaryInto(dst, src.BroadcastTo(dst.shape...), nil, opAcc)
}

// SumTo sums t over its broadcast dimensions so that the result has shape
// (t's shape must be a broadcast of shape). It returns t itself when the
// shapes are equal. This is the gradient of BroadcastTo.
func SumTo(t *Tensor, shape ...int) *Tensor {
	if equalShape(t.shape, shape) {
		return t
	}
	out := New(shape...)
	binaryInto(out.BroadcastTo(t.shape...), t, nil, opAcc)
	return out
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Map returns f applied to every element of t, with f given contiguous
// chunks (dst and src of equal length) in parallel.
func Map(t *Tensor, f func(dst, src []float32)) *Tensor {
	src := t.Contiguous().Data()
	out := New(t.shape...)
	dst := out.data
	if len(src) < 2*grainElems {
		f(dst, src)
		return out
	}
	parallel.For(len(src), grainElems, func(lo, hi int) { f(dst[lo:hi], src[lo:hi]) })
	return out
}

// Map2 returns f applied chunkwise to the elements of a and b, which must
// have the same shape.
func Map2(a, b *Tensor, f func(dst, x, y []float32)) *Tensor {
	if !SameShape(a, b) {
		panic(fmt.Sprintf("tensor.Map2: shapes %v and %v differ", a.shape, b.shape))
	}
	x, y := a.Contiguous().Data(), b.Contiguous().Data()
	out := New(a.shape...)
	dst := out.data
	if len(x) < 2*grainElems {
		f(dst, x, y)
		return out
	}
	parallel.For(len(x), grainElems, func(lo, hi int) { f(dst[lo:hi], x[lo:hi], y[lo:hi]) })
	return out
}

// Apply returns f(dst, src) called once on all of t's elements (made
// contiguous). It is for internal/vec kernels, which split large inputs
// across threads themselves; Map is for plain Go loops.
func Apply(t *Tensor, f func(dst, src []float32)) *Tensor {
	out := New(t.shape...)
	f(out.data, t.Contiguous().Data())
	return out
}

// Apply2 is Apply for kernels of two same-shaped inputs.
func Apply2(a, b *Tensor, f func(dst, x, y []float32)) *Tensor {
	if !SameShape(a, b) {
		panic(fmt.Sprintf("tensor.Apply2: shapes %v and %v differ", a.shape, b.shape))
	}
	out := New(a.shape...)
	f(out.data, a.Contiguous().Data(), b.Contiguous().Data())
	return out
}

func mapScalar(t *Tensor, f func(float64) float64) *Tensor {
	return Map(t, func(dst, src []float32) {
		for i, v := range src {
			dst[i] = float32(f(float64(v)))
		}
	})
}

// AddScalar returns t + s.
func AddScalar(t *Tensor, s float32) *Tensor {
	return Apply(t, func(dst, src []float32) { vec.AddScalar(dst, src, s) })
}

// Scale returns t * s.
func Scale(t *Tensor, s float32) *Tensor {
	return Apply(t, func(dst, src []float32) { vec.Scale(dst, src, s) })
}

// Neg returns -t.
func Neg(t *Tensor) *Tensor { return Scale(t, -1) }

// Square returns t*t elementwise.
func Square(t *Tensor) *Tensor {
	return Apply(t, func(dst, src []float32) { vec.Mul(dst, src, src) })
}

// Exp returns e^t elementwise.
func Exp(t *Tensor) *Tensor { return Apply(t, vec.Exp) }

// Log returns the natural logarithm elementwise.
func Log(t *Tensor) *Tensor { return mapScalar(t, math.Log) }

// Sqrt returns the square root elementwise.
func Sqrt(t *Tensor) *Tensor { return mapScalar(t, math.Sqrt) }

// Tanh returns tanh elementwise.
func Tanh(t *Tensor) *Tensor { return mapScalar(t, math.Tanh) }

// Sigmoid returns 1/(1+e^-t) elementwise.
func Sigmoid(t *Tensor) *Tensor {
	return mapScalar(t, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) })
}

// GELUTanh returns the tanh approximation of GELU elementwise.
func GELUTanh(t *Tensor) *Tensor { return Apply(t, vec.GELUTanh) }

// GELU returns the exact (erf) GELU elementwise.
func GELU(t *Tensor) *Tensor { return Apply(t, vec.GELU) }

// SiLU returns x*sigmoid(x) elementwise.
func SiLU(t *Tensor) *Tensor { return Apply(t, vec.SiLU) }
