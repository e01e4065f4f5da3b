package llama

import (
	"tessera/internal/gemm"
	"tessera/internal/vec"
)

// The few-token path runs a batched pass of a handful of tokens (a
// speculative decoder's verification of k drafts, a short prompt) without
// the costs the large-batch path pays per call: it never transposes a
// weight matrix and never hands work to the worker pool.
//
// The large-batch path computes x·Wᵀ with the weight W [n, k] as SGEMM's
// transposed B operand, which SGEMM packs (transposes) on every call: for
// a few rows of x the packing costs more than the product. Here the
// product is taken the other way round, Wx'ᵀ = W·x'ᵀ, with the weight as
// SGEMM's A operand (read in place) and the activations stored feature by
// feature (x'ᵀ [k, T]) as its B operand, so SGEMM's register tiles run
// across the tokens. The tiles are 16 tokens wide, so up to fewGEMV
// tokens beyond a multiple of 16 (the seventeenth of a verification with
// k = 16) run as matrix-vector products instead of a mostly empty tile.
//
// Attention runs token by token as in decoding: a GEMV of the query over
// the cached keys up to the token's position, softmax, and a transposed
// GEMV over the cached values.

// fewMax is the most tokens a batched pass runs on the few-token path;
// longer passes take the large-batch path, whose packing of the weights
// is then shared by enough rows.
const fewMax = 48

// fewBlock is the number of weight rows per SGEMM call: a multiple of
// every register tile height (6, 8, 12) and of the GEMV's 4-row blocks.
const fewBlock = 48

// fewTile is the width of SGEMM's register tiles for these shapes, and
// fewGEMV the most leftover tokens run as matrix-vector products.
const (
	fewTile = 16
	fewGEMV = 1
)

// fewBuffers are the feature-major scratch buffers of the few-token path.
type fewBuffers struct {
	inT  []float32 // [max(d, H*hd, I), T] input of a product, feature-major
	outT []float32 // [max(rows, 2I, V), T] output of a product, feature-major
	col  []float32 // one input column, contiguous
	y    []float32 // one output column

	// The product being run (see fewProduct) and the threads running it.
	threads    int
	m, k, T, r int
	w, in, out []float32
	fn         func(lo, hi int) // c.fewRows, bound once
}

func (c *Cache) growFew() {
	if c.few.inT != nil {
		return
	}
	cfg := c.e.cfg
	d, hd, I, V := cfg.HiddenSize, cfg.HeadDim(), cfg.IntermediateSize, cfg.VocabSize
	rows := (cfg.NumAttentionHeads + 2*cfg.KVHeads()) * hd
	in := max(d, cfg.NumAttentionHeads*hd, I)
	c.few = fewBuffers{
		inT:  make([]float32, in*fewMax),
		outT: make([]float32, max(rows, 2*I, V, d)*fewMax),
		col:  make([]float32, in),
		y:    make([]float32, max(rows, 2*I, V, d)),
		fn:   c.fewRows,
	}
}

