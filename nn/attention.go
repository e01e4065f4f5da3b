package nn

import (
	"fmt"

	"tessera/autodiff"
	"tessera/tensor"
)

// Attention is multi-head self-attention with a fused projection, like
// DiT's (timm's) Attention: qkv = x·Wqkvᵀ + b split into q, k, v of Heads
// heads each, softmax(q·kᵀ·scale)·v, then proj.
type Attention struct {
	QKV   *Linear `safetensors:"qkv"`  // [3·dim, dim]
	Proj  *Linear `safetensors:"proj"` // [dim, dim]
	Heads int
}

// NewAttention returns self-attention over dim features with heads heads
// and biases on both projections.
func NewAttention(rng *tensor.RNG, dim, heads int) *Attention {
	if heads <= 0 || dim%heads != 0 {
		panic(fmt.Sprintf("nn.NewAttention: dim %d not divisible by %d heads", dim, heads))
	}
	return &Attention{QKV: NewLinear(rng, dim, 3*dim, true), Proj: NewLinear(rng, dim, dim, true), Heads: heads}
}

// Forward maps x [B, T, dim] to [B, T, dim]. opt chooses the mask (full by
// default) and scale (1/sqrt(head dim) when zero).
func (a *Attention) Forward(g *autodiff.Graph, x *autodiff.Var, opt tensor.AttentionOptions) *autodiff.Var {
	s := x.Shape()
	if len(s) != 3 || s[2] != a.QKV.In() {
		panic(shapeErr("Attention", fmt.Sprintf("[B, T, %d]", a.QKV.In()), s))
	}
	b, t, dim := s[0], s[1], s[2]
	hd := dim / a.Heads
	qkv := g.Reshape(a.QKV.Forward(g, x), b, t, 3, a.Heads, hd) // [B, T, 3, H, D]
	// q, k, v are views of the fused output: [B, T, H, D] with row strides.
	q := g.Reshape(g.Slice(qkv, 2, 0, 1), b, t, a.Heads, hd)
	k := g.Reshape(g.Slice(qkv, 2, 1, 2), b, t, a.Heads, hd)
	v := g.Reshape(g.Slice(qkv, 2, 2, 3), b, t, a.Heads, hd)
	o := g.Attention(q, k, v, opt)                    // [B, T, H, D]
	return a.Proj.Forward(g, g.Reshape(o, b, t, dim)) // [B, T, dim]
}

// GroupedAttention is multi-head attention with separate projections and
// grouped key/value heads (GQA; KVHeads = Heads is plain multi-head
// attention, KVHeads = 1 multi-query), named as Hugging Face's
// LlamaAttention. Rotary, if set, is applied to q and k after the
// projections.
type GroupedAttention struct {
	Q       *Linear `safetensors:"q_proj"` // [Heads·D, dim]
	K       *Linear `safetensors:"k_proj"` // [KVHeads·D, dim]
	V       *Linear `safetensors:"v_proj"` // [KVHeads·D, dim]
	O       *Linear `safetensors:"o_proj"` // [dim, Heads·D]
	Heads   int
	KVHeads int
	// Rotary transforms q [B, T, Heads, D] and k [B, T, KVHeads, D] for
	// tokens starting at position offset (rotary position embeddings).
	Rotary func(g *autodiff.Graph, q, k *autodiff.Var, offset int) (*autodiff.Var, *autodiff.Var)
}

// NewGroupedAttention returns grouped-KV attention over dim features
// without biases (Llama's layout).
func NewGroupedAttention(rng *tensor.RNG, dim, heads, kvHeads int) *GroupedAttention {
	if heads <= 0 || kvHeads <= 0 || dim%heads != 0 || heads%kvHeads != 0 {
		panic(fmt.Sprintf("nn.NewGroupedAttention: dim %d, %d heads, %d kv heads", dim, heads, kvHeads))
	}
	hd := dim / heads
	return &GroupedAttention{
		Q:     NewLinear(rng, dim, heads*hd, false),
		K:     NewLinear(rng, dim, kvHeads*hd, false),
		V:     NewLinear(rng, dim, kvHeads*hd, false),
		O:     NewLinear(rng, heads*hd, dim, false),
		Heads: heads, KVHeads: kvHeads,
	}
}

// Forward maps x [B, T, dim] to [B, T, dim]; opt.QOffset is also the
// rotary position of the first token.
func (a *GroupedAttention) Forward(g *autodiff.Graph, x *autodiff.Var, opt tensor.AttentionOptions) *autodiff.Var {
	s := x.Shape()
	if len(s) != 3 || s[2] != a.Q.In() {
		panic(shapeErr("GroupedAttention", fmt.Sprintf("[B, T, %d]", a.Q.In()), s))
	}
	b, t := s[0], s[1]
	hd := a.Q.Out() / a.Heads
	q := g.Reshape(a.Q.Forward(g, x), b, t, a.Heads, hd)   // [B, T, H, D]
	k := g.Reshape(a.K.Forward(g, x), b, t, a.KVHeads, hd) // [B, T, Hkv, D]
	v := g.Reshape(a.V.Forward(g, x), b, t, a.KVHeads, hd) // [B, T, Hkv, D]
	if a.Rotary != nil {
		q, k = a.Rotary(g, q, k, opt.QOffset)
	}
	o := g.Attention(q, k, v, opt) // [B, T, H, D]
	return a.O.Forward(g, g.Reshape(o, b, t, a.Heads*hd))
}
