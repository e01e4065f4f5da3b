package specdec_test

import (
	"testing"

	"tessera/corpus"
	"tessera/decoders"
	"tessera/llama"
	"tessera/models"
	"tessera/specdec"
	"tessera/tokenizer"
)

// shipped loads the embedded arithmetic target, draft and judge and the
// prompts of n held-out problems.
func shipped(b *testing.B, n int) (target, draft *llama.Model, judge *specdec.Judge, prompts [][]int) {
	b.Helper()
	load := func(name string) *llama.Model {
		fsys, err := models.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		m, err := llama.LoadFS(fsys, ".")
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	target, draft = load("target"), load("draft")
	fsys, err := models.Open("judge")
	if err != nil {
		b.Fatal(err)
	}
	if judge, _, err = decoders.LoadJudge(fsys); err != nil {
		b.Fatal(err)
	}
	tok := tokenizer.New()
	for _, p := range corpus.NewGenerator(corpus.HeldOut, 0).Problems(n) {
		prompts = append(prompts, corpus.PromptTokens(tok, p))
	}
	return target, draft, judge, prompts
}

// BenchmarkShipped answers 20 held-out arithmetic problems per iteration
// with the shipped models: the target alone, standard speculative decoding
// and Judge Decoding (k = 16 fixed, greedy, stopping at <eos>), reporting
// generated tokens per second.
func BenchmarkShipped(b *testing.B) {
	target, draft, judge, prompts := shipped(b, 20)
	const capacity = 160 + decoders.MaxAnswer + 16
	tc, err := target.NewCache(capacity)
	if err != nil {
		b.Fatal(err)
	}
	dc, err := draft.NewCache(capacity)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, gen func(prompt []int) ([]int, error)) {
		tokens := 0
		for b.Loop() {
			for _, p := range prompts {
				out, err := gen(p)
				if err != nil {
					b.Fatal(err)
				}
				tokens += len(out)
			}
		}
		b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
	}
	b.Run("target-only", func(b *testing.B) {
		run(b, func(p []int) ([]int, error) {
			tc.Reset()
			return specdec.Plain(tc, p, decoders.MaxAnswer, specdec.Options{EOS: tokenizer.EOS, StopAtEOS: true})
		})
	})
	for _, m := range []struct {
		name  string
		judge *specdec.Judge
	}{{"speculative", nil}, {"judge", judge}} {
		b.Run(m.name, func(b *testing.B) {
			run(b, func(p []int) ([]int, error) {
				tc.Reset()
				dc.Reset()
				d, err := specdec.New(tc, dc, specdec.Options{K: 16, Fixed: true, Judge: m.judge, EOS: tokenizer.EOS, StopAtEOS: true})
				if err != nil {
					return nil, err
				}
				return d.Generate(p, decoders.MaxAnswer)
			})
		})
	}
}
