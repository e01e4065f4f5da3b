package diffusion

import (
	"fmt"
	"math"
)

// A schedule is the list of noise levels a flow sampler visits: steps+1
// values falling from 1 (pure noise) to 0 (data). Tessera's flow convention
// is x_s = (1-s)·x0 + s·ε, so s is both the noise level and the time.

// Uniform returns steps+1 equally spaced noise levels from 1 to 0.
func Uniform(steps int) ([]float64, error) {
	if err := checkSteps(steps); err != nil {
		return nil, err
	}
	s := make([]float64, steps+1)
	for i := range s {
		s[i] = 1 - float64(i)/float64(steps)
	}
	s[steps] = 0
	return s, nil
}

// Shifted returns the uniform schedule warped by shift, as in SD3:
// s' = shift·s / (1 + (shift-1)·s). shift > 1 spends more steps at high
// noise, shift < 1 at low noise, and shift = 1 is Uniform.
func Shifted(steps int, shift float64) ([]float64, error) {
	if !(shift > 0) || math.IsInf(shift, 0) {
		return nil, fmt.Errorf("shifted schedule: shift must be positive and finite, got %v", shift)
	}
	s, err := Uniform(steps)
	if err != nil {
		return nil, err
	}
	for i, v := range s {
		s[i] = shift * v / (1 + (shift-1)*v)
	}
	return s, nil
}

// DefaultLQThreshold is the noise distance covered by the linear half of the
// linear-quadratic schedule (Movie Gen and Mochi use 0.025).
const DefaultLQThreshold = 0.025

// LinearQuadratic returns Movie Gen's linear-quadratic schedule. In data
// time u = 1 - s (0 noise, 1 data), the first half of the steps,
// L = steps/2, moves linearly, u_i = i·threshold/L; the remaining steps
// follow the quadratic u_i = a·i² + b·i + c that continues the linear part
// with the same value and slope at i = L and reaches u = 1 at i = steps.
// With 50 steps and threshold 0.025 this is u_i = i/1000 for i < 25 and
// u_i = 0.00152·i² − 0.075·i + 0.95 afterwards: many small steps near pure
// noise, where the flow changes fastest, then growing ones.
func LinearQuadratic(steps int, threshold float64) ([]float64, error) {
	if err := checkSteps(steps); err != nil {
		return nil, err
	}
	if !(threshold > 0 && threshold < 1) {
		return nil, fmt.Errorf("linear-quadratic schedule: threshold must be in (0, 1), got %v", threshold)
	}
	if steps < 2 {
		return Uniform(steps)
	}
	n := float64(steps)
	lin := steps / 2
	l := float64(lin)
	q := n - l
	slope := threshold / l
	// Conditions: u(L) = threshold, u'(L) = slope, u(N) = 1. Writing
	// u(i) = threshold + slope·(i-L) + a·(i-L)² gives a from the last one.
	a := (1 - threshold - slope*q) / (q * q)
	s := make([]float64, steps+1)
	for i := 0; i <= steps; i++ {
		fi := float64(i)
		var u float64
		if i < lin {
			u = fi * slope
		} else {
			d := fi - l
			u = threshold + slope*d + a*d*d
		}
		s[i] = 1 - u
	}
	s[steps] = 0
	if a < 0 {
		return nil, fmt.Errorf("linear-quadratic schedule: threshold %v too large for %d steps (schedule would not be monotone)", threshold, steps)
	}
	return s, nil
}

// Schedule builds a named schedule: "uniform", "linear-quadratic" (with
// DefaultLQThreshold) or "shifted" (with the given shift).
func Schedule(name string, steps int, shift float64) ([]float64, error) {
	switch name {
	case "", "uniform":
		return Uniform(steps)
	case "linear-quadratic", "lq":
		return LinearQuadratic(steps, DefaultLQThreshold)
	case "shifted", "shift":
		return Shifted(steps, shift)
	}
	return nil, fmt.Errorf("unknown schedule %q (want uniform, linear-quadratic or shifted)", name)
}

func checkSteps(steps int) error {
	if steps < 1 {
		return fmt.Errorf("schedule: need at least one step, got %d", steps)
	}
	return nil
}

// DiT's discrete diffusion process (for epsilon-prediction checkpoints):
// 1000 steps with betas linear from 1e-4 to 0.02, and
// x_t = sqrt(ᾱ_t)·x0 + sqrt(1-ᾱ_t)·ε, ᾱ_t = Π_{j<=t} (1-β_j).
const (
	DiscreteSteps = 1000
	betaStart     = 1e-4
	betaEnd       = 0.02
)

// AlphasCumprod returns ᾱ_t for t = 0..999 of DiT's linear-beta schedule.
func AlphasCumprod() []float64 {
	out := make([]float64, DiscreteSteps)
	p := 1.0
	for t := range out {
		beta := betaStart + (betaEnd-betaStart)*float64(t)/float64(DiscreteSteps-1)
		p *= 1 - beta
		out[t] = p
	}
	return out
}

// DDIMTimesteps returns the respaced timesteps DiT uses for "ddimN", in
// sampling order (high to low): the grid 0, k, 2k, … < 1000 with the
// smallest stride k that gives exactly steps points.
func DDIMTimesteps(steps int) ([]int, error) {
	for stride := 1; stride < DiscreteSteps; stride++ {
		if (DiscreteSteps+stride-1)/stride != steps {
			continue
		}
		ts := make([]int, 0, steps)
		for t := stride * (steps - 1); t >= 0; t -= stride {
			ts = append(ts, t)
		}
		return ts, nil
	}
	return nil, fmt.Errorf("ddim: cannot space %d timesteps into %d evenly strided steps", DiscreteSteps, steps)
}
