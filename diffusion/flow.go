// Package diffusion holds flow-matching training and the samplers that turn
// noise into images.
//
// Convention (rectified flow): a noisy sample at level s ∈ [0, 1] is
// x_s = (1−s)·x0 + s·ε with ε ~ N(0, I), so s = 0 is data and s = 1 pure
// noise. Networks predict the velocity v = ε − x0 = dx_s/ds and are fed the
// time in DiT units, t = 1000·s. Sampling integrates dx/ds = v from s = 1 to
// s = 0 over a schedule (Uniform, Shifted, LinearQuadratic) with Euler, Heun
// or DPM-Solver++(2M); epsilon-prediction DiT checkpoints sample with DDIM on
// DiT's discrete process instead. Classifier-free guidance (Guided) batches
// the conditional and unconditional branches into one network call.
package diffusion

import (
	"fmt"
	"math"

	"tessera/tensor"
)

// RNG is the randomness the training helpers draw from; *tensor.RNG (the
// seeded, checkpointable generator) and *math/rand/v2.Rand both fit.
type RNG interface {
	Float64() float64
	NormFloat64() float64
}

// NoiseLevels draws n training noise levels from the logit-normal
// distribution s = sigmoid(mean + std·z), z ~ N(0, 1) (SD3's default is
// mean 0, std 1: most samples near s = 1/2, few at the ends).
func NoiseLevels(rng RNG, n int, mean, std float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		z := mean + std*rng.NormFloat64()
		s[i] = float32(1 / (1 + math.Exp(-z)))
	}
	return s
}

// Noise returns a tensor of the given shape filled with N(0, 1) samples.
func Noise(rng RNG, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	d := t.Data()
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return t
}

// Interpolate returns x_s = (1−s_b)·x0 + s_b·ε and the velocity target
// ε − x0 for a batch x0 [B, …] with one noise level per sample.
func Interpolate(x0, eps *tensor.Tensor, s []float32) (xs, target *tensor.Tensor) {
	if !tensor.SameShape(x0, eps) {
		panic(fmt.Sprintf("diffusion.Interpolate: data %v and noise %v differ in shape", x0.Shape(), eps.Shape()))
	}
	b := x0.Dim(0)
	if len(s) != b {
		panic(fmt.Sprintf("diffusion.Interpolate: %d noise levels for batch %d", len(s), b))
	}
	xs, target = tensor.New(x0.Shape()...), tensor.New(x0.Shape()...)
	a, e, o, v := x0.Data(), eps.Data(), xs.Data(), target.Data()
	per := len(a) / b
	for i := 0; i < b; i++ {
		si := s[i]
		for j := i * per; j < (i+1)*per; j++ {
			o[j] = (1-si)*a[j] + si*e[j]
			v[j] = e[j] - a[j]
		}
	}
	return xs, target
}

// DropLabels returns a copy of y where each label is replaced by null (the
// "no class" label, num_classes for DiT) with probability p, so that one
// network learns both the conditional and the unconditional model for
// classifier-free guidance (p = 0.1 is the usual choice).
func DropLabels(rng RNG, y []int, null int, p float64) []int {
	out := make([]int, len(y))
	for i, v := range y {
		if rng.Float64() < p {
			v = null
		}
		out[i] = v
	}
	return out
}
