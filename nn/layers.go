package nn

import (
	"fmt"

	"tessera/autodiff"
	"tessera/tensor"
)

// LayerNorm normalises over the last dimension to zero mean and unit
// variance, then applies the affine map Weight·x̂ + Bias when Weight is not
// nil (PyTorch's elementwise_affine).
type LayerNorm struct {
	Weight *autodiff.Var `safetensors:"weight"` // [dim] or nil
	Bias   *autodiff.Var `safetensors:"bias"`   // [dim] or nil
	Eps    float32
}

// NewLayerNorm returns a LayerNorm over dim features; affine adds a weight
// of ones and a bias of zeros.
func NewLayerNorm(dim int, eps float32, affine bool) *LayerNorm {
	n := &LayerNorm{Eps: eps}
	if affine {
		n.Weight = autodiff.Param(tensor.Ones(dim))
		n.Bias = autodiff.Param(tensor.New(dim))
	}
	return n
}

// Forward normalises x [..., dim].
func (n *LayerNorm) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return g.LayerNorm(x, n.Weight, n.Bias, n.Eps)
}

// RMSNorm scales x by the reciprocal root mean square over the last
// dimension, then by Weight (Llama's norm).
type RMSNorm struct {
	Weight *autodiff.Var `safetensors:"weight"` // [dim]
	Eps    float32
}

// NewRMSNorm returns an RMSNorm over dim features with a weight of ones.
func NewRMSNorm(dim int, eps float32) *RMSNorm {
	return &RMSNorm{Weight: autodiff.Param(tensor.Ones(dim)), Eps: eps}
}

// Forward normalises x [..., dim].
func (n *RMSNorm) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return g.RMSNorm(x, n.Weight, n.Eps)
}

// Embedding is a lookup table of Weight's rows.
type Embedding struct {
	Weight *autodiff.Var `safetensors:"weight"` // [num, dim]
}

// NewEmbedding returns a table of num rows of width dim drawn from N(0, 1),
// PyTorch's default.
func NewEmbedding(rng *tensor.RNG, num, dim int) *Embedding {
	w := tensor.New(num, dim)
	Normal(rng, w, 1)
	return &Embedding{Weight: autodiff.Param(w)}
}

// Forward gathers the rows ids, giving [len(ids), dim]; reshape the result
// for batched ids. Out-of-range ids panic: validate user input first.
func (e *Embedding) Forward(g *autodiff.Graph, ids []int) *autodiff.Var {
	num := e.Weight.Value.Dim(0)
	for _, id := range ids {
		if id < 0 || id >= num {
			panic(fmt.Sprintf("nn.Embedding: id %d out of range [0, %d)", id, num))
		}
	}
	return g.Embedding(e.Weight, ids)
}

// MLP is the transformer feed-forward block of DiT and ViT (timm's Mlp):
// fc2(GELU_tanh(fc1(x))).
type MLP struct {
	FC1 *Linear `safetensors:"fc1"` // [hidden, dim]
	FC2 *Linear `safetensors:"fc2"` // [dim, hidden]
}

// NewMLP returns an MLP dim → hidden → out with biases.
func NewMLP(rng *tensor.RNG, dim, hidden, out int) *MLP {
	return &MLP{FC1: NewLinear(rng, dim, hidden, true), FC2: NewLinear(rng, hidden, out, true)}
}

// Forward maps x [..., dim] to [..., out].
func (m *MLP) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return m.FC2.Forward(g, g.GELUTanh(m.FC1.Forward(g, x)))
}

// SwiGLU is Llama's gated feed-forward block without biases:
// down(SiLU(gate(x)) ⊙ up(x)), named as in Hugging Face's LlamaMLP.
type SwiGLU struct {
	Gate *Linear `safetensors:"gate_proj"` // [hidden, dim]
	Up   *Linear `safetensors:"up_proj"`   // [hidden, dim]
	Down *Linear `safetensors:"down_proj"` // [dim, hidden]
}

// NewSwiGLU returns a SwiGLU block dim → hidden → dim without biases.
func NewSwiGLU(rng *tensor.RNG, dim, hidden int) *SwiGLU {
	return &SwiGLU{
		Gate: NewLinear(rng, dim, hidden, false),
		Up:   NewLinear(rng, dim, hidden, false),
		Down: NewLinear(rng, hidden, dim, false),
	}
}

// Forward maps x [..., dim] to [..., dim].
func (s *SwiGLU) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return s.Down.Forward(g, g.Mul(g.SiLU(s.Gate.Forward(g, x)), s.Up.Forward(g, x)))
}

// Conv2d is a 2-d convolution over NCHW input with a square kernel, square
// stride and symmetric zero padding.
type Conv2d struct {
	Weight *autodiff.Var `safetensors:"weight"` // [out, in, k, k]
	Bias   *autodiff.Var `safetensors:"bias"`   // [out] or nil
	Stride int
	Pad    int
}

// NewConv2d returns a convolution with PyTorch's default initialisation.
func NewConv2d(rng *tensor.RNG, in, out, kernel, stride, pad int, bias bool) *Conv2d {
	c := &Conv2d{Weight: autodiff.Param(tensor.New(out, in, kernel, kernel)), Stride: stride, Pad: pad}
	var b *tensor.Tensor
	if bias {
		b = tensor.New(out)
		c.Bias = autodiff.Param(b)
	}
	LinearDefault(rng, c.Weight.Value, b)
	return c
}

// Forward maps x [B, in, H, W] to [B, out, H', W'].
func (c *Conv2d) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	if s := x.Shape(); len(s) != 4 || s[1] != c.Weight.Value.Dim(1) {
		panic(shapeErr("Conv2d", fmt.Sprintf("[B, %d, H, W]", c.Weight.Value.Dim(1)), s))
	}
	stride := max(c.Stride, 1)
	return g.Conv2d(x, c.Weight, c.Bias, stride, c.Pad)
}

// PatchEmbed cuts an image into non-overlapping patch×patch squares and
// projects each to a token, like DiT's x_embedder: a Conv2d with
// kernel = stride = patch, flattened to tokens in row-major patch order.
type PatchEmbed struct {
	Proj  *Conv2d `safetensors:"proj"` // [dim, channels, patch, patch]
	Patch int
}

// NewPatchEmbed returns a patch embedding of channels → dim. DiT initialises
// the projection like a Linear with Xavier uniform; so does this.
func NewPatchEmbed(rng *tensor.RNG, channels, dim, patch int) *PatchEmbed {
	c := NewConv2d(rng, channels, dim, patch, patch, 0, true)
	w := c.Weight.Value
	XavierUniform(rng, w.Reshape(dim, channels*patch*patch))
	Zeros(c.Bias.Value)
	return &PatchEmbed{Proj: c, Patch: patch}
}

// Forward maps x [B, C, H, W] to tokens [B, (H/p)·(W/p), dim].
func (p *PatchEmbed) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	s := x.Shape()
	if len(s) != 4 || s[2]%p.Patch != 0 || s[3]%p.Patch != 0 {
		panic(shapeErr("PatchEmbed", fmt.Sprintf("[B, C, H, W] with H, W multiples of %d", p.Patch), s))
	}
	y := p.Proj.Forward(g, x) // [B, dim, H/p, W/p]
	ys := y.Shape()
	y = g.Reshape(y, ys[0], ys[1], ys[2]*ys[3]) // [B, dim, T]
	return g.Transpose(y, 1, 2)                 // [B, T, dim]
}
