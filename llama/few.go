package llama

import (
	"time"

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

// fewLimit is fewMax; benchmarks lower it to time the large-batch path.
var fewLimit = fewMax

// fewBlock is the number of weight rows per SGEMM call: a multiple of
// every register tile height (6, 8, 12) and of the GEMV's 4-row blocks.
const fewBlock = 96

// fewTile is the width of SGEMM's register tiles for these shapes, and
// fewGEMV the most leftover tokens run as matrix-vector products.
const (
	fewTile = 16
	fewGEMV = 1
)

// fewBuffers are the feature-major scratch buffers of the few-token path.
type fewBuffers struct {
	inT  []float32 // [max(d, H*hd, I), ld] input of a product, feature-major
	outT []float32 // [max(rows, 2I, V, d), ld] output of a product, feature-major
	col  []float32 // the input column of the GEMV token, contiguous
	y    []float32 // the output column of the GEMV token

	// The product being run (see fewProduct) and the threads running it.
	threads    int
	m, k, ld   int
	r          int // leading columns run as a GEMV (0 or 1)
	w, in, out []float32
	fn         func(lo, hi int) // c.fewRows, bound once

	choice threadChoice // whether passes use the decode team
}

// fewLayout returns the column stride of the feature-major buffers for T
// tokens and the number of leading tokens run as GEMVs: the others fill
// whole register tiles, padded with unused columns.
func fewLayout(T int) (ld, r int) {
	if T > fewTile && T%fewTile == 1 {
		r = 1
	}
	return r + (T-r+fewTile-1)/fewTile*fewTile, r
}

func (c *Cache) growFew() {
	if c.few.inT != nil {
		return
	}
	cfg := c.e.cfg
	d, hd, I, V := cfg.HiddenSize, cfg.HeadDim(), cfg.IntermediateSize, cfg.VocabSize
	rows := (cfg.NumAttentionHeads + 2*cfg.KVHeads()) * hd
	in, out := max(d, cfg.NumAttentionHeads*hd, I), max(rows, 2*I, V, d)
	ld, _ := fewLayout(fewMax)
	c.few = fewBuffers{
		inT:  make([]float32, in*(ld+1)),
		outT: make([]float32, out*(ld+1)),
		col:  make([]float32, in),
		y:    make([]float32, out),
	}
	c.few.fn = c.fewRows
}

// forwardFew is forward for 2…fewMax tokens (checked by the caller).
func (c *Cache) forwardFew(tokens []int, all bool) {
	cfg := c.e.cfg
	T := len(tokens)
	c.grow(T)
	c.growFew()
	f := &c.few
	d, hd := cfg.HiddenSize, cfg.HeadDim()
	H, Hkv, I := cfg.NumAttentionHeads, cfg.KVHeads(), cfg.IntermediateSize
	qd, kvd := H*hd, Hkv*hd
	row := qd + 2*kvd
	eps := float32(cfg.RMSNormEps)
	x, xn, qkv, att := c.x[:T*d], c.xn[:T*d], c.qkv[:T*row], c.att[:T*qd]
	inT, outT := f.inT, f.outT
	ld, _ := fewLayout(T)

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
		// Attention: x += o_proj(attn(rope(q), rope(k), v)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.inNorm))
		}
		transpose(inT, ld, xn, T, d)
		c.fewProduct(row, d, c.e.qkv[l], T)
		untranspose(qkv, outT, ld, T, row)
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
		transpose(inT, ld, att, T, qd)
		c.fewProduct(d, qd, data(ls.o), T)
		addTransposed(x, outT, ld, T, d)
		// MLP: x += down(silu(gate(n)) * up(n)) of n = norm(x).
		for t := 0; t < T; t++ {
			rmsNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], eps, data(ls.postNorm))
		}
		transpose(inT, ld, xn, T, d)
		c.fewProduct(2*I, d, c.e.gateUp[l], T)
		g, u, a := outT[:I*ld], outT[I*ld:2*I*ld], inT[:I*ld]
		vec.SiLU(a, g)
		vec.Mul(a, a, u)
		c.fewProduct(d, I, data(ls.down), T)
		addTransposed(x, outT, ld, T, d)
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
	ld, _ = fewLayout(rows)
	transpose(inT, ld, xn, rows, d)
	c.fewProduct(V, d, data(c.e.head), rows)
	untranspose(c.logits, outT, ld, rows, V)
}

// fewProduct computes outT [m, ld] = w [m, k] · inT [k, ld] for the
// layout of T tokens (see fewLayout): SGEMM over the weight in blocks of
// fewBlock rows, the leading GEMV token as a matrix-vector product. The
// blocks are shared among the decode team; every block is computed the
// same way whatever the number of threads.
func (c *Cache) fewProduct(m, k int, w []float32, T int) {
	f := &c.few
	f.ld, f.r = fewLayout(T)
	f.m, f.k, f.w, f.in, f.out = m, k, w, f.inT, f.outT
	if f.r > 0 {
		col := f.col[:k]
		for i := range col {
			col[i] = f.in[i*f.ld]
		}
	}
	if f.threads > 1 {
		decodeTeam.run(m, fewBlock, f.threads*chunksPerThread, f.fn)
	} else {
		f.fn(0, m)
	}
	f.w = nil
}

