package llama

import (
	"testing"

	"tessera/nn"
	"tessera/tensor"
)

// TestDecodeWeightBytes checks the bytes a decoded token reads against
// the model's parameters: all of them, but one row of an untied embedding.
func TestDecodeWeightBytes(t *testing.T) {
	base := Config{VocabSize: 40, HiddenSize: 16, IntermediateSize: 24, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
	for _, tied := range []bool{false, true} {
		cfg := base
		cfg.TieWordEmbeddings = tied
		m, err := New(cfg, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range nn.NamedParams(m) {
			n += p.Var.Value.Numel()
		}
		if !tied {
			n -= m.Model.EmbedTokens.Weight.Value.Numel() - cfg.HiddenSize
		}
		if got := cfg.DecodeWeightBytes(); got != 4*n {
			t.Errorf("tied=%v: DecodeWeightBytes %d, want %d", tied, got, 4*n)
		}
	}
}

// TestDecodeStreamedArena checks decoding against the batched forward on
// a model whose arena is beyond residentMax, so the streaming GEMV path
// runs.
func TestDecodeStreamedArena(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 27M-parameter engine")
	}
	cfg := Config27M()
	cfg.NumHiddenLayers = 2
	e := randomEngine(cfg, 6)
	tokens := []int{3, 1, 4, 1, 5, 9, 2, 6}
	want, err := newCache(e, len(tokens)).Extend(tokens)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]float32(nil), want...)
	c := newCache(e, len(tokens))
	if len(e.arena) <= residentMax/4 {
		t.Fatalf("arena of %d floats is not streamed", len(e.arena))
	}
	V := cfg.VocabSize
	for i, tok := range tokens {
		got, err := c.Decode(tok)
		if err != nil {
			t.Fatal(err)
		}
		if r := maxRelErr(got, want[i*V:(i+1)*V]); r > 1e-4 {
			t.Fatalf("token %d: decode differs from the batched pass by %.3g", i, r)
		}
	}
}
