package optim

import "math"

// Schedule gives the learning rate for an update.
type Schedule interface {
	// LR returns the learning rate of the update that follows step
	// completed updates (step counts from 0).
	LR(step int) float32
}

// Constant is a fixed learning rate.
type Constant float32

// LR returns c for every step.
func (c Constant) LR(int) float32 { return float32(c) }

// WarmupCosine rises linearly from Peak/Warmup to Peak over the first
// Warmup updates, then follows half a cosine from Peak down to Final at
// update Total, and stays at Final after that.
type WarmupCosine struct {
	Peak, Final   float32
	Warmup, Total int
}

// LR implements Schedule.
func (s WarmupCosine) LR(step int) float32 {
	if step < s.Warmup {
		return s.Peak * float32(step+1) / float32(s.Warmup)
	}
	if step >= s.Total || s.Total <= s.Warmup {
		return s.Final
	}
	progress := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	return s.Final + float32(0.5*float64(s.Peak-s.Final)*(1+math.Cos(math.Pi*progress)))
}

// WarmupConstant rises linearly to Peak over Warmup updates and stays there.
type WarmupConstant struct {
	Peak   float32
	Warmup int
}

// LR implements Schedule.
func (s WarmupConstant) LR(step int) float32 {
	if step < s.Warmup {
		return s.Peak * float32(step+1) / float32(s.Warmup)
	}
	return s.Peak
}
