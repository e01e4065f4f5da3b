package llama

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"tessera/internal/attn"
	"tessera/internal/gemm"
	"tessera/internal/parallel"
	"tessera/internal/vec"
	"tessera/tensor"
)

// slot is a weight holder the inference engine reads and may rebind; an
// *autodiff.Var is one.
type slot interface {
	Tensor() *tensor.Tensor
	SetTensor(*tensor.Tensor)
}

// layerSlots are one decoder layer's weights, in PyTorch layout [out, in].
type layerSlots struct {
	inNorm, postNorm slot // [d]
	q, k, v, o       slot // [H*hd, d], [Hkv*hd, d], [Hkv*hd, d], [d, H*hd]
	gate, up, down   slot // [I, d], [I, d], [d, I]
}

// engine runs the decoder on float32 slices for inference. It packs the
// weights a token streams through into one arena, in the order a decode
// step reads them (per layer q|k|v, o, gate|up, down; then the LM head),
// so that decoding reads memory front to back and the projections that
// read the same input are fused (q|k|v and gate|up issue one GEMV each).
// The model's weights are rebound to views of the arena, so in-place
// updates (an optimiser step) stay visible, and a replaced tensor (a
// checkpoint load) is noticed and the arena repacked.
type engine struct {
	mu     sync.Mutex // held while checking and packing the arena
	cfg    Config
	embed  slot // [V, d]
	norm   slot // [d]
	head   slot // [V, d]; the embedding when tied
	layers []layerSlots
	order  []slot      // the arena's slots, in arena order
	arena  []float32   // the packed weights
	qkv    [][]float32 // per layer [(H+2Hkv)*hd, d], a view of the arena
	gateUp [][]float32 // per layer [2I, d], a view of the arena

	// batched holds the weights of batched passes packed for
	// gemm.GemmPacked, as they were when the last cache was made.
	batched atomic.Pointer[batchedWeights]
}

// batchedWeights are a copy of the arena's projections packed for the
// products of batched passes (gemm.Packed), and the hash of the arena
// they were packed from.
type batchedWeights struct {
	layers []batchedLayer
	head   *gemm.Packed
	sum    uint64
}

type batchedLayer struct{ qkv, o, gateUp, down *gemm.Packed }

func newEngine(cfg Config, embed, norm, head slot, layers []layerSlots) *engine {
	e := &engine{cfg: cfg, embed: embed, norm: norm, head: head, layers: layers,
		qkv: make([][]float32, len(layers)), gateUp: make([][]float32, len(layers))}
	for _, ls := range layers {
		e.order = append(e.order, ls.q, ls.k, ls.v, ls.o, ls.gate, ls.up, ls.down)
	}
	e.order = append(e.order, head)
	return e
}

// sync makes sure the arena holds the current weights. Caches of one
// model may run on different goroutines (a speculative decoder's target
// and draft); the lock keeps them from packing at once.
func (e *engine) sync() {
	e.mu.Lock()
	if !e.packed() {
		e.pack()
	}
	e.mu.Unlock()
}

// packed reports whether every slot views its place in the arena.
func (e *engine) packed() bool {
	if e.arena == nil {
		return false
	}
	n := 0
	for _, p := range e.order {
		t := p.Tensor()
		st := t.Storage()
		if !t.IsContiguous() || len(st) <= t.Offset() || n+t.Numel() > len(e.arena) || &st[t.Offset()] != &e.arena[n] {
			return false
		}
		n += t.Numel()
	}
	return n == len(e.arena)
}

// pack copies the weights into a new arena and rebinds every slot to its
// part.
func (e *engine) pack() {
	n := 0
	for _, p := range e.order {
		n += p.Tensor().Numel()
	}
	arena := streamAlloc(n)
	off := 0
	for _, p := range e.order {
		t := p.Tensor()
		k := t.Numel()
		copy(arena[off:off+k], t.Data())
		p.SetTensor(tensor.FromData(arena[off:off+k:off+k], t.Shape()...))
		off += k
	}
	e.arena = arena
	// The fused views: q|k|v and gate|up are adjacent in the arena.
	for l := range e.layers {
		ls := &e.layers[l]
		e.qkv[l] = span(arena, ls.q, ls.v)
		e.gateUp[l] = span(arena, ls.gate, ls.up)
	}
	e.packBatched()
}

