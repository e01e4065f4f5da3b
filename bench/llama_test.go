package bench

import (
	"encoding/json"
	"math"
	"testing"

	"tessera/llama"
)

func TestLlamaTesseraOnly(t *testing.T) {
	cfg := llama.Config{VocabSize: 64, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
	res, err := Llama(LlamaOptions{Configs: []NamedLlamaConfig{{"tiny", cfg}}, Prompt: 8, New: 8, Rounds: 1, Reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	r := res[0]
	if r.DecodeTokensPerS <= 0 || r.PrefillTokensPerS <= 0 || r.PeerAvailable || r.DecodeRatio != 0 {
		t.Fatalf("result %+v", r)
	}
	if r.Params != cfg.Params() || r.Name != "tiny" {
		t.Fatalf("result %+v", r)
	}
	if want := r.DecodeTokensPerS * float64(cfg.DecodeWeightBytes()) / 1e9; math.Abs(r.DecodeWeightGBPerS-want) > 1e-9*want {
		t.Fatalf("decode weight rate %g GB/s, want %g", r.DecodeWeightGBPerS, want)
	}
}

// TestLlamaPeer runs one short comparison against llama.py when the peer
// is installed.
func TestLlamaPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("peer comparison skipped in -short mode")
	}
	peer, err := FindPeer("")
	if err != nil {
		t.Skip(err)
	}
	cfg := llama.Config{VocabSize: 64, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
	res, err := Llama(LlamaOptions{Configs: []NamedLlamaConfig{{"tiny", cfg}}, Prompt: 8, New: 8, Rounds: 1, Reps: 1, Peer: peer})
	if err != nil {
		t.Skipf("peer not runnable here: %v", err)
	}
	if r := res[0]; !r.PeerAvailable || r.PeerDecodeTokensPerS <= 0 || r.DecodeRatio <= 0 {
		t.Fatalf("result %+v", r)
	}
}

// BenchmarkLlama runs the full comparison (default and 27M configs against
// the peer when it is found) and logs the results as JSON:
//
//	go test ./bench -run '^$' -bench Llama -benchtime 1x -v
func BenchmarkLlama(b *testing.B) {
	peer, err := FindPeer("")
	if err != nil {
		b.Logf("%v; measuring Tessera only", err)
		peer = nil
	}
	for i := 0; i < b.N; i++ {
		res, err := Llama(LlamaOptions{Peer: peer})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			js, _ := json.Marshal(r)
			b.Logf("%s", js)
			b.ReportMetric(r.DecodeTokensPerS, r.Name+"-decode-tok/s")
			if r.DecodeRatio > 0 {
				b.ReportMetric(r.DecodeRatio, r.Name+"-decode-x-peer")
			}
		}
	}
}
