package attn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// problem is one attention call with its buffers. q, k and v may be views
// into one fused buffer (qkv != nil).
type problem struct {
	p          Params
	q, k, v    []float32
	qkv        []float32
	qOff, vOff int // offsets of q and v in qkv (k follows q)
}

// caseSpec describes a test shape; zero strides and KVCap take defaults.
type caseSpec struct {
	name                        string
	b, h, kvh, tq, tk, d, kvcap int
	mask                        Mask
	fused                       bool // q, k, v interleaved in one buffer
}

func (c caseSpec) build(rng *rand.Rand) *problem {
	p := Params{Batch: c.b, Heads: c.h, KVHeads: c.kvh, Tq: c.tq, Tk: c.tk, Dim: c.d, KVCap: c.kvcap, Mask: c.mask}
	pr := &problem{}
	if c.mask.Kind == Explicit && c.mask.Allow == nil {
		allow := make([]bool, c.tq*c.tk)
		for i := range allow {
			allow[i] = rng.IntN(3) != 0
		}
		for j := 0; j < c.tk; j++ { // query 1 sees nothing
			if c.tq > 1 {
				allow[c.tk+j] = false
			}
		}
		p.Mask.Allow = allow
	}
	p = p.Normalize()
	if c.fused {
		// token-major [B, T, 3, H, D] with Tq == Tk == KVCap
		w := 3 * c.h * c.d
		p.QStride, p.KStride, p.VStride = w, w, w
		pr.qkv = randSlice(rng, c.b*c.tq*w)
		pr.q = pr.qkv
		pr.k = pr.qkv[c.h*c.d:]
		pr.v = pr.qkv[2*c.h*c.d:]
	} else {
		pr.q = randSlice(rng, c.b*c.tq*p.QStride)
		pr.k = randSlice(rng, c.b*p.KVCap*p.KStride)
		pr.v = randSlice(rng, c.b*p.KVCap*p.VStride)
	}
	pr.p = p
	return pr
}

func forwardCases() []caseSpec {
	return []caseSpec{
		{name: "full T1 D8", b: 1, h: 1, kvh: 1, tq: 1, tk: 1, d: 8},
		{name: "full T7 D17", b: 2, h: 3, kvh: 3, tq: 7, tk: 7, d: 17},
		{name: "full T100 D64", b: 1, h: 2, kvh: 2, tq: 100, tk: 100, d: 64},
		{name: "dit fused qkv", b: 3, h: 4, kvh: 4, tq: 64, tk: 64, d: 64, fused: true},
		{name: "causal T33 D17", b: 2, h: 2, kvh: 2, tq: 33, tk: 33, d: 17, mask: Mask{Kind: Causal}},
		{name: "causal T100 gqa", b: 1, h: 8, kvh: 2, tq: 100, tk: 100, d: 32, mask: Mask{Kind: Causal}},
		{name: "causal g3", b: 1, h: 6, kvh: 2, tq: 33, tk: 33, d: 8, mask: Mask{Kind: Causal}},
		{name: "block causal 16", b: 2, h: 2, kvh: 1, tq: 100, tk: 100, d: 8, mask: Mask{Kind: BlockCausal, Block: 16}},
		{name: "block diagonal 7", b: 1, h: 2, kvh: 2, tq: 33, tk: 33, d: 64, mask: Mask{Kind: BlockDiagonal, Block: 7}},
		{name: "block diagonal empty rows", b: 1, h: 2, kvh: 2, tq: 8, tk: 4, d: 8, mask: Mask{Kind: BlockDiagonal, Block: 4}},
		{name: "explicit", b: 2, h: 2, kvh: 1, tq: 7, tk: 33, d: 17, mask: Mask{Kind: Explicit}},
		{name: "decode kv cache", b: 1, h: 8, kvh: 4, tq: 1, tk: 100, kvcap: 128, d: 64, mask: Mask{Kind: Causal, QOffset: 99}},
		{name: "decode long", b: 2, h: 8, kvh: 4, tq: 1, tk: 1001, kvcap: 1030, d: 32, mask: Mask{Kind: Causal, QOffset: 1000}},
		{name: "chunk with offset", b: 2, h: 8, kvh: 2, tq: 7, tk: 40, kvcap: 64, d: 17, mask: Mask{Kind: Causal, QOffset: 33}},
		{name: "dot path block diagonal", b: 2, h: 4, kvh: 2, tq: 2, tk: 50, kvcap: 64, d: 17, mask: Mask{Kind: BlockDiagonal, Block: 16, QOffset: 31}},
		{name: "dot path explicit", b: 1, h: 3, kvh: 1, tq: 1, tk: 300, d: 8, mask: Mask{Kind: Explicit}},
		{name: "block causal offset", b: 1, h: 4, kvh: 2, tq: 5, tk: 37, kvcap: 40, d: 8, mask: Mask{Kind: BlockCausal, Block: 16, QOffset: 32}},
	}
}

