// Package blockcache is Block Caching (Wimbauer et al., "Cache Me if You
// Can", CVPR 2024) for DiT sampling: a transformer block whose output has
// hardly changed since it was last computed is not run again; its cached
// output is reused, optionally corrected by a per-step scalar scale and
// shift.
//
// The pieces, in the order a user meets them:
//
//   - Profile: each block's relative L1 output change between consecutive
//     network evaluations, Δ_{i,t} = ‖o_{i,t} − o_{i,t−1}‖₁ / ‖o_{i,t}‖₁,
//     averaged over a calibration set, separately for the conditional and
//     the unconditional branch of classifier-free guidance.
//   - NewPlan: the automatic schedule. Block i is recomputed when its
//     accumulated change since its last computation exceeds the threshold
//     d, else its cached output is reused. A plan is fixed per (model,
//     sampler, schedule, steps, guidance) and is stored with the profile.
//   - Residual reuse (Plan.Reuse): instead of its last output, a skipped
//     block contributes its last residual (output minus input) added to
//     its fresh input, so it follows the recomputed blocks before it.
//   - Forecast reuse: the skipped block's residual is extrapolated
//     linearly in the sampler's time from its last two computations
//     instead of held constant.
//   - TrainScaleShift: per cached block and step, a scalar scale a and
//     shift b applied to the reused output, a·o + b, trained so that the
//     cached student, following its own trajectory, matches the uncached
//     teacher's prediction from the student's state.
//   - Dynamic: the on-the-fly variant for comparison ("first-block
//     caching"): block 0 always runs; the remaining blocks are skipped, and
//     their cached residual added, while block 0's residual has changed by
//     less than a threshold since the last full computation.
//
// Cache implements diffusion.Model, so it works with every sampler and
// under diffusion.Guided; it keeps separate state for the two guidance
// branches and counts hits per block. It runs any network whose forward
// pass comes in parts (dit.Staged): the class DiT (*dit.Model) and the
// text-to-image model with its prompts bound (t2i.Prompted), whose
// unconditional label is the empty prompt. Store keeps profiles and
// trained plans on disk so that each is computed once per setting.
package blockcache

import (
	"fmt"
	"slices"

	"tessera/autodiff"
	"tessera/dit"
	"tessera/internal/parallel"
	"tessera/internal/vec"
	"tessera/tensor"
)

// Branches of classifier-free guidance, the first index of per-branch
// tables.
const (
	Cond   = 0 // rows with a label (a class, a prompt)
	Uncond = 1 // rows with the network's Null label
)

// BlockStats counts one block's decisions over a run, per branch: an
// evaluation of the branch either computed the block or reused its cache.
type BlockStats struct {
	Computed [2]int `json:"computed"` // [cond, uncond]
	Reused   [2]int `json:"reused"`
}

// HitRate is the fraction of branch evaluations that reused the cache.
func (b BlockStats) HitRate() float64 {
	c := b.Computed[0] + b.Computed[1]
	r := b.Reused[0] + b.Reused[1]
	if c+r == 0 {
		return 0
	}
	return float64(r) / float64(c+r)
}

// Stats is what a cache did over a run.
type Stats struct {
	Blocks []BlockStats `json:"blocks"`
	// RowBlockEvals counts block computations per row (one image of one
	// branch): the FLOPs the blocks cost are proportional to it.
	RowBlockEvals int `json:"row_block_evals"`
	// RowBlockTotal is what RowBlockEvals would be without the cache.
	RowBlockTotal int `json:"row_block_total"`
	// BlockEvals counts (network evaluation, block) pairs computed for at
	// least one row.
	BlockEvals int `json:"block_evals"`
}

// HitRates is each block's BlockStats.HitRate.
func (s Stats) HitRates() []float64 {
	r := make([]float64, len(s.Blocks))
	for i, b := range s.Blocks {
		r[i] = b.HitRate()
	}
	return r
}

// Hits is the number of reused branch evaluations per block.
func (s Stats) Hits() []int {
	h := make([]int, len(s.Blocks))
	for i, b := range s.Blocks {
		h[i] = b.Reused[0] + b.Reused[1]
	}
	return h
}

// HitRate is the overall fraction of row-block evaluations skipped.
func (s Stats) HitRate() float64 {
	if s.RowBlockTotal == 0 {
		return 0
	}
	return 1 - float64(s.RowBlockEvals)/float64(s.RowBlockTotal)
}

