// Package dit is the Diffusion Transformer of Peebles & Xie (2023), with
// the tensor names and semantics of the reference implementation
// (facebookresearch/DiT models.py, restated in peers/pytorch/dit.py), so
// that DiT checkpoints converted to safetensors load and match PyTorch.
//
// The forward pass, top to bottom as in the paper's figure:
//
//	x [B, C, H, W] ──patchify (conv p×p, stride p)──► [B, T, D] + pos_embed
//	t ──sin-cos(256)──► MLP ──┐
//	y ──embedding table──────►+──► c [B, D]
//	N × DiT block (adaLN-Zero), conditioned on c:
//	    shift, scale, gate (×2) = Linear(SiLU(c))
//	    x += gate₁ · Attn(LN(x)·(1+scale₁) + shift₁)
//	    x += gate₂ · MLP(LN(x)·(1+scale₂) + shift₂)
//	final layer: LN(x)·(1+scale) + shift ──Linear──► [B, T, p·p·C_out]
//	unpatchify ──► [B, C_out, H, W]
package dit

import (
	"fmt"
	"math"

	"tessera/autodiff"
	"tessera/nn"
	"tessera/tensor"
)

// lnEps is the epsilon of DiT's affine-free LayerNorms.
const lnEps = 1e-6

// Model is a DiT. Its tagged fields bind the reference checkpoint names
// (x_embedder.proj.weight, blocks.3.attn.qkv.weight, …).
type Model struct {
	Config Config `safetensors:"-"`

	XEmbedder  *nn.PatchEmbed        `safetensors:"x_embedder"` // proj: [D, C, p, p]
	PosEmbed   *autodiff.Var         `safetensors:"pos_embed"`  // [1, T, D], fixed
	TEmbedder  *nn.TimestepEmbedding `safetensors:"t_embedder"` // mlp.0, mlp.2
	YEmbedder  *LabelEmbedder        `safetensors:"y_embedder"`
	Blocks     []*Block              `safetensors:"blocks"`
	FinalLayer *FinalLayer           `safetensors:"final_layer"`
}

// LabelEmbedder maps class labels to vectors; row NumClasses is the
// learned "no class" embedding used by classifier-free guidance.
type LabelEmbedder struct {
	Table *nn.Embedding `safetensors:"embedding_table"` // [classes+1, D]
}

// Block is a DiT block with adaLN-Zero conditioning. Its two LayerNorms
// have no parameters.
type Block struct {
	Attn  *nn.Attention `safetensors:"attn"`               // qkv [3D, D], proj [D, D]
	MLP   *nn.MLP       `safetensors:"mlp"`                // fc1 [rD, D], fc2 [D, rD]
	AdaLN *nn.Linear    `safetensors:"adaLN_modulation.1"` // [6D, D]
}

// FinalLayer modulates the last LayerNorm and projects tokens to patches.
type FinalLayer struct {
	AdaLN  *nn.Linear `safetensors:"adaLN_modulation.1"` // [2D, D]
	Linear *nn.Linear `safetensors:"linear"`             // [p·p·C_out, D]
}

