package t2i

import (
	"fmt"
	"hash/fnv"
	"math"

	"tessera/autodiff"
	"tessera/blockcache"
	"tessera/dit"
	"tessera/imagegen"
	"tessera/tensor"
)

// Block caching for the text-to-image model. A Prompted model is a
// dit.Staged network: its labels index the bound prompts and its Null
// label is the empty prompt, so blockcache runs it as it runs a class
// DiT, with separate state for the conditional and unconditional
// branches of guidance. Profiles and scale-shift are calibrated on a list
// of prompts (GenerateOptions.CalibrationPrompts) and stored per model,
// calibration prompts and sampling setting.

var (
	_ dit.Staged          = (*Prompted)(nil)
	_ blockcache.Weighted = (*Prompted)(nil)
)

// Check validates a batch: x [B, C, H, W] with the model's channels and
// size, B finite times and B prompt labels in 0 … Null().
func (p *Prompted) Check(xShape []int, t []float32, y []int) error {
	cfg := p.Model.Config
	s := xShape
	if len(s) != 4 || s[0] < 1 || s[1] != cfg.InChannels || s[2] != cfg.InputSize || s[3] != cfg.InputSize {
		return fmt.Errorf("t2i: input shape %v, want [B, %d, %d, %d]", s, cfg.InChannels, cfg.InputSize, cfg.InputSize)
	}
	if len(t) != s[0] || len(y) != s[0] {
		return fmt.Errorf("t2i: batch of %d with %d times and %d prompt labels", s[0], len(t), len(y))
	}
	for i, k := range y {
		if k < 0 || k > p.Null() {
			return fmt.Errorf("t2i: prompt label %d of sample %d outside 0..%d (%d = empty prompt)", k, i, p.Null(), p.Null())
		}
	}
	for i, v := range t {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("t2i: time %v of sample %d is not finite", v, i)
		}
	}
	return nil
}

// SampleShape is [InChannels, InputSize, InputSize].
func (p *Prompted) SampleShape() []int { return p.Model.DiT.SampleShape() }

// Embed patchifies x [B, C, H, W] and adds the position embedding:
// tokens [B, T, D].
func (p *Prompted) Embed(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return p.Model.DiT.Embed(g, x)
}

// Condition returns SiLU(t_emb + text(prompt y[i])) as [B, 1, D]: the
// pooled prompt embedding takes the place of the class embedding. Labels
// must be valid (Check).
func (p *Prompted) Condition(g *autodiff.Graph, t []float32, y []int) *autodiff.Var {
	d := p.Model.Config.HiddenSize
	text := tensor.New(len(y), d)
	td, ed := text.Data(), p.emb.Data()
	for i, k := range y {
		copy(td[i*d:(i+1)*d], ed[k*d:(k+1)*d])
	}
	c := g.Add(p.Model.DiT.TEmbedder.Forward(g, t), autodiff.Const(text)) // [B, D]
	return g.Reshape(g.SiLU(c), len(t), 1, d)
}

// Depth is the number of DiT blocks.
func (p *Prompted) Depth() int { return len(p.Model.DiT.Blocks) }

// RunBlock is DiT block i's forward pass.
func (p *Prompted) RunBlock(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
	return p.Model.DiT.Blocks[i].Forward(g, h, c)
}

// Decode runs the final layer on tokens h [B, T, D] and unpatchifies:
// the velocity [B, C, H, W].
func (p *Prompted) Decode(g *autodiff.Graph, h, c *autodiff.Var) *autodiff.Var {
	return p.Model.DiT.Decode(g, h, c)
}

// Channels returns out: the model has no learned-variance channels.
func (p *Prompted) Channels(out *tensor.Tensor) *tensor.Tensor { return p.Model.DiT.Channels(out) }

// Weights is the model whose parameters the prompts are bound to, for
// blockcache.TrainScaleShift to freeze.
func (p *Prompted) Weights() any { return p.Model }

// Fingerprint identifies m by a hash of its configuration and weights
// (the DiT's and the text encoder's), for stored cache profiles and plans.
func (m *Model) Fingerprint() string { return blockcache.FingerprintOf(m.Config, m) }