// Cache runs a network with block caching. Set Plan for the scheduled cache
// (with its scale-shift when the plan has one) or Dynamic for first-block
// caching. Call Reset before each new sampling trajectory: the plan is
// indexed by network evaluation since the last Reset.
type Cache struct {
	Model dit.Staged
	Plan  *Plan
	// Dynamic, when positive, is the first-block threshold: the remaining
	// blocks are skipped while mean|r − r_last| / mean|r_last| < Dynamic,
	// r being block 0's residual and r_last its value at the last full
	// computation.
	Dynamic float64

	eval  int
	state [2]branchState
	stats Stats
}

// branchState is one guidance branch's cache.
type branchState struct {
	out      []*tensor.Tensor // last computed output (or residual, Plan.Reuse) of each block, [rows, T, D]
	residual *tensor.Tensor   // dynamic: block 0's residual at the last full computation
	tail     *tensor.Tensor   // dynamic: h_L − h_1 at the last full computation
	res      []*tensor.Tensor // residual reuse: buffers holding out[i]
	// Forecast reuse: old[i] buffers the residual of block i's computation
	// before the last one, tLast and tPrev are the sampler times of the
	// two, computed counts block i's computations since the last Reset.
	old          []*tensor.Tensor
	tLast, tPrev []float32
	computed     []int
	sum          []*tensor.Tensor // residual reuse at inference: output buffers of the reused blocks
}

// forget drops a branch's cached values, keeping the residual buffers.
func (st *branchState) forget(depth int) {
	*st = branchState{out: make([]*tensor.Tensor, depth), res: st.res, old: st.old, sum: st.sum,
		tLast: make([]float32, depth), tPrev: make([]float32, depth), computed: make([]int, depth)}
}

// New returns a scheduled cache for m.
func New(m dit.Staged, plan *Plan) (*Cache, error) {
	if m == nil {
		return nil, fmt.Errorf("blockcache: no network")
	}
	if plan != nil {
		if len(plan.Compute[Cond]) != m.Depth() {
			return nil, fmt.Errorf("blockcache: plan for %d blocks, model has %d", len(plan.Compute[Cond]), m.Depth())
		}
		for b := range plan.Compute {
			if err := plan.check(b, m.Depth()); err != nil {
				return nil, err
			}
		}
	}
	c := &Cache{Model: m, Plan: plan}
	c.Reset()
	return c, nil
}

// NewDynamic returns a first-block cache for m with the given threshold.
func NewDynamic(m dit.Staged, threshold float64) *Cache {
	c := &Cache{Model: m, Dynamic: threshold}
	c.Reset()
	return c
}

// Reset forgets the cached outputs before a new trajectory (statistics are
// kept).
func (c *Cache) Reset() {
	c.eval = 0
	for b := range c.state {
		c.state[b].forget(c.Model.Depth())
	}
	if c.stats.Blocks == nil {
		c.stats.Blocks = make([]BlockStats, c.Model.Depth())
	}
}

// Stats returns the counts since the cache was made.
func (c *Cache) Stats() Stats {
	s := c.stats
	s.Blocks = append([]BlockStats(nil), s.Blocks...)
	return s
}

// Evals is the number of network evaluations since the last Reset.
func (c *Cache) Evals() int { return c.eval }

// split returns the number of leading conditional rows of a batch and
// whether the batch is split into a conditional part followed by an
// unconditional one (how diffusion.Guided lays it out). Other orders are
// treated as one conditional branch.
func split(y []int, null int) (n0 int, ok bool) {
	for n0 < len(y) && y[n0] != null {
		n0++
	}
	for i := n0; i < len(y); i++ {
		if y[i] != null {
			return len(y), false
		}
	}
	return n0, true
}

// branches returns the row ranges [lo, hi) of the branches present.
func branches(y []int, null int) [2][2]int {
	n0, ok := split(y, null)
	if !ok {
		return [2][2]int{{0, len(y)}, {len(y), len(y)}}
	}
	return [2][2]int{{0, n0}, {n0, len(y)}}
}

