package optim

import "math"

// The update rules below work on flat float32 slices; the optimisers split
// their parameters into ranges and run them in parallel.

// adamwCoef are one step's scalars, computed in float64 and rounded once,
// as PyTorch does.
type adamwCoef struct {
	decay    float32 // 1 - lr*weightDecay
	beta1    float32
	oneMinB1 float32
	beta2    float32
	oneMinB2 float32
	bc2Sqrt  float32 // sqrt(1 - beta2^step)
	eps      float32
	negStep  float32 // -lr / (1 - beta1^step)
}

func newAdamWCoef(lr, beta1, beta2, eps, weightDecay float64, step int) adamwCoef {
	bc1 := 1 - math.Pow(beta1, float64(step))
	bc2 := 1 - math.Pow(beta2, float64(step))
	return adamwCoef{
		decay:    float32(1 - lr*weightDecay),
		beta1:    float32(beta1),
		oneMinB1: float32(1 - beta1),
		beta2:    float32(beta2),
		oneMinB2: float32(1 - beta2),
		bc2Sqrt:  float32(math.Sqrt(bc2)),
		eps:      float32(eps),
		negStep:  float32(-lr / bc1),
	}
}

// adamwGeneric is one AdamW step, PyTorch's single-tensor update:
//
//	p *= decay
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + (1-beta2)*g*g
//	p += negStep * m / (sqrt(v)/bc2Sqrt + eps)
func adamwGeneric(p, g, m, v []float32, c adamwCoef) {
	g = g[:len(p)]
	m = m[:len(p)]
	v = v[:len(p)]
	for i := range p {
		// The float32 conversions forbid fused multiply-adds, so that the
		// rounding matches the assembly kernels on every GOAMD64 level.
		gi := g[i]
		mi := float32(c.beta1*m[i]) + float32(c.oneMinB1*gi)
		vi := float32(c.beta2*v[i]) + float32(float32(c.oneMinB2*gi)*gi)
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/c.bc2Sqrt + c.eps
		p[i] = float32(p[i]*c.decay) + float32(c.negStep*mi)/denom
	}
}

// sgdGeneric is one SGD step with momentum and L2 weight decay, PyTorch's
// update (buf is the momentum buffer; first says it is not yet initialised):
//
//	d = g + wd*p
//	buf = d                               on the first step
//	buf = momentum*buf + (1-dampening)*d  afterwards
//	d = d + momentum*buf (nesterov) or buf
//	p -= lr*d
func sgdGeneric(p, g, buf []float32, lr, momentum, dampening, wd float32, nesterov, first bool) {
	g = g[:len(p)]
	for i := range p {
		d := g[i]
		if wd != 0 {
			d += wd * p[i]
		}
		if buf != nil {
			b := d
			if !first {
				b = momentum*buf[i] + (1-dampening)*d
			}
			buf[i] = b
			if nesterov {
				d += momentum * b
			} else {
				d = b
			}
		}
		p[i] -= lr * d
	}
}

// emaGeneric is  for i := range s { s[i] = decay*s[i] + (1-decay)*p[i] }
func emaGeneric(s, p []float32, decay float32) {
	p = p[:len(s)]
	oneMin := 1 - decay
	for i := range s {
		s[i] = decay*s[i] + oneMin*p[i]
	}
}

// sumSquares returns the sum of x[i]^2 accumulated in float64.
func sumSquares(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}