// fewRows computes rows [lo, hi) of the current fewProduct, lo a multiple
// of fewBlock.
func (c *Cache) fewRows(lo, hi int) {
	f := &c.few
	k, ld, r, w := f.k, f.ld, f.r, f.w
	// Whichever of the two products reads a block of weights first streams
	// it in from memory; the other finds it in the cache. SgemmStreamA
	// prefetches ahead as it computes, so when it applies it goes first.
	// Otherwise the GEMV token goes first: it streams the block in with
	// prefetches, where SGEMM, reading twelve rows at a time, would wait
	// for memory when the weights were evicted between passes (as a
	// speculative decoder's draft steps do).
	stream := gemm.StreamsA(ld-r, k, k)
	for b := lo; b < hi; b += fewBlock {
		e := min(b+fewBlock, hi)
		if r > 0 && !stream {
			c.fewGEMVToken(b, e)
		}
		if stream {
			gemm.SgemmStreamA(e-b, ld-r, k, w[b*k:], k, f.in[r:], ld, f.out[b*ld+r:], ld)
		} else {
			gemm.Sgemm(false, false, e-b, ld-r, k, 1, w[b*k:], k, f.in[r:], ld, 0, f.out[b*ld+r:], ld)
		}
		if r > 0 && stream {
			c.fewGEMVToken(b, e)
		}
	}
}

// fewGEMVToken computes rows [b, e) of the current fewProduct for its
// leading GEMV token (column 0 of the output).
func (c *Cache) fewGEMVToken(b, e int) {
	f := &c.few
	y := f.y[b:e]
	c.e.gemvRows(e-b, f.k, f.w[b*f.k:], f.k, f.col[:f.k], 0, y)
	for i, v := range y {
		f.out[(b+i)*f.ld] = v
	}
}

// transpose writes src [rows, cols] into dst feature-major: dst[j*ld+i] =
// src[i*cols+j]. Rows go four at a time, so that each feature's four
// values are one short contiguous store.
func transpose(dst []float32, ld int, src []float32, rows, cols int) {
	src = src[:rows*cols]
	i := 0
	for ; i+4 <= rows; i += 4 {
		s0, s1 := src[i*cols:(i+1)*cols], src[(i+1)*cols:(i+2)*cols]
		s2, s3 := src[(i+2)*cols:(i+3)*cols], src[(i+3)*cols:(i+4)*cols]
		for j := range s0 {
			d := dst[j*ld+i : j*ld+i+4 : j*ld+i+4]
			d[0], d[1], d[2], d[3] = s0[j], s1[j], s2[j], s3[j]
		}
	}
	for ; i < rows; i++ {
		for j, v := range src[i*cols : (i+1)*cols] {
			dst[j*ld+i] = v
		}
	}
}

// untranspose writes the first rows columns of src [cols, ld] into dst
// [rows, cols]: dst[i*cols+j] = src[j*ld+i].
func untranspose(dst, src []float32, ld, rows, cols int) {
	dst = dst[:rows*cols]
	i := 0
	for ; i+4 <= rows; i += 4 {
		d0, d1 := dst[i*cols:(i+1)*cols], dst[(i+1)*cols:(i+2)*cols]
		d2, d3 := dst[(i+2)*cols:(i+3)*cols], dst[(i+3)*cols:(i+4)*cols]
		for j := range d0 {
			s := src[j*ld+i : j*ld+i+4 : j*ld+i+4]
			d0[j], d1[j], d2[j], d3[j] = s[0], s[1], s[2], s[3]
		}
	}
	for ; i < rows; i++ {
		d := dst[i*cols : (i+1)*cols]
		for j := range d {
			d[j] = src[j*ld+i]
		}
	}
}

// addTransposed is untranspose adding into dst.
func addTransposed(dst, src []float32, ld, rows, cols int) {
	dst = dst[:rows*cols]
	i := 0
	for ; i+4 <= rows; i += 4 {
		d0, d1 := dst[i*cols:(i+1)*cols], dst[(i+1)*cols:(i+2)*cols]
		d2, d3 := dst[(i+2)*cols:(i+3)*cols], dst[(i+3)*cols:(i+4)*cols]
		for j := range d0 {
			s := src[j*ld+i : j*ld+i+4 : j*ld+i+4]
			d0[j] += s[0]
			d1[j] += s[1]
			d2[j] += s[2]
			d3[j] += s[3]
		}
	}
	for ; i < rows; i++ {
		d := dst[i*cols : (i+1)*cols]
		for j := range d {
			d[j] += src[j*ld+i]
		}
	}
}