// New returns a DiT initialised as the reference does: Xavier-uniform
// linear weights and zero biases, N(0, 0.02²) label table and timestep MLP
// weights, the fixed sin-cos position embedding, and zeros for every adaLN
// modulation and the final projection (so each block starts as the
// identity and the model outputs zero).
func New(cfg Config, rng *tensor.RNG) (*Model, error) {
	if cfg.Prediction == "" {
		cfg.Prediction = Velocity
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, p := cfg.HiddenSize, cfg.PatchSize
	xavier := func(l *nn.Linear) *nn.Linear {
		nn.XavierUniform(rng, l.Weight.Value)
		nn.Zeros(l.Bias.Value)
		return l
	}
	zero := func(l *nn.Linear) *nn.Linear {
		nn.Zeros(l.Weight.Value)
		nn.Zeros(l.Bias.Value)
		return l
	}
	m := &Model{Config: cfg}
	m.XEmbedder = nn.NewPatchEmbed(rng, cfg.InChannels, d, p)
	pos := autodiff.Param(PosEmbed(d, cfg.Grid()))
	pos.SetRequiresGrad(false)
	m.PosEmbed = pos
	m.TEmbedder = nn.NewTimestepEmbedding(rng, d)
	table := nn.NewEmbedding(rng, cfg.NumClasses+1, d)
	nn.Normal(rng, table.Weight.Value, 0.02)
	m.YEmbedder = &LabelEmbedder{Table: table}
	for i := 0; i < cfg.Depth; i++ {
		attn := nn.NewAttention(rng, d, cfg.NumHeads)
		xavier(attn.QKV)
		xavier(attn.Proj)
		mlp := nn.NewMLP(rng, d, cfg.MLPHidden(), d)
		xavier(mlp.FC1)
		xavier(mlp.FC2)
		m.Blocks = append(m.Blocks, &Block{Attn: attn, MLP: mlp, AdaLN: zero(nn.NewLinear(rng, d, 6*d, true))})
	}
	m.FinalLayer = &FinalLayer{
		AdaLN:  zero(nn.NewLinear(rng, d, 2*d, true)),
		Linear: zero(nn.NewLinear(rng, d, p*p*cfg.OutChannels(), true)),
	}
	return m, nil
}

// NewRandom is New followed by drawing every weight but the fixed position
// embedding from N(0, std²) with rng: a model whose blocks all do
// something, for tests and benchmarks (the reference initialisation zeroes
// the adaLN and output layers, which makes every block the identity).
func NewRandom(cfg Config, rng *tensor.RNG, std float32) (*Model, error) {
	m, err := New(cfg, rng)
	if err != nil {
		return nil, err
	}
	for _, p := range nn.NamedParams(m) {
		if p.Name != "pos_embed" {
			nn.Normal(rng, p.Var.Value, std)
		}
	}
	return m, nil
}

// PosEmbed returns the fixed 2-d sin-cos position embedding [1, grid², dim]
// of the reference: token (row i, column j) gets
// [sin(j·ω), cos(j·ω), sin(i·ω), cos(i·ω)], each block dim/4 wide, with
// ω_k = 10000^(−k/(dim/4)). Computed in float64 like NumPy.
func PosEmbed(dim, grid int) *tensor.Tensor {
	q := dim / 4
	omega := make([]float64, q)
	for k := range omega {
		omega[k] = 1 / math.Pow(10000, float64(k)/float64(q))
	}
	out := tensor.New(1, grid*grid, dim)
	d := out.Data()
	for i := 0; i < grid; i++ {
		for j := 0; j < grid; j++ {
			row := d[(i*grid+j)*dim : (i*grid+j+1)*dim]
			for k, w := range omega {
				row[k] = float32(math.Sin(float64(j) * w))
				row[q+k] = float32(math.Cos(float64(j) * w))
				row[2*q+k] = float32(math.Sin(float64(i) * w))
				row[3*q+k] = float32(math.Cos(float64(i) * w))
			}
		}
	}
	return out
}

// Forward runs the network on images x [B, C, H, W] at times t (DiT units,
// 0..1000, one per image) with labels y (0..NumClasses, NumClasses = no
// class) and returns [B, C_out, H, W]. Shapes and labels must be valid
// (Predict checks them and returns errors); invalid ones panic.
func (m *Model) Forward(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int) *autodiff.Var {
	cfg := m.Config
	b := x.Shape()[0]
	d := cfg.HiddenSize

	h := m.XEmbedder.Forward(g, x) // [B, T, D]
	h = g.Add(h, m.PosEmbed)       // + [1, T, D]

	c := g.Add(m.TEmbedder.Forward(g, t), m.YEmbedder.Table.Forward(g, y)) // [B, D]
	c = g.SiLU(c)                                                          // every adaLN starts with SiLU(c)
	c = g.Reshape(c, b, 1, d)                                              // [B, 1, D]: modulation broadcasts over tokens

	for _, blk := range m.Blocks {
		h = blk.Forward(g, h, c)
	}
	out := m.FinalLayer.Forward(g, h, c) // [B, T, p·p·C_out]
	return m.unpatchify(g, out)
}

// Forward applies one block to h [B, T, D] given SiLU(c) [B, 1, D].
func (blk *Block) Forward(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var {
	if !g.Recording() {
		return autodiff.Const(blk.infer(h.Value, c.Value))
	}
	d := h.Shape()[2]
	mod := blk.AdaLN.Forward(g, c) // [B, 1, 6D], one GEMM for all six
	shiftMSA, scaleMSA, gateMSA := g.Slice(mod, 2, 0, d), g.Slice(mod, 2, d, 2*d), g.Slice(mod, 2, 2*d, 3*d)
	shiftMLP, scaleMLP, gateMLP := g.Slice(mod, 2, 3*d, 4*d), g.Slice(mod, 2, 4*d, 5*d), g.Slice(mod, 2, 5*d, 6*d)

	a := modulateNorm(g, h, shiftMSA, scaleMSA) // LN(h)·(1+scale)+shift [B, T, D]
	a = selfAttention(g, blk.Attn, a)           // [B, T, D]
	h = gatedResidual(g, h, gateMSA, a)         // h + gate·a

	f := modulateNorm(g, h, shiftMLP, scaleMLP) // [B, T, D]
	f = blk.MLP.Forward(g, f)                   // [B, T, D]
	return gatedResidual(g, h, gateMLP, f)
}

// selfAttention is DiT's attention (blk.Attn's weights) on x [B, T, D]:
// the fused qkv output [B, T, 3, H, Dh] is read in place, q, k and v being
// strided [B, T, H, Dh] views of it (nn.Attention reshapes the slices,
// which copies them).
func selfAttention(g *autodiff.Graph, a *nn.Attention, x *autodiff.Var) *autodiff.Var {
	s := x.Shape()
	b, t, d := s[0], s[1], s[2]
	hd := d / a.Heads
	qkv := g.Reshape(a.QKV.Forward(g, x), b, t, 3, a.Heads, hd) // [B, T, 3, H, Dh]
	q := g.Squeeze(g.Slice(qkv, 2, 0, 1), 2)                    // [B, T, H, Dh], token stride 3D
	k := g.Squeeze(g.Slice(qkv, 2, 1, 2), 2)
	v := g.Squeeze(g.Slice(qkv, 2, 2, 3), 2)
	o := g.Attention(q, k, v, tensor.AttentionOptions{}) // softmax(q·kᵀ/√Dh)·v, [B, T, H, Dh]
	return a.Proj.Forward(g, g.Reshape(o, b, t, d))      // [B, T, D]
}

// Forward maps h [B, T, D] to patches [B, T, p·p·C_out] given SiLU(c).
func (f *FinalLayer) Forward(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var {
	d := h.Shape()[2]
	mod := f.AdaLN.Forward(g, c) // [B, 1, 2D]
	shift, scale := g.Slice(mod, 2, 0, d), g.Slice(mod, 2, d, 2*d)
	return f.Linear.Forward(g, modulateNorm(g, h, shift, scale))
}

// unpatchify turns patches [B, T, p·p·C] (each token's patch laid out
// [p, p, C]) into images [B, C, H, W].
func (m *Model) unpatchify(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	b, p, c, n := x.Shape()[0], m.Config.PatchSize, m.Config.OutChannels(), m.Config.Grid()
	x = g.Reshape(x, b, n, n, p, p, c)  // [B, h, w, p, q, C]
	x = g.Permute(x, 0, 5, 1, 3, 2, 4)  // [B, C, h, p, w, q]
	return g.Reshape(x, b, c, n*p, n*p) // [B, C, H, W]
}

// Check validates a batch for Forward: x [B, C, H, W] with the configured
// channels and size, and B times and labels in range.
func (m *Model) Check(xShape []int, t []float32, y []int) error {
	cfg := m.Config
	if len(xShape) != 4 || xShape[0] < 1 || xShape[1] != cfg.InChannels || xShape[2] != cfg.InputSize || xShape[3] != cfg.InputSize {
		return fmt.Errorf("dit: input shape %v, want [B, %d, %d, %d]", xShape, cfg.InChannels, cfg.InputSize, cfg.InputSize)
	}
	if len(t) != xShape[0] || len(y) != xShape[0] {
		return fmt.Errorf("dit: batch of %d with %d times and %d labels", xShape[0], len(t), len(y))
	}
	for i, v := range y {
		if v < 0 || v > cfg.NumClasses {
			return fmt.Errorf("dit: label %d of sample %d outside 0..%d (%d = no class)", v, i, cfg.NumClasses, cfg.NumClasses)
		}
	}
	for i, v := range t {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("dit: time %v of sample %d is not finite", v, i)
		}
	}
	return nil
}

// Predict implements diffusion.Model: it runs Forward without recording
// gradients and returns the prediction channels (the first InChannels;
// learned-variance channels are dropped).
func (m *Model) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	if err := m.Check(x.Shape(), t, y); err != nil {
		return nil, err
	}
	g := autodiff.NoGrad()
	defer g.Release()
	out := m.Forward(g, autodiff.Const(x), t, y).Value
	if m.Config.LearnSigma {
		out = out.Slice(1, 0, m.Config.InChannels).Contiguous()
	}
	return out, nil
}

// NumParams is the number of scalar parameters, the fixed position
// embedding included (as PyTorch counts it).
func (m *Model) NumParams() int { return nn.NumParams(m) }