// Predict implements diffusion.Model.
func (c *Cache) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	m := c.Model
	if err := m.Check(x.Shape(), t, y); err != nil {
		return nil, fmt.Errorf("blockcache: %w", err)
	}
	if c.Plan != nil && c.eval >= c.Plan.Evals() {
		return nil, fmt.Errorf("blockcache: network evaluation %d beyond the plan's %d (plan made for sampler %s, %d steps; call Reset between trajectories)",
			c.eval+1, c.Plan.Evals(), c.Plan.Sampler, c.Plan.Steps)
	}
	br := branches(y, m.Null())
	g := autodiff.NoGrad()
	defer g.Release()
	var out *autodiff.Var
	if c.Plan != nil {
		out = dit.ForwardStaged(m, g, autodiff.Const(x), t, y, c.runner(br, branchTimes(br, t), nil))
	} else {
		out = c.forwardDynamic(g, autodiff.Const(x), t, y, br)
	}
	c.eval++
	return m.Channels(out.Value), nil
}

// branchTimes is the sampler time of each branch's first row (the rows of
// a sampler's batch share one time).
func branchTimes(br [2][2]int, t []float32) [2]float32 {
	var tb [2]float32
	for b := range br {
		if br[b][1] > br[b][0] && br[b][0] < len(t) {
			tb[b] = t[br[b][0]]
		}
	}
	return tb
}

// adjuster returns the reused tensor of block i for branch b at the
// current evaluation (its output, or its residual with Plan.Reuse
// ReuseResidual): a·o + b with the plan's scalars (or the trainable ones).
type adjuster func(g *autodiff.Graph, branch, block int, cached *autodiff.Var) *autodiff.Var