// prepare makes sure the arena holds the current weights and the batched
// copy matches the arena, repacking it when the arena's contents changed
// (an optimiser step) since it was packed.
func (e *engine) prepare() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.packed() {
		e.pack()
		return
	}
	if b := e.batched.Load(); b == nil || b.sum != arenaSum(e.arena) {
		e.packBatched()
	}
}

// packBatched packs the batched copy of the arena's projections.
func (e *engine) packBatched() {
	cfg := e.cfg
	d, I := cfg.HiddenSize, cfg.IntermediateSize
	qd := cfg.NumAttentionHeads * cfg.HeadDim()
	rows := qd + 2*cfg.KVHeads()*cfg.HeadDim()
	b := &batchedWeights{layers: make([]batchedLayer, len(e.layers)), sum: arenaSum(e.arena)}
	// One allocation on huge pages for all of them, in the order a pass
	// reads them.
	type mat struct {
		dst  **gemm.Packed
		w    []float32
		n, k int
	}
	var mats []mat
	for l := range e.layers {
		ls, bl := &e.layers[l], &b.layers[l]
		mats = append(mats, mat{&bl.qkv, e.qkv[l], rows, d}, mat{&bl.o, data(ls.o), d, qd},
			mat{&bl.gateUp, e.gateUp[l], 2 * I, d}, mat{&bl.down, data(ls.down), d, I})
	}
	mats = append(mats, mat{&b.head, data(e.head), cfg.VocabSize, d})
	total := 0
	for _, m := range mats {
		total += gemm.PackedLen(m.n, m.k)
	}
	buf := streamAlloc(total)
	for _, m := range mats {
		*m.dst = gemm.PackF32In(buf, m.w, m.n, m.k, m.k)
		buf = buf[gemm.PackedLen(m.n, m.k):]
	}
	e.batched.Store(b)
}

// arenaSum hashes the arena's bits, in parts on the worker pool (reading
// 40 MB takes about 3.5 ms on one thread).
func arenaSum(arena []float32) uint64 {
	const part = 1 << 20 // floats
	n := (len(arena) + part - 1) / part
	if n == 0 {
		return 0
	}
	sums := make([]uint64, n)
	parallel.For(n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := arena[i*part : min((i+1)*part, len(arena))]
			sums[i] = maphash.Bytes(arenaSeed, unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), 4*len(p)))
		}
	})
	return maphash.Bytes(arenaSeed, unsafe.Slice((*byte)(unsafe.Pointer(&sums[0])), 8*len(sums)))
}

var arenaSeed = maphash.MakeSeed()

// span returns the part of arena from the first element of slot first to
// the last element of slot last.
func span(arena []float32, first, last slot) []float32 {
	base := &arena[0]
	at := func(s slot) int {
		t := s.Tensor()
		return int((uintptr(unsafe.Pointer(&t.Storage()[t.Offset()])) - uintptr(unsafe.Pointer(base))) / 4)
	}
	lo, hi := at(first), at(last)+last.Tensor().Numel()
	return arena[lo:hi:hi]
}

// data returns the contiguous values of a slot.
func data(s slot) []float32 { return s.Tensor().Data() }

// Cache is the key/value cache of one sequence: it feeds tokens through the
// model, appending their keys and values in place, and returns logits. The
// slices it returns belong to the cache and are overwritten by its next
// call. A Cache is not safe for concurrent use; different caches, of one
// model or of several, may be used from different goroutines at once.
type Cache struct {
	e        *engine
	capacity int
	n        int         // tokens held
	k, v     [][]float32 // per layer [capacity, Hkv*hd]
	cos, sin []float32   // [capacity, hd/2]

	rows                     int // rows the scratch buffers hold
	x, xn, qkv, att, gu, act []float32
	logits                   []float32
	hiddenRows               int
	one                      [1]int
	dec                      *decoder   // one-token steps
	few                      fewBuffers // passes of a few tokens
}

func newCache(e *engine, capacity int) *Cache {
	c := e.cfg
	kvd := c.KVHeads() * c.HeadDim()
	cache := &Cache{e: e, capacity: capacity, k: make([][]float32, c.NumHiddenLayers), v: make([][]float32, c.NumHiddenLayers)}
	for l := range cache.k {
		cache.k[l] = make([]float32, capacity*kvd)
		cache.v[l] = make([]float32, capacity*kvd)
	}
	cache.cos, cache.sin = ropeTables(c, capacity)
	cache.grow(1)
	cache.dec = newDecoder(cache)
	return cache
}

