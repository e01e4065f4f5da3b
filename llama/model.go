package llama

import (
	"errors"
	"fmt"
	"io/fs"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/nn"
	"tessera/tensor"
)

// Model is LlamaForCausalLM. Its fields carry the Hugging Face tensor names
// (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …,
// lm_head.weight), so Load and Save read and write Hugging Face checkpoints
// directly.
type Model struct {
	Config Config
	Model  Decoder    `safetensors:"model"`
	LMHead *nn.Linear `safetensors:"lm_head"` // [vocab, hidden]; nil when tied to the embedding

	eng *engine // inference engine, built on first use
}

// Decoder is the stack under the LM head (Hugging Face's LlamaModel).
type Decoder struct {
	EmbedTokens *nn.Embedding `safetensors:"embed_tokens"` // [vocab, hidden]
	Layers      []*Layer      `safetensors:"layers"`
	Norm        *nn.RMSNorm   `safetensors:"norm"` // [hidden]
}

// Layer is one pre-norm decoder block:
//
//	h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = input_layernorm(x)
//	y = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                m = post_attention_layernorm(h)
type Layer struct {
	SelfAttn               *nn.GroupedAttention `safetensors:"self_attn"`
	MLP                    *nn.SwiGLU           `safetensors:"mlp"`
	InputLayernorm         *nn.RMSNorm          `safetensors:"input_layernorm"`
	PostAttentionLayernorm *nn.RMSNorm          `safetensors:"post_attention_layernorm"`
}

// New returns a model for cfg with Hugging Face's initialisation: linear
// and embedding weights from N(0, 0.02²), norm weights 1.
func New(cfg Config, rng *tensor.RNG) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, eps := cfg.HiddenSize, float32(cfg.RMSNormEps)
	m := &Model{Config: cfg}
	m.Model.EmbedTokens = nn.NewEmbedding(rng, cfg.VocabSize, d)
	nn.Normal(rng, m.Model.EmbedTokens.Weight.Value, 0.02)
	rot := m.rotary()
	for range cfg.NumHiddenLayers {
		l := &Layer{
			SelfAttn:               nn.NewGroupedAttention(rng, d, cfg.NumAttentionHeads, cfg.KVHeads()),
			MLP:                    nn.NewSwiGLU(rng, d, cfg.IntermediateSize),
			InputLayernorm:         nn.NewRMSNorm(d, eps),
			PostAttentionLayernorm: nn.NewRMSNorm(d, eps),
		}
		l.SelfAttn.Rotary = rot
		for _, lin := range []*nn.Linear{l.SelfAttn.Q, l.SelfAttn.K, l.SelfAttn.V, l.SelfAttn.O, l.MLP.Gate, l.MLP.Up, l.MLP.Down} {
			nn.Normal(rng, lin.Weight.Value, 0.02)
		}
		m.Model.Layers = append(m.Model.Layers, l)
	}
	m.Model.Norm = nn.NewRMSNorm(d, eps)
	if !cfg.TieWordEmbeddings {
		m.LMHead = nn.NewLinear(rng, d, cfg.VocabSize, false)
		nn.Normal(rng, m.LMHead.Weight.Value, 0.02)
	}
	return m, nil
}

// Load reads a model directory (config.json and model.safetensors).
func Load(dir string) (*Model, error) {
	d, err := checkpoint.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	defer d.Close()
	return load(d, dir)
}

// LoadFS reads a model directory from fsys (an embedded model).
func LoadFS(fsys fs.FS, dir string) (*Model, error) {
	d, err := checkpoint.OpenFS(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	defer d.Close()
	return load(d, dir)
}

func load(d *checkpoint.Dir, dir string) (*Model, error) {
	cfg := DefaultConfig()
	cfg.NumKeyValueHeads = 0
	if err := d.Config(&cfg); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	if cfg.NumKeyValueHeads == 0 {
		cfg.NumKeyValueHeads = cfg.NumAttentionHeads
	}
	m, err := New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, fmt.Errorf("llama: %s: %w", dir, err)
	}
	if err := bindWeights(m, d.Weights()); err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	return m, nil
}

