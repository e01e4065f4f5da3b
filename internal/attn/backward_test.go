package attn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, x := range s {
		d[i] = float64(x)
	}
	return d
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, x := range s {
		d[i] = float32(x)
	}
	return d
}

// lossAt is Σ out·w for the float64 forward; w has the layout of out.
func lossAt(q, k, v []float64, w []float64, p Params) float64 {
	out, _ := refForward64(q, k, v, p)
	var l float64
	for i, x := range out {
		l += x * w[i]
	}
	return l
}

// refForward64 is attention in float64, straight from the definition.
func refForward64(q, k, v []float64, p Params) (out, lse []float64) {
	g := p.Heads / p.KVHeads
	out = make([]float64, p.Batch*p.Tq*p.OStride)
	lse = make([]float64, p.Batch*p.Heads*p.Tq)
	s := make([]float64, p.Tk)
	for b := 0; b < p.Batch; b++ {
		for h := 0; h < p.Heads; h++ {
			kh := h / g
			for i := 0; i < p.Tq; i++ {
				m := math.Inf(-1)
				for j := range s {
					s[j] = math.Inf(-1)
					if !p.Mask.Allowed(i, j, p.Tk) {
						continue
					}
					var d float64
					for c := 0; c < p.Dim; c++ {
						d += q[(b*p.Tq+i)*p.QStride+h*p.Dim+c] * k[(b*p.KVCap+j)*p.KStride+kh*p.Dim+c]
					}
					s[j] = d * float64(p.Scale)
					m = max(m, s[j])
				}
				li := (b*p.Heads+h)*p.Tq + i
				lse[li] = m
				if math.IsInf(m, -1) {
					continue
				}
				var sum float64
				o := out[(b*p.Tq+i)*p.OStride+h*p.Dim:][:p.Dim]
				for j, x := range s {
					if math.IsInf(x, -1) {
						continue
					}
					e := math.Exp(x - m)
					sum += e
					for c := range o {
						o[c] += e * v[(b*p.KVCap+j)*p.VStride+kh*p.Dim+c]
					}
				}
				for c := range o {
					o[c] /= sum
				}
				lse[li] = m + math.Log(sum)
			}
		}
	}
	return out, lse
}

func backwardFDCases() []caseSpec {
	return []caseSpec{
		{name: "full", b: 1, h: 2, kvh: 2, tq: 5, tk: 5, d: 8},
		{name: "fused qkv", b: 2, h: 2, kvh: 2, tq: 6, tk: 6, d: 8, fused: true},
		{name: "causal gqa", b: 1, h: 4, kvh: 2, tq: 9, tk: 9, d: 8, mask: Mask{Kind: Causal}},
		{name: "causal g3", b: 1, h: 6, kvh: 2, tq: 5, tk: 5, d: 7, mask: Mask{Kind: Causal}},
		{name: "block causal", b: 1, h: 2, kvh: 1, tq: 10, tk: 10, d: 8, mask: Mask{Kind: BlockCausal, Block: 3}},
		{name: "block diagonal", b: 1, h: 2, kvh: 2, tq: 9, tk: 9, d: 8, mask: Mask{Kind: BlockDiagonal, Block: 4}},
		{name: "block diagonal empty rows", b: 1, h: 1, kvh: 1, tq: 6, tk: 3, d: 8, mask: Mask{Kind: BlockDiagonal, Block: 3}},
		{name: "explicit", b: 1, h: 2, kvh: 1, tq: 6, tk: 7, d: 8, mask: Mask{Kind: Explicit}},
		{name: "kv cache", b: 2, h: 4, kvh: 2, tq: 3, tk: 8, kvcap: 10, d: 8, mask: Mask{Kind: Causal, QOffset: 5}},
	}
}