// ropeTables returns cos and sin of pos·θ^(-2i/hd) for pos < n, i < hd/2.
func ropeTables(c Config, n int) (cos, sin []float32) {
	half := c.HeadDim() / 2
	cos, sin = make([]float32, n*half), make([]float32, n*half)
	for i := 0; i < half; i++ {
		inv := math.Pow(c.RopeTheta, -float64(2*i)/float64(c.HeadDim()))
		for p := 0; p < n; p++ {
			s, co := math.Sincos(float64(p) * inv)
			cos[p*half+i], sin[p*half+i] = float32(co), float32(s)
		}
	}
	return cos, sin
}

// grow sizes the scratch buffers for chunks of up to rows tokens.
func (c *Cache) grow(rows int) {
	if rows <= c.rows {
		return
	}
	cfg := c.e.cfg
	d, qd, kvd, I := cfg.HiddenSize, cfg.NumAttentionHeads*cfg.HeadDim(), cfg.KVHeads()*cfg.HeadDim(), cfg.IntermediateSize
	c.rows = rows
	c.x = make([]float32, rows*d)
	c.xn = make([]float32, rows*d)
	c.qkv = make([]float32, rows*(qd+2*kvd))
	c.att = make([]float32, rows*qd)
	c.gu = make([]float32, rows*2*I)
	c.act = make([]float32, rows*I)
	c.logits = make([]float32, rows*cfg.VocabSize)
}

// Len is the number of tokens in the cache (the position of the next one).
func (c *Cache) Len() int { return c.n }

// Cap is the number of tokens the cache can hold.
func (c *Cache) Cap() int { return c.capacity }

// Reset empties the cache.
func (c *Cache) Reset() { c.n = 0 }

// Truncate keeps the first n tokens, dropping the rest (speculative
// decoding rolls back rejected draft tokens with it).
func (c *Cache) Truncate(n int) error {
	if n < 0 || n > c.n {
		return fmt.Errorf("llama cache: truncate to %d tokens, cache holds %d", n, c.n)
	}
	c.n = n
	return nil
}

// Prefill appends tokens in one batched pass and returns the logits
// [vocab] of the last one.
func (c *Cache) Prefill(tokens []int) ([]float32, error) {
	if err := c.forward(tokens, false); err != nil {
		return nil, err
	}
	return c.logits[:c.e.cfg.VocabSize], nil
}

// Decode appends one token and returns its logits [vocab]. It allocates
// nothing.
func (c *Cache) Decode(token int) ([]float32, error) {
	c.one[0] = token
	return c.Prefill(c.one[:])
}

// Extend appends tokens in one batched pass and returns the logits of
// every one of them, [len(tokens), vocab] row-major (a speculative
// decoder's verification pass).
func (c *Cache) Extend(tokens []int) ([]float32, error) {
	if err := c.forward(tokens, true); err != nil {
		return nil, err
	}
	return c.logits[:len(tokens)*c.e.cfg.VocabSize], nil
}

// Hidden returns the hidden states [T, hidden] of the T tokens of the last
// Prefill, Decode or Extend after the last layer, before the final norm.
func (c *Cache) Hidden() []float32 { return c.x[:c.hiddenRows*c.e.cfg.HiddenSize] }

