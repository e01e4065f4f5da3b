package llama

import (
	"fmt"
	"slices"
	"testing"

	"tessera/internal/parallel"
)

// TestFewMatchesDecode checks batched passes of a few tokens (the
// few-token path, and the large-batch path beyond fewMax) against decoding
// the same tokens one by one: every token's logits and hidden state, after
// a prompt, for counts around the register tile height, on one thread and
// on two (which must agree exactly).
func TestFewMatchesDecode(t *testing.T) {
	small := Config{VocabSize: 50, HiddenSize: 24, IntermediateSize: 40, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
	for _, cfg := range []Config{small, specTargetConfig(), specDraftConfig()} {
		e := randomEngine(cfg, 3)
		V, d := cfg.VocabSize, cfg.HiddenSize
		const prefix = 7
		seq := make([]int, prefix+fewMax+2)
		for i := range seq {
			seq[i] = (11*i + 3) % V
		}
		// Reference: one token at a time.
		ref := newCache(e, len(seq))
		var wantLogits, wantHidden []float32
		for _, tok := range seq {
			l, err := ref.Decode(tok)
			if err != nil {
				t.Fatal(err)
			}
			wantLogits = append(wantLogits, l...)
			wantHidden = append(wantHidden, ref.Hidden()...)
		}
		for _, T := range []int{2, 3, 5, 6, 7, 12, 13, 17, 18, 33, fewMax, fewMax + 1} {
			var first []float32
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("hidden%d/T%d/threads%d", d, T, threads)
				func() {
					defer parallel.SetThreads(parallel.SetThreads(threads))
					c := newCache(e, len(seq))
					if _, err := c.Prefill(seq[:prefix]); err != nil {
						t.Fatal(err)
					}
					got, err := c.Extend(seq[prefix : prefix+T])
					if err != nil {
						t.Fatal(err)
					}
					if c.Len() != prefix+T {
						t.Fatalf("%s: cache holds %d tokens, want %d", name, c.Len(), prefix+T)
					}
					if r := maxRelErr(got, wantLogits[prefix*V:(prefix+T)*V]); r > 1e-4 {
						t.Errorf("%s: logits differ from decoding by %.3g", name, r)
					}
					if r := maxRelErr(c.Hidden(), wantHidden[prefix*d:(prefix+T)*d]); r > 1e-4 {
						t.Errorf("%s: hidden states differ from decoding by %.3g", name, r)
					}
					if first == nil {
						first = slices.Clone(got)
					} else if T <= fewMax && !slices.Equal(first, got) {
						t.Errorf("%s: logits depend on the number of threads", name)
					}
					// The last token's logits alone (Prefill) agree too.
					c.Truncate(prefix)
					last, err := c.Prefill(seq[prefix : prefix+T])
					if err != nil {
						t.Fatal(err)
					}
					if r := maxRelErr(last, wantLogits[(prefix+T-1)*V:(prefix+T)*V]); r > 1e-4 {
						t.Errorf("%s: prefill logits differ from decoding by %.3g", name, r)
					}
				}()
			}
		}
	}
}

// TestFewAllocations checks that a verification pass allocates nothing
// once the cache has run one.
func TestFewAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	e := randomEngine(specTargetConfig(), 4)
	c := newCache(e, 64)
	tokens := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	run := func() {
		if _, err := c.Extend(tokens); err != nil {
			t.Fatal(err)
		}
		if err := c.Truncate(0); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if a := testing.AllocsPerRun(20, run); a > 0.5 {
		t.Fatalf("%.1f allocations per verification pass, want none", a)
	}
}
