package llama

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"tessera/tensor"
)

// randomEngine builds an engine with N(0, 1/in) weights for cfg.
func randomEngine(cfg Config, seed uint64) *engine {
	r := rand.New(rand.NewPCG(seed, 1))
	mk := func(shape ...int) slot {
		t := tensor.New(shape...)
		d := t.Data()
		scale := 1 / float32(shape[len(shape)-1])
		if len(shape) == 1 {
			for i := range d {
				d[i] = 1 + 0.1*float32(r.NormFloat64())
			}
		} else {
			for i := range d {
				d[i] = float32(r.NormFloat64()) * scale * 8
			}
		}
		return &tslot{t}
	}
	d, hd, I := cfg.HiddenSize, cfg.HeadDim(), cfg.IntermediateSize
	layers := make([]layerSlots, cfg.NumHiddenLayers)
	for i := range layers {
		layers[i] = layerSlots{inNorm: mk(d), postNorm: mk(d),
			q: mk(cfg.NumAttentionHeads*hd, d), k: mk(cfg.KVHeads()*hd, d), v: mk(cfg.KVHeads()*hd, d),
			o: mk(d, cfg.NumAttentionHeads*hd), gate: mk(I, d), up: mk(I, d), down: mk(d, I)}
	}
	embed := mk(cfg.VocabSize, d)
	head := embed
	if !cfg.TieWordEmbeddings {
		head = mk(cfg.VocabSize, d)
	}
	return newEngine(cfg, embed, mk(d), head, layers)
}

// benchDecode times greedy decoding of 128 tokens after a 64-token
// prompt (the prefill is not timed).
func benchDecode(b *testing.B, cfg Config) {
	e := randomEngine(cfg, 1)
	prompt := make([]int, 64)
	for i := range prompt {
		prompt[i] = i % cfg.VocabSize
	}
	c := newCache(e, 64+128)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c.Reset()
		logits, err := c.Prefill(prompt)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for j := 0; j < 128; j++ {
			if logits, err = c.Decode(Argmax(logits)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*128)/b.Elapsed().Seconds(), "tok/s")
}

func BenchmarkDecodeDefault(b *testing.B) { benchDecode(b, DefaultConfig()) }
func BenchmarkDecode27M(b *testing.B)     { benchDecode(b, Config27M()) }

// TestDecodeAllocations checks that a decode step allocates nothing (a
// stray allocation of the runtime is tolerated) and copies neither weights
// nor the KV cache: the bytes allocated per token do not grow with the
// context.
func TestDecodeAllocations(t *testing.T) {
	cfg := DefaultConfig()
	e := randomEngine(cfg, 2)
	perToken := func(context int) float64 {
		c := newCache(e, context+60)
		if _, err := c.Prefill(make([]int, context)); err != nil {
			t.Fatal(err)
		}
		tok := 5
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const steps = 50
		for range steps {
			logits, err := c.Decode(tok)
			if err != nil {
				t.Fatal(err)
			}
			tok = Argmax(logits)
		}
		runtime.ReadMemStats(&after)
		b := float64(after.TotalAlloc-before.TotalAlloc) / steps
		allocs := float64(after.Mallocs-before.Mallocs) / steps
		t.Logf("context %d: %.0f bytes, %.1f allocations per decoded token", context, b, allocs)
		if allocs > 0.5 {
			t.Errorf("context %d: %.1f allocations per decoded token, want none", context, allocs)
		}
		return b
	}
	short, long := perToken(8), perToken(800)
	kvLayer := float64(800 * cfg.KVHeads() * cfg.HeadDim() * 4)
	if long > 1.5*short+1024 || long-short > kvLayer/8 {
		t.Fatalf("bytes allocated per token grow with the context: %.0f at 8 tokens, %.0f at 800", short, long)
	}
}
