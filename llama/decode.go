package llama

import (
	"math"
	"time"

	"tessera/internal/gemm"
	"tessera/internal/vec"
)

// decoder holds what one-token steps need beyond the cache's batched
// buffers: the loops bound to the cache once (so a step allocates
// nothing) and the per-step arguments they read.
type decoder struct {
	c *Cache

	// Bound loops over rows, heads or chunks of one step.
	qkvFn, attnFn, oFn, gateUpFn, downFn, headFn func(lo, hi int)

	layer  int       // the layer being run
	pos    int       // position of the token
	scores []float32 // [heads, capacity] attention weights

	choice threadChoice
}

// threadChoice decides whether a cache's steps use the decode team. On a
// quiet machine the team is faster, but when the cores are shared with
// other work a helper thread is often descheduled and one thread goes
// faster; so steps are timed now and then both ways, and the faster way
// is used until the next probe.
type threadChoice struct {
	step          int           // position in the probe-and-use cycle
	team, alone   time.Duration // time of the probe steps
	useTeam       bool          // the choice after the last probe
	teamN, aloneN int
}

// The cycle: probeSteps steps with the team, probeSteps alone, then
// useSteps the faster way. The team must win by teamMargin to be used.
const (
	probeSteps = 12
	useSteps   = 480
	teamMargin = 0.97
)

// next reports whether the coming step should use the team and whether
// it is a probe step to be timed.
func (tc *threadChoice) next() (useTeam, probe bool) {
	switch s := tc.step; {
	case s < probeSteps:
		return true, true
	case s < 2*probeSteps:
		return false, true
	default:
		return tc.useTeam, false
	}
}

// done records a step that took dt.
func (tc *threadChoice) done(useTeam, probe bool, dt time.Duration) {
	if probe && tc.step > 0 && tc.step != probeSteps {
		// The first step of each probe is left out: it pays for the switch.
		if useTeam {
			tc.team += dt
			tc.teamN++
		} else {
			tc.alone += dt
			tc.aloneN++
		}
	}
	tc.step++
	if tc.step == 2*probeSteps {
		tc.useTeam = float64(tc.team)/float64(tc.teamN) < teamMargin*float64(tc.alone)/float64(tc.aloneN)
	}
	if tc.step == 2*probeSteps+useSteps {
		*tc = threadChoice{}
	}
}

func newDecoder(c *Cache) *decoder {
	cfg := c.e.cfg
	d := &decoder{c: c, scores: make([]float32, cfg.NumAttentionHeads*c.capacity)}
	d.qkvFn, d.attnFn, d.oFn = d.qkvRows, d.attnHeads, d.oRows
	d.gateUpFn, d.downFn, d.headFn = d.gateUpRows, d.downRows, d.headRows
	return d
}

// teamMinArena is the smallest arena (in floats) whose steps use the
// decode team. A smaller model's loops (a speculative decoder's draft of a
// quarter of a million weights) take a microsecond or two each, about
// what handing chunks to a helper costs, and its steps go faster alone.
// A variable so that tests can run small models on the team.
var teamMinArena = 1 << 20

// Chunks per participating thread of each loop: a few, so that a late
// helper leaves little behind.
const chunksPerThread = 4

// step runs one token at position c.n through the model with the team's
// help, leaving its logits in c.logits[:vocab] and its hidden state in
// c.x[:hidden]. The weights are synced and the token checked by the caller.
func (d *decoder) step(token int) {
	c, e := d.c, d.c.e
	cfg := e.cfg
	dm, hd := cfg.HiddenSize, cfg.HeadDim()
	H, Hkv, I := cfg.NumAttentionHeads, cfg.KVHeads(), cfg.IntermediateSize
	rows := (H + 2*Hkv) * hd
	eps := float32(cfg.RMSNormEps)

	useTeam, probe := d.choice.next()
	if len(e.arena) < teamMinArena {
		useTeam, probe = false, false
	}
	threads := 0
	if useTeam {
		if threads = decodeTeam.acquire(); threads > 0 {
			defer decodeTeam.release()
		}
	}
	if probe {
		t0 := time.Now()
		defer func() { d.choice.done(useTeam, probe, time.Since(t0)) }()
	} else {
		defer d.choice.done(useTeam, false, 0)
	}
	run := func(n, unit int, fn func(lo, hi int)) {
		if threads <= 1 {
			fn(0, n)
			return
		}
		decodeTeam.run(n, unit, threads*chunksPerThread, fn)
	}

	// Chunks of q|k|v hold whole heads and start on multiples of 4 rows,
	// where the GEMV's results do not depend on the cut.
	headUnit := hd
	if hd%4 != 0 {
		headUnit = 2 * hd
	}
	x, xn := c.x[:dm], c.xn[:dm]
	copy(x, data(e.embed)[token*dm:(token+1)*dm])
	d.pos = c.n
	for l := range e.layers {
		ls := &e.layers[l]
		d.layer = l
		rmsNorm(xn, x, eps, data(ls.inNorm))
		run(rows, headUnit, d.qkvFn)
		run(H, 1, d.attnFn)
		run(dm, 4, d.oFn)
		rmsNorm(xn, x, eps, data(ls.postNorm))
		run(I, 4, d.gateUpFn)
		run(dm, 4, d.downFn)
	}
	rmsNorm(xn, x, eps, data(e.norm))
	run(cfg.VocabSize, 4, d.headFn)
}