// forwardFew is forward for 2…fewMax tokens (checked by the caller).
func (c *Cache) forwardFew(tokens []int, all bool) {
	cfg := c.e.cfg
	T := len(tokens)
	c.grow(T)
	c.growFew()
	d, hd := cfg.HiddenSize, cfg.HeadDim()
	H, Hkv, I := cfg.NumAttentionHeads, cfg.KVHeads(), cfg.IntermediateSize
	qd, kvd := H*hd, Hkv*hd
	row := qd + 2*kvd
	eps := float32(cfg.RMSNormEps)
	x, xn, qkv, att := c.x[:T*d], c.xn[:T*d], c.qkv[:T*row], c.att[:T*qd]
	inT, outT := c.few.inT, c.few.outT
	c.few.threads = 1
	if n := decodeTeam.acquire(); n > 0 {
		defer decodeTeam.release()
		c.few.threads = n
	}

	embed := data(c.e.embed)
	for t, tok := range tokens {
		copy(x[t*d:(t+1)*d], embed[tok*d:(tok+1)*d])
	}
	for l := range c.e.layers {
		ls := &c.e.layers[l]
		// Attention: x += o_proj(attn(rope(q), rope(k), v)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.inNorm))
		}
		transpose(inT, xn, T, d)
		c.fewProduct(row, d, c.e.qkv[l], inT, T, outT)
		transpose(qkv, outT, row, T)
		kc, vc := c.k[l], c.v[l]
		for t := 0; t < T; t++ {
			pos := c.n + t
			r := qkv[t*row : (t+1)*row]
			c.rope(r[:qd], pos)
			c.rope(r[qd:qd+kvd], pos)
			copy(kc[pos*kvd:(pos+1)*kvd], r[qd:qd+kvd])
			copy(vc[pos*kvd:(pos+1)*kvd], r[qd+kvd:])
		}
		for t := 0; t < T; t++ {
			c.attend(l, c.n+t, qkv[t*row:], att[t*qd:(t+1)*qd], c.dec.scores, 0, H)
		}
		transpose(inT, att, T, qd)
		c.fewProduct(d, qd, data(ls.o), inT, T, outT)
		addTransposed(x, outT, d, T)
		// MLP: x += down(silu(gate(n)) * up(n)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.postNorm))
		}
		transpose(inT, xn, T, d)
		c.fewProduct(2*I, d, c.e.gateUp[l], inT, T, outT)
		g, u, a := outT[:I*T], outT[I*T:2*I*T], inT[:I*T]
		vec.SiLU(a, g)
		vec.Mul(a, a, u)
		c.fewProduct(d, I, data(ls.down), inT, T, outT)
		addTransposed(x, outT, d, T)
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
	transpose(inT, xn, rows, d)
	c.fewProduct(V, d, data(c.e.head), inT, rows, outT)
	transpose(c.logits, outT, V, rows)
}

// fewProduct computes outT [m, T] = w [m, k] · inT [k, T]: SGEMM over the
// weight in blocks of fewBlock rows, with up to fewGEMV leading tokens
// as matrix-vector products when the rest fills whole register tiles. The
// blocks are shared among the decode team; every block is computed the
// same way whatever the number of threads.
func (c *Cache) fewProduct(m, k int, w, inT []float32, T int, outT []float32) {
	f := &c.few
	r := T % fewTile
	if r > fewGEMV || T < fewTile {
		r = 0
	}
	f.m, f.k, f.T, f.r, f.w, f.in, f.out = m, k, T, r, w, inT, outT
	if r > 0 {
		col := f.col[:k]
		for i := range col {
			col[i] = inT[i*T]
		}
	}
	if f.threads > 1 {
		decodeTeam.run(m, fewBlock, f.threads*chunksPerThread, f.fn)
	} else {
		f.fn(0, m)
	}
	f.w, f.in, f.out = nil, nil, nil
}

// fewRows computes rows [lo, hi) of the current fewProduct, lo a multiple
// of fewBlock.
func (c *Cache) fewRows(lo, hi int) {
	f := &c.few
	k, T, r, w := f.k, f.T, f.r, f.w
	for b := lo; b < hi; b += fewBlock {
		e := min(b+fewBlock, hi)
		gemm.Sgemm(false, false, e-b, T-r, k, 1, w[b*k:], k, f.in[r:], T, 0, f.out[b*T+r:], T)
		if r == 0 {
			continue
		}
		// The leading token (r is at most 1 here: see fewGEMV).
		y := f.y[b:e]
		c.e.gemvRows(e-b, k, w[b*k:], k, f.col[:k], 0, y)
		for i, v := range y {
			f.out[(b+i)*T] = v
		}
	}
}

// transpose writes dst [cols, rows] = srcᵀ for src [rows, cols].
func transpose(dst, src []float32, rows, cols int) {
	src, dst = src[:rows*cols], dst[:rows*cols]
	for i := 0; i < rows; i++ {
		s := src[i*cols : (i+1)*cols]
		for j, v := range s {
			dst[j*rows+i] = v
		}
	}
}

// addTransposed adds srcT [cols, rows] into dst [rows, cols]: dst += srcTᵀ.
func addTransposed(dst, srcT []float32, cols, rows int) {
	dst, srcT = dst[:rows*cols], srcT[:rows*cols]
	for i := 0; i < rows; i++ {
		d := dst[i*cols : (i+1)*cols]
		for j := range d {
			d[j] += srcT[j*rows+i]
		}
	}
}
