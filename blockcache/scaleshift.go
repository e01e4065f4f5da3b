package blockcache

import (
	"fmt"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
)

// ScaleShiftOptions configures TrainScaleShift. The sampling fields must
// match the plan's setting.
type ScaleShiftOptions struct {
	Samples int     // images per pass over the calibration set (default 64)
	Batch   int     // images per trajectory (default 32)
	Epochs  int     // passes over the calibration set (default 4)
	LR      float32 // Adam learning rate (default 0.01)
	Seed    uint64  // calibration noise seed
}

// ScaleShiftReport is how training went: the mean squared difference
// between the cached and the uncached prediction per evaluation, averaged
// over each pass.
type ScaleShiftReport struct {
	Loss []float64 `json:"loss"` // one per epoch
}

// TrainScaleShift fits the scale-shift scalars of a plan, as in Block
// Caching: for every block and evaluation at which the plan reuses the
// cache, the reused output becomes a·o + b with a = 1, b = 0 initially.
// The cached student samples its own trajectory; at every network
// evaluation the uncached teacher predicts from the student's state (the
// teacher's one step from the student's previous state), and the squared
// difference of the two predictions is minimised with Adam over a, b only
// (the network is frozen). For Euler steps this is the paper's loss
// ‖x_{t−1} − x'_{t−1}‖² up to the constant step size squared. It returns a
// copy of the plan holding the scalars. The calibration labels cycle
// through 0 … m.Null()−1 as in ProfileModel. The parameters reachable from
// m (nn.NamedParams; from m.Weights() for a Weighted network) are frozen
// for the duration.
func TrainScaleShift(m dit.Staged, plan *Plan, o ScaleShiftOptions) (*Plan, ScaleShiftReport, error) {
	if o.Samples == 0 {
		o.Samples = 64
	}
	if o.Batch == 0 {
		o.Batch = 32
	}
	if o.Epochs == 0 {
		o.Epochs = 4
	}
	if o.LR == 0 {
		o.LR = 0.01
	}
	if o.Samples < 1 || o.Batch < 1 || o.Epochs < 1 {
		return nil, ScaleShiftReport{}, fmt.Errorf("blockcache scale-shift: samples, batch and epochs must be positive")
	}
	if m == nil || plan == nil {
		return nil, ScaleShiftReport{}, fmt.Errorf("blockcache scale-shift: need a network and a plan")
	}
	for b := range plan.Compute {
		if err := plan.check(b, m.Depth()); err != nil {
			return nil, ScaleShiftReport{}, fmt.Errorf("blockcache scale-shift: %w", err)
		}
	}
	n := plan.Evals()
	type scalars struct{ a, b *autodiff.Var }
	var vars [2][][]scalars
	var params []*autodiff.Var
	for b := range vars {
		vars[b] = make([][]scalars, len(plan.Compute[b]))
		for i := range vars[b] {
			vars[b][i] = make([]scalars, n)
			for e := 0; e < n; e++ {
				if plan.Compute[b][i][e] {
					continue
				}
				s := scalars{autodiff.Param(tensor.Full(1, 1, 1, 1)), autodiff.Param(tensor.New(1, 1, 1))}
				vars[b][i][e] = s
				params = append(params, s.a, s.b)
			}
		}
	}
	out := *plan
	if len(params) == 0 {
		return &out, ScaleShiftReport{}, nil
	}
	// Freeze the network for the duration.
	var weights any = m
	if w, ok := m.(Weighted); ok {
		weights = w.Weights()
	}
	named := nn.NamedParams(weights)
	was := make([]bool, len(named))
	for k, p := range named {
		was[k] = p.Var.RequiresGrad()
		p.Var.SetRequiresGrad(false)
	}
	defer func() {
		for k, p := range named {
			p.Var.SetRequiresGrad(was[k])
		}
	}()
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR})
	cache, err := New(m, plan)
	if err != nil {
		return nil, ScaleShiftReport{}, err
	}
	tr := &ssTrainer{c: cache, adj: func(g *autodiff.Graph, b, i int, cached *autodiff.Var) *autodiff.Var {
		s := vars[b][i][cache.eval]
		return g.Add(g.Mul(cached, s.a), s.b)
	}}
	var model diffusion.Model = tr
	if plan.CFG != 1 {
		model = diffusion.Guided{Model: tr, Scale: plan.CFG, Null: m.Null()}
	}
	var rep ScaleShiftReport
	for ep := 0; ep < o.Epochs; ep++ {
		tr.loss, tr.terms = 0, 0
		err := trajectories(m, o.Samples, o.Batch, o.Seed+uint64(ep)*7919, func(noise *tensor.Tensor, y []int) error {
			cache.Reset()
			opt.ZeroGrad()
			if _, _, err := diffusion.Sample(model, noise, y, diffusion.Options{Sampler: plan.Sampler, Schedule: plan.Schedule, Shift: plan.Shift, Steps: plan.Steps}); err != nil {
				return err
			}
			opt.Step()
			return nil
		})
		if err != nil {
			return nil, rep, fmt.Errorf("blockcache scale-shift: %w", err)
		}
		rep.Loss = append(rep.Loss, tr.loss/float64(max(tr.terms, 1)))
	}
	for b := range vars {
		out.Scale[b] = make([][]float32, len(vars[b]))
		out.Bias[b] = make([][]float32, len(vars[b]))
		for i := range vars[b] {
			out.Scale[b][i] = make([]float32, n)
			out.Bias[b][i] = make([]float32, n)
			for e, s := range vars[b][i] {
				out.Scale[b][i][e], out.Bias[b][i][e] = 1, 0
				if s.a != nil {
					out.Scale[b][i][e] = s.a.Value.Data()[0]
					out.Bias[b][i][e] = s.b.Value.Data()[0]
				}
			}
		}
	}
	return &out, rep, nil
}

// Weighted is a network whose parameters are held by another struct than
// itself, such as a model with its inputs bound (t2i.Prompted holds a
// *t2i.Model): Weights returns that struct, whose tagged parameters
// TrainScaleShift freezes.
type Weighted interface {
	Weights() any
}

// ssTrainer is the student of scale-shift training as a diffusion.Model:
// each call accumulates the gradient of ‖student − teacher‖² into the
// scalars and returns the student's prediction, so the sampler follows the
// cached trajectory.
type ssTrainer struct {
	c     *Cache
	adj   adjuster
	loss  float64
	terms int
}

func (s *ssTrainer) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	m := s.c.Model
	teacher, err := dit.PredictStaged(m, x, t, y, nil)
	if err != nil {
		return nil, err
	}
	br := branches(y, m.Null())
	g := autodiff.NewGraph()
	defer g.Release()
	out := dit.ForwardStaged(m, g, autodiff.Const(x), t, y, s.c.runner(br, branchTimes(br, t), s.adj))
	if k := teacher.Dim(1); out.Shape()[1] != k {
		out = g.Slice(out, 1, 0, k) // the prediction channels, as Channels keeps them
	}
	s.c.eval++
	if out.RequiresGrad() {
		loss := g.MSE(out, autodiff.Const(teacher))
		if err := g.Backward(loss); err != nil {
			return nil, err
		}
		s.loss += float64(loss.Value.Data()[0])
		s.terms++
	}
	return out.Value.Contiguous(), nil
}
