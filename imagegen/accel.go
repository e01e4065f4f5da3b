package imagegen

import (
	"fmt"
	"strconv"
	"strings"

	"tessera/blockcache"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/flexidit"
	"tessera/nn"
	"tessera/tensor"
)

// Block-caching defaults: conservative, chosen from the measured
// speed/quality curve of the mnist model (README, "Accelerators").
const (
	// DefaultCacheThreshold is the accumulated relative L1 change d above
	// which a scheduled block is recomputed.
	DefaultCacheThreshold = 0.05
	// DefaultForecastThreshold is d for forecast reuse ("fc", "fc-plan"):
	// the estimated forecast error (from the profile's residual second
	// differences) above which a block is recomputed. On mnist (n = 2,000)
	// it skips half the block computations at no FID cost.
	DefaultForecastThreshold = 0.03
	// DefaultDynamicThreshold is the first-block residual change below which
	// the dynamic cache skips the remaining blocks.
	DefaultDynamicThreshold = 0.05
	// DefaultCalibration is the number of calibration images used to
	// profile a model and to train scale-shift.
	DefaultCalibration = 64
)

// CacheOptions configures block caching in GenerateAccel.
type CacheOptions struct {
	// Mode is "" (off), "plan" (automatic schedule), "ss" (schedule with
	// trained scale-shift, the recommended mode) or "dynamic" (first-block
	// caching).
	Mode string
	// Residual makes "plan"/"ss" reuse each skipped block's last residual
	// (output minus input) added to its fresh input instead of its last
	// output (blockcache.ReuseResidual).
	Residual bool
	// Forecast, with Residual, extrapolates each skipped block's residual
	// linearly in time from its last two computations
	// (blockcache.ReuseForecast).
	Forecast bool
	// Threshold is d for "plan"/"ss" and the first-block threshold for
	// "dynamic"; 0 takes the default.
	Threshold float64
	// Dir stores profiles and plans (default blockcache.DefaultDir()).
	Dir string
	// Calibration images for profiling and scale-shift (default 64).
	Calibration int
	// Log, when set, receives a line when a profile or plan is computed
	// rather than loaded.
	Log func(msg string)
}

// ParseCache reads the --cache flag: off, plan[:d], ss[:d], res[:d],
// res-plan[:d], fc[:d], fc-plan[:d] or dynamic[:thr] (for instance
// "ss:0.3"). "res" is "ss" with residual reuse, "res-plan" is "plan" with
// it; "fc" and "fc-plan" forecast the residual instead.
func ParseCache(spec string) (CacheOptions, error) {
	mode, val, hasVal := strings.Cut(strings.TrimSpace(spec), ":")
	var o CacheOptions
	switch mode {
	case "", "off", "none":
		return o, nil
	case "plan", "ss", "dynamic":
		o.Mode = mode
	case "res":
		o.Mode, o.Residual = "ss", true
	case "res-plan":
		o.Mode, o.Residual = "plan", true
	case "fc":
		o.Mode, o.Residual, o.Forecast = "ss", true, true
	case "fc-plan":
		o.Mode, o.Residual, o.Forecast = "plan", true, true
	default:
		return o, fmt.Errorf("--cache %q: want off, plan[:d], ss[:d], res[:d], res-plan[:d], fc[:d], fc-plan[:d] or dynamic[:threshold]", spec)
	}
	if hasVal {
		d, err := strconv.ParseFloat(val, 64)
		if err != nil || !(d > 0) {
			return o, fmt.Errorf("--cache %q: threshold must be a positive number", spec)
		}
		o.Threshold = d
	}
	return o, nil
}

// Name is the mode as ParseCache spells it: "ss", "plan", "res",
// "res-plan", "fc", "fc-plan", "dynamic", or "off".
func (c CacheOptions) Name() string {
	switch {
	case c.Mode == "":
		return "off"
	case c.Forecast && c.Mode == "ss":
		return "fc"
	case c.Forecast && c.Mode == "plan":
		return "fc-plan"
	case c.Residual && c.Mode == "ss":
		return "res"
	case c.Residual && c.Mode == "plan":
		return "res-plan"
	}
	return c.Mode
}

// Reuse is what c's scheduled cache reuses of a skipped block.
func (c CacheOptions) Reuse() blockcache.Reuse {
	switch {
	case c.Residual && c.Forecast:
		return blockcache.ReuseForecast
	case c.Residual:
		return blockcache.ReuseResidual
	}
	return blockcache.ReuseOutput
}

