package attn

import (
	"math/rand/v2"
	"testing"
)

// benchShapes are the shapes that matter to the models: DiT blocks (fused
// qkv, full mask), Llama decode (one query, long KV cache, grouped heads),
// Llama prefill (causal) and block-causal Token-Shuffle style attention.
func benchShapes() []caseSpec {
	return []caseSpec{
		{name: "dit_B32_T64_H4_D64", b: 32, h: 4, kvh: 4, tq: 64, tk: 64, d: 64, fused: true},
		{name: "decode_Tk512_H8_KV4_D64", b: 1, h: 8, kvh: 4, tq: 1, tk: 512, kvcap: 2048, d: 64, mask: Mask{Kind: Causal, QOffset: 511}},
		{name: "decode_Tk2048_H8_KV4_D64", b: 1, h: 8, kvh: 4, tq: 1, tk: 2048, kvcap: 2048, d: 64, mask: Mask{Kind: Causal, QOffset: 2047}},
		{name: "prefill_T512_causal_H8_KV4_D64", b: 1, h: 8, kvh: 4, tq: 512, tk: 512, d: 64, mask: Mask{Kind: Causal}},
		{name: "blockcausal16_T256_H4_D64", b: 4, h: 4, kvh: 4, tq: 256, tk: 256, d: 64, mask: Mask{Kind: BlockCausal, Block: 16}},
	}
}

// allowedPairs counts the (query, key) pairs the mask lets through, per
// batch entry and head: the work that FLOP counts are based on.
func allowedPairs(p Params) float64 {
	n := 0
	for i := 0; i < p.Tq; i++ {
		for j := 0; j < p.Tk; j++ {
			if p.Mask.Allowed(i, j, p.Tk) {
				n++
			}
		}
	}
	return float64(n)
}

func BenchmarkForward(b *testing.B) {
	for _, c := range benchShapes() {
		pr := c.build(rand.New(rand.NewPCG(1, 1)))
		p := pr.p
		out := make([]float32, p.Batch*p.Tq*p.OStride)
		lse := make([]float32, p.Batch*p.Heads*p.Tq)
		flops := 4 * float64(p.Dim) * allowedPairs(p) * float64(p.Batch*p.Heads)
		for _, impl := range []struct {
			name string
			fn   func()
		}{
			{"tiled", func() { Forward(out, lse, pr.q, pr.k, pr.v, p) }},
			{"naive", func() { forwardNaive(out, lse, pr.q, pr.k, pr.v, p) }},
		} {
			b.Run(c.name+"/"+impl.name, func(b *testing.B) {
				for b.Loop() {
					impl.fn()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkBackward(b *testing.B) {
	for _, c := range benchShapes() {
		if c.tq == 1 {
			continue // decoding has no backward pass
		}
		rng := rand.New(rand.NewPCG(2, 2))
		pr := c.build(rng)
		p := pr.p
		out := make([]float32, p.Batch*p.Tq*p.OStride)
		lse := make([]float32, p.Batch*p.Heads*p.Tq)
		Forward(out, lse, pr.q, pr.k, pr.v, p)
		dout := randSlice(rng, len(out))
		n := max(len(pr.q), len(pr.k), len(pr.v))
		dq, dk, dv := make([]float32, n), make([]float32, n), make([]float32, n)
		// recomputed scores, dP, dV, dK and dQ: five products
		flops := 10 * float64(p.Dim) * allowedPairs(p) * float64(p.Batch*p.Heads)
		for _, impl := range []struct {
			name string
			fn   func()
		}{
			{"tiled", func() { Backward(dq, dk, dv, pr.q, pr.k, pr.v, out, lse, dout, p) }},
			{"naive", func() { backwardNaive(dq, dk, dv, pr.q, pr.k, pr.v, out, lse, dout, p) }},
		} {
			b.Run(c.name+"/"+impl.name, func(b *testing.B) {
				for b.Loop() {
					impl.fn()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
