package llama

import (
	"fmt"
	"testing"

	"tessera/internal/parallel"
)

// The shapes of the shipped arithmetic models (models/target, models/draft).
func specTargetConfig() Config {
	return Config{VocabSize: 264, HiddenSize: 192, IntermediateSize: 512, NumHiddenLayers: 6,
		NumAttentionHeads: 6, NumKeyValueHeads: 3, RMSNormEps: 1e-5, RopeTheta: 10000}
}

func specDraftConfig() Config {
	return Config{VocabSize: 264, HiddenSize: 96, IntermediateSize: 256, NumHiddenLayers: 2,
		NumAttentionHeads: 3, NumKeyValueHeads: 3, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}
}

// benchStep times one call of step on a cache holding a 40-token prompt,
// rolled back after each call: a speculative decoder's draft steps (one
// token) and verification passes (k+1 tokens).
func benchStep(b *testing.B, cfg Config, tokens int) {
	e := randomEngine(cfg, 1)
	prompt := make([]int, 64)
	for i := range prompt {
		prompt[i] = (7 * i) % cfg.VocabSize
	}
	c := newCache(e, 128)
	if _, err := c.Prefill(prompt); err != nil {
		b.Fatal(err)
	}
	in := prompt[:tokens]
	for b.Loop() {
		if _, err := c.Extend(in); err != nil {
			b.Fatal(err)
		}
		if err := c.Truncate(len(prompt)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpec times the steps of speculative decoding with the shipped
// models' shapes, on one thread and on two (sub-benchmarks alternate under
// -count, so a shared machine disturbs both alike).
func BenchmarkSpec(b *testing.B) {
	for _, c := range []struct {
		name   string
		cfg    Config
		tokens int
	}{
		{"draft-step", specDraftConfig(), 1},
		{"target-step", specTargetConfig(), 1},
		{"target-verify17", specTargetConfig(), 17},
		{"draft-prompt40", specDraftConfig(), 40},
	} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", c.name, threads), func(b *testing.B) {
				defer parallel.SetThreads(parallel.SetThreads(threads))
				benchStep(b, c.cfg, c.tokens)
			})
		}
	}
}

// BenchmarkSpecPaths times batched passes of a few tokens on the
// few-token path and on the large-batch path, alternating under -count.
func BenchmarkSpecPaths(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"target", specTargetConfig()}, {"draft", specDraftConfig()}} {
		for _, tokens := range []int{17, 40} {
			for _, few := range []bool{true, false} {
				path := "large"
				if few {
					path = "few"
				}
				b.Run(fmt.Sprintf("%s/T%d/%s", c.name, tokens, path), func(b *testing.B) {
					defer parallel.SetThreads(parallel.SetThreads(1))
					if !few {
						defer func(n int) { fewLimit = n }(fewLimit)
						fewLimit = 0
					}
					benchStep(b, c.cfg, tokens)
				})
			}
		}
	}
}
