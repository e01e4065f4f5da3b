package vec

import "math"

// Portable bodies of the kernels, used on every platform when simd.Current()
// is simd.Generic and on platforms without assembly. Each has the signature of
// the dispatcher it stands in for; n is the length of the first slice and the
// caller guarantees the others are at least that long.

func addGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

func subGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] - b[i]
	}
}

func mulGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

func divGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] / b[i]
	}
}

func addScalarGeneric(dst, a []float32, s float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + s
	}
}

func scaleGeneric(dst, a []float32, s float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * s
	}
}

func axpyGeneric(y, x []float32, alpha float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// dotGeneric keeps four partial sums, which breaks the dependency chain of a
// single accumulator and rounds less.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func sumGeneric(a []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i]
		s1 += a[i+1]
		s2 += a[i+2]
		s3 += a[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func maxOfGeneric(a []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range a {
		if v > m {
			m = v
		}
	}
	return m
}

func sumSqDevGeneric(a []float32, mu float32) float32 {
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		d0, d1 := a[i]-mu, a[i+1]-mu
		s0 += d0 * d0
		s1 += d1 * d1
	}
	for ; i < len(a); i++ {
		d := a[i] - mu
		s0 += d * d
	}
	return s0 + s1
}

func expGeneric(dst, a []float32) {
	a = a[:len(dst)]
	for i := range dst {
		dst[i] = float32(math.Exp(float64(a[i])))
	}
}

func expShiftSumGeneric(dst, a []float32, m float32) float32 {
	a = a[:len(dst)]
	var s float64
	for i := range dst {
		e := math.Exp(float64(a[i] - m))
		dst[i] = float32(e)
		s += e
	}
	return float32(s)
}

const (
	sqrt2OverPi = 0.7978845608028654
	geluCubic   = 0.044715
)

func geluTanhGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		x64 := float64(v)
		u := sqrt2OverPi * (x64 + geluCubic*x64*x64*x64)
		dst[i] = float32(0.5 * x64 * (1 + math.Tanh(u)))
	}
}

func geluTanhGradGeneric(dx, x, dy []float32) {
	x, dy = x[:len(dx)], dy[:len(dx)]
	for i, v := range x {
		x64 := float64(v)
		u := sqrt2OverPi * (x64 + geluCubic*x64*x64*x64)
		t := math.Tanh(u)
		du := sqrt2OverPi * (1 + 3*geluCubic*x64*x64)
		dx[i] = dy[i] * float32(0.5*(1+t)+0.5*x64*(1-t*t)*du)
	}
}

func siluGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
}

func siluGradGeneric(dx, x, dy []float32) {
	x, dy = x[:len(dx)], dy[:len(dx)]
	for i, v := range x {
		s := 1 / (1 + math.Exp(-float64(v)))
		dx[i] = dy[i] * float32(s*(1+float64(v)*(1-s)))
	}
}

func softmaxGradApplyGeneric(dx, y, dy []float32, d float32) {
	y, dy = y[:len(dx)], dy[:len(dx)]
	for i := range dx {
		dx[i] = y[i] * (dy[i] - d)
	}
}

func normPlainGeneric(dst, x []float32, mu, rs float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = (v - mu) * rs
	}
}

func normScaleGeneric(dst, x, gamma []float32, mu, rs float32) {
	x, gamma = x[:len(dst)], gamma[:len(dst)]
	for i, v := range x {
		dst[i] = (v - mu) * rs * gamma[i]
	}
}

func normAffineGeneric(dst, x, gamma, beta []float32, mu, rs float32) {
	x, gamma, beta = x[:len(dst)], gamma[:len(dst)], beta[:len(dst)]
	for i, v := range x {
		dst[i] = (v-mu)*rs*gamma[i] + beta[i]
	}
}

func normGradAccGeneric(dgamma, x, dy []float32, mu, rs float32) {
	x, dy = x[:len(dgamma)], dy[:len(dgamma)]
	for i, v := range x {
		dgamma[i] += dy[i] * ((v - mu) * rs)
	}
}

func normGradSumsGeneric(x, dy, gamma []float32, mu, rs float32) (sg, sgx float32) {
	dy, gamma = dy[:len(x)], gamma[:len(x)]
	for i, v := range x {
		g := dy[i] * gamma[i]
		sg += g
		sgx += g * ((v - mu) * rs)
	}
	return sg, sgx
}

func normGradSumsPlainGeneric(x, dy []float32, mu, rs float32) (sg, sgx float32) {
	dy = dy[:len(x)]
	for i, v := range x {
		g := dy[i]
		sg += g
		sgx += g * ((v - mu) * rs)
	}
	return sg, sgx
}

func normGradApplyGeneric(dx, x, dy, gamma []float32, mu, rs, a, b float32) {
	x, dy, gamma = x[:len(dx)], dy[:len(dx)], gamma[:len(dx)]
	for i, v := range x {
		dx[i] = rs * (dy[i]*gamma[i] - a - (v-mu)*rs*b)
	}
}

func normGradApplyPlainGeneric(dx, x, dy []float32, mu, rs, a, b float32) {
	x, dy = x[:len(dx)], dy[:len(dx)]
	for i, v := range x {
		dx[i] = rs * (dy[i] - a - (v-mu)*rs*b)
	}
}
