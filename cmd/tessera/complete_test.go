package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCompleteErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown model", []string{"--model", "nope", "--prompt", "x"}, 1, "nope"},
		{"k zero", []string{"--model", "target", "--draft", "draft", "--k", "0", "--prompt", "x"}, 2, "k"},
		{"judge without draft", []string{"--model", "target", "--judge", "judge", "--prompt", "x"}, 2, "draft"},
		{"prompt longer than the context", []string{"--model", "target", "--context", "16", "--prompt", strings.Repeat("1+1 ", 20)}, 1, "context"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var so, se bytes.Buffer
			if code := run(append([]string{"complete"}, tc.args...), &so, &se); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, se.String())
			}
			if !strings.Contains(strings.ToLower(se.String()), tc.msg) {
				t.Fatalf("stderr %q does not mention %q", se.String(), tc.msg)
			}
		})
	}
}

// Greedy speculative decoding gives exactly the target's own completion.
func TestCompleteSpeculativeMatchesTarget(t *testing.T) {
	prompt := `Q: 37+48=?\nA: `
	complete := func(extra ...string) map[string]any {
		var so, se bytes.Buffer
		args := append([]string{"complete", "--model", "target", "--prompt", prompt, "--max-tokens", "40", "--json"}, extra...)
		if code := run(args, &so, &se); code != 0 {
			t.Fatalf("exit %d: %s", code, se.String())
		}
		var out map[string]any
		if err := json.Unmarshal(so.Bytes(), &out); err != nil {
			t.Fatalf("%v in %q", err, so.String())
		}
		return out
	}
	plain := complete()
	spec := complete("--draft", "draft", "--k", "4")
	if plain["completion"] != spec["completion"] {
		t.Fatalf("speculative completion %q differs from the target's %q", spec["completion"], plain["completion"])
	}
	if !strings.Contains(plain["completion"].(string), "85") {
		t.Errorf("target's answer to 37+48 is %q", plain["completion"])
	}
}
