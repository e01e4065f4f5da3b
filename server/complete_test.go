package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func postTo(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

func TestCompletions(t *testing.T) {
	h := New(Options{}).Handler()
	var plain CompletionResponse
	tests := []struct {
		name, body string
	}{
		{"target only", `{"model": "target", "prompt": "Q: 37+48=?\nA: ", "max_tokens": 80}`},
		{"speculative", `{"model": "target", "draft": "draft", "k": 6, "prompt": "Q: 37+48=?\nA: ", "max_tokens": 80}`},
		{"judge", `{"model": "target", "draft": "draft", "judge": "judge", "k": 16, "fixed": true, "prompt": "Q: 37+48=?\nA: ", "max_tokens": 80}`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := postTo(t, h, "/v1/completions", tc.body)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var resp CompletionResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(resp.Completion, "85") || !resp.StoppedAtEOS || resp.Tokens == 0 {
				t.Fatalf("completion %+v, want an answer with 85 ending at <eos>", resp)
			}
			switch i {
			case 0:
				plain = resp
			case 1:
				if resp.Completion != plain.Completion {
					t.Errorf("greedy speculative %q differs from target-only %q", resp.Completion, plain.Completion)
				}
			case 2:
				if resp.Stats.Drafted == 0 {
					t.Errorf("judge run drafted nothing: %+v", resp.Stats)
				}
			}
		})
	}
}

func TestBadCompletions(t *testing.T) {
	h := New(Options{MaxTokens: 100}).Handler()
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"no model", `{"prompt": "x"}`, 400, "model is required"},
		{"no prompt", `{"model": "target"}`, 400, "prompt is required"},
		{"unknown model", `{"model": "gpt", "prompt": "x"}`, 404, `unknown model`},
		{"image model", `{"model": "mnist", "prompt": "x"}`, 400, "not a decoder"},
		{"judge as draft", `{"model": "target", "draft": "judge", "prompt": "x"}`, 400, "not a decoder"},
		{"draft as judge", `{"model": "target", "draft": "draft", "judge": "draft", "prompt": "x"}`, 400, "not a judge head"},
		{"judge without draft", `{"model": "target", "judge": "judge", "prompt": "x"}`, 400, "judge needs a draft"},
		{"too many tokens", `{"model": "target", "prompt": "x", "max_tokens": 101}`, 400, "max_tokens must be in 1..100"},
		{"bad k", `{"model": "target", "draft": "draft", "prompt": "x", "k": -2}`, 400, "k must be in"},
		{"bad top_p", `{"model": "target", "prompt": "x", "top_p": 1.5}`, 400, "top_p"},
		{"long prompt", `{"model": "target", "prompt": "` + strings.Repeat("1+1 ", 200) + `"}`, 400, "does not fit the context"},
		{"unknown field", `{"model": "target", "prompt": "x", "max_new_tokens": 3}`, 400, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := postTo(t, h, "/v1/completions", tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("status %d, body %s; want %d containing %q", rec.Code, rec.Body, tc.code, tc.want)
			}
		})
	}
}