// forward runs tokens at positions Len()… through the model, leaving the
// logits of the last token (or of all when all) in c.logits.
func (c *Cache) forward(tokens []int, all bool) error {
	cfg := c.e.cfg
	T := len(tokens)
	if T == 0 {
		return fmt.Errorf("llama cache: no tokens")
	}
	if c.n+T > c.capacity {
		return fmt.Errorf("llama cache: %d tokens exceed the capacity of %d (%d held)", T, c.capacity, c.n)
	}
	for i, t := range tokens {
		if t < 0 || t >= cfg.VocabSize {
			return fmt.Errorf("llama cache: token %d at position %d is outside the vocabulary of %d", t, i, cfg.VocabSize)
		}
	}
	c.e.sync()
	if T == 1 {
		// One token: the GEMV-bound step, threaded by the decode team.
		c.dec.step(tokens[0])
		c.n++
		c.hiddenRows = 1
		return nil
	}
	if T <= fewLimit {
		c.forwardFew(tokens, all)
		return nil
	}
	c.grow(T)
	d, hd := cfg.HiddenSize, cfg.HeadDim()
	H, Hkv, I := cfg.NumAttentionHeads, cfg.KVHeads(), cfg.IntermediateSize
	qd, kvd := H*hd, Hkv*hd
	row := qd + 2*kvd
	eps := float32(cfg.RMSNormEps)
	x, xn, qkv, att, gu, act := c.x[:T*d], c.xn[:T*d], c.qkv[:T*row], c.att[:T*qd], c.gu[:T*2*I], c.act[:T*I]

	embed := data(c.e.embed)
	for t, tok := range tokens {
		copy(x[t*d:(t+1)*d], embed[tok*d:(tok+1)*d])
	}
	ap := attn.Params{Batch: 1, Heads: H, KVHeads: Hkv, Tq: T, Tk: c.n + T, Dim: hd, KVCap: c.capacity,
		QStride: row, Mask: attn.Mask{Kind: attn.Causal, QOffset: c.n}}
	for l := range c.e.layers {
		ls := &c.e.layers[l]
		// Attention: x += o_proj(attn(rope(q), rope(k), v)) of n = norm(x).
		vec.RMSNorm(xn, x, d, eps, data(ls.inNorm), nil)
		matmulT(T, row, d, xn, c.e.qkv[l], 0, qkv)
		kc, vc := c.k[l], c.v[l]
		for t := 0; t < T; t++ {
			pos := c.n + t
			r := qkv[t*row : (t+1)*row]
			c.rope(r[:qd], pos)
			c.rope(r[qd:qd+kvd], pos)
			copy(kc[pos*kvd:(pos+1)*kvd], r[qd:qd+kvd])
			copy(vc[pos*kvd:(pos+1)*kvd], r[qd+kvd:])
		}
		attn.Forward(att, nil, qkv, kc, vc, ap)
		matmulT(T, d, qd, att, data(ls.o), 1, x)
		// MLP: x += down(silu(gate(n)) * up(n)) of n = norm(x).
		vec.RMSNorm(xn, x, d, eps, data(ls.postNorm), nil)
		matmulT(T, 2*I, d, xn, c.e.gateUp[l], 0, gu)
		for t := 0; t < T; t++ {
			g, u, a := gu[t*2*I:t*2*I+I], gu[t*2*I+I:(t+1)*2*I], act[t*I:(t+1)*I]
			vec.SiLU(a, g)
			vec.Mul(a, a, u)
		}
		matmulT(T, d, I, act, data(ls.down), 1, x)
	}
	c.n += T
	c.hiddenRows = T
	first := T - 1
	if all {
		first = 0
	}
	rows := T - first
	vec.RMSNorm(xn[:rows*d], x[first*d:], d, eps, data(c.e.norm), nil)
	matmulT(rows, cfg.VocabSize, d, xn[:rows*d], data(c.e.head), 0, c.logits[:rows*cfg.VocabSize])
	return nil
}

// rope rotates every head of x (heads of HeadDim values) for position pos
// in the Hugging Face layout: pairs (i, i+hd/2).
func (c *Cache) rope(x []float32, pos int) {
	hd := c.e.cfg.HeadDim()
	half := hd / 2
	cos, sin := c.cos[pos*half:(pos+1)*half], c.sin[pos*half:(pos+1)*half]
	for h := 0; h+hd <= len(x); h += hd {
		a, b := x[h:h+half], x[h+half:h+hd]
		for i := range a {
			x1, x2 := a[i], b[i]
			a[i] = x1*cos[i] - x2*sin[i]
			b[i] = x2*cos[i] + x1*sin[i]
		}
	}
}

// matmulT computes out[m×n] = a[m×k]·wᵀ + beta·out for a weight w [n, k]
// (PyTorch layout): a GEMV for one row, a GEMM otherwise.
func matmulT(m, n, k int, a, w []float32, beta float32, out []float32) {
	if m == 1 {
		gemm.Sgemv(false, n, k, 1, w, k, a[:k], beta, out[:n])
		return
	}
	gemm.Sgemm(false, true, m, n, k, 1, a, k, w, k, beta, out, n)
}
