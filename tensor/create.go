package tensor

// Zeros returns a zero-filled tensor.
func Zeros(shape ...int) *Tensor { return New(shape...) }

// Ones returns a tensor filled with 1.
func Ones(shape ...int) *Tensor { return Full(1, shape...) }

// Full returns a tensor filled with v.
func Full(v float32, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.data {
		t.data[i] = v
	}
	return t
}

// Arange returns the 1-d tensor [start, start+step, …] of the values below
// stop (above stop when step is negative).
func Arange(start, stop, step float32) *Tensor {
	if step == 0 {
		panic("tensor.Arange: zero step")
	}
	var vals []float32
	for i := 0; ; i++ {
		v := start + float32(i)*step
		if (step > 0 && v >= stop) || (step < 0 && v <= stop) {
			break
		}
		vals = append(vals, v)
	}
	if vals == nil {
		vals = []float32{}
	}
	return FromData(vals, len(vals))
}
