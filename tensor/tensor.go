// Package tensor provides dense float32 N-d tensors: a shared buffer seen
// through a shape, strides and an offset, so that reshape, permute, slice and
// broadcast are views that copy nothing. Operations produce new contiguous
// tensors.
//
// Shape mismatches in operations are programming errors, like an index out of
// range: they panic with a message naming the operation and both shapes.
// Code that takes shapes from users (checkpoints, requests) validates them
// first and returns errors.
package tensor

import (
	"fmt"
	"strings"
)

// Tensor is an N-d float32 array. The zero value is not usable; build
// tensors with New, FromData, Zeros and the other constructors.
type Tensor struct {
	data    []float32
	shape   []int
	strides []int
	offset  int
}

// New returns a zero-filled contiguous tensor of the given shape.
func New(shape ...int) *Tensor {
	n := checkShape("New", shape)
	return &Tensor{data: make([]float32, n), shape: clone(shape), strides: ContiguousStrides(shape)}
}

// FromData wraps data (not copied) as a contiguous tensor of the given shape.
func FromData(data []float32, shape ...int) *Tensor {
	n := checkShape("FromData", shape)
	if n != len(data) {
		panic(fmt.Sprintf("tensor.FromData: %d values for shape %v (%d elements)", len(data), shape, n))
	}
	return &Tensor{data: data, shape: clone(shape), strides: ContiguousStrides(shape)}
}

// Scalar returns a 0-d tensor holding v.
func Scalar(v float32) *Tensor { return FromData([]float32{v}) }

func checkShape(op string, shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor.%s: negative dimension in shape %v", op, shape))
		}
		n *= d
	}
	return n
}

func clone(s []int) []int { return append([]int(nil), s...) }

// ContiguousStrides returns the row-major strides of shape.
func ContiguousStrides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// Shape returns a copy of the tensor's shape.
func (t *Tensor) Shape() []int { return clone(t.shape) }

// Strides returns a copy of the tensor's strides, in elements.
func (t *Tensor) Strides() []int { return clone(t.strides) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int { return t.shape[t.axis(i)] }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Numel is the number of elements.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

func (t *Tensor) axis(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	if i < 0 || i >= len(t.shape) {
		panic(fmt.Sprintf("tensor: axis %d out of range for shape %v", i, t.shape))
	}
	return i
}

// IsContiguous reports whether the elements are laid out row-major without
// gaps, so that Data can return them without copying.
func (t *Tensor) IsContiguous() bool {
	s := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != s {
			return false
		}
		s *= t.shape[i]
	}
	return true
}

// Data returns the elements in row-major order. For a contiguous tensor it
// is the backing slice itself (writes are visible to every view); otherwise
// it is a fresh copy.
func (t *Tensor) Data() []float32 {
	if t.IsContiguous() {
		return t.data[t.offset : t.offset+t.Numel()]
	}
	return t.Contiguous().data
}

// Contiguous returns t itself when it is contiguous, else a contiguous copy.
func (t *Tensor) Contiguous() *Tensor {
	if t.IsContiguous() {
		return t
	}
	out := New(t.shape...)
	t.copyTo(out.data)
	return out
}

// Clone returns a contiguous copy that shares nothing with t.
func (t *Tensor) Clone() *Tensor {
	out := New(t.shape...)
	t.copyTo(out.data)
	return out
}

// copyTo writes t's elements in row-major order into dst.
func (t *Tensor) copyTo(dst []float32) {
	n := t.Numel()
	if n == 0 {
		return
	}
	if t.IsContiguous() {
		copy(dst, t.data[t.offset:t.offset+n])
		return
	}
	r := len(t.shape)
	// Copy innermost rows at a time.
	inner := t.shape[r-1]
	is := t.strides[r-1]
	idx := make([]int, r-1)
	for o := 0; o < n; o += inner {
		src := t.offset
		for d, i := range idx {
			src += i * t.strides[d]
		}
		row := dst[o : o+inner]
		if is == 1 {
			copy(row, t.data[src:src+inner])
		} else {
			for j := range row {
				row[j] = t.data[src+j*is]
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			if idx[d] < t.shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

// At returns the element at the given index.
func (t *Tensor) At(idx ...int) float32 { return t.data[t.index("At", idx)] }

// Set stores v at the given index.
func (t *Tensor) Set(v float32, idx ...int) { t.data[t.index("Set", idx)] = v }

func (t *Tensor) index(op string, idx []int) int {
	if len(idx) != len(t.shape) {
		panic(fmt.Sprintf("tensor.%s: %d indices for shape %v", op, len(idx), t.shape))
	}
	o := t.offset
	for d, i := range idx {
		if i < 0 || i >= t.shape[d] {
			panic(fmt.Sprintf("tensor.%s: index %v out of range for shape %v", op, idx, t.shape))
		}
		o += i * t.strides[d]
	}
	return o
}

// String prints the shape and up to the first eight values.
func (t *Tensor) String() string {
	d := t.Data()
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v[", t.shape)
	for i, v := range d {
		if i == 8 {
			b.WriteString(" …")
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.4g", v)
	}
	b.WriteByte(']')
	return b.String()
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b *Tensor) bool {
	if len(a.shape) != len(b.shape) {
		return false
	}
	for i := range a.shape {
		if a.shape[i] != b.shape[i] {
			return false
		}
	}
	return true
}
