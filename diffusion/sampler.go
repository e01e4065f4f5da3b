package diffusion

import (
	"fmt"
	"math"

	"tessera/tensor"
)

// Model is what samplers evaluate: a network seen from outside, batch in,
// prediction out, with no gradients. Accelerators (caches, distilled
// students) wrap a Model and are samplers' Models in turn.
type Model interface {
	// Predict returns the network's prediction for the batch x [B, …] at
	// times t (one per sample, DiT units: 1000·s for flow models, the
	// discrete timestep for epsilon models) with class labels y: the
	// velocity ε − x0 for flow models, the noise ε for epsilon models. The
	// result has x's shape (extra learned-variance channels are dropped).
	Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error)
}

// Guided is classifier-free guidance around a class-conditional Model: each
// call runs the conditional and unconditional branches as one batch of 2B
// (labels y, then Null for all) and returns u + Scale·(c − u).
type Guided struct {
	Model Model
	Scale float64 // guidance weight; 1 is the plain conditional model
	Null  int     // the "no class" label (num_classes for DiT)
}

// Predict implements Model.
func (g Guided) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	if g.Scale == 1 {
		return g.Model.Predict(x, t, y)
	}
	b := x.Dim(0)
	if len(t) != b || len(y) != b {
		return nil, fmt.Errorf("guidance: batch %d with %d times and %d labels", b, len(t), len(y))
	}
	xd := x.Data()
	x2 := tensor.New(append([]int{2 * b}, x.Shape()[1:]...)...)
	copy(x2.Data(), xd)
	copy(x2.Data()[len(xd):], xd)
	t2 := append(append(make([]float32, 0, 2*b), t...), t...)
	y2 := make([]int, 2*b)
	copy(y2, y)
	for i := b; i < 2*b; i++ {
		y2[i] = g.Null
	}
	out, err := g.Model.Predict(x2, t2, y2)
	if err != nil {
		return nil, fmt.Errorf("guidance: %w", err)
	}
	d := out.Data()
	half := len(d) / 2
	res := tensor.New(x.Shape()...)
	r := res.Data()
	w := float32(g.Scale)
	for i := range r {
		c, u := d[i], d[half+i]
		r[i] = u + w*(c-u)
	}
	return res, nil
}

// Stats reports what a sampling run cost.
type Stats struct {
	Steps        int `json:"steps"`
	NetworkEvals int `json:"network_evals"` // Model.Predict calls (a guided call counts once)
}

// predictor calls the model with one shared time and counts calls.
type predictor struct {
	m     Model
	b     int
	t     []float32
	stats *Stats
}

func (p *predictor) at(x []float32, shape []int, t float64) ([]float32, error) {
	for i := range p.t {
		p.t[i] = float32(t)
	}
	p.stats.NetworkEvals++
	out, err := p.m.Predict(tensor.FromData(x, shape...), p.t, nil)
	if err != nil {
		return nil, fmt.Errorf("network evaluation %d (t=%g): %w", p.stats.NetworkEvals, t, err)
	}
	if out.Numel() != len(x) {
		return nil, fmt.Errorf("network evaluation %d: prediction shape %v, want %v", p.stats.NetworkEvals, out.Shape(), shape)
	}
	return out.Data(), nil
}

