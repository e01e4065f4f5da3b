// Package textenc is Tessera's small text encoder for text-to-image models:
// byte-level tokens (the tokenizer package's byte ids, padded with <pad> to
// MaxLen), a learned position embedding, a few pre-LayerNorm transformer
// layers, and a mean over the prompt's real tokens projected to OutDim: one
// pooled vector per prompt. It has no pretrained weights; it is trained
// jointly with the model that consumes it.
//
//	prompt ──lower-case bytes, truncate/pad to L──► ids [B, L]
//	ids ──embedding──► [B, L, W] + pos [1, L, W]
//	N × { h += Attn(LN(h)); h += MLP(LN(h)) }
//	mean over the real tokens ──► [B, W] ──LN──Linear──► [B, OutDim]
//
// The empty prompt has no real tokens: its mean is the zero vector, so its
// embedding is a constant the model learns to treat as "no prompt" (the
// unconditional branch of classifier-free guidance).
package textenc

import (
	"errors"
	"fmt"
	"strings"

	"tessera/autodiff"
	"tessera/nn"
	"tessera/tensor"
	"tessera/tokenizer"
)

// Config is the encoder's shape. It is stored in model config.json files.
type Config struct {
	MaxLen int `json:"max_len"` // tokens (bytes) per prompt; longer prompts are truncated
	Width  int `json:"width"`   // token width
	Layers int `json:"layers"`  // transformer layers (0: a bag of embeddings)
	Heads  int `json:"heads"`   // attention heads
	OutDim int `json:"out_dim"` // pooled embedding width
}

// DefaultConfig is a 2-layer, width-128 encoder of 48-byte prompts with a
// 128-wide output.
func DefaultConfig() Config {
	return Config{MaxLen: 48, Width: 128, Layers: 2, Heads: 4, OutDim: 128}
}

// Validate reports every inconsistency of c in one error.
func (c Config) Validate() error {
	var errs []error
	if c.MaxLen < 1 || c.Width < 1 || c.Layers < 0 || c.OutDim < 1 {
		errs = append(errs, fmt.Errorf("max_len, width and out_dim must be positive and layers not negative (have %d, %d, %d, %d)", c.MaxLen, c.Width, c.OutDim, c.Layers))
	}
	if c.Layers > 0 && (c.Heads < 1 || c.Width%c.Heads != 0) {
		errs = append(errs, fmt.Errorf("width %d is not divisible by %d heads", c.Width, c.Heads))
	}
	if len(errs) > 0 {
		return fmt.Errorf("text encoder config: %w", errors.Join(errs...))
	}
	return nil
}

// vocab is the tokenizer's vocabulary: 256 bytes and the special tokens.
var vocab = tokenizer.New().VocabSize()

// Encoder is the text encoder. Tagged fields name its weights.
type Encoder struct {
	Config Config `safetensors:"-"`

	Tokens *nn.Embedding `safetensors:"token_embedding"`    // [vocab, W]
	Pos    *autodiff.Var `safetensors:"position_embedding"` // [1, L, W]
	Layers []*Layer      `safetensors:"layers"`
	Norm   *nn.LayerNorm `safetensors:"norm"` // affine, on the pooled vector
	Proj   *nn.Linear    `safetensors:"proj"` // [OutDim, W]
}

// Layer is a pre-LayerNorm transformer layer.
type Layer struct {
	Norm1 *nn.LayerNorm `safetensors:"norm1"`
	Attn  *nn.Attention `safetensors:"attn"` // qkv [3W, W], proj [W, W]
	Norm2 *nn.LayerNorm `safetensors:"norm2"`
	MLP   *nn.MLP       `safetensors:"mlp"` // fc1 [4W, W], fc2 [W, 4W]
}

// New returns an encoder with N(0, 0.02²) token and position embeddings,
// Xavier-uniform linear weights and zero biases.
func New(cfg Config, rng *tensor.RNG) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := cfg.Width
	xavier := func(l *nn.Linear) {
		nn.XavierUniform(rng, l.Weight.Value)
		nn.Zeros(l.Bias.Value)
	}
	e := &Encoder{Config: cfg}
	e.Tokens = nn.NewEmbedding(rng, vocab, w)
	nn.Normal(rng, e.Tokens.Weight.Value, 0.02)
	pos := tensor.New(1, cfg.MaxLen, w)
	nn.Normal(rng, pos, 0.02)
	e.Pos = autodiff.Param(pos)
	for i := 0; i < cfg.Layers; i++ {
		l := &Layer{Norm1: nn.NewLayerNorm(w, 1e-5, true), Attn: nn.NewAttention(rng, w, cfg.Heads),
			Norm2: nn.NewLayerNorm(w, 1e-5, true), MLP: nn.NewMLP(rng, w, 4*w, w)}
		xavier(l.Attn.QKV)
		xavier(l.Attn.Proj)
		xavier(l.MLP.FC1)
		xavier(l.MLP.FC2)
		e.Layers = append(e.Layers, l)
	}
	e.Norm = nn.NewLayerNorm(w, 1e-5, true)
	e.Proj = nn.NewLinear(rng, w, cfg.OutDim, true)
	xavier(e.Proj)
	return e, nil
}

