package nn

import (
	"fmt"
	"math"

	"tessera/autodiff"
	"tessera/tensor"
)

// TimestepEmbedding embeds scalar diffusion timesteps like DiT's
// TimestepEmbedder: a sinusoidal embedding of FreqDim features
// [cos(t·f), sin(t·f)] with f_i = MaxPeriod^(-i/half), then
// Linear, SiLU, Linear (checkpoint names mlp.0 and mlp.2).
type TimestepEmbedding struct {
	Lin1      *Linear `safetensors:"mlp.0"` // [hidden, FreqDim]
	Lin2      *Linear `safetensors:"mlp.2"` // [hidden, hidden]
	FreqDim   int     // 256 in DiT
	MaxPeriod float64 // 10000 in DiT
}

// NewTimestepEmbedding returns DiT's timestep embedder with hidden outputs,
// initialised like DiT (weights from N(0, 0.02²), zero biases).
func NewTimestepEmbedding(rng *tensor.RNG, hidden int) *TimestepEmbedding {
	e := &TimestepEmbedding{
		Lin1:    NewLinear(rng, 256, hidden, true),
		Lin2:    NewLinear(rng, hidden, hidden, true),
		FreqDim: 256, MaxPeriod: 10000,
	}
	for _, l := range []*Linear{e.Lin1, e.Lin2} {
		Normal(rng, l.Weight.Value, 0.02)
		Zeros(l.Bias.Value)
	}
	return e
}

// Frequencies returns the sinusoidal embedding [len(t), dim] of timesteps t,
// computed in float32 the way DiT's timestep_embedding does (odd dim gets a
// zero last column).
func Frequencies(t []float32, dim int, maxPeriod float64) *tensor.Tensor {
	half := dim / 2
	freqs := make([]float32, half)
	for i := range freqs {
		// torch: exp(-log(max_period) * arange(half) / half) in float32.
		arg := float32(-math.Log(maxPeriod)) * float32(i) / float32(half)
		freqs[i] = float32(math.Exp(float64(arg)))
	}
	out := tensor.New(len(t), dim)
	d := out.Data()
	for n, tv := range t {
		row := d[n*dim : (n+1)*dim]
		for i, f := range freqs {
			a := float64(tv * f)
			row[i] = float32(math.Cos(a))
			row[half+i] = float32(math.Sin(a))
		}
	}
	return out
}

// Forward embeds timesteps t (one per sample) to [len(t), hidden].
func (e *TimestepEmbedding) Forward(g *autodiff.Graph, t []float32) *autodiff.Var {
	if e.FreqDim != e.Lin1.In() {
		panic(fmt.Sprintf("nn.TimestepEmbedding: FreqDim %d, mlp.0 takes %d", e.FreqDim, e.Lin1.In()))
	}
	maxPeriod := e.MaxPeriod
	if maxPeriod == 0 {
		maxPeriod = 10000
	}
	f := autodiff.Const(Frequencies(t, e.FreqDim, maxPeriod))
	return e.Lin2.Forward(g, g.SiLU(e.Lin1.Forward(g, f)))
}
