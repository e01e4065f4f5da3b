package tensor

import "fmt"

// view returns a tensor sharing t's buffer with the given layout.
func (t *Tensor) view(shape, strides []int, offset int) *Tensor {
	return &Tensor{data: t.data, shape: shape, strides: strides, offset: offset}
}

// Offset is the position of element 0 in the backing buffer, for kernels
// that address a view directly (together with Strides and Storage).
func (t *Tensor) Offset() int { return t.offset }

// Storage returns the whole backing buffer of t (shared with every view of
// it). Element idx lives at Offset() + Σ idx[d]*Strides()[d].
func (t *Tensor) Storage() []float32 { return t.data }

// Reshape returns t with a new shape holding the same number of elements;
// one dimension may be -1 and is then inferred. It is a view when t is
// contiguous and a reshaped copy otherwise.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = resolveShape("Reshape", shape, t.Numel(), t.shape)
	c := t.Contiguous()
	return c.view(shape, ContiguousStrides(shape), c.offset)
}

// resolveShape fills a single -1 in shape so that it holds n elements.
func resolveShape(op string, shape []int, n int, from []int) []int {
	shape = clone(shape)
	infer := -1
	p := 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			panic(fmt.Sprintf("tensor.%s: bad shape %v", op, shape))
		default:
			p *= d
		}
	}
	if infer >= 0 {
		if p == 0 || n%p != 0 {
			panic(fmt.Sprintf("tensor.%s: cannot infer -1 in %v for %v (%d elements)", op, shape, from, n))
		}
		shape[infer] = n / p
		p = n
	}
	if p != n {
		panic(fmt.Sprintf("tensor.%s: shape %v does not hold the %d elements of %v", op, shape, n, from))
	}
	return shape
}

// Permute returns a view whose dimension i is t's dimension perm[i].
func (t *Tensor) Permute(perm ...int) *Tensor {
	if len(perm) != len(t.shape) {
		panic(fmt.Sprintf("tensor.Permute: permutation %v for shape %v", perm, t.shape))
	}
	seen := make([]bool, len(perm))
	shape := make([]int, len(perm))
	strides := make([]int, len(perm))
	for i, p := range perm {
		p = t.axis(p)
		if seen[p] {
			panic(fmt.Sprintf("tensor.Permute: %v is not a permutation", perm))
		}
		seen[p] = true
		shape[i], strides[i] = t.shape[p], t.strides[p]
	}
	return t.view(shape, strides, t.offset)
}

// Transpose returns a view with dimensions d0 and d1 swapped.
func (t *Tensor) Transpose(d0, d1 int) *Tensor {
	perm := make([]int, len(t.shape))
	for i := range perm {
		perm[i] = i
	}
	d0, d1 = t.axis(d0), t.axis(d1)
	perm[d0], perm[d1] = d1, d0
	return t.Permute(perm...)
}

// Slice returns the view of positions [lo, hi) along dim.
func (t *Tensor) Slice(dim, lo, hi int) *Tensor {
	dim = t.axis(dim)
	if lo < 0 || hi < lo || hi > t.shape[dim] {
		panic(fmt.Sprintf("tensor.Slice: [%d, %d) out of range for dim %d of %v", lo, hi, dim, t.shape))
	}
	shape := clone(t.shape)
	shape[dim] = hi - lo
	return t.view(shape, clone(t.strides), t.offset+lo*t.strides[dim])
}

// Narrow returns the view of length positions from start along dim.
func (t *Tensor) Narrow(dim, start, length int) *Tensor { return t.Slice(dim, start, start+length) }

// Index returns the view at position i of dim, with that dimension removed.
func (t *Tensor) Index(dim, i int) *Tensor {
	dim = t.axis(dim)
	if i < 0 || i >= t.shape[dim] {
		panic(fmt.Sprintf("tensor.Index: %d out of range for dim %d of %v", i, dim, t.shape))
	}
	shape := append(clone(t.shape[:dim]), t.shape[dim+1:]...)
	strides := append(clone(t.strides[:dim]), t.strides[dim+1:]...)
	return t.view(shape, strides, t.offset+i*t.strides[dim])
}

// Unsqueeze returns a view with a new size-1 dimension at position dim
// (0 <= dim <= Rank; negative counts from the end, -1 appends).
func (t *Tensor) Unsqueeze(dim int) *Tensor {
	r := len(t.shape)
	if dim < 0 {
		dim += r + 1
	}
	if dim < 0 || dim > r {
		panic(fmt.Sprintf("tensor.Unsqueeze: dim %d for shape %v", dim, t.shape))
	}
	st := 1
	if dim < r {
		st = t.strides[dim] * t.shape[dim]
	}
	shape := append(append(clone(t.shape[:dim]), 1), t.shape[dim:]...)
	strides := append(append(clone(t.strides[:dim]), st), t.strides[dim:]...)
	return t.view(shape, strides, t.offset)
}

