package blockcache

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/internal/atomicfile"
	"tessera/nn"
	"tessera/tensor"
)

// Setting is what a profile and a plan are made for: the model and the
// sampling run. A plan indexes network evaluations, so it only fits runs
// with the same setting.
type Setting struct {
	Model    string  `json:"model"` // Fingerprint of the weights
	Sampler  string  `json:"sampler"`
	Schedule string  `json:"schedule"`
	Shift    float64 `json:"shift,omitempty"`
	Steps    int     `json:"steps"`
	CFG      float64 `json:"cfg"`
	// Calibration identifies the calibration labels when they are not the
	// network's classes (a hash of the prompts of a text-to-image model);
	// empty for class models.
	Calibration string `json:"calibration,omitempty"`
}

// Key names the setting in file names.
func (s Setting) Key() string {
	k := fmt.Sprintf("%s-%s-%s-%g-%d-cfg%g", s.Model, s.Sampler, s.Schedule, s.Shift, s.Steps, s.CFG)
	if s.Calibration != "" {
		k += "-cal" + s.Calibration
	}
	return k
}

// Fingerprint identifies a DiT by a hash of its configuration and weights.
func Fingerprint(m *dit.Model) string { return FingerprintOf(m.Config, m) }

// FingerprintOf identifies a model by a hash of its configuration (as
// printed by %+v) and of the names and values of the parameters reachable
// from weights (nn.NamedParams).
func FingerprintOf(config, weights any) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", config)
	var buf [4]byte
	for _, p := range nn.NamedParams(weights) {
		h.Write([]byte(p.Name))
		for _, v := range p.Var.Value.Contiguous().Data() {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			h.Write(buf[:])
		}
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Profile is each block's mean relative L1 output change per network
// evaluation, per guidance branch: Delta[branch][block][eval], with
// Delta[·][·][0] = 0 (nothing to compare with). A branch absent from the
// calibration runs (the unconditional one without guidance) has nil rows.
// Delta2 is the same for the second difference of the block's residual
// (output minus input), ‖r_e − 2r_{e−1} + r_{e−2}‖₁ / ‖o_e‖₁, zero for
// the first two evaluations: how far the residual departs from a straight
// line, which is what forecast reuse gets wrong.
type Profile struct {
	Setting
	Samples int            `json:"samples"`
	Delta   [2][][]float64 `json:"delta"`
	Delta2  [2][][]float64 `json:"delta2,omitempty"`
}

// Evals is the number of network evaluations per trajectory.
func (p *Profile) Evals() int {
	if len(p.Delta[Cond]) == 0 {
		return 0
	}
	return len(p.Delta[Cond][0])
}

// ProfileOptions configures ProfileModel.
type ProfileOptions struct {
	Sampler  string  // default euler
	Schedule string  // default uniform
	Shift    float64 // for the shifted schedule
	Steps    int     // default 32
	CFG      float64 // guidance weight; 1 (default 0 means 1) disables guidance
	Samples  int     // calibration images (default 64)
	Batch    int     // images per batch (default 32)
	Seed     uint64  // calibration noise seed
	// Model identifies the network's weights in the profile's Setting
	// (default: Fingerprint(m) for a *dit.Model; other networks must set
	// it to be stored).
	Model string
	// Calibration identifies the calibration labels in the Setting (see
	// Setting.Calibration).
	Calibration string
}

func (o *ProfileOptions) defaults() {
	if o.Sampler == "" {
		o.Sampler = "euler"
	}
	if o.Schedule == "" {
		o.Schedule = "uniform"
	}
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.CFG == 0 {
		o.CFG = 1
	}
	if o.Samples == 0 {
		o.Samples = 64
	}
	if o.Batch == 0 {
		o.Batch = 32
	}
	if o.Schedule != "shifted" {
		o.Shift = 0 // only the shifted schedule reads it
	}
}

// setting is the Setting o describes for m.
func (o ProfileOptions) setting(m dit.Staged) Setting {
	id := o.Model
	if d, ok := m.(*dit.Model); ok && id == "" {
		id = Fingerprint(d)
	}
	return Setting{Model: id, Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps, CFG: o.CFG, Calibration: o.Calibration}
}

// ProfileModel samples o.Samples images with m uncached (labels cycling
// through 0 … m.Null()−1: the classes, or the calibration prompts of a
// text-to-image model; guidance as in o) and measures every block's
// relative L1 change per sample between consecutive network evaluations,
// averaged over the samples.
func ProfileModel(m dit.Staged, o ProfileOptions) (*Profile, error) {
	o.defaults()
	if m == nil {
		return nil, fmt.Errorf("blockcache profile: no network")
	}
	if o.Samples < 1 || o.Batch < 1 || o.Steps < 1 {
		return nil, fmt.Errorf("blockcache profile: samples, batch and steps must be positive (have %d, %d, %d)", o.Samples, o.Batch, o.Steps)
	}
	rec := &recorder{m: m}
	var model diffusion.Model = rec
	if o.CFG != 1 {
		model = diffusion.Guided{Model: rec, Scale: o.CFG, Null: m.Null()}
	}
	err := trajectories(m, o.Samples, o.Batch, o.Seed, func(noise *tensor.Tensor, y []int) error {
		rec.reset()
		_, _, err := diffusion.Sample(model, noise, y, diffusion.Options{Sampler: o.Sampler, Schedule: o.Schedule, Shift: o.Shift, Steps: o.Steps})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("blockcache profile: %w", err)
	}
	p := &Profile{Setting: o.setting(m), Samples: o.Samples}
	for b := range rec.sum {
		if rec.sum[b] == nil {
			continue
		}
		p.Delta[b] = make([][]float64, m.Depth())
		p.Delta2[b] = make([][]float64, m.Depth())
		for i := range p.Delta[b] {
			p.Delta[b][i] = make([]float64, len(rec.sum[b][i]))
			p.Delta2[b][i] = make([]float64, len(rec.sum[b][i]))
			for e, s := range rec.sum[b][i] {
				if n := rec.count[b][i][e]; n > 0 {
					p.Delta[b][i][e] = s / float64(n)
					p.Delta2[b][i][e] = rec.sum2[b][i][e] / float64(n)
				}
			}
		}
	}
	return p, nil
}

// trajectories calls run for successive batches of calibration noise (the
// same for a seed) and labels cycling through 0 … m.Null()−1.
func trajectories(m dit.Staged, samples, batch int, seed uint64, run func(noise *tensor.Tensor, y []int) error) error {
	shape := m.SampleShape()
	rng := tensor.NewRNG(seed ^ 0xB10C)
	for lo := 0; lo < samples; lo += batch {
		hi := min(lo+batch, samples)
		noise := rng.Normal(append([]int{hi - lo}, shape...)...)
		y := make([]int, hi-lo)
		for i := range y {
			y[i] = (lo + i) % max(m.Null(), 1)
		}
		if err := run(noise, y); err != nil {
			return err
		}
	}
	return nil
}

// recorder runs the model uncached and accumulates per-row relative
// changes of every block's output, sum[branch][block][eval], and second
// differences of its residual, sum2.
type recorder struct {
	m         dit.Staged
	eval      int
	prev      [][]*tensor.Tensor // [block] last output, whole batch
	res, res1 []*tensor.Tensor   // [block] residual at the last and the one before
	sum, sum2 [2][][]float64
	count     [2][][]int
}

func (r *recorder) reset() {
	r.eval = 0
	r.prev = make([][]*tensor.Tensor, r.m.Depth())
	r.res, r.res1 = make([]*tensor.Tensor, r.m.Depth()), make([]*tensor.Tensor, r.m.Depth())
}

func (r *recorder) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	m := r.m
	if err := m.Check(x.Shape(), t, y); err != nil {
		return nil, err
	}
	br := branches(y, m.Null())
	e := r.eval
	out, err := dit.PredictStaged(m, x, t, y, func(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
		o := m.RunBlock(g, i, h, c)
		ov := o.Value.Contiguous()
		res := sub(ov, h.Value)
		if prev := r.prev[i]; len(prev) == 1 && e > 0 {
			pv := prev[0].Data()
			cur := ov.Data()
			per := len(cur) / ov.Dim(0)
			var rv, r1, r2 []float32
			if r.res1[i] != nil && e > 1 {
				rv, r1, r2 = res.Data(), r.res[i].Data(), r.res1[i].Data()
			}
			for b := range br {
				for row := br[b][0]; row < br[b][1]; row++ {
					lo, hi := row*per, (row+1)*per
					d := relL1Slice(cur[lo:hi], pv[lo:hi])
					d2 := 0.0
					if rv != nil {
						d2 = secondDiff(rv[lo:hi], r1[lo:hi], r2[lo:hi], cur[lo:hi])
					}
					r.add(b, i, e, d, d2)
				}
			}
		} else {
			for b := range br {
				if br[b][1] > br[b][0] {
					r.add(b, i, e, 0, 0)
				}
			}
		}
		r.prev[i] = []*tensor.Tensor{ov}
		r.res1[i], r.res[i] = r.res[i], res
		return autodiff.Const(ov)
	})
	r.eval++
	return out, err
}

// add records change d and residual second difference d2 of block i at
// evaluation e for branch b.
func (r *recorder) add(b, i, e int, d, d2 float64) {
	if r.sum[b] == nil {
		r.sum[b] = make([][]float64, r.m.Depth())
		r.sum2[b] = make([][]float64, r.m.Depth())
		r.count[b] = make([][]int, r.m.Depth())
	}
	for len(r.sum[b][i]) <= e {
		r.sum[b][i] = append(r.sum[b][i], 0)
		r.sum2[b][i] = append(r.sum2[b][i], 0)
		r.count[b][i] = append(r.count[b][i], 0)
	}
	r.sum[b][i][e] += d
	r.sum2[b][i][e] += d2
	r.count[b][i][e]++
}

// secondDiff is ‖r − 2r1 + r2‖₁ / ‖o‖₁.
func secondDiff(r, r1, r2, o []float32) float64 {
	var num, den float64
	for j, v := range r {
		num += math.Abs(float64(v - 2*r1[j] + r2[j]))
		den += math.Abs(float64(o[j]))
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// relL1Slice is ‖cur − prev‖₁ / ‖cur‖₁.
func relL1Slice(cur, prev []float32) float64 {
	var num, den float64
	for j, v := range cur {
		num += math.Abs(float64(v - prev[j]))
		den += math.Abs(float64(v))
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// Reuse is what the scheduled cache puts in place of a block it skips.
type Reuse string

const (
	// ReuseOutput reuses the block's last computed output o (the paper's
	// block caching).
	ReuseOutput Reuse = ""
	// ReuseResidual adds the block's last computed residual o − h to the
	// block's fresh input h, so the skipped block's output follows the
	// blocks before it.
	ReuseResidual Reuse = "residual"
	// ReuseForecast is residual reuse with the residual extrapolated
	// linearly in the sampler's time from the block's last two
	// computations, r + (t − t₁)/(t₁ − t₀)·(r − r₀), as feature
	// forecasting does (TaylorSeer, first order); before a block's second
	// computation it is ReuseResidual.
	ReuseForecast Reuse = "forecast"
)

// Plan is a fixed cache schedule: Compute[branch][block][eval] says
// whether the block is computed (true) or its cache reused, Reuse what is
// cached (the output or the residual), and Scale, Bias (nil without
// scale-shift) hold the scalars applied to the cached tensor.
type Plan struct {
	Setting
	Threshold float64        `json:"threshold"`
	Reuse     Reuse          `json:"reuse,omitempty"`
	Compute   [2][][]bool    `json:"compute"`
	Scale     [2][][]float32 `json:"scale,omitempty"`
	Bias      [2][][]float32 `json:"bias,omitempty"`
}

// NewPlan is the automatic schedule for threshold d: per branch and block,
// evaluation 0 computes; afterwards the change Δ accumulates from the last
// computation, and the block is recomputed (and the sum reset) at the
// first evaluation where the sum exceeds d. A branch the profile lacks is
// always computed.
func NewPlan(p *Profile, d float64) *Plan {
	n := p.Evals()
	pl := &Plan{Setting: p.Setting, Threshold: d}
	for b := range pl.Compute {
		pl.Compute[b] = make([][]bool, len(p.Delta[Cond]))
		for i := range pl.Compute[b] {
			row := make([]bool, n)
			var delta []float64
			if p.Delta[b] != nil {
				delta = p.Delta[b][i]
			}
			acc := 0.0
			for e := range row {
				if e == 0 || delta == nil || e >= len(delta) {
					row[e] = true
					continue
				}
				acc += delta[e]
				if acc > d {
					row[e] = true
					acc = 0
				}
			}
			pl.Compute[b][i] = row
		}
	}
	return pl
}

// NewForecastPlan is the automatic schedule for forecast reuse at
// threshold d: per branch and block, evaluations 0 and 1 compute (a
// forecast needs two computations); afterwards the block is recomputed at
// the first evaluation where the estimated forecast error exceeds d. For
// a block last computed at e₀, and before that at e₀ − g, the estimate k
// evaluations later is
//
//	k·Σ_{j∈(e₀−g, e₀]} Δ2_j·(j − e₀ + g)/g + Σ_{j=1…k} (k − j + 1)·Δ2_{e₀+j},
//
// the profile's residual second differences Δ2 propagated through the
// slope taken over the last interval and through the extrapolation. A
// profile without Δ2 gives NewPlan's schedule.
func NewForecastPlan(p *Profile, d float64) *Plan {
	if p.Delta2[Cond] == nil {
		return NewPlan(p, d)
	}
	n := p.Evals()
	pl := &Plan{Setting: p.Setting, Threshold: d, Reuse: ReuseForecast}
	for b := range pl.Compute {
		pl.Compute[b] = make([][]bool, len(p.Delta[Cond]))
		for i := range pl.Compute[b] {
			row := make([]bool, n)
			var d2 []float64
			if p.Delta2[b] != nil {
				d2 = p.Delta2[b][i]
			}
			last, prev := 0, -1
			for e := range row {
				if e < 2 || d2 == nil || e >= len(d2) {
					row[e] = true
					last, prev = e, last
					continue
				}
				g := last - prev
				slope := 0.0
				for j := prev + 1; j <= last; j++ {
					slope += d2[j] * float64(j-prev) / float64(g)
				}
				k := e - last
				est := float64(k) * slope
				for j := 1; j <= k; j++ {
					est += float64(k-j+1) * d2[last+j]
				}
				if est > d {
					row[e] = true
					last, prev = e, last
				}
			}
			pl.Compute[b][i] = row
		}
	}
	return pl
}

// Evals is the number of network evaluations the plan covers.
func (p *Plan) Evals() int {
	if len(p.Compute[Cond]) == 0 {
		return 0
	}
	return len(p.Compute[Cond][0])
}

// check reports whether branch b of the plan has a schedule for each of
// depth blocks over Evals() evaluations, and scale-shift scalars of the
// same shape if it has any.
func (p *Plan) check(b, depth int) error {
	n := p.Evals()
	if len(p.Compute[b]) != depth {
		return fmt.Errorf("blockcache: plan branch %d schedules %d blocks, want %d", b, len(p.Compute[b]), depth)
	}
	for i, row := range p.Compute[b] {
		if len(row) != n {
			return fmt.Errorf("blockcache: plan branch %d block %d covers %d evaluations, want %d", b, i, len(row), n)
		}
	}
	if (p.Scale[b] == nil) != (p.Bias[b] == nil) || (p.Scale[b] == nil) != (p.Scale[Cond] == nil) {
		return fmt.Errorf("blockcache: plan branch %d has scale without bias or the other way round", b)
	}
	for _, t := range [][][]float32{p.Scale[b], p.Bias[b]} {
		if t == nil {
			continue
		}
		if len(t) != depth {
			return fmt.Errorf("blockcache: plan branch %d has scale-shift for %d blocks, want %d", b, len(t), depth)
		}
		for i, row := range t {
			if len(row) != n {
				return fmt.Errorf("blockcache: plan branch %d block %d has scale-shift for %d evaluations, want %d", b, i, len(row), n)
			}
		}
	}
	return nil
}

// ComputeFraction is the fraction of (block, evaluation) pairs computed for
// a branch.
func (p *Plan) ComputeFraction(branch int) float64 {
	n, on := 0, 0
	for _, row := range p.Compute[branch] {
		for _, c := range row {
			n++
			if c {
				on++
			}
		}
	}
	if n == 0 {
		return 1
	}
	return float64(on) / float64(n)
}

// SaveJSON writes v as indented JSON to path, creating its folder, through
// a temporary file so readers never see a partial one.
func SaveJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("blockcache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("blockcache: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("blockcache: %w", err)
	}
	return nil
}

// LoadJSON reads a file SaveJSON wrote into v.
func LoadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("blockcache: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("blockcache: %s: %w", path, err)
	}
	return nil
}

// DefaultDir is where profiles and plans are stored unless told otherwise:
// $TESSERA_CACHE_DIR, else the user cache folder's tessera/blockcache.
func DefaultDir() string {
	if d := os.Getenv("TESSERA_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "tessera", "blockcache")
}
