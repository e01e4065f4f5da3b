package llama

import (
	"time"

	"tessera/internal/gemm"
	"tessera/internal/vec"
)

// The few-token path runs a batched pass of a handful of tokens (a
// speculative decoder's verification of k drafts, a short prompt) without
// the costs the large-batch path pays per call: it never repacks a weight
// matrix and never hands work to the worker pool.
//
// Its products read the weights from a copy packed once (batchedWeights):
// panels of 64 output features, each stored input-major, which a 6×64
// register tile streams front to back while it prefetches the next panel,
// so that reading weights from memory overlaps the arithmetic. The
// activations stay token-major throughout. The decode team shares out the
// panels.
//
// Attention runs token by token as in decoding (a GEMV of the query over
// the cached keys up to the token's position, softmax, and a transposed
// GEMV over the cached values), the query heads shared among the threads.

// fewMax is the most tokens a batched pass runs on the few-token path;
// longer passes take the large-batch path, whose blocked attention and
// cache-blocked GEMMs pay off on long prompts (measured: the packed path
// is faster up to 128 tokens on the shipped target, slower from 256).
const fewMax = 128

// fewLimit is fewMax; benchmarks lower it to time the large-batch path.
var fewLimit = fewMax

// fewBuffers is the product being run by the few-token path (see
// packedProduct) and the threads running it.
type fewBuffers struct {
	threads int
	rows    int // tokens
	a, out  []float32
	w       *gemm.Packed
	beta    float32
	fn      func(lo, hi int) // c.packedPanels, bound once

	// The attention being run (see fewAttention).
	layer, row int
	qkv, att   []float32
	attendFn   func(lo, hi int) // c.fewAttendHeads, bound once

	choice threadChoice // whether passes use the decode team
}

// forwardFew is forward for 2…fewMax tokens (checked by the caller).
func (c *Cache) forwardFew(tokens []int, all bool) {
	cfg := c.e.cfg
	T := len(tokens)
	c.grow(T)
	if c.few.fn == nil {
		c.few.fn, c.few.attendFn = c.packedPanels, c.fewAttendHeads
	}
	f := &c.few
	bw := c.e.batched.Load()
	d, hd := cfg.HiddenSize, cfg.HeadDim()
	H, Hkv, I := cfg.NumAttentionHeads, cfg.KVHeads(), cfg.IntermediateSize
	qd, kvd := H*hd, Hkv*hd
	row := qd + 2*kvd
	eps := float32(cfg.RMSNormEps)
	x, xn, qkv, att, gu, act := c.x[:T*d], c.xn[:T*d], c.qkv[:T*row], c.att[:T*qd], c.gu[:T*2*I], c.act[:T*I]

	useTeam, probe := f.choice.next()
	f.threads = 1
	if useTeam {
		if n := decodeTeam.acquire(); n > 0 {
			defer func() {
				// What follows a batched pass (the draft's steps of
				// speculative decoding, the next prompt) seldom needs
				// the team soon: the helpers park now.
				decodeTeam.rest()
				decodeTeam.release()
			}()
			f.threads = n
		}
	}
	if probe {
		t0 := time.Now()
		defer func() { f.choice.done(useTeam, probe, time.Since(t0)/time.Duration(T)) }()
	} else {
		defer f.choice.done(useTeam, false, 0)
	}

	embed := data(c.e.embed)
	for t, tok := range tokens {
		copy(x[t*d:(t+1)*d], embed[tok*d:(tok+1)*d])
	}
	for l := range c.e.layers {
		ls := &c.e.layers[l]
		lw := &bw.layers[l]
		// Attention: x += o_proj(attn(rope(q), rope(k), v)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.inNorm))
		}
		c.packedProduct(T, xn, lw.qkv, 0, qkv)
		kc, vc := c.k[l], c.v[l]
		for t := 0; t < T; t++ {
			pos := c.n + t
			r := qkv[t*row : (t+1)*row]
			c.rope(r[:qd], pos)
			c.rope(r[qd:qd+kvd], pos)
			copy(kc[pos*kvd:(pos+1)*kvd], r[qd:qd+kvd])
			copy(vc[pos*kvd:(pos+1)*kvd], r[qd+kvd:])
		}
		c.fewAttention(l, T, qkv, att)
		c.packedProduct(T, att, lw.o, 1, x)
		// MLP: x += down(silu(gate(n)) * up(n)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.postNorm))
		}
		c.packedProduct(T, xn, lw.gateUp, 0, gu)
		for t := 0; t < T; t++ {
			g, u, a := gu[t*2*I:t*2*I+I], gu[t*2*I+I:(t+1)*2*I], act[t*I:(t+1)*I]
			vec.SiLU(a, g)
			vec.Mul(a, a, u)
		}
		c.packedProduct(T, act, lw.down, 1, x)
	}
	c.n += T
	c.hiddenRows = T
	first := T - 1
	if all {
		first = 0
	}
	rows := T - first
	for t := 0; t < rows; t++ {
		rmsNorm(xn[t*d:(t+1)*d], x[(first+t)*d:(first+t+1)*d], eps, data(c.e.norm))
	}
	V := cfg.VocabSize
	if rows == 1 {
		c.e.gemvRows(V, d, data(c.e.head), d, xn[:d], 0, c.logits[:V])
		return
	}
	c.packedProduct(rows, xn[:rows*d], bw.head, 0, c.logits[:rows*V])
}

// fewAttention attends the T tokens of the pass (their keys and values
// already in the cache of layer l) over the cache, token by token as in
// decoding, sharing the query heads among the pass's threads.
func (c *Cache) fewAttention(l, T int, qkv, att []float32) {
	f := &c.few
	cfg := c.e.cfg
	f.layer, f.rows, f.qkv, f.att = l, T, qkv, att
	f.row = (cfg.NumAttentionHeads + 2*cfg.KVHeads()) * cfg.HeadDim()
	H := cfg.NumAttentionHeads
	if f.threads > 1 {
		decodeTeam.run(H, 1, H, f.attendFn)
	} else {
		f.attendFn(0, H)
	}
	f.qkv, f.att = nil, nil
}

// fewAttendHeads runs query heads [lo, hi) of the current fewAttention:
// each head has its own rows of the scores scratch.
func (c *Cache) fewAttendHeads(lo, hi int) {
	f := &c.few
	qd := c.e.cfg.NumAttentionHeads * c.e.cfg.HeadDim()
	for t := 0; t < f.rows; t++ {
		c.attend(f.layer, c.n+t, f.qkv[t*f.row:], f.att[t*qd:(t+1)*qd], c.dec.scores, lo, hi)
	}
}

// packedProduct computes out [T, n] = a [T, k]·Wᵀ + beta·out for the
// packed weight w [n, k], sharing its panels among the pass's threads.
func (c *Cache) packedProduct(T int, a []float32, w *gemm.Packed, beta float32, out []float32) {
	f := &c.few
	f.rows, f.a, f.w, f.beta, f.out = T, a, w, beta, out
	if f.threads > 1 {
		decodeTeam.run(w.Panels(), 1, w.Panels(), f.fn)
	} else {
		f.fn(0, w.Panels())
	}
	f.a, f.w, f.out = nil, nil, nil
}

// packedPanels computes panels [lo, hi) of the current packedProduct.
func (c *Cache) packedPanels(lo, hi int) {
	f := &c.few
	gemm.GemmPacked(f.rows, f.a, f.w.K(), f.w, lo, hi, f.beta, f.out, f.w.N())
}
