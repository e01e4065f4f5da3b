package t2i

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
	"tessera/safetensors"
	"tessera/tensor"
	"tessera/textenc"
	"tessera/train"
)

// The contrastive scorer measures generated images: a small CNN image
// encoder and a text encoder (the textenc architecture, its own weights),
// trained CLIP-style with a symmetric InfoNCE loss on the training split
// only. Prompt alignment is top-1 retrieval of an image's caption among
// random distractor captions; FID uses the image encoder's embedding.
//
//	image [B, 3, S, S] ──4 × (conv 3×3, SiLU), strides 1,2,2,2──► [B, C, S/8, S/8]
//	  ──mean over positions──LN──Linear──► [B, E]
//	prompt ──textenc──► [B, E]
//	logits = exp(logit_scale) · normalise(image) · normalise(text)ᵀ

// ScorerConfig is the scorer's config.json.
type ScorerConfig struct {
	InputSize int            `json:"input_size"` // image side
	Channels  []int          `json:"channels"`   // widths of the four convolutions
	EmbedDim  int            `json:"embed_dim"`  // shared embedding width E
	Text      textenc.Config `json:"text_encoder"`
}

// DefaultScorerConfig is the emoji scorer: 32×32 RGB, convolutions of 32,
// 64, 128, 128 channels, a 128-wide shared space and a 2-layer text encoder.
func DefaultScorerConfig() ScorerConfig {
	t := textenc.DefaultConfig()
	t.OutDim = 128
	return ScorerConfig{InputSize: 32, Channels: []int{32, 64, 128, 128}, EmbedDim: 128, Text: t}
}

// Validate reports every inconsistency of c in one error.
func (c ScorerConfig) Validate() error {
	var errs []error
	if c.InputSize < 8 || c.InputSize%8 != 0 {
		errs = append(errs, fmt.Errorf("input_size %d must be a positive multiple of 8", c.InputSize))
	}
	if len(c.Channels) != 4 {
		errs = append(errs, fmt.Errorf("channels must list 4 widths, got %v", c.Channels))
	}
	for _, ch := range c.Channels {
		if ch < 1 {
			errs = append(errs, fmt.Errorf("channels must be positive, got %v", c.Channels))
			break
		}
	}
	if c.EmbedDim < 1 || c.Text.OutDim != c.EmbedDim {
		errs = append(errs, fmt.Errorf("embed_dim %d must be positive and equal text_encoder.out_dim %d", c.EmbedDim, c.Text.OutDim))
	}
	if err := c.Text.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("scorer config: %w", errors.Join(errs...))
	}
	return nil
}

// Scorer is the contrastive image–text model.
type Scorer struct {
	Config     ScorerConfig     `safetensors:"-"`
	Convs      []*nn.Conv2d     `safetensors:"image.convs"`
	Norm       *nn.LayerNorm    `safetensors:"image.norm"`
	Proj       *nn.Linear       `safetensors:"image.proj"` // [E, C]
	Text       *textenc.Encoder `safetensors:"text_encoder"`
	LogitScale *autodiff.Var    `safetensors:"logit_scale"` // [1], log of the logit multiplier
}

// NewScorer returns a scorer with PyTorch-default convolutions, a
// Xavier-uniform projection and logit scale log(1/0.07), CLIP's start.
func NewScorer(cfg ScorerConfig, rng *tensor.RNG) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scorer{Config: cfg}
	in := 3
	for i, ch := range cfg.Channels {
		stride := 2
		if i == 0 {
			stride = 1
		}
		s.Convs = append(s.Convs, nn.NewConv2d(rng, in, ch, 3, stride, 1, true))
		in = ch
	}
	s.Norm = nn.NewLayerNorm(in, 1e-5, true)
	s.Proj = nn.NewLinear(rng, in, cfg.EmbedDim, true)
	nn.XavierUniform(rng, s.Proj.Weight.Value)
	nn.Zeros(s.Proj.Bias.Value)
	te, err := textenc.New(cfg.Text, rng)
	if err != nil {
		return nil, err
	}
	s.Text = te
	s.LogitScale = autodiff.Param(tensor.FromData([]float32{float32(math.Log(1 / 0.07))}, 1))
	return s, nil
}

