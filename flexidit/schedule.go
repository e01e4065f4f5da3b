package flexidit

import (
	"fmt"

	"tessera/diffusion"
	"tessera/tensor"
)

// Sampler is a FlexiDiT as a diffusion.Model for one trajectory at a time:
// the first WeakEvals network evaluations run at the weak patch size and
// the rest at the powerful one (the paper's scheduler; Reverse puts the
// weak evaluations last, the control that should do worse). Call Reset
// between trajectories.
type Sampler struct {
	Flex      *Model
	WeakEvals int
	Reverse   bool
	// Total is the trajectory's number of evaluations (needed by Reverse).
	Total int
	// WeakGuidance runs the unconditional branch of a guided batch (rows
	// labelled Null after the conditional rows) at the weak patch size on
	// every step: ε(c; p_pow) + s·… becomes ε(∅; p_weak) + s(ε(c; ·) − ε(∅; p_weak)).
	WeakGuidance bool
	Null         int
	// Powerful, when set, runs the powerful evaluations instead of the
	// base model (a block cache, for instance); Skip is called on it for
	// every weak evaluation so that its evaluation index stays aligned.
	Powerful diffusion.Model
	Skip     func()

	eval int
	// Rows counts the rows each patch size evaluated, for FLOP counts;
	// WeakCalls the network calls at the weak size.
	WeakRows, PowerfulRows, WeakCalls int
}

// Reset starts a new trajectory.
func (s *Sampler) Reset() { s.eval = 0 }

// Weak reports whether evaluation e runs at the weak patch size.
func (s *Sampler) Weak(e int) bool {
	if s.Reverse {
		return e >= s.Total-s.WeakEvals
	}
	return e < s.WeakEvals
}

// Schedule is the trajectory's evaluations in order, W at the weak patch
// size and P at the powerful one.
func (s *Sampler) Schedule() string {
	b := make([]byte, s.Total)
	for e := range b {
		b[e] = 'P'
		if s.Weak(e) {
			b[e] = 'W'
		}
	}
	return string(b)
}

// Predict implements diffusion.Model.
func (s *Sampler) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	e := s.eval
	s.eval++
	b := x.Dim(0)
	if s.Weak(e) {
		if s.Skip != nil {
			s.Skip()
		}
		s.WeakRows += b
		s.WeakCalls++
		return s.Flex.PredictWeak(x, t, y)
	}
	pow := s.Powerful
	if pow == nil {
		pow = s.Flex.conditioning()
	}
	n0 := b
	if s.WeakGuidance {
		n0 = 0
		for n0 < b && y[n0] != s.Null {
			n0++
		}
	}
	if n0 == b || n0 == 0 {
		s.PowerfulRows += b
		return pow.Predict(x, t, y)
	}
	// Conditional rows powerful, unconditional rows weak.
	per := x.Numel() / b
	xd := x.Contiguous().Data()
	xc := tensor.FromData(append([]float32(nil), xd[:n0*per]...), append([]int{n0}, x.Shape()[1:]...)...)
	xu := tensor.FromData(append([]float32(nil), xd[n0*per:]...), append([]int{b - n0}, x.Shape()[1:]...)...)
	oc, err := pow.Predict(xc, t[:n0], y[:n0])
	if err != nil {
		return nil, err
	}
	ou, err := s.Flex.PredictWeak(xu, t[n0:], y[n0:])
	if err != nil {
		return nil, err
	}
	s.PowerfulRows += n0
	s.WeakRows += b - n0
	s.WeakCalls++
	if oc.Numel()+ou.Numel() != x.Numel() {
		return nil, fmt.Errorf("flexidit: predictions of %d and %d values for %d inputs", oc.Numel(), ou.Numel(), x.Numel())
	}
	out := tensor.New(x.Shape()...)
	copy(out.Data(), oc.Contiguous().Data())
	copy(out.Data()[oc.Numel():], ou.Contiguous().Data())
	return out, nil
}
