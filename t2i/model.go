// Package t2i is Tessera's text-to-image model: a DiT conditioned on a
// prompt through a jointly trained text encoder, its training recipe,
// generation with classifier-free guidance, and a contrastive scorer for
// evaluating prompt alignment and FID. See README.md for the design.
package t2i

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/dit"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
	"tessera/textenc"
)

// PooledAdaLN is the conditioning of this package: the text encoder's
// pooled prompt embedding is added to the timestep embedding, c = t_emb +
// text(prompt), and c drives every block's adaLN-Zero modulation, where a
// class DiT adds its label embedding.
const PooledAdaLN = "pooled-adaln"

// Config is a text-to-image model's config.json: the DiT keys (num_classes
// is 0: there is no class path) plus the conditioning and the text
// encoder's settings under "text_encoder".
type Config struct {
	dit.Config
	Conditioning string         `json:"conditioning"`
	Text         textenc.Config `json:"text_encoder"`
}

// DefaultConfig is the emoji model: 32×32 RGB, patch 4, width 256, depth 6,
// and a 2-layer width-128 text encoder whose output is the DiT width.
func DefaultConfig() Config {
	d := dit.Config{InputSize: 32, PatchSize: 4, InChannels: 3, HiddenSize: 256, Depth: 6, NumHeads: 4,
		MLPRatio: 4, NumClasses: 0, Prediction: dit.Velocity}
	t := textenc.DefaultConfig()
	t.OutDim = d.HiddenSize
	return Config{Config: d, Conditioning: PooledAdaLN, Text: t}
}

// Validate reports every inconsistency of c in one error.
func (c Config) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Text.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Conditioning != PooledAdaLN {
		errs = append(errs, fmt.Errorf("conditioning must be %q, got %q", PooledAdaLN, c.Conditioning))
	}
	if c.Text.OutDim != c.HiddenSize {
		errs = append(errs, fmt.Errorf("text_encoder.out_dim %d must equal hidden_size %d", c.Text.OutDim, c.HiddenSize))
	}
	if c.PredictsEpsilon() {
		errs = append(errs, errors.New("prediction must be velocity"))
	}
	if c.LearnSigma {
		errs = append(errs, errors.New("learn_sigma is not supported"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("t2i config: %w", errors.Join(errs...))
	}
	return nil
}

// Model is a text-conditioned DiT. Its DiT weights keep the reference
// names (x_embedder.…, blocks.N.…, final_layer.…; there is no y_embedder)
// and the text encoder's are under text_encoder.
type Model struct {
	Config Config           `safetensors:"-"`
	DiT    *dit.Model       `safetensors:""`
	Text   *textenc.Encoder `safetensors:"text_encoder"`
}

// New returns a model initialised as dit.New and textenc.New do.
func New(cfg Config, rng *tensor.RNG) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := dit.New(cfg.Config, rng)
	if err != nil {
		return nil, err
	}
	d.YEmbedder = nil // no class path: the prompt takes its place
	te, err := textenc.New(cfg.Text, rng)
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, DiT: d, Text: te}, nil
}

// Forward runs the network on images x [B, C, H, W] at times t (0..1000)
// conditioned on prompt embeddings text [B, D] (from Text.Forward) and
// returns the velocity [B, C, H, W].
func (m *Model) Forward(g *autodiff.Graph, x *autodiff.Var, t []float32, text *autodiff.Var) *autodiff.Var {
	d := m.DiT
	b, hid := x.Shape()[0], m.Config.HiddenSize
	h := d.XEmbedder.Forward(g, x) // [B, T, D]
	h = g.Add(h, d.PosEmbed)       // + [1, T, D]

	c := g.Add(d.TEmbedder.Forward(g, t), text) // [B, D]
	c = g.SiLU(c)
	c = g.Reshape(c, b, 1, hid) // [B, 1, D]
	for _, blk := range d.Blocks {
		h = blk.Forward(g, h, c)
	}
	out := d.FinalLayer.Forward(g, h, c) // [B, T, p·p·C]
	return unpatchify(g, out, m.Config.Config)
}