// FlexOptions configures FlexiDiT in GenerateAccel.
type FlexOptions struct {
	Model *flexidit.Model // the flexified model (its Base is the model generated with)
	// WeakSteps is T_weak: the first WeakSteps sampling steps run at the
	// weak patch size. 0 runs the powerful model only.
	WeakSteps int
	// Reverse puts the weak steps last (a control: it should do worse).
	Reverse bool
	// WeakGuidance evaluates the unconditional branch of guidance with the
	// weak model at every step.
	WeakGuidance bool
}

// Sampler returns the FlexiDiT scheduler of these options for a trajectory
// of steps steps of the named sampler (Heun evaluates twice per step but
// the last), running model's weak passes and null as the unconditional
// label. It checks that model is the flexified version of base.
func (o FlexOptions) Sampler(base *dit.Model, model *flexidit.Model, steps int, sampler string, null int) (*flexidit.Sampler, error) {
	if o.Model == nil || o.Model.Base != base {
		return nil, fmt.Errorf("--flex needs the flexified version of this model")
	}
	if o.WeakSteps > steps {
		return nil, fmt.Errorf("%d weak steps of %d", o.WeakSteps, steps)
	}
	per, total := 1, steps
	if sampler == "heun" {
		per, total = 2, 2*steps-1
	}
	return &flexidit.Sampler{Flex: model, WeakEvals: min(per*o.WeakSteps, total), Total: total, Reverse: o.Reverse,
		WeakGuidance: o.WeakGuidance, Null: null}, nil
}

// ParseFlex reads the --flex flag: T_weak, the number of weak steps,
// optionally followed by ",reverse" and/or ",weak-guidance" (for instance
// "12" or "12,weak-guidance").
func ParseFlex(spec string) (FlexOptions, error) {
	var o FlexOptions
	parts := strings.Split(spec, ",")
	k, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || k < 0 {
		return o, fmt.Errorf("--flex %q: want the number of weak steps, then optionally ,reverse or ,weak-guidance", spec)
	}
	o.WeakSteps = k
	for _, p := range parts[1:] {
		switch strings.TrimSpace(p) {
		case "reverse":
			o.Reverse = true
		case "weak-guidance":
			o.WeakGuidance = true
		default:
			return o, fmt.Errorf("--flex %q: unknown option %q (want reverse or weak-guidance)", spec, p)
		}
	}
	return o, nil
}

// FlexReport is FlexiDiT's part of AccelStats.
type FlexReport struct {
	WeakPatch    int    `json:"weak_patch"`
	WeakSteps    int    `json:"weak_steps"`
	Reverse      bool   `json:"reverse,omitempty"`
	WeakGuidance bool   `json:"weak_guidance,omitempty"`
	WeakRows     int    `json:"weak_rows"`     // image-evaluations at the weak patch size
	PowerfulRows int    `json:"powerful_rows"` // and at the model's own
	Schedule     string `json:"schedule"`      // one letter per network evaluation: W weak, P powerful
}

// AccelOptions selects the accelerators of GenerateAccel; they combine.
type AccelOptions struct {
	Cache CacheOptions
	Flex  *FlexOptions // nil: off
}

// CacheReport is the block cache's part of AccelStats.
type CacheReport struct {
	Mode      string  `json:"mode"` // as ParseCache spells it (CacheOptions.Name)
	Threshold float64 `json:"threshold"`
	// HitsPerBlock counts, per block, the branch evaluations that reused
	// the cache (a guided evaluation has two branches).
	HitsPerBlock []int `json:"hits_per_block"`
	// HitRatePerBlock is HitsPerBlock over all branch evaluations.
	HitRatePerBlock []float64 `json:"hit_rate_per_block"`
	// HitRate is the fraction of block computations (per image) skipped.
	HitRate float64                 `json:"hit_rate"`
	Blocks  []blockcache.BlockStats `json:"blocks"`
	// PlanFile is the stored plan used (scheduled modes).
	PlanFile string `json:"plan_file,omitempty"`
}

// AccelStats is Stats with the accelerators' own statistics.
type AccelStats struct {
	Stats
	Cache *CacheReport `json:"cache,omitempty"`
	Flex  *FlexReport  `json:"flex,omitempty"`
}

// CacheProfile returns the stored profile for m and the sampling run of o,
// computing and storing it first when there is none.
func CacheProfile(m *dit.Model, o GenerateOptions, c CacheOptions) (*blockcache.Profile, string, error) {
	o = withDefaults(o)
	c = c.WithDefaults()
	return blockcache.Store{Dir: c.Dir, Log: c.Log}.Profile(m, profileOptions(o, c))
}