// promptsID identifies a list of prompts, in order.
func promptsID(prompts []string) string {
	h := fnv.New64a()
	for _, p := range prompts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// profileOptions is the blockcache view of o's sampling run calibrated on
// prompts for m.
func profileOptions(m *Model, o GenerateOptions, c imagegen.CacheOptions, prompts []string) blockcache.ProfileOptions {
	return blockcache.ProfileOptions{Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps, CFG: o.CFG,
		Samples: c.Calibration, Batch: min(32, c.Calibration), Model: m.Fingerprint(), Calibration: promptsID(prompts)}
}

// CacheProfile returns the stored block-cache profile of m for the
// sampling run of o calibrated on prompts, computing and storing it first
// when there is none (in c.Dir, default blockcache.DefaultDir()). It
// returns the file's path too.
func CacheProfile(m *Model, o GenerateOptions, c imagegen.CacheOptions, prompts []string) (*blockcache.Profile, string, error) {
	o, err := generateDefaults(o)
	if err != nil {
		return nil, "", err
	}
	c = c.WithDefaults()
	if err := checkCalibration(c, prompts); err != nil {
		return nil, "", err
	}
	return blockcache.Store{Dir: c.Dir, Log: c.Log}.Profile(NewPrompted(m, prompts), profileOptions(m, o, c, prompts))
}

// CachePlan returns the schedule of c's threshold for m and the sampling
// run of o, calibrated on prompts, with trained scale-shift in mode "ss".
// Profiles and trained plans are stored in c.Dir and reused.
func CachePlan(m *Model, o GenerateOptions, c imagegen.CacheOptions, prompts []string) (*blockcache.Plan, string, error) {
	o, err := generateDefaults(o)
	if err != nil {
		return nil, "", err
	}
	c = c.WithDefaults()
	if err := checkCalibration(c, prompts); err != nil {
		return nil, "", err
	}
	return blockcache.Store{Dir: c.Dir, Log: c.Log}.Plan(NewPrompted(m, prompts), profileOptions(m, o, c, prompts), c.Threshold, c.Mode == "ss", c.Reuse())
}

func checkCalibration(c imagegen.CacheOptions, prompts []string) error {
	if len(prompts) == 0 {
		return fmt.Errorf("block cache: no calibration prompts")
	}
	if c.Calibration < 1 {
		return fmt.Errorf("block cache: calibration images must be positive (have %d)", c.Calibration)
	}
	return nil
}

// newCache returns the block cache of o.Cache for pm (the generation's
// prompts bound to m), its report, and an error for an unknown mode or a
// failed calibration. Calibration prompts default to pm's prompts.
func newCache(m *Model, pm *Prompted, o GenerateOptions) (*blockcache.Cache, *imagegen.CacheReport, error) {
	c := o.Cache.WithDefaults()
	if !(c.Threshold > 0) {
		return nil, nil, fmt.Errorf("block cache: threshold must be positive (have %g)", c.Threshold)
	}
	rep := &imagegen.CacheReport{Mode: c.Name(), Threshold: c.Threshold}
	switch c.Mode {
	case "dynamic":
		return blockcache.NewDynamic(pm, c.Threshold), rep, nil
	case "plan", "ss":
		prompts := o.CalibrationPrompts
		if prompts == nil {
			prompts = pm.Prompts
		}
		plan, path, err := CachePlan(m, o, c, prompts)
		if err != nil {
			return nil, nil, err
		}
		cache, err := blockcache.New(pm, plan)
		if err != nil {
			return nil, nil, err
		}
		rep.PlanFile = path
		return cache, rep, nil
	}
	return nil, nil, fmt.Errorf("block cache: unknown mode %q (want plan, ss or dynamic)", c.Mode)
}

// fillReport completes rep with the cache's statistics.
func fillReport(rep *imagegen.CacheReport, s blockcache.Stats) {
	rep.Blocks = s.Blocks
	rep.HitsPerBlock = s.Hits()
	rep.HitRatePerBlock = s.HitRates()
	rep.HitRate = s.HitRate()
}
