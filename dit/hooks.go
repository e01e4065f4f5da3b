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

// Staged is a network with a DiT's forward pass in parts, conditioned by
// one integer label per sample (a class, an index into a list of prompts)
// of which one, Null, means "unconditional". *Model is one; the
// text-to-image model with its prompts bound (t2i.Prompted) is another.
// Accelerators written against Staged run on both.
type Staged interface {
	// Check validates a batch: x of shape xShape [B, C, H, W], B times
	// and B labels in range.
	Check(xShape []int, t []float32, y []int) error
	// SampleShape is the shape of one sample, [C, H, W].
	SampleShape() []int
	// Embed maps x [B, C, H, W] to tokens [B, T, D].
	Embed(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var
	// Condition returns SiLU(c) [B, 1, D] for times t and labels y.
	Condition(g *autodiff.Graph, t []float32, y []int) *autodiff.Var
	// Depth is the number of blocks.
	Depth() int
	// RunBlock is block i's plain forward pass (a BlockRunner).
	RunBlock(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var
	// Decode maps tokens [B, T, D] to the output [B, C_out, H, W].
	Decode(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var
	// Channels keeps the leading prediction channels of an output
	// (dropping learned-variance channels, if any).
	Channels(out *tensor.Tensor) *tensor.Tensor
	// Null is the unconditional label, the one classifier-free guidance
	// pairs with every conditional row.
	Null() int
}

var _ Staged = (*Model)(nil)

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

// Depth is the number of blocks.
func (m *Model) Depth() int { return len(m.Blocks) }

// RunBlock is m.Blocks[i].Forward, the plain BlockRunner.
func (m *Model) RunBlock(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
	return m.Blocks[i].Forward(g, h, c)
}

// SampleShape is [InChannels, InputSize, InputSize].
func (m *Model) SampleShape() []int {
	return []int{m.Config.InChannels, m.Config.InputSize, m.Config.InputSize}
}

// Null is the "no class" label, NumClasses.
func (m *Model) Null() int { return m.Config.NumClasses }

// ForwardBlocks is Forward with run computing each block's output.
func (m *Model) ForwardBlocks(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int, run BlockRunner) *autodiff.Var {
	return ForwardStaged(m, g, x, t, y, run)
}

// PredictBlocks is Predict with run computing each block's output: it
// checks the batch, records no gradients and drops learned-variance
// channels.
func (m *Model) PredictBlocks(x *tensor.Tensor, t []float32, y []int, run BlockRunner) (*tensor.Tensor, error) {
	return PredictStaged(m, x, t, y, run)
}

// ForwardStaged is s's forward pass with run computing each block's
// output (s.RunBlock when run is nil): Embed, Condition, the blocks,
// Decode. The batch must be valid (PredictStaged checks it).
func ForwardStaged(s Staged, g *autodiff.Graph, x *autodiff.Var, t []float32, y []int, run BlockRunner) *autodiff.Var {
	if run == nil {
		run = s.RunBlock
	}
	h := s.Embed(g, x)
	c := s.Condition(g, t, y)
	for i := range s.Depth() {
		h = run(g, i, h, c)
	}
	return s.Decode(g, h, c)
}

// PredictStaged checks the batch, runs ForwardStaged without recording
// gradients and returns the prediction channels.
func PredictStaged(s Staged, x *tensor.Tensor, t []float32, y []int, run BlockRunner) (*tensor.Tensor, error) {
	if err := s.Check(x.Shape(), t, y); err != nil {
		return nil, err
	}
	g := autodiff.NoGrad()
	defer g.Release()
	return s.Channels(ForwardStaged(s, g, autodiff.Const(x), t, y, run).Value), nil
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