// ImageForward embeds images x [B, 3, S, S] (values in [-1, 1]) as [B, E],
// not normalised.
func (s *Scorer) ImageForward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	h := x
	for _, c := range s.Convs {
		h = g.SiLU(c.Forward(g, h)) // [B, C, S', S']
	}
	sh := h.Shape()
	h = g.Mean(g.Reshape(h, sh[0], sh[1], sh[2]*sh[3]), 2, false) // [B, C]
	return s.Proj.Forward(g, s.Norm.Forward(g, h))                // [B, E]
}

// normalize scales each row of x [B, E] to unit length.
func normalize(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	n := g.Sqrt(g.AddScalar(g.Sum(g.Square(x), 1, true), 1e-8)) // [B, 1]
	return g.Div(x, n)
}

// Loss is the symmetric InfoNCE loss of a batch of matching images
// [B, 3, S, S] and prompts: row i's image should pick prompt i among the
// batch's prompts, and prompt i image i.
func (s *Scorer) Loss(g *autodiff.Graph, x *tensor.Tensor, prompts []string) *autodiff.Var {
	b := len(prompts)
	img := normalize(g, s.ImageForward(g, autodiff.Const(x)))    // [B, E]
	txt := normalize(g, s.Text.Forward(g, prompts))              // [B, E]
	logits := g.MatMul(img, g.Transpose(txt, 0, 1))              // [B, B]
	logits = g.Mul(logits, g.Reshape(g.Exp(s.LogitScale), 1, 1)) // × exp(scale)
	targets := make([]int, b)
	for i := range targets {
		targets[i] = i
	}
	li := g.CrossEntropy(logits, targets)
	lt := g.CrossEntropy(g.Transpose(logits, 0, 1), targets)
	return g.Scale(g.Add(li, lt), 0.5)
}

// ImageEmbeddings returns the normalised image embeddings of images
// ([3, S, S] each), in batches, without gradients: the FID features.
func (s *Scorer) ImageEmbeddings(images []*tensor.Tensor) [][]float32 {
	const batch = 128
	out := make([][]float32, 0, len(images))
	for lo := 0; lo < len(images); lo += batch {
		hi := min(lo+batch, len(images))
		sz := s.Config.InputSize
		per := 3 * sz * sz
		x := tensor.New(hi-lo, 3, sz, sz)
		for i := lo; i < hi; i++ {
			copy(x.Data()[(i-lo)*per:], images[i].Contiguous().Data())
		}
		g := autodiff.NoGrad()
		e := normalize(g, s.ImageForward(g, autodiff.Const(x))).Value.Data()
		d := s.Config.EmbedDim
		for i := 0; i < hi-lo; i++ {
			out = append(out, append([]float32(nil), e[i*d:(i+1)*d]...))
		}
		g.Release()
	}
	return out
}

// TextEmbeddings returns the normalised embeddings of prompts.
func (s *Scorer) TextEmbeddings(prompts []string) [][]float32 {
	g := autodiff.NoGrad()
	defer g.Release()
	e := normalize(g, s.Text.Forward(g, prompts)).Value.Data()
	d := s.Config.EmbedDim
	out := make([][]float32, len(prompts))
	for i := range out {
		out[i] = e[i*d : (i+1)*d]
	}
	return out
}

