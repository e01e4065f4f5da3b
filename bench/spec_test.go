package bench

import (
	"encoding/json"
	"slices"
	"testing"

	"tessera/llama"
	"tessera/specdec"
	"tessera/tensor"
	"tessera/tokenizer"
)

// TestSpecPlumbing runs the whole comparison on tiny random models: every
// method reports its work, target-only and standard speculative decoding
// give the same answers (greedy verification is exact), and the result
// encodes as JSON.
func TestSpecPlumbing(t *testing.T) {
	cfg := llama.Config{VocabSize: tokenizer.New().VocabSize(), HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2,
		NumAttentionHeads: 2, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
	target, err := llama.New(cfg, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumHiddenLayers = 1
	draft, err := llama.New(cfg, tensor.NewRNG(2))
	if err != nil {
		t.Fatal(err)
	}
	judge := &specdec.Judge{W: make([]float32, 32), B: 5, Threshold: 0.5} // approves everything
	text := make([]int, 400)
	for i := range text {
		text[i] = 'a' + i%7
	}
	res, err := Spec(SpecOptions{Target: target, Draft: draft, Judge: judge, Prompts: 3, K: 4, MaxNew: 12, JudgeProblems: 3,
		TextTarget: target, TextDraft: draft, Text: text, TextPrompts: 2, TextPromptLen: 16, TextNew: 12})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Splits) != 2 || res.Text == nil {
		t.Fatalf("%d splits, text %v", len(res.Splits), res.Text != nil)
	}
	for _, s := range append(res.Splits, *res.Text) {
		for _, m := range s.Methods {
			if m.Tokens == 0 || m.TokensPerS <= 0 || m.TargetCalls == 0 || m.MsPerAnswer <= 0 || m.AnswerSpeedupVsTarget <= 0 {
				t.Fatalf("%s %s: %+v", s.Split, m.Name, m)
			}
		}
	}
	held := res.Splits[0]
	if len(held.Methods) != 3 || held.Judge == nil || held.Oracle == nil {
		t.Fatalf("held-out split %+v", held)
	}
	std, jd := held.Methods[1], held.Methods[2]
	if *std.Accuracy != *held.Methods[0].Accuracy || held.Samples["speculative"][0] != held.Samples["target-only"][0] {
		t.Fatalf("greedy speculative decoding changed the answers: %q vs %q", held.Samples["speculative"], held.Samples["target-only"])
	}
	if jd.AcceptanceRate != 1 || held.Oracle.JudgeAcceptance != 1 {
		t.Fatalf("a judge that approves everything accepted %.2f of drafts, %.2f of oracle tokens", jd.AcceptanceRate, held.Oracle.JudgeAcceptance)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
	// With the draft length fixed, standard speculative decoding also runs
	// with an adaptive length, and greedy, it too keeps the answers.
	fixed, err := Spec(SpecOptions{Target: target, Draft: draft, Judge: judge, Prompts: 3, K: 4, Fixed: true, MaxNew: 12, JudgeProblems: 3,
		TextTarget: target, TextDraft: draft, Text: text, TextPrompts: 2, TextPromptLen: 16, TextNew: 12})
	if err != nil {
		t.Fatal(err)
	}
	fh := fixed.Splits[0]
	names := []string{}
	for _, m := range fh.Methods {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"target-only", "speculative", "speculative-adaptive", "judge"}) {
		t.Fatalf("methods with a fixed draft length: %v", names)
	}
	if fh.Samples["speculative-adaptive"][0] != fh.Samples["target-only"][0] || fh.Methods[3].AnswerSpeedupVsAdaptive <= 0 {
		t.Fatalf("adaptive standard decoding: samples %q vs %q, judge %+v", fh.Samples["speculative-adaptive"], fh.Samples["target-only"], fh.Methods[3])
	}
	if ft := fixed.Text; len(ft.Methods) != 3 || ft.Methods[2].Name != "speculative-adaptive" || ft.Samples["speculative-adaptive"][0] != ft.Samples["target-only"][0] {
		t.Fatalf("text split with a fixed draft length: %+v", ft)
	}
	other := cfg
	other.VocabSize = 300
	bad, _ := llama.New(other, tensor.NewRNG(3))
	if _, err := Spec(SpecOptions{Target: target, Draft: bad}); err == nil {
		t.Fatal("different vocabularies: no error")
	}
}