// Save writes the model as a Hugging Face directory: config.json and
// model.safetensors (float32).
func (m *Model) Save(dir string) error {
	cfg, err := MarshalConfig(m.Config)
	if err != nil {
		return err
	}
	if err := saveDir(dir, cfg, m); err != nil {
		return fmt.Errorf("llama: save %s: %w", dir, err)
	}
	return nil
}

// head is the LM head weight: lm_head, or the embedding when tied.
func (m *Model) head() *autodiff.Var {
	if m.LMHead != nil {
		return m.LMHead.Weight
	}
	return m.Model.EmbedTokens.Weight
}

// rotary returns the rotary embedding of the Hugging Face layout for the
// attention layers: x' = x·cos + rotate_half(x)·sin with rotate_half(x) =
// [-x[hd/2:], x[:hd/2]] and angles pos·θ^(-2i/hd) repeated over both halves.
func (m *Model) rotary() func(g *autodiff.Graph, q, k *autodiff.Var, offset int) (*autodiff.Var, *autodiff.Var) {
	return func(g *autodiff.Graph, q, k *autodiff.Var, offset int) (*autodiff.Var, *autodiff.Var) {
		t, hd := q.Shape()[1], q.Shape()[3]
		half := hd / 2
		cos, sin := tensor.New(t, 1, hd), tensor.New(t, 1, hd)
		ct, st := ropeTables(m.Config, offset+t)
		for p := 0; p < t; p++ {
			for i := 0; i < half; i++ {
				c, s := ct[(offset+p)*half+i], st[(offset+p)*half+i]
				cos.Set(c, p, 0, i)
				cos.Set(c, p, 0, i+half)
				sin.Set(s, p, 0, i)
				sin.Set(s, p, 0, i+half)
			}
		}
		cv, sv := autodiff.Const(cos), autodiff.Const(sin)
		apply := func(x *autodiff.Var) *autodiff.Var {
			rot := g.Concat(3, g.Neg(g.Slice(x, 3, half, hd)), g.Slice(x, 3, 0, half))
			return g.Add(g.Mul(x, cv), g.Mul(rot, sv))
		}
		return apply(q), apply(k)
	}
}

// Forward maps tokens [B][T] (every row of the same length T) to logits
// [B, T, vocab] under causal attention, recording on g for training (or
// not, under autodiff.NoGrad).
func (m *Model) Forward(g *autodiff.Graph, tokens [][]int) (*autodiff.Var, error) {
	h, err := m.ForwardHidden(g, tokens)
	if err != nil {
		return nil, err
	}
	return g.Linear(m.Model.Norm.Forward(g, h), m.head(), nil), nil
}

// ForwardHidden is Forward up to the last layer: the hidden states
// [B, T, hidden] before the final norm.
func (m *Model) ForwardHidden(g *autodiff.Graph, tokens [][]int) (*autodiff.Var, error) {
	if len(tokens) == 0 || len(tokens[0]) == 0 {
		return nil, errors.New("llama: no tokens")
	}
	B, T := len(tokens), len(tokens[0])
	ids := make([]int, 0, B*T)
	for b, row := range tokens {
		if len(row) != T {
			return nil, fmt.Errorf("llama: row %d has %d tokens, row 0 has %d", b, len(row), T)
		}
		for i, t := range row {
			if t < 0 || t >= m.Config.VocabSize {
				return nil, fmt.Errorf("llama: token %d at [%d][%d] is outside the vocabulary of %d", t, b, i, m.Config.VocabSize)
			}
		}
		ids = append(ids, row...)
	}
	x := g.Reshape(m.Model.EmbedTokens.Forward(g, ids), B, T, m.Config.HiddenSize) // [B, T, d]
	opt := tensor.AttentionOptions{Mask: tensor.MaskCausal}
	for _, l := range m.Model.Layers {
		h := g.Add(x, l.SelfAttn.Forward(g, l.InputLayernorm.Forward(g, x), opt)) // [B, T, d]
		x = g.Add(h, l.MLP.Forward(g, l.PostAttentionLayernorm.Forward(g, h)))    // [B, T, d]
	}
	return x, nil
}