// Retrieval is the top-1 accuracy of picking each image's caption among
// distractors: image i is scored against captions[truth[i]] and
// distractors other captions drawn at random (deterministically from
// seed); it counts as right when the true caption scores strictly highest.
// Chance is 1/(distractors+1).
func (s *Scorer) Retrieval(images []*tensor.Tensor, truth []int, captions []string, distractors int, seed uint64) (float64, error) {
	if len(images) != len(truth) || len(images) == 0 {
		return 0, fmt.Errorf("retrieval: %d images with %d captions", len(images), len(truth))
	}
	if distractors < 1 || distractors >= len(captions) {
		return 0, fmt.Errorf("retrieval: %d distractors need more than that many captions (have %d)", distractors, len(captions))
	}
	ie := s.ImageEmbeddings(images)
	te := s.TextEmbeddings(captions)
	rng := tensor.NewRNG(seed)
	right := 0
	for i, k := range truth {
		if k < 0 || k >= len(captions) {
			return 0, fmt.Errorf("retrieval: caption index %d of image %d outside 0..%d", k, i, len(captions)-1)
		}
		best := dot(ie[i], te[k])
		ok := true
		picked := map[int]bool{k: true}
		for len(picked) < distractors+1 {
			j := rng.Intn(len(captions))
			if picked[j] || captions[j] == captions[k] {
				continue
			}
			picked[j] = true
			if dot(ie[i], te[j]) >= best {
				ok = false
			}
		}
		if ok {
			right++
		}
	}
	return float64(right) / float64(len(images)), nil
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// GroupedDataset is a Dataset whose images are grouped by subject (the
// same emoji in several styles); *data.EmojiSet is one.
type GroupedDataset interface {
	Dataset
	EmojiOf(i int) int
}

// ScorerOptions configures TrainScorer.
type ScorerOptions struct {
	Config   ScorerConfig
	Steps    int
	Batch    int // distinct subjects per step (in-batch negatives)
	LR       float32
	Seed     uint64
	Progress progress.Options
}

// TrainScorer fits a scorer to ds with the symmetric InfoNCE loss. Each
// batch holds distinct subjects (one random image and caption variant of
// each), so no in-batch negative is a hidden positive.
func TrainScorer(ctx context.Context, ds GroupedDataset, o ScorerOptions) (*Scorer, train.Result, error) {
	if o.Steps < 1 || o.Batch < 2 || o.LR <= 0 {
		return nil, train.Result{}, fmt.Errorf("train scorer: steps and lr must be positive and batch at least 2 (have %d, %d, %g)", o.Steps, o.Batch, o.LR)
	}
	sh := ds.Shape()
	if sh[0] != 3 || sh[1] != o.Config.InputSize || sh[2] != sh[1] {
		return nil, train.Result{}, fmt.Errorf("train scorer: scorer takes 3×%d×%d images, data set has %v", o.Config.InputSize, o.Config.InputSize, sh)
	}
	groups := map[int][]int{}
	var keys []int
	for i := 0; i < ds.Len(); i++ {
		k := ds.EmojiOf(i)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	if len(keys) < o.Batch {
		return nil, train.Result{}, fmt.Errorf("train scorer: batch %d exceeds the %d subjects", o.Batch, len(keys))
	}
	rng := tensor.NewRNG(o.Seed)
	s, err := NewScorer(o.Config, rng)
	if err != nil {
		return nil, train.Result{}, err
	}
	params := nn.Trainable(s)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR, WeightDecay: 0.01})
	per := sh[0] * sh[1] * sh[2]
	step := func(stepNo int) (float32, error) {
		x := tensor.New(o.Batch, sh[0], sh[1], sh[2])
		prompts := make([]string, o.Batch)
		for i, p := range rng.Perm(len(keys))[:o.Batch] {
			imgs := groups[keys[p]]
			k := imgs[rng.Intn(len(imgs))]
			ds.Example(k, x.Data()[i*per:(i+1)*per])
			prompts[i] = ds.Caption(k, uint64(stepNo)*uint64(o.Batch)+uint64(i))
		}
		g := autodiff.NewGraph()
		defer g.Release()
		loss := s.Loss(g, x, prompts)
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	loop := &train.Loop{Steps: o.Steps, Step: step, Optimizer: opt,
		Schedule: optim.WarmupCosine{Peak: o.LR, Final: o.LR / 20, Warmup: max(1, o.Steps/20), Total: o.Steps},
		ClipNorm: 1, Params: params, Progress: o.Progress}
	res, err := loop.Run(ctx)
	if err != nil {
		return nil, res, err
	}
	return s, res, nil
}

// Save writes the scorer folder (config.json, float32 model.safetensors).
func (s *Scorer) Save(dir string) error {
	if err := checkpoint.SaveDir(dir, s.Config, s, &safetensors.SaveOptions{}); err != nil {
		return fmt.Errorf("save scorer: %w", err)
	}
	return nil
}

// LoadScorerFS reads a scorer folder from the root of fsys.
func LoadScorerFS(fsys fs.FS) (*Scorer, error) {
	var cfg ScorerConfig
	if err := checkpoint.ReadConfigFS(fsys, ".", &cfg); err != nil {
		return nil, fmt.Errorf("scorer: %w", err)
	}
	s, err := NewScorer(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	dir, err := checkpoint.OpenFS(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("scorer: %w", err)
	}
	defer dir.Close()
	if err := dir.Bind(s, nil); err != nil {
		return nil, fmt.Errorf("scorer: %w", err)
	}
	return s, nil
}
