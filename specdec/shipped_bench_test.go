package specdec_test

import (
	"testing"
	"time"

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

// timedCache times the calls a decoder makes to one model: prefills of
// several tokens, one-token steps and verification passes.
type timedCache struct {
	*llama.Cache
	prefill, step, extend time.Duration
}

func (c *timedCache) Prefill(tokens []int) ([]float32, error) {
	t0 := time.Now()
	logits, err := c.Cache.Prefill(tokens)
	if len(tokens) == 1 {
		c.step += time.Since(t0)
	} else {
		c.prefill += time.Since(t0)
	}
	return logits, err
}

func (c *timedCache) Extend(tokens []int) ([]float32, error) {
	t0 := time.Now()
	logits, err := c.Cache.Extend(tokens)
	c.extend += time.Since(t0)
	return logits, err
}

// BenchmarkShippedPhases splits the time of an answer between the calls
// to the models, alternating target-only decoding and Judge Decoding
// (k = 16 fixed) on the same held-out problems: the prompt prefills, the
// target's steps or verification passes, and the draft's steps. The first
// round's drafting overlaps the target's prefill.
func BenchmarkShippedPhases(b *testing.B) {
	target, draft, judge, prompts := shipped(b, 20)
	const capacity = 160 + decoders.MaxAnswer + 16
	tc0, err := target.NewCache(capacity)
	if err != nil {
		b.Fatal(err)
	}
	dc0, err := draft.NewCache(capacity)
	if err != nil {
		b.Fatal(err)
	}
	var plain, spec struct {
		tc, dc timedCache
		total  time.Duration
	}
	plain.tc.Cache, spec.tc.Cache, spec.dc.Cache = tc0, tc0, dc0
	answers := 0
	for b.Loop() {
		for _, p := range prompts {
			tc0.Reset()
			t0 := time.Now()
			if _, err := specdec.Plain(&plain.tc, p, decoders.MaxAnswer, specdec.Options{EOS: tokenizer.EOS, StopAtEOS: true}); err != nil {
				b.Fatal(err)
			}
			plain.total += time.Since(t0)
			tc0.Reset()
			dc0.Reset()
			t0 = time.Now()
			d, err := specdec.New(&spec.tc, &spec.dc, specdec.Options{K: 16, Fixed: true, Judge: judge, EOS: tokenizer.EOS, StopAtEOS: true})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.Generate(p, decoders.MaxAnswer); err != nil {
				b.Fatal(err)
			}
			spec.total += time.Since(t0)
			answers++
		}
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(answers) }
	b.ReportMetric(ms(plain.total), "target-only-ms/answer")
	b.ReportMetric(ms(spec.total), "judge-ms/answer")
	b.Logf("target only, ms per answer: %.2f (prompt prefill %.2f, steps %.2f)",
		ms(plain.total), ms(plain.tc.prefill), ms(plain.tc.step))
	b.Logf("Judge Decoding, ms per answer: %.2f (target prefill %.2f, verification %.2f; draft prefill %.2f, steps %.2f)",
		ms(spec.total), ms(spec.tc.prefill), ms(spec.tc.extend), ms(spec.dc.prefill), ms(spec.dc.step))
}
