// Package vec holds the elementwise, normalisation and activation kernels on
// float32 slices. Unless a doc comment says otherwise, dst may alias an input,
// and all slices of one call have the same length.
package vec

import "math"

// Add is  for i := range dst { dst[i] = a[i] + b[i] }
func Add(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Sub is  for i := range dst { dst[i] = a[i] - b[i] }
func Sub(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] - b[i]
	}
}

// Mul is  for i := range dst { dst[i] = a[i] * b[i] }
func Mul(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// Div is  for i := range dst { dst[i] = a[i] / b[i] }
func Div(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] / b[i]
	}
}

// AddScalar is  for i := range dst { dst[i] = a[i] + s }
func AddScalar(dst, a []float32, s float32) {
	for i := range dst {
		dst[i] = a[i] + s
	}
}

// Scale is  for i := range dst { dst[i] = a[i] * s }
func Scale(dst, a []float32, s float32) {
	for i := range dst {
		dst[i] = a[i] * s
	}
}

// Axpy is  for i := range y { y[i] += alpha * x[i] }
func Axpy(y []float32, alpha float32, x []float32) {
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// Dot is  for i := range a { s += a[i] * b[i] }; return s
func Dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// Sum is  for _, v := range a { s += v }; return s
func Sum(a []float32) float32 {
	var s float32
	for _, v := range a {
		s += v
	}
	return s
}

// Max returns the largest element of a non-empty slice.
func Max(a []float32) float32 {
	m := a[0]
	for _, v := range a[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// Exp is  for i := range dst { dst[i] = exp(a[i]) }
func Exp(dst, a []float32) {
	for i := range dst {
		dst[i] = float32(math.Exp(float64(a[i])))
	}
}

const sqrt2OverPi = 0.7978845608028654

// GELUTanh is the tanh approximation of GELU:
// dst[i] = 0.5*x*(1 + tanh(√(2/π)*(x + 0.044715*x³))).
func GELUTanh(dst, x []float32) {
	for i, v := range x {
		u := sqrt2OverPi * (float64(v) + 0.044715*float64(v)*float64(v)*float64(v))
		dst[i] = float32(0.5 * float64(v) * (1 + math.Tanh(u)))
	}
}

// GELUTanhGrad is  dx[i] = dy[i] * d/dx GELUTanh(x[i])
func GELUTanhGrad(dx, x, dy []float32) {
	for i, v := range x {
		x64 := float64(v)
		u := sqrt2OverPi * (x64 + 0.044715*x64*x64*x64)
		t := math.Tanh(u)
		du := sqrt2OverPi * (1 + 3*0.044715*x64*x64)
		dx[i] = dy[i] * float32(0.5*(1+t)+0.5*x64*(1-t*t)*du)
	}
}

// GELU is the exact GELU: dst[i] = 0.5*x*(1 + erf(x/√2)).
func GELU(dst, x []float32) {
	for i, v := range x {
		dst[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// GELUGrad is  dx[i] = dy[i] * d/dx GELU(x[i])
func GELUGrad(dx, x, dy []float32) {
	for i, v := range x {
		x64 := float64(v)
		cdf := 0.5 * (1 + math.Erf(x64/math.Sqrt2))
		pdf := math.Exp(-0.5*x64*x64) / math.Sqrt(2*math.Pi)
		dx[i] = dy[i] * float32(cdf+x64*pdf)
	}
}

// SiLU is  dst[i] = x[i] / (1 + exp(-x[i]))
func SiLU(dst, x []float32) {
	for i, v := range x {
		dst[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
}

// SiLUGrad is  dx[i] = dy[i] * d/dx SiLU(x[i])
func SiLUGrad(dx, x, dy []float32) {
	for i, v := range x {
		s := 1 / (1 + math.Exp(-float64(v)))
		dx[i] = dy[i] * float32(s*(1+float64(v)*(1-s)))
	}
}

// SoftmaxRows writes the softmax of each row of x (rows of length cols) to
// dst, subtracting the row maximum first.
func SoftmaxRows(dst, x []float32, cols int) {
	for r := 0; r+cols <= len(x); r += cols {
		row, out := x[r:r+cols], dst[r:r+cols]
		m := Max(row)
		var s float64
		for i, v := range row {
			e := math.Exp(float64(v - m))
			out[i] = float32(e)
			s += e
		}
		inv := float32(1 / s)
		for i := range out {
			out[i] *= inv
		}
	}
}

// SoftmaxRowsGrad is the backward of SoftmaxRows given its output y:
// dx = y ⊙ (dy - Σ(dy ⊙ y)) per row.
func SoftmaxRowsGrad(dx, y, dy []float32, cols int) {
	for r := 0; r+cols <= len(y); r += cols {
		yr, gr, out := y[r:r+cols], dy[r:r+cols], dx[r:r+cols]
		d := Dot(yr, gr)
		for i := range out {
			out[i] = yr[i] * (gr[i] - d)
		}
	}
}

// LayerNorm normalises each row of x (rows of length cols) to zero mean and
// unit variance, then applies gamma and beta when they are non-nil:
// dst = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps).
// When mean and rstd are non-nil (one entry per row) they receive the
// statistics for the backward pass.
func LayerNorm(dst, x []float32, cols int, eps float32, gamma, beta, mean, rstd []float32) {
	rows := len(x) / cols
	for r := 0; r < rows; r++ {
		row, out := x[r*cols:(r+1)*cols], dst[r*cols:(r+1)*cols]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		mu := s / float64(cols)
		var ss float64
		for _, v := range row {
			d := float64(v) - mu
			ss += d * d
		}
		rs := 1 / math.Sqrt(ss/float64(cols)+float64(eps))
		m32, r32 := float32(mu), float32(rs)
		for i, v := range row {
			y := (v - m32) * r32
			if gamma != nil {
				y *= gamma[i]
			}
			if beta != nil {
				y += beta[i]
			}
			out[i] = y
		}
		if mean != nil {
			mean[r] = m32
		}
		if rstd != nil {
			rstd[r] = r32
		}
	}
}

// LayerNormGrad is the backward of LayerNorm given the saved mean and rstd.
// It writes dx and, when they are non-nil, adds into dgamma and dbeta.
// gamma may be nil (no affine).
func LayerNormGrad(dx, dgamma, dbeta, x, dy, gamma, mean, rstd []float32, cols int) {
	rows := len(x) / cols
	n := float32(cols)
	for r := 0; r < rows; r++ {
		xr, gr, out := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
		mu, rs := mean[r], rstd[r]
		var sg, sgx float32
		for i, v := range xr {
			xh := (v - mu) * rs
			g := gr[i]
			if dbeta != nil {
				dbeta[i] += g
			}
			if dgamma != nil {
				dgamma[i] += g * xh
			}
			if gamma != nil {
				g *= gamma[i]
			}
			sg += g
			sgx += g * xh
		}
		for i, v := range xr {
			xh := (v - mu) * rs
			g := gr[i]
			if gamma != nil {
				g *= gamma[i]
			}
			out[i] = rs * (g - sg/n - xh*sgx/n)
		}
	}
}

// RMSNorm scales each row of x (rows of length cols) by the reciprocal of
// its root mean square, then by gamma when non-nil:
// dst = x * rstd * gamma, rstd = 1/sqrt(mean(x²) + eps).
// When rstd is non-nil it receives one entry per row.
func RMSNorm(dst, x []float32, cols int, eps float32, gamma, rstd []float32) {
	rows := len(x) / cols
	for r := 0; r < rows; r++ {
		row, out := x[r*cols:(r+1)*cols], dst[r*cols:(r+1)*cols]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		rs := float32(1 / math.Sqrt(ss/float64(cols)+float64(eps)))
		for i, v := range row {
			y := v * rs
			if gamma != nil {
				y *= gamma[i]
			}
			out[i] = y
		}
		if rstd != nil {
			rstd[r] = rs
		}
	}
}

// RMSNormGrad is the backward of RMSNorm given the saved rstd. It writes dx
// and, when non-nil, adds into dgamma. gamma may be nil.
func RMSNormGrad(dx, dgamma, x, dy, gamma, rstd []float32, cols int) {
	rows := len(x) / cols
	n := float32(cols)
	for r := 0; r < rows; r++ {
		xr, gr, out := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
		rs := rstd[r]
		var sgx float32
		for i, v := range xr {
			xh := v * rs
			g := gr[i]
			if dgamma != nil {
				dgamma[i] += g * xh
			}
			if gamma != nil {
				g *= gamma[i]
			}
			sgx += g * xh
		}
		for i, v := range xr {
			xh := v * rs
			g := gr[i]
			if gamma != nil {
				g *= gamma[i]
			}
			out[i] = rs * (g - xh*sgx/n)
		}
	}
}