// Squeeze returns a view without the given size-1 dimensions, or without
// every size-1 dimension when none are given.
func (t *Tensor) Squeeze(dims ...int) *Tensor {
	drop := make([]bool, len(t.shape))
	if len(dims) == 0 {
		for i, d := range t.shape {
			drop[i] = d == 1
		}
	}
	for _, d := range dims {
		d = t.axis(d)
		if t.shape[d] != 1 {
			panic(fmt.Sprintf("tensor.Squeeze: dim %d of %v is not 1", d, t.shape))
		}
		drop[d] = true
	}
	var shape, strides []int
	for i := range t.shape {
		if !drop[i] {
			shape = append(shape, t.shape[i])
			strides = append(strides, t.strides[i])
		}
	}
	return t.view(shape, strides, t.offset)
}

// BroadcastShape returns the NumPy broadcast of the given shapes and whether
// they are compatible.
func BroadcastShape(shapes ...[]int) ([]int, bool) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int, r)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		for i, d := range s {
			j := r - len(s) + i
			switch {
			case d == out[j] || d == 1:
			case out[j] == 1:
				out[j] = d
			default:
				return nil, false
			}
		}
	}
	return out, true
}

// BroadcastTo returns a view of t expanded to shape by NumPy rules: new
// leading dimensions and size-1 dimensions get stride 0.
func (t *Tensor) BroadcastTo(shape ...int) *Tensor {
	r := len(shape)
	if len(t.shape) > r {
		panic(fmt.Sprintf("tensor.BroadcastTo: cannot broadcast %v to %v", t.shape, shape))
	}
	strides := make([]int, r)
	lead := r - len(t.shape)
	for i := range shape {
		if i < lead {
			continue
		}
		d := t.shape[i-lead]
		switch {
		case d == shape[i]:
			strides[i] = t.strides[i-lead]
		case d == 1:
		default:
			panic(fmt.Sprintf("tensor.BroadcastTo: cannot broadcast %v to %v", t.shape, shape))
		}
	}
	return t.view(clone(shape), strides, t.offset)
}

// Concat joins tensors of equal shape except along dim into a new tensor.
func Concat(dim int, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		panic("tensor.Concat: no tensors")
	}
	dim = ts[0].axis(dim)
	shape := clone(ts[0].shape)
	shape[dim] = 0
	for _, t := range ts {
		if len(t.shape) != len(shape) {
			panic(fmt.Sprintf("tensor.Concat: shapes %v and %v differ in rank", ts[0].shape, t.shape))
		}
		for i := range shape {
			if i != dim && t.shape[i] != shape[i] {
				panic(fmt.Sprintf("tensor.Concat: shapes %v and %v differ outside dim %d", ts[0].shape, t.shape, dim))
			}
		}
		shape[dim] += t.shape[dim]
	}
	out := New(shape...)
	lo := 0
	for _, t := range ts {
		hi := lo + t.shape[dim]
		out.Slice(dim, lo, hi).CopyFrom(t)
		lo = hi
	}
	return out
}

// Split returns views of t cut along dim into pieces of the given sizes,
// which must add up to the dimension.
func (t *Tensor) Split(dim int, sizes ...int) []*Tensor {
	dim = t.axis(dim)
	out := make([]*Tensor, len(sizes))
	lo := 0
	for i, s := range sizes {
		out[i] = t.Slice(dim, lo, lo+s)
		lo += s
	}
	if lo != t.shape[dim] {
		panic(fmt.Sprintf("tensor.Split: sizes %v do not add up to dim %d of %v", sizes, dim, t.shape))
	}
	return out
}

// ChunkSizes returns the sizes Chunk cuts a dimension of length d into:
// n pieces of ceil(d/n), the last one shorter when d is not divisible.
func ChunkSizes(d, n int) []int {
	if n < 1 {
		panic(fmt.Sprintf("tensor.Chunk: %d chunks", n))
	}
	c := (d + n - 1) / n
	var sizes []int
	for lo := 0; lo < d; lo += c {
		sizes = append(sizes, min(c, d-lo))
	}
	return sizes
}

// Chunk splits t into n views of (nearly) equal size along dim.
func (t *Tensor) Chunk(n, dim int) []*Tensor {
	return t.Split(dim, ChunkSizes(t.Dim(dim), n)...)
}

// CopyFrom copies src (broadcast to t's shape) into t, which may be a view.
func (t *Tensor) CopyFrom(src *Tensor) {
	src = src.BroadcastTo(t.shape...)
	binaryInto(t, src, nil, opCopy)
}