// TestBackwardFiniteDifferences checks dq, dk, dv of the loss Σ out·w
// against central differences of the float64 forward.
func TestBackwardFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range backwardFDCases() {
		t.Run(c.name, func(t *testing.T) {
			pr := c.build(rng)
			p := pr.p
			w := randSlice(rng, p.Batch*p.Tq*p.OStride)
			w64 := to64(w)

			// float64 copies of the inputs (for a fused case, of the one buffer)
			var q64, k64, v64 []float64
			if c.fused {
				all := to64(pr.qkv)
				q64, k64, v64 = all, all[c.h*c.d:], all[2*c.h*c.d:]
			} else {
				q64, k64, v64 = to64(pr.q), to64(pr.k), to64(pr.v)
			}
			const eps = 1e-4
			fd := func(x []float64, i int) float64 {
				x0 := x[i]
				x[i] = x0 + eps
				lp := lossAt(q64, k64, v64, w64, p)
				x[i] = x0 - eps
				lm := lossAt(q64, k64, v64, w64, p)
				x[i] = x0
				return (lp - lm) / (2 * eps)
			}

			eachLevel(t, func(t *testing.T) {
				out := make([]float32, len(w))
				lse := make([]float32, p.Batch*p.Heads*p.Tq)
				Forward(out, lse, pr.q, pr.k, pr.v, p)
				var dq, dk, dv, dqkv []float32
				nan := float32(math.NaN())
				if c.fused {
					dqkv = make([]float32, len(pr.qkv))
					dq, dk, dv = dqkv, dqkv[c.h*c.d:], dqkv[2*c.h*c.d:]
				} else {
					dq = make([]float32, len(pr.q))
					dk = make([]float32, len(pr.k))
					dv = make([]float32, len(pr.v))
					for i := range dk {
						dk[i], dv[i] = nan, nan
					}
				}
				Backward(dq, dk, dv, pr.q, pr.k, pr.v, out, lse, w, p)

				check := func(name string, got []float32, x []float64, rows, stride, width, cap int) {
					for bt := 0; bt < rows; bt++ {
						if cap > 0 && bt%cap >= p.Tk {
							for c := 0; c < width; c++ {
								if g := got[bt*stride+c]; !math.IsNaN(float64(g)) {
									t.Fatalf("%s written past Tk at row %d: %v", name, bt, g)
								}
							}
							continue
						}
						for c := 0; c < width; c++ {
							i := bt*stride + c
							want := fd(x, i)
							if d := math.Abs(float64(got[i]) - want); d > 2e-4*(1+math.Abs(want)) {
								t.Fatalf("%s[%d] = %v, finite difference %v", name, i, got[i], want)
							}
						}
					}
				}
				check("dq", dq, q64, p.Batch*p.Tq, p.QStride, p.Heads*p.Dim, 0)
				cp := p.KVCap
				if c.fused {
					cp = 0
				}
				check("dk", dk, k64, p.Batch*p.KVCap, p.KStride, p.KVHeads*p.Dim, cp)
				check("dv", dv, v64, p.Batch*p.KVCap, p.VStride, p.KVHeads*p.Dim, cp)
			})
		})
	}
}

// TestBackwardMatchesNaive compares the tiled backward with the one-score-
// at-a-time reference on shapes that span several row and key tiles.
func TestBackwardMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	cases := []caseSpec{
		{name: "dit fused", b: 2, h: 4, kvh: 4, tq: 64, tk: 64, d: 64, fused: true},
		{name: "causal gqa T100", b: 1, h: 8, kvh: 2, tq: 100, tk: 100, d: 32, mask: Mask{Kind: Causal}},
		{name: "block causal g3 T70", b: 1, h: 6, kvh: 2, tq: 70, tk: 70, d: 17, mask: Mask{Kind: BlockCausal, Block: 16}},
		{name: "block diagonal T100", b: 2, h: 2, kvh: 2, tq: 100, tk: 100, d: 8, mask: Mask{Kind: BlockDiagonal, Block: 7}},
		{name: "explicit", b: 1, h: 2, kvh: 2, tq: 33, tk: 70, d: 16, mask: Mask{Kind: Explicit}},
		{name: "decode", b: 1, h: 8, kvh: 4, tq: 1, tk: 300, kvcap: 320, d: 64, mask: Mask{Kind: Causal, QOffset: 299}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pr := c.build(rng)
			p := pr.p
			out := make([]float32, p.Batch*p.Tq*p.OStride)
			lse := make([]float32, p.Batch*p.Heads*p.Tq)
			forwardNaive(out, lse, pr.q, pr.k, pr.v, p)
			dout := randSlice(rng, len(out))
			n := len(pr.q)
			if !c.fused {
				n = max(len(pr.q), len(pr.k))
			}
			wq, wk, wv := make([]float32, n), make([]float32, n), make([]float32, n)
			backwardNaive(wq, wk, wv, pr.q, pr.k, pr.v, out, lse, dout, p)
			eachLevel(t, func(t *testing.T) {
				gq, gk, gv := make([]float32, n), make([]float32, n), make([]float32, n)
				Backward(gq, gk, gv, pr.q, pr.k, pr.v, out, lse, dout, p)
				for _, pair := range []struct {
					name      string
					got, want []float32
				}{{"dq", gq, wq}, {"dk", gk, wk}, {"dv", gv, wv}} {
					var scale float64
					for _, x := range pair.want {
						scale = max(scale, math.Abs(float64(x)))
					}
					for i := range pair.want {
						if d := math.Abs(float64(pair.got[i] - pair.want[i])); d > 1e-4*(scale+1e-3) {
							t.Fatalf("%s[%d] = %v, want %v", pair.name, i, pair.got[i], pair.want[i])
						}
					}
				}
			})
		})
	}
}
