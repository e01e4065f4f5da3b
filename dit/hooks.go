package dit

import (
	"tessera/autodiff"
	"tessera/tensor"
)

// The forward pass in parts, for accelerators that change how the blocks
// run (block caching reuses their outputs, FlexiDiT swaps the patch size
// at both ends). Forward is Embed, Condition, the blocks and Decode.

// BlockRunner computes block i's output from its input h [B, T, D] and
// SiLU(c) [B, 1, D]. The plain runner is m.Blocks[i].Forward(g, h, c); an
// accelerator may return a reused output instead.
type BlockRunner func(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var

// Embed patchifies x [B, C, H, W] and adds the position embedding:
// tokens [B, T, D].
func (m *Model) Embed(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return g.Add(m.XEmbedder.Forward(g, x), m.PosEmbed)
}

// Condition returns SiLU(t_emb + y_emb) as [B, 1, D], the input of every
// adaLN modulation.
func (m *Model) Condition(g *autodiff.Graph, t []float32, y []int) *autodiff.Var {
	c := g.Add(m.TEmbedder.Forward(g, t), m.YEmbedder.Table.Forward(g, y))
	return g.Reshape(g.SiLU(c), len(t), 1, m.Config.HiddenSize)
}

// Decode runs the final layer on tokens h [B, T, D] and unpatchifies:
// [B, C_out, H, W].
func (m *Model) Decode(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var {
	return m.unpatchify(g, m.FinalLayer.Forward(g, h, c))
}

// ForwardBlocks is Forward with run computing each block's output.
func (m *Model) ForwardBlocks(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int, run BlockRunner) *autodiff.Var {
	h := m.Embed(g, x)
	c := m.Condition(g, t, y)
	for i := range m.Blocks {
		h = run(g, i, h, c)
	}
	return m.Decode(g, h, c)
}

// PredictBlocks is Predict with run computing each block's output: it
// checks the batch, records no gradients and drops learned-variance
// channels.
func (m *Model) PredictBlocks(x *tensor.Tensor, t []float32, y []int, run BlockRunner) (*tensor.Tensor, error) {
	if err := m.Check(x.Shape(), t, y); err != nil {
		return nil, err
	}
	g := autodiff.NoGrad()
	defer g.Release()
	return m.Channels(m.ForwardBlocks(g, autodiff.Const(x), t, y, run).Value), nil
}

// Channels drops the learned-variance channels of an output [B, C_out, H, W]
// (a no-op unless LearnSigma).
func (m *Model) Channels(out *tensor.Tensor) *tensor.Tensor {
	if m.Config.LearnSigma {
		return out.Slice(1, 0, m.Config.InChannels).Contiguous()
	}
	return out
}

// Unpatchify turns patches [B, T, p·p·C] (each token's patch laid out
// [p, p, C], tokens row-major over a grid×grid image) into [B, C, H, W].
func Unpatchify(g *autodiff.Graph, x *autodiff.Var, p, c, grid int) *autodiff.Var {
	b := x.Shape()[0]
	x = g.Reshape(x, b, grid, grid, p, p, c) // [B, h, w, p, q, C]
	x = g.Permute(x, 0, 5, 1, 3, 2, 4)       // [B, C, h, p, w, q]
	return g.Reshape(x, b, c, grid*p, grid*p)
}
