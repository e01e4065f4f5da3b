package specdec

import (
	"slices"
	"testing"

	"tessera/llama"
	"tessera/nn"
)

var _ HiddenCache = (*llama.Cache)(nil)

// TestLlamaGreedyMatchesTargetOnly runs speculative decoding on two real
// decoders: the golden model as target and a perturbed copy as draft.
func TestLlamaGreedyMatchesTargetOnly(t *testing.T) {
	target, err := llama.Load("../llama/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	draftModel, err := llama.Load("../llama/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range nn.Params(draftModel) {
		d := p.Value.Data()
		for j := range d {
			if (i+j)%7 == 0 {
				d[j] *= 0.5
			}
		}
	}
	newCache := func(m *llama.Model) *llama.Cache {
		c, err := m.NewCache(256)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prompt := []int{10, 20, 30, 40, 50}
	want, err := Plain(newCache(target), prompt, 100, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The adaptive draft length is given the draft's cost: measured from
	// wall time on a shared machine, a slow first round could make it
	// give up drafting for good.
	for _, opt := range []Options{{K: 4, Fixed: true}, {K: 2, DraftCost: 0.1}, {K: 6, Judge: &Judge{W: make([]float32, 64), B: -5}}} {
		dec, err := New(newCache(target), newCache(draftModel), opt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Generate(prompt, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("options %+v:\n got %v\nwant %v", opt, got, want)
		}
		if s := dec.Stats(); s.Accepted == 0 || s.TokensPerTargetCall() <= 1 {
			t.Fatalf("options %+v: stats %+v: the draft never helped", opt, s)
		}
	}
}

// TestRoundAllocations checks that a draft-and-verify round on real
// decoders allocates nothing once the decoder's buffers are sized.
func TestRoundAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	m, err := llama.Load("../llama/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := m.NewCache(256)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := m.NewCache(256)
	if err != nil {
		t.Fatal(err)
	}
	for _, judge := range []*Judge{nil, {W: make([]float32, m.Config.HiddenSize), B: -5}} {
		tc.Reset()
		dc.Reset()
		d, err := New(tc, dc, Options{K: 6, Fixed: true, Judge: judge})
		if err != nil {
			t.Fatal(err)
		}
		seq := []int{10, 20, 30, 40, 50}
		if _, err := tc.Prefill(seq[:len(seq)-1]); err != nil {
			t.Fatal(err)
		}
		d.ensure(m.Config.VocabSize)
		round := func() {
			if _, err := d.round(seq, 6); err != nil {
				t.Fatal(err)
			}
			// Roll both caches back to the state before the round.
			if err := tc.Truncate(len(seq) - 1); err != nil {
				t.Fatal(err)
			}
			if err := dc.Truncate(len(seq) - 1); err != nil {
				t.Fatal(err)
			}
		}
		round()
		if a := testing.AllocsPerRun(20, round); a > 0.5 {
			t.Errorf("judge %v: %.1f allocations per round, want none", judge != nil, a)
		}
	}
}

// TestLlamaSameModelDraft drafts with a second cache of the target itself:
// the first round's drafting runs while the target prefills, on caches
// that share one engine, and every draft is accepted.
func TestLlamaSameModelDraft(t *testing.T) {
	m, err := llama.Load("../llama/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	newCache := func() *llama.Cache {
		c, err := m.NewCache(128)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prompt := []int{3, 14, 15, 92, 65}
	want, err := Plain(newCache(), prompt, 40, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := New(newCache(), newCache(), Options{K: 5, Fixed: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Generate(prompt, 40)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if s := dec.Stats(); s.Accepted != s.Drafted {
		t.Fatalf("a draft identical to the target kept %d of %d tokens", s.Accepted, s.Drafted)
	}
}
