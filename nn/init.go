package nn

import (
	"math"

	"tessera/tensor"
)

// Initialisers fill a parameter tensor in place, drawing from rng, and
// follow torch.nn.init. The "fan" of a weight of shape [out, in, k...] is
// in*k... (fan in) and out*k... (fan out).

// fans returns the fan in and fan out of a weight shape.
func fans(shape []int) (in, out int) {
	if len(shape) < 2 {
		return shape[0], shape[0]
	}
	receptive := 1
	for _, d := range shape[2:] {
		receptive *= d
	}
	return shape[1] * receptive, shape[0] * receptive
}

// fill copies src into t's elements.
func fill(t, src *tensor.Tensor) { t.CopyFrom(src) }

// Uniform fills t with values uniform in [lo, hi).
func Uniform(rng *tensor.RNG, t *tensor.Tensor, lo, hi float32) {
	fill(t, rng.Uniform(lo, hi, t.Shape()...))
}

// XavierUniform fills t uniformly in ±sqrt(6/(fan_in+fan_out)) (Glorot).
func XavierUniform(rng *tensor.RNG, t *tensor.Tensor) {
	in, out := fans(t.Shape())
	b := float32(math.Sqrt(6 / float64(in+out)))
	Uniform(rng, t, -b, b)
}

// Normal fills t with values from N(0, std²).
func Normal(rng *tensor.RNG, t *tensor.Tensor, std float32) {
	n := rng.Normal(t.Shape()...)
	d := n.Data()
	for i := range d {
		d[i] *= std
	}
	fill(t, n)
}

// Zeros sets every element of t to 0.
func Zeros(t *tensor.Tensor) { fill(t, tensor.New(t.Shape()...)) }

// Ones sets every element of t to 1.
func Ones(t *tensor.Tensor) { fill(t, tensor.Ones(t.Shape()...)) }

// LinearDefault is PyTorch's default initialisation of nn.Linear and
// nn.Conv2d: weight uniform in ±1/sqrt(fan_in) (kaiming_uniform with
// a=sqrt(5)) and bias, if not nil, uniform in the same range.
func LinearDefault(rng *tensor.RNG, weight, bias *tensor.Tensor) {
	in, _ := fans(weight.Shape())
	b := float32(1 / math.Sqrt(float64(in)))
	Uniform(rng, weight, -b, b)
	if bias != nil {
		Uniform(rng, bias, -b, b)
	}
}