// qkvRows computes rows [lo, hi) of the fused q|k|v projection (whole
// heads), rotates the query and key heads among them and appends the key
// and value heads to the cache.
func (d *decoder) qkvRows(lo, hi int) {
	c := d.c
	cfg := c.e.cfg
	dm, hd := cfg.HiddenSize, cfg.HeadDim()
	qd, kvd := cfg.NumAttentionHeads*hd, cfg.KVHeads()*hd
	qkv := c.qkv
	c.e.gemvRows(hi-lo, dm, c.e.qkv[d.layer][lo*dm:], dm, c.xn[:dm], 0, qkv[lo:hi])
	kc, vc := c.k[d.layer][d.pos*kvd:(d.pos+1)*kvd], c.v[d.layer][d.pos*kvd:(d.pos+1)*kvd]
	for h := lo; h < hi; h += hd {
		head := qkv[h : h+hd]
		switch {
		case h < qd:
			c.rope(head, d.pos)
		case h < qd+kvd:
			c.rope(head, d.pos)
			copy(kc[h-qd:h-qd+hd], head)
		default:
			copy(vc[h-qd-kvd:h-qd-kvd+hd], head)
		}
	}
}

// attnHeads attends query heads [lo, hi) of the token over the cache.
func (d *decoder) attnHeads(lo, hi int) {
	d.c.attend(d.layer, d.pos, d.c.qkv, d.c.att, d.scores, lo, hi)
}

// attend attends query heads [lo, hi) of the token at position pos over
// the cache of layer l, positions 0…pos: scores by a GEMV over the cached
// keys, softmax, and the weighted sum of the cached values by a transposed
// GEMV. q holds the token's rotated query heads, out receives its
// attention output [H*hd], and scores [H, capacity] is scratch.
func (c *Cache) attend(l, pos int, q, out, scores []float32, lo, hi int) {
	cfg := c.e.cfg
	hd, group := cfg.HeadDim(), cfg.NumAttentionHeads/cfg.KVHeads()
	kvd := cfg.KVHeads() * hd
	ctx := pos + 1
	scale := float32(1 / math.Sqrt(float64(hd)))
	kc, vc := c.k[l], c.v[l]
	for h := lo; h < hi; h++ {
		g := h / group
		s := scores[h*c.capacity : h*c.capacity+ctx]
		gemm.SgemvRows(ctx, hd, kc[g*hd:], kvd, q[h*hd:(h+1)*hd], 0, s)
		m := vec.Max(s)
		vec.AddScalar(s, s, -m)
		vec.Scale(s, s, scale)
		vec.Exp(s, s)
		sum := vec.Sum(s)
		gemm.SgemvTRows(ctx, hd, 1/sum, vc[g*hd:], kvd, s, 0, out[h*hd:(h+1)*hd])
	}
}

// oRows adds rows [lo, hi) of o_proj(attention) to the residual stream.
func (d *decoder) oRows(lo, hi int) {
	c := d.c
	qd := c.e.cfg.NumAttentionHeads * c.e.cfg.HeadDim()
	c.e.gemvRows(hi-lo, qd, data(c.e.layers[d.layer].o)[lo*qd:], qd, c.att[:qd], 1, c.x[lo:hi])
}

// gateUpRows computes act[lo:hi] = silu(gate·n) * (up·n) for rows
// [lo, hi) of the fused gate|up projection.
func (d *decoder) gateUpRows(lo, hi int) {
	c := d.c
	dm, I := c.e.cfg.HiddenSize, c.e.cfg.IntermediateSize
	w := c.e.gateUp[d.layer]
	g, u, a := c.gu[lo:hi], c.gu[I+lo:I+hi], c.act[lo:hi]
	c.e.gemvRows(hi-lo, dm, w[lo*dm:], dm, c.xn[:dm], 0, g)
	c.e.gemvRows(hi-lo, dm, w[(I+lo)*dm:], dm, c.xn[:dm], 0, u)
	vec.SiLU(a, g)
	vec.Mul(a, a, u)
}

// downRows adds rows [lo, hi) of down_proj(act) to the residual stream.
func (d *decoder) downRows(lo, hi int) {
	c := d.c
	I := c.e.cfg.IntermediateSize
	c.e.gemvRows(hi-lo, I, data(c.e.layers[d.layer].down)[lo*I:], I, c.act[:I], 1, c.x[lo:hi])
}

// headRows computes logits [lo, hi) of the normalised final state.
func (d *decoder) headRows(lo, hi int) {
	c := d.c
	dm := c.e.cfg.HiddenSize
	c.e.gemvRows(hi-lo, dm, data(c.e.head)[lo*dm:], dm, c.xn[:dm], 0, c.logits[lo:hi])
}

// rmsNorm is dst = x / sqrt(mean(x²) + eps) * gamma for one row, without
// the worker hand-off of vec.RMSNorm.
func rmsNorm(dst, x []float32, eps float32, gamma []float32) {
	ms := float64(vec.Dot(x, x)) / float64(len(x))
	vec.Scale(dst, x, float32(1/math.Sqrt(ms+float64(eps))))
	vec.Mul(dst, dst, gamma)
}

// residentMax is the largest arena decoding reads with ordinary
// prefetches, so that it can stay in the last-level cache from one token
// to the next (a few tens of MiB on the machines this targets). Larger
// arenas cannot stay and are streamed with non-temporal prefetches, which
// measured faster for them and leave the cache to others.
const residentMax = 24 << 20

// gemvRows is gemm.SgemvRows on rows of a weight matrix in the arena,
// streamed past the caches when the arena is too large to stay in them.
func (e *engine) gemvRows(m, n int, w []float32, lda int, x []float32, beta float32, y []float32) {
	if len(e.arena) > residentMax/4 {
		gemm.SgemvRowsStream(m, n, w, lda, x, beta, y)
		return
	}
	gemm.SgemvRows(m, n, w, lda, x, beta, y)
}
