package t2i

import (
	"fmt"
	"math"
	"time"

	"tessera/blockcache"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/flexidit"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/tensor"
)

// GenerateOptions configures Generate.
type GenerateOptions struct {
	Seed     uint64
	Steps    int     // sampling steps (default 32)
	Sampler  string  // euler (default), heun, dpm++2m
	Schedule string  // uniform (default), linear-quadratic, shifted
	Shift    float64 // for the shifted schedule
	CFG      float64 // guidance weight; 1 disables guidance (default 1)
	Batch    int     // images per network batch (default 64)
	// Precision of the network's products: "auto" (default), "f32" or
	// "bf16", as in imagegen.GenerateOptions.
	Precision string
	Progress  progress.Options
	// Cache is block caching, as for class models (imagegen.ParseCache
	// reads the --cache flag); the zero value is off.
	Cache imagegen.CacheOptions
	// CalibrationPrompts are the prompts the scheduled cache modes
	// profile the model and train scale-shift on, cycled over
	// Cache.Calibration images (default: the distinct requested prompts).
	// Profiles and plans are stored per calibration list, so a fixed list
	// (captions of the training split, say) is calibrated once for all
	// prompts.
	CalibrationPrompts []string
	// Flex runs the first WeakSteps steps at the weak patch size of a
	// FlexiDiT of the model's DiT (flexidit.Load with m.DiT as the base);
	// nil is off. With Cache, the block cache runs the powerful steps.
	Flex *imagegen.FlexOptions
}

// counter wraps a model, counting passes and FLOPs.
type counter struct {
	m     diffusion.Model
	cfg   Config
	evals int
	flops float64
}

func (c *counter) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	c.evals++
	c.flops += imagegen.FLOPs(c.cfg.Config, x.Dim(0))
	return c.m.Predict(x, t, y)
}

// generateDefaults fills o's zero fields and checks the sampling options.
func generateDefaults(o GenerateOptions) (GenerateOptions, error) {
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.Steps < 1 {
		return o, fmt.Errorf("generate: steps must be at least 1 (have %d)", o.Steps)
	}
	if o.CFG == 0 {
		o.CFG = 1
	}
	if o.Batch < 1 {
		o.Batch = 64
	}
	if o.Sampler == "" {
		o.Sampler = "euler"
	}
	if o.Sampler == "ddim" {
		return o, fmt.Errorf("generate: the ddim sampler is for epsilon-prediction models; this model predicts velocity")
	}
	if o.Schedule == "" {
		o.Schedule = "uniform"
	}
	if o.Schedule != "shifted" {
		o.Shift = 0 // only the shifted schedule reads it
	}
	return o, nil
}

// Generate samples one image per prompt ("" is unconditional). Sample i's
// starting noise depends only on (Seed, i), as in imagegen.Generate, so
// the same seed gives the same images whatever the batch size. Images are
// [C, H, W] tensors in [-1, 1] (clamped). Stats count the DiT passes (a
// guided pass counts once, at twice the batch) plus the text encoder's
// FLOPs for encoding the prompts once. With o.Cache set the network runs
// with block caching, and block evaluations and FLOPs count only the
// blocks computed; GenerateAccel also returns the cache's statistics.
func Generate(m *Model, prompts []string, o GenerateOptions) ([]*tensor.Tensor, imagegen.Stats, error) {
	imgs, st, err := GenerateAccel(m, prompts, o)
	return imgs, st.Stats, err
}