// runner is the BlockRunner of the scheduled cache for one evaluation at
// sampler times tb (per branch). adj overrides the plan's scale-shift
// (training uses trainable scalars).
func (c *Cache) runner(br [2][2]int, tb [2]float32, adj adjuster) dit.BlockRunner {
	inference := adj == nil
	if inference {
		adj = c.planAdjust
	}
	return func(g *autodiff.Graph, i int, h, cv *autodiff.Var) *autodiff.Var {
		var need [2]bool
		present := 0
		nNeed := 0
		for b := range br {
			if br[b][1] == br[b][0] {
				continue
			}
			present++
			rows := br[b][1] - br[b][0]
			need[b] = c.Plan.Compute[b][i][c.eval] || c.state[b].out[i] == nil
			c.stats.RowBlockTotal += rows
			if need[b] {
				nNeed++
				c.stats.Blocks[i].Computed[b]++
				c.stats.RowBlockEvals += rows
			} else {
				c.stats.Blocks[i].Reused[b]++
			}
		}
		if nNeed > 0 {
			c.stats.BlockEvals++
		}
		residual := c.Plan.Reuse == ReuseResidual || c.Plan.Reuse == ReuseForecast
		forecast := c.Plan.Reuse == ReuseForecast
		if nNeed == present {
			o := c.Model.RunBlock(g, i, h, cv)
			for b := range br {
				if br[b][1] > br[b][0] {
					c.state[b].out[i] = rowsOf(o.Value, br[b][0], br[b][1])
					if residual {
						c.state[b].out[i] = c.state[b].residualOf(i, rowsOf(o.Value, br[b][0], br[b][1]), rowsOf(h.Value, br[b][0], br[b][1]), tb[b], forecast)
					}
				}
			}
			return o
		}
		parts := make([]*autodiff.Var, 0, 2)
		for b := range br {
			lo, hi := br[b][0], br[b][1]
			if hi == lo {
				continue
			}
			hb := g.Slice(h, 0, lo, hi)
			switch {
			case need[b]:
				o := c.Model.RunBlock(g, i, hb, g.Slice(cv, 0, lo, hi))
				c.state[b].out[i] = o.Value
				if residual {
					c.state[b].out[i] = c.state[b].residualOf(i, o.Value, hb.Value, tb[b], forecast)
				}
				parts = append(parts, o)
			case residual && inference:
				parts = append(parts, autodiff.Const(c.addResidual(b, i, hb.Value, c.state[b].slope(i, tb[b], forecast))))
			case residual:
				parts = append(parts, g.Add(hb, adj(g, b, i, autodiff.Const(c.state[b].forecast(i, c.state[b].slope(i, tb[b], forecast))))))
			default:
				parts = append(parts, adj(g, b, i, autodiff.Const(c.state[b].out[i])))
			}
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return g.Concat(0, parts...)
	}
}

// addResidual is a reused block's output under residual reuse at
// inference, h + a·r + b with the plan's scalars (1, 0 without
// scale-shift), in cache-sized chunks; r is the last residual, extrapolated by
// f·(r − r_old) when f is not zero (forecast reuse).
//
// The result is written to a buffer of the branch and block, reused at
// the block's next reuse: nothing holds a block's output past the network
// evaluation (the next block's input is copied where it is kept).
func (c *Cache) addResidual(b, i int, h *tensor.Tensor, f float32) *tensor.Tensor {
	a, s := c.scalars(b, i)
	st := &c.state[b]
	if st.sum == nil {
		st.sum = make([]*tensor.Tensor, len(st.out))
	}
	out := st.sum[i]
	if out == nil || !slices.Equal(out.Shape(), h.Shape()) {
		out = tensor.New(h.Shape()...)
		st.sum[i] = out
	}
	hv, rv, ov := h.Contiguous().Data(), st.out[i].Contiguous().Data(), out.Data()
	var pv []float32
	if f != 0 {
		pv = st.old[i].Data()
	}
	parallel.For(len(ov), 1<<14, func(lo, hi int) {
		o := ov[lo:hi]
		copy(o, hv[lo:hi])
		if f == 0 {
			vec.Axpy(o, a, rv[lo:hi])
		} else { // r + f·(r − p) = (1 + f)·r − f·p
			vec.Axpy(o, a*(1+f), rv[lo:hi])
			vec.Axpy(o, -a*f, pv[lo:hi])
		}
		if s != 0 {
			vec.AddScalar(o, o, s)
		}
	})
	return out
}

// slope is the extrapolation factor of block i's residual at sampler time
// t under forecast reuse: (t − t_last) / (t_last − t_prev) once the block
// has been computed twice since the last Reset, else 0 (the last residual
// held constant).
func (st *branchState) slope(i int, t float32, forecast bool) float32 {
	if !forecast || st.computed[i] < 2 || st.tLast[i] == st.tPrev[i] {
		return 0
	}
	return (t - st.tLast[i]) / (st.tLast[i] - st.tPrev[i])
}

// forecast returns block i's last residual extrapolated by factor f, as a
// new tensor (the last residual itself when f is 0).
func (st *branchState) forecast(i int, f float32) *tensor.Tensor {
	if f == 0 {
		return st.out[i]
	}
	out := tensor.New(st.out[i].Shape()...)
	rv, pv, ov := st.out[i].Contiguous().Data(), st.old[i].Data(), out.Data()
	for j := range ov {
		ov[j] = rv[j] + f*(rv[j]-pv[j])
	}
	return out
}

// scalars is the plan's scale and shift for block i of branch b at the
// current evaluation: 1, 0 without scale-shift.
func (c *Cache) scalars(b, i int) (a, s float32) {
	if p := c.Plan; p.Scale[Cond] != nil {
		return p.Scale[b][i][c.eval], p.Bias[b][i][c.eval]
	}
	return 1, 0
}

// planAdjust applies the plan's scale and shift, if it has them.
func (c *Cache) planAdjust(g *autodiff.Graph, b, i int, cached *autodiff.Var) *autodiff.Var {
	a, s := c.scalars(b, i)
	if a == 1 && s == 0 {
		return cached
	}
	src := cached.Value.Contiguous().Data()
	out := tensor.New(cached.Shape()...)
	dst := out.Data()
	for j, v := range src {
		dst[j] = a*v + s
	}
	return autodiff.Const(out)
}

// rowsOf returns rows [lo, hi) of t along dimension 0 as a view.
func rowsOf(t *tensor.Tensor, lo, hi int) *tensor.Tensor {
	if lo == 0 && hi == t.Dim(0) {
		return t
	}
	return t.Slice(0, lo, hi)
}

// forwardDynamic is first-block caching: block 0 runs on every row; each
// branch then either runs the remaining blocks or adds their residual from
// its last full computation.
func (c *Cache) forwardDynamic(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int, br [2][2]int) *autodiff.Var {
	m := c.Model
	h0 := m.Embed(g, x)
	cv := m.Condition(g, t, y)
	h1 := m.RunBlock(g, 0, h0, cv)
	depth := m.Depth()
	parts := make([]*autodiff.Var, 0, 2)
	full := false
	for b := range br {
		lo, hi := br[b][0], br[b][1]
		if hi == lo {
			continue
		}
		rows := hi - lo
		st := &c.state[b]
		r := sub(rowsOf(h1.Value, lo, hi), rowsOf(h0.Value, lo, hi))
		skip := st.residual != nil && relL1(r, st.residual) < c.Dynamic
		c.stats.RowBlockTotal += rows * depth
		c.stats.RowBlockEvals += rows
		c.stats.Blocks[0].Computed[b]++
		hb := g.Slice(h1, 0, lo, hi)
		if skip {
			for i := 1; i < depth; i++ {
				c.stats.Blocks[i].Reused[b]++
			}
			parts = append(parts, autodiff.Const(add(hb.Value, st.tail)))
			continue
		}
		full = true
		cb := g.Slice(cv, 0, lo, hi)
		h := hb
		for i := 1; i < depth; i++ {
			h = m.RunBlock(g, i, h, cb)
			c.stats.Blocks[i].Computed[b]++
		}
		c.stats.RowBlockEvals += rows * (depth - 1)
		st.residual = r
		st.tail = sub(h.Value, hb.Value)
		parts = append(parts, h)
	}
	c.stats.BlockEvals++
	if full {
		c.stats.BlockEvals += depth - 1
	}
	h := parts[0]
	if len(parts) == 2 {
		h = g.Concat(0, parts...)
	}
	return m.Decode(g, h, cv)
}

// residualOf returns o − h for block i computed at sampler time t,
// written over a buffer of the branch (a trajectory recomputes a block
// many times; buffers are reused rather than reallocated). Without
// forecast the previous residual is overwritten: the block was just
// recomputed. With forecast it is kept as the older of the two residuals
// the extrapolation uses.
func (st *branchState) residualOf(i int, o, h *tensor.Tensor, t float32, forecast bool) *tensor.Tensor {
	n := len(st.out)
	if st.res == nil {
		st.res, st.old = make([]*tensor.Tensor, n), make([]*tensor.Tensor, n)
	}
	if forecast {
		st.res[i], st.old[i] = st.old[i], st.res[i]
		st.tPrev[i] = st.tLast[i]
	}
	st.res[i] = subInto(st.res[i], o, h)
	st.tLast[i] = t
	st.computed[i]++
	return st.res[i]
}

// sub returns a − b for same-shaped tensors as a new contiguous tensor.
func sub(a, b *tensor.Tensor) *tensor.Tensor { return subInto(nil, a, b) }

// subInto writes a − b into dst, or into a new contiguous tensor when dst
// is nil or of another shape, and returns it.
func subInto(dst, a, b *tensor.Tensor) *tensor.Tensor {
	if dst == nil || !slices.Equal(dst.Shape(), a.Shape()) {
		dst = tensor.New(a.Shape()...)
	}
	av, bv, o := a.Contiguous().Data(), b.Contiguous().Data(), dst.Data()
	parallel.For(len(o), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = av[i] - bv[i]
		}
	})
	return dst
}

// add returns a + b for same-shaped tensors as a new contiguous tensor.
func add(a, b *tensor.Tensor) *tensor.Tensor {
	av, bv := a.Contiguous().Data(), b.Contiguous().Data()
	out := tensor.New(a.Shape()...)
	o := out.Data()
	for i := range o {
		o[i] = av[i] + bv[i]
	}
	return out
}

// relL1 is Σ|a − b| / Σ|b|.
func relL1(a, b *tensor.Tensor) float64 {
	av, bv := a.Contiguous().Data(), b.Contiguous().Data()
	var num, den float64
	for i := range av {
		d := float64(av[i] - bv[i])
		if d < 0 {
			d = -d
		}
		num += d
		v := float64(bv[i])
		if v < 0 {
			v = -v
		}
		den += v
	}
	if den == 0 {
		return num
	}
	return num / den
}

// Skip advances the evaluation index without running the model, for an
// evaluation another network made (FlexiDiT's weak steps): the plan stays
// aligned with the trajectory, and the blocks' cached outputs, which
// belong to another token grid, are dropped so the next evaluation
// recomputes them.
func (c *Cache) Skip() {
	c.eval++
	for b := range c.state {
		c.state[b].forget(c.Model.Depth())
	}
}