// start copies the noise and prepares the predictor.
func start(m Model, noise *tensor.Tensor, y []int, sigmas []float64) ([]float32, []int, *predictor, *Stats, error) {
	if noise.Rank() < 1 || noise.Dim(0) < 1 {
		return nil, nil, nil, nil, fmt.Errorf("sampler: noise of shape %v has no batch", noise.Shape())
	}
	b := noise.Dim(0)
	if y != nil && len(y) != b {
		return nil, nil, nil, nil, fmt.Errorf("sampler: %d labels for batch %d", len(y), b)
	}
	if sigmas != nil {
		if err := checkSigmas(sigmas); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	st := &Stats{}
	p := &predictor{m: labelled{m, y}, b: b, t: make([]float32, b), stats: st}
	return noise.Clone().Data(), noise.Shape(), p, st, nil
}

// labelled binds the labels so the sampler loops need not carry them.
type labelled struct {
	m Model
	y []int
}

func (l labelled) Predict(x *tensor.Tensor, t []float32, _ []int) (*tensor.Tensor, error) {
	return l.m.Predict(x, t, l.y)
}

func checkSigmas(s []float64) error {
	if len(s) < 2 {
		return fmt.Errorf("sampler: schedule needs at least 2 noise levels, got %d", len(s))
	}
	for i := 1; i < len(s); i++ {
		if !(s[i] < s[i-1]) {
			return fmt.Errorf("sampler: schedule must fall strictly, got s[%d]=%g after %g", i, s[i], s[i-1])
		}
	}
	if s[0] > 1 || s[len(s)-1] < 0 {
		return fmt.Errorf("sampler: noise levels must lie in [0, 1], got %g..%g", s[0], s[len(s)-1])
	}
	return nil
}

// Euler integrates the flow ODE dx/ds = v(x, s) from sigmas[0] to the last
// level with explicit Euler steps: x ← x + (s' − s)·v. First order, one
// network evaluation per step.
func Euler(m Model, noise *tensor.Tensor, y []int, sigmas []float64) (*tensor.Tensor, Stats, error) {
	x, shape, p, st, err := start(m, noise, y, sigmas)
	if err != nil {
		return nil, Stats{}, err
	}
	for i := 0; i+1 < len(sigmas); i++ {
		v, err := p.at(x, shape, 1000*sigmas[i])
		if err != nil {
			return nil, *st, err
		}
		axpy(x, float32(sigmas[i+1]-sigmas[i]), v)
		st.Steps++
	}
	return tensor.FromData(x, shape...), *st, nil
}

// Heun integrates the flow ODE with Heun's method (explicit trapezoid): an
// Euler predictor, then the average of the velocities at both ends. Second
// order; two evaluations per step except the last step to s = 0, which is a
// plain Euler step as in Karras et al. (its local error is already of second
// order there and it saves an evaluation).
func Heun(m Model, noise *tensor.Tensor, y []int, sigmas []float64) (*tensor.Tensor, Stats, error) {
	x, shape, p, st, err := start(m, noise, y, sigmas)
	if err != nil {
		return nil, Stats{}, err
	}
	pred := make([]float32, len(x))
	for i := 0; i+1 < len(sigmas); i++ {
		s, next := sigmas[i], sigmas[i+1]
		h := float32(next - s)
		v, err := p.at(x, shape, 1000*s)
		if err != nil {
			return nil, *st, err
		}
		if next == 0 {
			axpy(x, h, v)
			st.Steps++
			continue
		}
		v = append([]float32(nil), v...) // the model may reuse its output buffer
		copy(pred, x)
		axpy(pred, h, v)
		v2, err := p.at(pred, shape, 1000*next)
		if err != nil {
			return nil, *st, err
		}
		for j := range x {
			x[j] += 0.5 * h * (v[j] + v2[j])
		}
		st.Steps++
	}
	return tensor.FromData(x, shape...), *st, nil
}

// DPMSolver2M is DPM-Solver++(2M) (Lu et al. 2022) in flow form. The flow
// x_s = (1-s)·x0 + s·ε is a diffusion with α = 1−s and σ = s, log-SNR
// λ = log((1−s)/s), and data prediction x0 = x − s·v. Each step is
//
//	x' = (σ'/σ)·x + α'·(1 − e^{−h})·D,  h = λ' − λ,
//
// with D the current x0 prediction on the first step, and on later steps
// the linear extrapolation D = (1 + 1/(2r))·x0 − 1/(2r)·x0_prev, r = h_prev/h.
// Second order, one evaluation per step. The step to s = 0 returns D.
func DPMSolver2M(m Model, noise *tensor.Tensor, y []int, sigmas []float64) (*tensor.Tensor, Stats, error) {
	x, shape, p, st, err := start(m, noise, y, sigmas)
	if err != nil {
		return nil, Stats{}, err
	}
	lambda := func(s float64) float64 { return math.Log((1 - s) / s) }
	x0 := make([]float32, len(x))
	prev := make([]float32, len(x))
	havePrev := false
	hPrev := 0.0
	for i := 0; i+1 < len(sigmas); i++ {
		s, next := sigmas[i], sigmas[i+1]
		v, err := p.at(x, shape, 1000*s)
		if err != nil {
			return nil, *st, err
		}
		for j := range x {
			x0[j] = x[j] - float32(s)*v[j]
		}
		st.Steps++
		if next == 0 {
			copy(x, x0)
			break
		}
		// e^{−h} = (σ'/α')·(α/σ) stays finite at s = 1, where λ = −∞.
		emh := (next / (1 - next)) * ((1 - s) / s)
		h := math.Inf(1)
		if s < 1 {
			h = lambda(next) - lambda(s)
		}
		c0 := float32(next / s)
		c1 := float32((1 - next) * (1 - emh))
		if !havePrev || math.IsInf(hPrev, 0) || math.IsInf(h, 0) {
			for j := range x {
				x[j] = c0*x[j] + c1*x0[j]
			}
		} else {
			r := hPrev / h
			a := float32(1 + 1/(2*r))
			b := float32(1 / (2 * r))
			for j := range x {
				x[j] = c0*x[j] + c1*(a*x0[j]-b*prev[j])
			}
		}
		prev, x0 = x0, prev
		havePrev = true
		hPrev = h
	}
	return tensor.FromData(x, shape...), *st, nil
}

// DDIM samples an epsilon-prediction model (DiT's ImageNet checkpoints)
// with deterministic DDIM (η = 0) on DiT's discrete linear-beta process,
// visiting the respaced timesteps of DDIMTimesteps(steps). Each step
// predicts x0 = (x − sqrt(1−ᾱ)·ε)/sqrt(ᾱ) and moves to
// x' = sqrt(ᾱ')·x0 + sqrt(1−ᾱ')·ε, with ᾱ' = 1 after the last timestep.
// The noise is the model's x_T at the first visited timestep.
func DDIM(m Model, noise *tensor.Tensor, y []int, steps int) (*tensor.Tensor, Stats, error) {
	ts, err := DDIMTimesteps(steps)
	if err != nil {
		return nil, Stats{}, err
	}
	x, shape, p, st, err := start(m, noise, y, nil)
	if err != nil {
		return nil, Stats{}, err
	}
	ab := AlphasCumprod()
	for i, t := range ts {
		eps, err := p.at(x, shape, float64(t))
		if err != nil {
			return nil, *st, err
		}
		a := ab[t]
		aNext := 1.0
		if i+1 < len(ts) {
			aNext = ab[ts[i+1]]
		}
		sa, sb := math.Sqrt(a), math.Sqrt(1-a)
		na, nb := math.Sqrt(aNext), math.Sqrt(1-aNext)
		// x' = na·(x − sb·ε)/sa + nb·ε
		cx := float32(na / sa)
		ce := float32(nb - na*sb/sa)
		for j := range x {
			x[j] = cx*x[j] + ce*eps[j]
		}
		st.Steps++
	}
	return tensor.FromData(x, shape...), *st, nil
}

func axpy(x []float32, a float32, v []float32) {
	for j := range x {
		x[j] += a * v[j]
	}
}

// Options selects a sampler for Sample.
type Options struct {
	Sampler  string  // "euler" (default), "heun", "dpm++2m", or "ddim" (epsilon models)
	Schedule string  // "uniform" (default), "linear-quadratic" or "shifted"; flow samplers only
	Shift    float64 // for the shifted schedule
	Steps    int     // sampling steps (default 32)
}

// Samplers lists the names Sample accepts.
var Samplers = []string{"euler", "heun", "dpm++2m", "ddim"}

// Sample draws samples from m starting at noise (the x at s = 1, or x_T for
// DDIM) with labels y, using the sampler and schedule in o.
func Sample(m Model, noise *tensor.Tensor, y []int, o Options) (*tensor.Tensor, Stats, error) {
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.Sampler == "ddim" {
		return DDIM(m, noise, y, o.Steps)
	}
	sig, err := Schedule(o.Schedule, o.Steps, o.Shift)
	if err != nil {
		return nil, Stats{}, err
	}
	switch o.Sampler {
	case "", "euler":
		return Euler(m, noise, y, sig)
	case "heun":
		return Heun(m, noise, y, sig)
	case "dpm++2m", "dpmpp2m", "dpm++":
		return DPMSolver2M(m, noise, y, sig)
	}
	return nil, Stats{}, fmt.Errorf("unknown sampler %q (want euler, heun, dpm++2m or ddim)", o.Sampler)
}