// CachePlan returns the schedule of c's mode and threshold for m and the
// run of o, with trained scale-shift in mode "ss", reusing outputs or
// residuals as c.Residual says. Profiles and trained
// plans are stored in c.Dir and reused.
func CachePlan(m *dit.Model, o GenerateOptions, c CacheOptions) (*blockcache.Plan, string, error) {
	o = withDefaults(o)
	c = c.WithDefaults()
	return blockcache.Store{Dir: c.Dir, Log: c.Log}.Plan(m, profileOptions(o, c), c.Threshold, c.Mode == "ss", c.Reuse())
}

// profileOptions is the calibration run of a generation run.
func profileOptions(o GenerateOptions, c CacheOptions) blockcache.ProfileOptions {
	return blockcache.ProfileOptions{Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps, CFG: o.CFG,
		Samples: c.Calibration, Batch: min(32, c.Calibration)}
}

// WithDefaults fills c's zero fields: the default threshold of its mode,
// the default store folder and calibration size.
func (c CacheOptions) WithDefaults() CacheOptions {
	if c.Threshold == 0 {
		switch {
		case c.Mode == "dynamic":
			c.Threshold = DefaultDynamicThreshold
		case c.Forecast:
			c.Threshold = DefaultForecastThreshold
		default:
			c.Threshold = DefaultCacheThreshold
		}
	}
	if c.Dir == "" {
		c.Dir = blockcache.DefaultDir()
	}
	if c.Calibration == 0 {
		c.Calibration = DefaultCalibration
	}
	return c
}

// withDefaults fills GenerateOptions' zero fields as Generate does.
func withDefaults(o GenerateOptions) GenerateOptions {
	if o.Steps == 0 {
		o.Steps = 32
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
	if o.Schedule == "" {
		o.Schedule = "uniform"
	}
	return o
}

// resettable is an accelerated network with per-trajectory state.
type resettable interface {
	diffusion.Model
	Reset()
}

// GenerateAccel is Generate with accelerators: the same images for the
// same options when a is zero, and the same noise per sample otherwise,
// so accelerated and plain runs compare image by image. Profiles and
// plans the cache needs are loaded or computed before the clock starts.
func GenerateAccel(m *dit.Model, o GenerateOptions, a AccelOptions) ([]*tensor.Tensor, AccelStats, error) {
	if a.Cache.Mode == "" && a.Flex == nil {
		imgs, st, err := Generate(m, o)
		return imgs, AccelStats{Stats: st}, err
	}
	o = withDefaults(o)
	cfg := m.Config
	if err := checkGenerate(cfg, o); err != nil {
		return nil, AccelStats{}, err
	}
	models := []any{m}
	if a.Flex != nil && a.Flex.Model != nil {
		models = append(models, a.Flex.Model)
	}
	prec, restore := applyPrecision(o, models...)
	defer restore()
	var cache *blockcache.Cache
	var report *CacheReport
	if a.Cache.Mode != "" {
		c := a.Cache.WithDefaults()
		report = &CacheReport{Mode: c.Name(), Threshold: c.Threshold}
		switch c.Mode {
		case "dynamic":
			cache = blockcache.NewDynamic(m, c.Threshold)
		case "plan", "ss":
			plan, path, err := CachePlan(m, o, c)
			if err != nil {
				return nil, AccelStats{}, fmt.Errorf("generate: %w", err)
			}
			if cache, err = blockcache.New(m, plan); err != nil {
				return nil, AccelStats{}, fmt.Errorf("generate: %w", err)
			}
			report.PlanFile = path
		default:
			return nil, AccelStats{}, fmt.Errorf("generate: unknown cache mode %q", c.Mode)
		}
	}
	var flex *flexidit.Sampler
	var net resettable
	if cache != nil {
		net = cache
	}
	if a.Flex != nil {
		var err error
		if flex, err = a.Flex.Sampler(m, a.Flex.Model, o.Steps, o.Sampler, cfg.NumClasses); err != nil {
			return nil, AccelStats{}, fmt.Errorf("generate: %w", err)
		}
		if cache != nil {
			flex.Powerful, flex.Skip = cache, cache.Skip
		}
		net = flexReset{flex, cache}
	}
	cnt := &netCounter{m: net}
	imgs, wall, err := sampleAll(m, o, cnt)
	if err != nil {
		return nil, AccelStats{}, err
	}
	// FLOPs: everything but the blocks per row evaluated, plus the blocks
	// actually computed; weak rows at the weak model's cost.
	nonBlock := FLOPs(withDepth(cfg, 0), 1)
	blockFLOPs := FLOPs(withDepth(cfg, 1), 1) - nonBlock
	powRows, weakRows := cnt.rows, 0
	blockEvals := cnt.evals * cfg.Depth
	out := AccelStats{}
	if flex != nil {
		powRows, weakRows = flex.PowerfulRows, flex.WeakRows
		out.Flex = &FlexReport{WeakPatch: a.Flex.Model.Config.WeakPatch, WeakSteps: a.Flex.WeakSteps, Reverse: a.Flex.Reverse,
			WeakGuidance: a.Flex.WeakGuidance, WeakRows: weakRows, PowerfulRows: powRows, Schedule: flex.Schedule()}
	}
	flops := FLOPs(cfg, 1) * float64(powRows)
	if flex != nil {
		flops += FLOPs(flex.Flex.WeakConfig(), 1) * float64(weakRows)
		if cache == nil {
			blockEvals = cnt.evals * cfg.Depth
		}
	}
	if cache != nil {
		cs := cache.Stats()
		report.Blocks = cs.Blocks
		report.HitsPerBlock = cs.Hits()
		report.HitRate = cs.HitRate()
		report.HitRatePerBlock = cs.HitRates()
		flops += blockFLOPs * float64(cs.RowBlockEvals-cs.RowBlockTotal)
		blockEvals = cs.BlockEvals
		if flex != nil {
			blockEvals += flex.WeakCalls * cfg.Depth
		}
		out.Cache = report
	}
	out.Stats = Stats{N: o.N, WallSeconds: wall, NetworkEvals: cnt.evals, BlockEvals: blockEvals, FLOPs: flops,
		Steps: o.Steps, Sampler: o.Sampler, Schedule: o.Schedule, CFG: o.CFG, Precision: prec.String()}
	return imgs, out, nil
}

// flexReset resets the FlexiDiT scheduler and the cache it drives.
type flexReset struct {
	*flexidit.Sampler
	cache *blockcache.Cache
}

func (f flexReset) Reset() {
	f.Sampler.Reset()
	if f.cache != nil {
		f.cache.Reset()
	}
}

func withDepth(c dit.Config, d int) dit.Config { c.Depth = d; return c }

// netCounter counts network evaluations and the rows they carried.
type netCounter struct {
	m     resettable
	evals int
	rows  int
}

func (c *netCounter) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	c.evals++
	c.rows += x.Dim(0)
	return c.m.Predict(x, t, y)
}