// refForward is refForward64 on float32 inputs.
func refForward(q, k, v []float32, p Params) (out, lse []float64) {
	return refForward64(to64(q), to64(k), to64(v), p)
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range forwardCases() {
		pr := c.build(rng)
		p := pr.p
		wantOut, wantLse := refForward(pr.q, pr.k, pr.v, p)
		t.Run(c.name, func(t *testing.T) {
			eachLevel(t, func(t *testing.T) {
				out := make([]float32, p.Batch*p.Tq*p.OStride)
				lse := make([]float32, p.Batch*p.Heads*p.Tq)
				for i := range out {
					out[i] = float32(math.NaN()) // every element must be written
				}
				Forward(out, lse, pr.q, pr.k, pr.v, c.params(pr))
				emptyRows := 0
				for i, w := range wantLse {
					g := float64(lse[i])
					if math.IsInf(w, -1) {
						emptyRows++
						if !math.IsInf(g, -1) {
							t.Fatalf("lse[%d] = %v, want -Inf", i, g)
						}
						continue
					}
					if math.Abs(g-w) > 1e-5*(1+math.Abs(w)) {
						t.Fatalf("lse[%d] = %v, want %v", i, g, w)
					}
				}
				for i, w := range wantOut {
					if d := math.Abs(float64(out[i]) - w); !(d <= 2e-5*(1+math.Abs(w))) {
						t.Fatalf("out[%d] = %v, want %v", i, out[i], w)
					}
				}
				if (c.name == "explicit" || c.name == "block diagonal empty rows") && emptyRows == 0 {
					t.Fatalf("case meant to have fully masked rows has none")
				}
			})
		})
	}
}

// params returns the Params to pass to Forward/Backward: the spec's zero
// fields left zero (so the defaults are exercised) unless strides matter.
func (c caseSpec) params(pr *problem) Params {
	if c.fused {
		return pr.p
	}
	p := pr.p
	p.QStride, p.KStride, p.VStride, p.OStride, p.Scale = 0, 0, 0, 0, 0
	if c.kvcap == 0 {
		p.KVCap = 0
	}
	return p
}

func TestForwardWithoutLSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := caseSpec{b: 1, h: 2, kvh: 1, tq: 9, tk: 9, d: 16, mask: Mask{Kind: Causal}}
	pr := c.build(rng)
	out1 := make([]float32, 9*2*16)
	out2 := make([]float32, 9*2*16)
	lse := make([]float32, 2*9)
	Forward(out1, lse, pr.q, pr.k, pr.v, pr.p)
	Forward(out2, nil, pr.q, pr.k, pr.v, pr.p)
	for i := range out1 {
		if out1[i] != out2[i] {
			t.Fatalf("out[%d] differs with and without lse: %v vs %v", i, out1[i], out2[i])
		}
	}
}

func TestForwardRejectsBadShapes(t *testing.T) {
	cases := []struct {
		name string
		p    Params
		n    int
	}{
		{"heads not multiple", Params{Batch: 1, Heads: 3, KVHeads: 2, Tq: 1, Tk: 1, Dim: 4}, 64},
		{"short buffers", Params{Batch: 2, Heads: 1, Tq: 4, Tk: 4, Dim: 4}, 8},
		{"block zero", Params{Batch: 1, Heads: 1, Tq: 1, Tk: 1, Dim: 4, Mask: Mask{Kind: BlockCausal}}, 64},
		{"allow short", Params{Batch: 1, Heads: 1, Tq: 2, Tk: 2, Dim: 4, Mask: Mask{Kind: Explicit, Allow: []bool{true}}}, 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("no panic")
				} else if s := fmt.Sprint(r); len(s) < 12 || s[:5] != "attn." {
					t.Fatalf("panic message %q does not name the call", s)
				}
			}()
			buf := make([]float32, c.n)
			Forward(buf, nil, buf, buf, buf, c.p)
		})
	}
}