// Normalize is the text the encoder reads for a prompt: lower case, with
// surrounding space trimmed and inner runs of space collapsed.
func Normalize(prompt string) string {
	return strings.Join(strings.Fields(strings.ToLower(prompt)), " ")
}

// CheckPrompt reports an empty prompt (nothing left after Normalize) or one
// longer than the MaxLen bytes the encoder reads, which would otherwise be
// cut silently.
func (c Config) CheckPrompt(prompt string) error {
	n := len(Normalize(prompt))
	switch {
	case n == 0:
		return fmt.Errorf("empty prompt")
	case n > c.MaxLen:
		return fmt.Errorf("prompt of %d bytes is longer than the text encoder's limit of %d", n, c.MaxLen)
	}
	return nil
}

// Fit returns the part of a prompt the encoder reads: the normalised
// prompt cut to MaxLen bytes, as Tokenize cuts it (a training caption
// longer than the limit was seen this way, up to a space the cut may leave
// at the end). Unlike the prompt itself, the result passes CheckPrompt
// unless it is empty.
func (c Config) Fit(prompt string) string {
	p := Normalize(prompt)
	if len(p) > c.MaxLen {
		p = p[:c.MaxLen]
	}
	return p
}

// Tokenize returns the token ids [len(prompts)·MaxLen] of the normalised
// prompts (bytes, truncated, then <pad>) and, per prompt, the number of
// real tokens.
func (e *Encoder) Tokenize(prompts []string) (ids []int, lens []int) {
	l := e.Config.MaxLen
	ids = make([]int, len(prompts)*l)
	lens = make([]int, len(prompts))
	for i, p := range prompts {
		b := []byte(Normalize(p))
		n := min(len(b), l)
		for j := 0; j < l; j++ {
			if j < n {
				ids[i*l+j] = int(b[j])
			} else {
				ids[i*l+j] = tokenizer.Pad
			}
		}
		lens[i] = n
	}
	return ids, lens
}

// Forward encodes prompts into pooled embeddings [B, OutDim] recorded on g.
func (e *Encoder) Forward(g *autodiff.Graph, prompts []string) *autodiff.Var {
	cfg := e.Config
	b, l, w := len(prompts), cfg.MaxLen, cfg.Width
	ids, lens := e.Tokenize(prompts)
	h := g.Reshape(e.Tokens.Forward(g, ids), b, l, w) // [B, L, W]
	h = g.Add(h, e.Pos)                               // + [1, L, W]
	for _, layer := range e.Layers {
		a := layer.Attn.Forward(g, layer.Norm1.Forward(g, h), tensor.AttentionOptions{}) // [B, L, W]
		h = g.Add(h, a)
		f := layer.MLP.Forward(g, layer.Norm2.Forward(g, h)) // [B, L, W]
		h = g.Add(h, f)
	}
	// Mean over the real tokens: weights 1/n on them, 0 on padding.
	mask := tensor.New(b, l, 1)
	md := mask.Data()
	for i, n := range lens {
		for j := 0; j < n; j++ {
			md[i*l+j] = 1 / float32(n)
		}
	}
	pooled := g.Sum(g.Mul(h, autodiff.Const(mask)), 1, false) // [B, W]
	return e.Proj.Forward(g, e.Norm.Forward(g, pooled))       // [B, OutDim]
}

// Encode runs Forward without gradients and returns [B, OutDim].
func (e *Encoder) Encode(prompts []string) *tensor.Tensor {
	g := autodiff.NoGrad()
	defer g.Release()
	return e.Forward(g, prompts).Value
}

// FLOPs is the analytic floating-point operation count (2 per
// multiply-add) of encoding n prompts: every layer's projections,
// attention and MLP over all MaxLen positions, and the output projection.
func (c Config) FLOPs(n int) float64 {
	w, l := float64(c.Width), float64(c.MaxLen)
	layer := 2*l*w*3*w + 2*2*l*l*w + 2*l*w*w + 2*2*l*w*4*w
	return float64(n) * (float64(c.Layers)*layer + 2*w*float64(c.OutDim))
}