// checkGenerate validates options as Generate does.
func checkGenerate(cfg dit.Config, o GenerateOptions) error {
	if o.N < 1 {
		return fmt.Errorf("generate: n must be at least 1 (have %d)", o.N)
	}
	if o.Steps < 1 {
		return fmt.Errorf("generate: steps must be at least 1 (have %d)", o.Steps)
	}
	if _, err := nn.ParsePrecision(o.Precision); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if o.Classes != nil && len(o.Classes) != o.N {
		return fmt.Errorf("generate: %d classes for %d images", len(o.Classes), o.N)
	}
	for i, k := range o.Classes {
		if k < 0 || k > cfg.NumClasses {
			return fmt.Errorf("generate: class %d of image %d outside 0..%d (%d = unconditional)", k, i, cfg.NumClasses-1, cfg.NumClasses)
		}
	}
	if cfg.PredictsEpsilon() != (o.Sampler == "ddim") {
		if o.Sampler == "ddim" {
			return fmt.Errorf("generate: the ddim sampler is for epsilon-prediction models; this model predicts velocity")
		}
		return fmt.Errorf("generate: sampler %s is for flow (velocity) models; this model predicts epsilon: use ddim", o.Sampler)
	}
	return nil
}

// sampleAll runs the sampling loop of Generate over an accelerated
// network, resetting its state before each batch's trajectory.
func sampleAll(m *dit.Model, o GenerateOptions, net *netCounter) ([]*tensor.Tensor, float64, error) {
	classes := o.Classes
	if classes == nil {
		classes = make([]int, o.N)
		for i := range classes {
			classes[i] = i % max(m.Config.NumClasses, 1)
		}
	}
	return sampleLoop(m.Config, net, classes, o, net.m.Reset)
}