// unpatchify turns patches [B, T, p·p·C] into images [B, C, H, W], as the
// DiT does.
func unpatchify(g *autodiff.Graph, x *autodiff.Var, cfg dit.Config) *autodiff.Var {
	b, p, c, n := x.Shape()[0], cfg.PatchSize, cfg.OutChannels(), cfg.Grid()
	x = g.Reshape(x, b, n, n, p, p, c)  // [B, h, w, p, q, C]
	x = g.Permute(x, 0, 5, 1, 3, 2, 4)  // [B, C, h, p, w, q]
	return g.Reshape(x, b, c, n*p, n*p) // [B, C, H, W]
}

// NumParams is the number of scalar parameters (the fixed position
// embedding included).
func (m *Model) NumParams() int { return nn.NumParams(m) }

// Prompted is m with a list of prompts bound, as a diffusion.Model: label
// y[i] selects Prompts[y[i]] for sample i, and label len(Prompts) (Null)
// the empty prompt, so diffusion.Guided{Null: p.Null()} batches the
// conditional and unconditional branches of guidance in one call. The
// prompts are encoded once, by NewPrompted.
type Prompted struct {
	Model   *Model
	Prompts []string
	emb     *tensor.Tensor // [len(Prompts)+1, D]; last row the empty prompt
}

// NewPrompted encodes prompts (and the empty prompt) for m.
func NewPrompted(m *Model, prompts []string) *Prompted {
	all := append(append([]string(nil), prompts...), "")
	return &Prompted{Model: m, Prompts: prompts, emb: m.Text.Encode(all)}
}

// Null is the label of the empty prompt.
func (p *Prompted) Null() int { return len(p.Prompts) }

// Predict implements diffusion.Model.
func (p *Prompted) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	cfg := p.Model.Config
	s := x.Shape()
	if len(s) != 4 || s[0] < 1 || s[1] != cfg.InChannels || s[2] != cfg.InputSize || s[3] != cfg.InputSize {
		return nil, fmt.Errorf("t2i: input shape %v, want [B, %d, %d, %d]", s, cfg.InChannels, cfg.InputSize, cfg.InputSize)
	}
	if len(t) != s[0] || len(y) != s[0] {
		return nil, fmt.Errorf("t2i: batch of %d with %d times and %d prompt labels", s[0], len(t), len(y))
	}
	d := cfg.HiddenSize
	text := tensor.New(s[0], d)
	td, ed := text.Data(), p.emb.Data()
	for i, k := range y {
		if k < 0 || k > p.Null() {
			return nil, fmt.Errorf("t2i: prompt label %d of sample %d outside 0..%d (%d = empty prompt)", k, i, p.Null(), p.Null())
		}
		copy(td[i*d:(i+1)*d], ed[k*d:(k+1)*d])
	}
	for i, v := range t {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("t2i: time %v of sample %d is not finite", v, i)
		}
	}
	g := autodiff.NoGrad()
	defer g.Release()
	return p.Model.Forward(g, autodiff.Const(x), t, autodiff.Const(text)).Value, nil
}

// Save writes the model folder: config.json and model.safetensors with
// float16 weights (f32 when full is set).
func (m *Model) Save(dir string, full bool) error {
	opt := &safetensors.SaveOptions{DType: safetensors.F16}
	if full {
		opt = nil
	}
	if err := checkpoint.SaveDir(dir, m.Config, m, opt); err != nil {
		return fmt.Errorf("save t2i model: %w", err)
	}
	return nil
}

// ParseConfig reads a config.json, with DiT defaults for missing DiT keys.
func ParseConfig(raw []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return Config{}, fmt.Errorf("t2i config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadFS reads a model folder (config.json, model.safetensors) from the
// root of fsys; every tensor must be present with its shape.
func LoadFS(fsys fs.FS) (*Model, error) {
	raw, err := fs.ReadFile(fsys, checkpoint.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("t2i: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	dir, err := checkpoint.OpenFS(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("t2i: %w", err)
	}
	defer dir.Close()
	if err := dir.Bind(m, nil); err != nil {
		return nil, fmt.Errorf("t2i: %w", err)
	}
	return m, nil
}

// IsConfig reports whether a config.json describes a text-to-image model.
func IsConfig(raw []byte) bool {
	var probe struct {
		Conditioning string `json:"conditioning"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Conditioning == PooledAdaLN
}
