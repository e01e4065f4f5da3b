package diffusion

import (
	"fmt"

	"tessera/autodiff"
	"tessera/tensor"
)

// Network is a trainable denoiser: images x [B, C, H, W] at times t (DiT
// units, 1000·s) with labels y to a prediction of at least C channels (extra
// learned-variance channels are ignored by the loss). *dit.Model is one.
type Network interface {
	Forward(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int) *autodiff.Var
}

// FlowMatching is the rectified-flow training objective: draw a noise level
// s per sample from a logit-normal distribution, form
// x_s = (1−s)·x0 + s·ε, and regress the network's output at t = 1000·s on
// the velocity ε − x0 with a mean squared error.
type FlowMatching struct {
	Mean, Std float64 // logit-normal parameters of s; Std 0 means 1
}

// Loss returns the mean squared velocity error on the batch x0 [B, …] with
// labels cond, recorded on g so that g.Backward(loss) trains the network.
func (f FlowMatching) Loss(g *autodiff.Graph, model Network, x0 *tensor.Tensor, cond []int, rng RNG) (*autodiff.Var, error) {
	if x0.Rank() < 2 || x0.Dim(0) < 1 {
		return nil, fmt.Errorf("flow matching loss: data of shape %v has no batch", x0.Shape())
	}
	b := x0.Dim(0)
	if len(cond) != b {
		return nil, fmt.Errorf("flow matching loss: %d labels for batch %d", len(cond), b)
	}
	std := f.Std
	if std == 0 {
		std = 1
	}
	s := NoiseLevels(rng, b, f.Mean, std)
	eps := tensor.New(x0.Shape()...)
	for i, d := 0, eps.Data(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64())
	}
	xs, target := Interpolate(x0.Contiguous(), eps, s)
	t := make([]float32, b)
	for i, v := range s {
		t[i] = 1000 * v
	}
	out := model.Forward(g, autodiff.Const(xs), t, cond)
	if c, oc := x0.Dim(1), out.Shape()[1]; oc != c {
		if oc < c {
			return nil, fmt.Errorf("flow matching loss: network gives %d channels for %d-channel data", oc, c)
		}
		out = g.Slice(out, 1, 0, c)
	}
	return g.MSE(out, autodiff.Const(target)), nil
}

// Loss is FlowMatching{Mean: 0, Std: 1}.Loss, the logit-normal(0, 1)
// weighting of Stable Diffusion 3.
func Loss(g *autodiff.Graph, model Network, x0 *tensor.Tensor, cond []int, rng RNG) (*autodiff.Var, error) {
	return FlowMatching{}.Loss(g, model, x0, cond, rng)
}