// GenerateAccel is Generate with the block cache's statistics (hits per
// block and branch, hit rate, the plan file) in AccelStats.Cache when
// o.Cache is on. Profiles and plans the cache needs are loaded or
// computed (and stored) before the clock starts; the same seed gives each
// image the same starting noise as the uncached run, so the two compare
// image by image.
func GenerateAccel(m *Model, prompts []string, o GenerateOptions) ([]*tensor.Tensor, imagegen.AccelStats, error) {
	cfg := m.Config
	n := len(prompts)
	if n < 1 {
		return nil, imagegen.AccelStats{}, fmt.Errorf("generate: no prompts")
	}
	o, err := generateDefaults(o)
	if err != nil {
		return nil, imagegen.AccelStats{}, err
	}
	for i, p := range prompts {
		// "" is the unconditional prompt; anything else must fit.
		if err := cfg.Text.CheckPrompt(p); p != "" && err != nil {
			return nil, imagegen.AccelStats{}, fmt.Errorf("generate: prompt %d: %w", i, err)
		}
	}
	prec, err := nn.ParsePrecision(o.Precision)
	if err != nil {
		return nil, imagegen.AccelStats{}, fmt.Errorf("generate: %w", err)
	}
	nn.SetPrecision(m, prec)
	defer nn.SetPrecision(m, nn.F32)
	// Encode each distinct prompt once; labels index them.
	index := map[string]int{}
	var uniq []string
	labels := make([]int, n)
	for i, p := range prompts {
		k, ok := index[p]
		if !ok {
			k = len(uniq)
			index[p] = k
			uniq = append(uniq, p)
		}
		labels[i] = k
	}
	encStart := time.Now()
	pm := NewPrompted(m, uniq)
	encSeconds := time.Since(encStart).Seconds()
	var net diffusion.Model = pm
	var cache *blockcache.Cache
	var report *imagegen.CacheReport
	var flex *flexidit.Sampler
	if o.Cache.Mode != "" {
		if cache, report, err = newCache(m, pm, o); err != nil {
			return nil, imagegen.AccelStats{}, fmt.Errorf("generate: %w", err)
		}
		net = cache
	}
	if f := o.Flex; f != nil {
		// The weak passes are conditioned on this call's prompts (a copy
		// of the flexified model sharing its weights).
		fm := *f.Model
		fm.Cond = pm
		if flex, err = f.Sampler(m.DiT, &fm, o.Steps, o.Sampler, pm.Null()); err != nil {
			return nil, imagegen.AccelStats{}, fmt.Errorf("generate: %w", err)
		}
		flex.Powerful = pm
		if cache != nil {
			// The cache runs the powerful steps; a weak step leaves it
			// aligned with the plan and drops its state.
			flex.Powerful, flex.Skip = cache, cache.Skip
		}
		nn.SetPrecision(&fm, prec)
		defer nn.SetPrecision(&fm, nn.F32)
		net = flex
	}
	start := time.Now()
	cnt := &counter{m: net, cfg: cfg}
	var model diffusion.Model = cnt
	if o.CFG != 1 {
		model = diffusion.Guided{Model: cnt, Scale: o.CFG, Null: pm.Null()}
	}
	c, s := cfg.InChannels, cfg.InputSize
	per := c * s * s
	out := make([]*tensor.Tensor, 0, n)
	prog := o.Progress
	if prog.Label == "" {
		prog.Label = "generate"
	}
	bar := progress.New(n, prog)
	for lo := 0; lo < n; lo += o.Batch {
		hi := min(lo+o.Batch, n)
		noise := tensor.New(hi-lo, c, s, s)
		nd := noise.Data()
		for i := lo; i < hi; i++ {
			copy(nd[(i-lo)*per:], imagegen.SampleNoise(o.Seed, i, per))
		}
		if cache != nil {
			cache.Reset() // a plan indexes the evaluations of one trajectory
		}
		if flex != nil {
			flex.Reset() // the schedule indexes the evaluations of one trajectory
		}
		x, _, err := diffusion.Sample(model, noise, labels[lo:hi], diffusion.Options{
			Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps})
		if err != nil {
			bar.Finish()
			return nil, imagegen.AccelStats{}, fmt.Errorf("generate: %w", err)
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
	bar.Finish()
	st := imagegen.AccelStats{Stats: imagegen.Stats{N: n, WallSeconds: encSeconds + time.Since(start).Seconds(), NetworkEvals: cnt.evals,
		BlockEvals: cnt.evals * cfg.Depth, FLOPs: cnt.flops + cfg.Text.FLOPs(len(uniq)+1), Steps: o.Steps,
		Sampler: o.Sampler, Schedule: o.Schedule, CFG: o.CFG, Precision: prec.String()}}
	if flex != nil {
		// Weak rows at the weak patch size's cost.
		st.FLOPs = imagegen.FLOPs(cfg.Config, 1)*float64(flex.PowerfulRows) + imagegen.FLOPs(flex.Flex.WeakConfig(), 1)*float64(flex.WeakRows) +
			cfg.Text.FLOPs(len(uniq)+1)
		st.Flex = &imagegen.FlexReport{WeakPatch: flex.Flex.Config.WeakPatch, WeakSteps: o.Flex.WeakSteps, Reverse: o.Flex.Reverse,
			WeakGuidance: o.Flex.WeakGuidance, WeakRows: flex.WeakRows, PowerfulRows: flex.PowerfulRows, Schedule: flex.Schedule()}
	}
	if cache != nil {
		cs := cache.Stats()
		fillReport(report, cs)
		// Blocks not computed cost nothing: subtract them at one block's
		// FLOPs per row.
		st.FLOPs += blockFLOPs(cfg.Config) * float64(cs.RowBlockEvals-cs.RowBlockTotal)
		st.BlockEvals = cs.BlockEvals
		if flex != nil {
			st.BlockEvals += flex.WeakCalls * cfg.Depth
		}
		st.Cache = report
	}
	return out, st, nil
}

// blockFLOPs is the analytic cost of one DiT block on one sample.
func blockFLOPs(c dit.Config) float64 {
	one, none := c, c
	one.Depth, none.Depth = 1, 0
	return imagegen.FLOPs(one, 1) - imagegen.FLOPs(none, 1)
}
