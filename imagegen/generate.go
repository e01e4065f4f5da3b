package imagegen

import (
	"fmt"
	"math"
	"time"

	"tessera/diffusion"
	"tessera/dit"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/tensor"
)

// GenerateOptions configures Generate.
type GenerateOptions struct {
	N        int   // number of images
	Classes  []int // class of each image; nil cycles 0, 1, …, NumClasses-1
	Seed     uint64
	Steps    int     // sampling steps (default 32)
	Sampler  string  // euler (default), heun, dpm++2m, ddim
	Schedule string  // uniform (default), linear-quadratic, shifted
	Shift    float64 // for the shifted schedule
	CFG      float64 // guidance weight; 1 disables guidance (default 1)
	Batch    int     // images per network batch (default 64)
	// Precision of the network's products: "auto" (default: bf16 where
	// the CPU has native bfloat16 dot products, else f32), "f32" or "bf16".
	// Generate sets it on the model's layers for the run and restores f32
	// after, so one model must not run two generations at once (the
	// server takes requests one at a time).
	Precision string
	Progress  progress.Options
}

// Stats is what a generation run cost.
type Stats struct {
	N            int     `json:"n"`
	WallSeconds  float64 `json:"wall_seconds"`
	NetworkEvals int     `json:"network_evals"` // forward passes of the network (a guided pass counts once, at twice the batch)
	BlockEvals   int     `json:"block_evals"`   // transformer-block evaluations over those passes
	FLOPs        float64 `json:"flops"`         // analytic multiply-adds × 2 over all passes
	Steps        int     `json:"steps"`
	Sampler      string  `json:"sampler"`
	Schedule     string  `json:"schedule"`
	CFG          float64 `json:"cfg"`
	Precision    string  `json:"precision"`
}

// counter wraps a model, counting passes and FLOPs.
type counter struct {
	m     *dit.Model
	evals int
	flops float64
}

func (c *counter) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	c.evals++
	c.flops += FLOPs(c.m.Config, x.Dim(0))
	return c.m.Predict(x, t, y)
}

// FLOPs is the analytic floating-point operation count (2 per
// multiply-add) of one DiT forward pass at the given batch size: patch
// embedding, conditioning, every block's adaLN, attention and MLP, and the
// final layer. Elementwise work is not counted.
func FLOPs(c dit.Config, batch int) float64 {
	h, t := float64(c.HiddenSize), float64(c.Tokens())
	p2 := float64(c.PatchSize * c.PatchSize)
	mlp := float64(c.MLPHidden())
	embed := 2*t*h*p2*float64(c.InChannels) + 2*(256*h+h*h)
	block := 2*h*6*h + // adaLN modulation
		2*t*h*3*h + 2*2*t*t*h + 2*t*h*h + // qkv, scores and mix, projection
		2*2*t*h*mlp // fc1, fc2
	final := 2*h*2*h + 2*t*h*p2*float64(c.OutChannels())
	return float64(batch) * (embed + float64(c.Depth)*block + final)
}

// Generate samples o.N images from m. Sample i's starting noise depends only
// on (Seed, i), so the same seed gives the same images whatever the batch
// size. Images are [C, H, W] tensors in [-1, 1] (clamped).
func Generate(m *dit.Model, o GenerateOptions) ([]*tensor.Tensor, Stats, error) {
	cfg := m.Config
	o = withDefaults(o)
	if err := checkGenerate(cfg, o); err != nil {
		return nil, Stats{}, err
	}
	classes := o.Classes
	if classes == nil {
		classes = make([]int, o.N)
		for i := range classes {
			classes[i] = i % max(cfg.NumClasses, 1)
		}
	}
	prec, restore := applyPrecision(o, m)
	defer restore()
	cnt := &counter{m: m}
	out, wall, err := sampleLoop(cfg, cnt, classes, o, nil)
	if err != nil {
		return nil, Stats{}, err
	}
	st := Stats{N: o.N, WallSeconds: wall, NetworkEvals: cnt.evals,
		BlockEvals: cnt.evals * cfg.Depth, FLOPs: cnt.flops, Steps: o.Steps, Sampler: o.Sampler, Schedule: o.Schedule, CFG: o.CFG,
		Precision: prec.String()}
	return out, st, nil
}

// applyPrecision sets the precision o asks for (checked by checkGenerate)
// on the Linear layers of models and returns it with a function that puts
// them back to float32.
func applyPrecision(o GenerateOptions, models ...any) (nn.Precision, func()) {
	p, _ := nn.ParsePrecision(o.Precision)
	for _, m := range models {
		nn.SetPrecision(m, p)
	}
	return p, func() {
		if p != nn.F32 {
			for _, m := range models {
				nn.SetPrecision(m, nn.F32)
			}
		}
	}
}

// sampleLoop samples o.N images in batches of o.Batch from net (guided
// when o.CFG != 1), calling reset, when set, before each batch's
// trajectory. It returns the images, clamped to [-1, 1], and the wall time.
func sampleLoop(cfg dit.Config, net diffusion.Model, classes []int, o GenerateOptions, reset func()) ([]*tensor.Tensor, float64, error) {
	model := net
	if o.CFG != 1 {
		model = diffusion.Guided{Model: net, Scale: o.CFG, Null: cfg.NumClasses}
	}
	c, s := cfg.InChannels, cfg.InputSize
	per := c * s * s
	out := make([]*tensor.Tensor, 0, o.N)
	prog := o.Progress
	if prog.Label == "" {
		prog.Label = "generate"
	}
	bar := progress.New(o.N, prog)
	defer bar.Finish()
	start := time.Now()
	for lo := 0; lo < o.N; lo += o.Batch {
		hi := min(lo+o.Batch, o.N)
		noise := tensor.New(hi-lo, c, s, s)
		nd := noise.Data()
		for i := lo; i < hi; i++ {
			copy(nd[(i-lo)*per:], SampleNoise(o.Seed, i, per))
		}
		if reset != nil {
			reset()
		}
		x, _, err := diffusion.Sample(model, noise, classes[lo:hi], diffusion.Options{
			Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps})
		if err != nil {
			return nil, 0, fmt.Errorf("generate: %w", err)
		}
		xd := x.Data()
		for i := 0; i < hi-lo; i++ {
			img := tensor.New(c, s, s)
			id := img.Data()
			for j := range id {
				id[j] = min(max(xd[i*per+j], -1), 1)
			}
			out = append(out, img)
		}
		bar.Update(hi, math.NaN())
	}
	return out, time.Since(start).Seconds(), nil
}

// SampleNoise is the starting noise of sample i for a seed: n standard
// normal values that depend only on (seed, i).
func SampleNoise(seed uint64, i, n int) []float32 {
	r := tensor.NewRNG(seed*0x9E3779B97F4A7C15 + uint64(i) + 1)
	return r.Normal(n).Data()
}