// Loss is the mean next-token cross-entropy of tokens [B][T]: logits at
// position t predict token t+1.
func (m *Model) Loss(g *autodiff.Graph, tokens [][]int) (*autodiff.Var, error) {
	if len(tokens) == 0 || len(tokens[0]) < 2 {
		return nil, errors.New("llama: loss needs sequences of at least 2 tokens")
	}
	in := make([][]int, len(tokens))
	var targets []int
	for b, row := range tokens {
		if len(row) != len(tokens[0]) {
			return nil, fmt.Errorf("llama: row %d has %d tokens, row 0 has %d", b, len(row), len(tokens[0]))
		}
		in[b] = row[:len(row)-1]
		targets = append(targets, row[1:]...)
	}
	logits, err := m.Forward(g, in)
	if err != nil {
		return nil, err
	}
	return g.CrossEntropy(g.Reshape(logits, -1, m.Config.VocabSize), targets), nil
}

// engine returns the inference engine over the model's weights.
func (m *Model) engine() *engine {
	if m.eng == nil {
		layers := make([]layerSlots, len(m.Model.Layers))
		for i, l := range m.Model.Layers {
			layers[i] = layerSlots{
				inNorm: l.InputLayernorm.Weight, postNorm: l.PostAttentionLayernorm.Weight,
				q: l.SelfAttn.Q.Weight, k: l.SelfAttn.K.Weight, v: l.SelfAttn.V.Weight, o: l.SelfAttn.O.Weight,
				gate: l.MLP.Gate.Weight, up: l.MLP.Up.Weight, down: l.MLP.Down.Weight,
			}
		}
		m.eng = newEngine(m.Config, m.Model.EmbedTokens.Weight, m.Model.Norm.Weight, m.head(), layers)
	}
	return m.eng
}

// NewCache returns an empty KV cache for up to capacity tokens. Its
// batched passes read a packed copy of the weights made or checked here,
// so weights changed in place (an optimiser step) are seen by the caches
// made after the change; a replaced tensor (a checkpoint load) is seen by
// every cache at its next call. LoRA adapters must be merged first
// (nn.MergeAll).
func (m *Model) NewCache(capacity int) (*Cache, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("llama: cache capacity %d must be positive", capacity)
	}
	for i, l := range m.Model.Layers {
		for _, lin := range []*nn.Linear{l.SelfAttn.Q, l.SelfAttn.K, l.SelfAttn.V, l.SelfAttn.O, l.MLP.Gate, l.MLP.Up, l.MLP.Down} {
			if lin.LoraA != nil || lin.Bias != nil {
				return nil, fmt.Errorf("llama: layer %d has a LoRA adapter or bias; merge adapters (nn.MergeAll) before decoding", i)
			}
		}
	}
	if m.LMHead != nil && (m.LMHead.LoraA != nil || m.LMHead.Bias != nil) {
		return nil, errors.New("llama: lm_head has a LoRA adapter or bias; merge adapters before decoding")
	}
	e := m.engine()
	e.prepare()
	return newCache(e, capacity), nil
}

// FLOPsPerToken is the analytic multiply-add count ×2 of one decoded token
// at context length ctx (projections, attention scores and values, LM head).
func (c Config) FLOPsPerToken(ctx int) float64 {
	d, hd := float64(c.HiddenSize), float64(c.HeadDim())
	h, kv := float64(c.NumAttentionHeads), float64(c.KVHeads())
	proj := d*h*hd*2 + d*kv*hd*2 + 3*d*float64(c.IntermediateSize)
	att := 2 * h * hd * float64(ctx)
	return 2 * (float64(c.NumHiddenLayers)*(proj+att) + d*float64(c.VocabSize))
}
