package decoders

import (
	"strings"
	"testing"

	"tessera/llama"
	"tessera/models"
)

func shipped(t *testing.T, name string) *llama.Model {
	t.Helper()
	fsys, err := models.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadFS(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestComplete checks that greedy speculative decoding through Complete
// gives the target's own completion, and that bad options are errors.
func TestComplete(t *testing.T) {
	target, draft := shipped(t, "target"), shipped(t, "draft")
	prompt := "Q: 37+48=?\nA: "
	plain, err := Complete(target, nil, prompt, CompleteOptions{MaxTokens: 80})
	if err != nil {
		t.Fatal(err)
	}
	if !plain.StoppedAtEOS || !strings.Contains(plain.Text, "85") {
		t.Fatalf("target-only completion %q (stopped at eos: %v), want an answer with 85", plain.Text, plain.StoppedAtEOS)
	}
	spec, err := Complete(target, draft, prompt, CompleteOptions{MaxTokens: 80, K: 6})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Text != plain.Text {
		t.Errorf("greedy speculative completion %q differs from target-only %q", spec.Text, plain.Text)
	}
	if spec.Stats.TargetCalls >= plain.Stats.TargetCalls+1 {
		t.Errorf("speculative decoding made %d target calls, target-only %d", spec.Stats.TargetCalls, plain.Stats.TargetCalls)
	}

	bad := []struct {
		name  string
		draft *llama.Model
		o     CompleteOptions
		want  string
	}{
		{"context", nil, CompleteOptions{Context: 8}, "does not fit the context"},
		{"k", draft, CompleteOptions{K: -1}, "k must be positive"},
		{"max tokens", nil, CompleteOptions{MaxTokens: -3}, "max tokens"},
	}
	for _, tc := range bad {
		if _, err := Complete(target, tc.draft, prompt, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
