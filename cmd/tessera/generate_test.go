package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateWritesImages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "imgs")
	var so, se bytes.Buffer
	args := []string{"generate", "--model", "mnist", "--class", "3", "--n", "3", "--steps", "2", "--seed", "5", "--out", out, "--json"}
	if code := run(args, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	for _, f := range []string{"0000.png", "0001.png", "0002.png", "labels.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
	}
	var labels map[string]int
	raw, _ := os.ReadFile(filepath.Join(out, "labels.json"))
	if err := json.Unmarshal(raw, &labels); err != nil || labels["0002.png"] != 3 {
		t.Fatalf("labels.json = %s (%v)", raw, err)
	}
	var sum map[string]any
	if err := json.Unmarshal(so.Bytes(), &sum); err != nil {
		t.Fatalf("--json output %q: %v", so.String(), err)
	}
	for _, k := range []string{"n", "wall_seconds", "network_evals", "block_evals", "flops", "precision"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("--json output lacks %q", k)
		}
	}
	// Same seed and flags, same images.
	out2 := filepath.Join(t.TempDir(), "again")
	args[len(args)-2] = out2
	if code := run(args, &so, &se); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, se.String())
	}
	a, _ := os.ReadFile(filepath.Join(out, "0001.png"))
	b, _ := os.ReadFile(filepath.Join(out2, "0001.png"))
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave a different image")
	}
}

func TestGenerateErrors(t *testing.T) {
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep.txt"), []byte("x"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown model", []string{"--model", "nope", "--out", "OUT"}, 1, `unknown model "nope"`},
		{"decoder model", []string{"--model", "target", "--out", "OUT"}, 1, "model target is not an image model"},
		{"class out of range", []string{"--class", "10", "--out", "OUT"}, 2, "--class 10 out of range"},
		{"no images", []string{"--n", "0", "--out", "OUT"}, 2, "--n must be at least 1"},
		{"no steps", []string{"--steps", "0", "--out", "OUT"}, 2, "--steps must be at least 1"},
		{"no out", []string{}, 2, "--out is required"},
		{"non-empty out", []string{"--out", full}, 1, "is not empty"},
		{"bad sampler", []string{"--sampler", "rk4", "--n", "1", "--steps", "1", "--out", "OUT"}, 1, "rk4"},
		{"unknown flag", []string{"--frobs", "2", "--out", "OUT"}, 2, "not defined"},
		{"bad cache", []string{"--cache", "sometimes", "--out", "OUT"}, 2, "--cache"},
		{"flex without its model", []string{"--flex", "8", "--out", "OUT"}, 2, "--flex-model"},
		{"long prompt", []string{"--model", "emoji", "--prompt", strings.Repeat("heart ", 10), "--out", "OUT"}, 2, "longer than the text encoder's limit of 48"},
		{"bad precision", []string{"--precision", "fp8", "--out", "OUT"}, 2, "--precision: unknown precision \"fp8\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			args := []string{"generate"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "OUT", out))
			}
			var so, se bytes.Buffer
			if code := run(args, &so, &se); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, se.String())
			}
			if !strings.Contains(se.String(), tc.msg) {
				t.Fatalf("stderr %q does not mention %q", se.String(), tc.msg)
			}
			// Nothing partial is left behind.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				t.Errorf("left behind %s", e.Name())
			}
		})
	}
	if ents, _ := os.ReadDir(full); len(ents) != 1 {
		t.Errorf("the non-empty output folder was changed: %d entries", len(ents))
	}
}

// The dynamic block cache reports per-block hits in --json and skips block
// evaluations.
func TestGenerateWithCache(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cached")
	var sum struct {
		BlockEvals int `json:"block_evals"`
		Cache      struct {
			HitsPerBlock []int `json:"hits_per_block"`
		} `json:"cache"`
	}
	runJSON(t, &sum, "generate", "--model", "mnist", "--n", "2", "--steps", "8", "--cache", "dynamic:0.5", "--out", out, "--json")
	if len(sum.Cache.HitsPerBlock) != 6 {
		t.Fatalf("hits per block %v, want 6 blocks", sum.Cache.HitsPerBlock)
	}
	if sum.BlockEvals >= 8*6 {
		t.Fatalf("block evaluations %d, want fewer than the uncached 48", sum.BlockEvals)
	}
}

// Forecast caching from the command line: `cache plan --forecast` stores
// the forecast schedule at its default threshold, and generate uses it.
func TestForecastCacheCommands(t *testing.T) {
	dir := t.TempDir()
	var plan struct {
		Threshold float64     `json:"threshold"`
		Reuse     string      `json:"reuse"`
		Compute   [2][][]bool `json:"compute"`
	}
	runJSON(t, &plan, "cache", "plan", "--model", "mnist", "--steps", "8", "--samples", "4", "--forecast", "--cache-dir", dir, "--json")
	if plan.Threshold != 0.03 || plan.Reuse != "forecast" || len(plan.Compute[0]) != 6 || len(plan.Compute[0][0]) != 8 {
		t.Fatalf("plan: threshold %g, reuse %q, %d blocks", plan.Threshold, plan.Reuse, len(plan.Compute[0]))
	}
	out := filepath.Join(t.TempDir(), "fc")
	var sum struct {
		Cache struct {
			Mode      string  `json:"mode"`
			Threshold float64 `json:"threshold"`
		} `json:"cache"`
	}
	runJSON(t, &sum, "generate", "--model", "mnist", "--n", "2", "--steps", "8", "--cache", "fc-plan", "--cache-dir", dir, "--out", out, "--json")
	if sum.Cache.Mode != "fc-plan" || sum.Cache.Threshold != 0.03 {
		t.Fatalf("cache report %+v", sum.Cache)
	}
	var so, se bytes.Buffer
	if code := run([]string{"cache", "plan", "--threshold", "-1"}, &so, &se); code != 2 {
		t.Fatalf("negative threshold: exit %d", code)
	}
}

func TestFlexErrorsCommand(t *testing.T) {
	var res []struct {
		S         float64 `json:"s"`
		Guided    float64 `json:"guided"`
		Alignment float64 `json:"alignment"`
	}
	runJSON(t, &res, "flex-errors", "--n", "4", "--steps", "4", "--json")
	if len(res) != 4 || res[0].S != 1 || !(res[0].Guided > 0) || !(res[1].Alignment > 0.5) {
		t.Fatalf("flex-errors: %+v", res)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--n", "0"}, "must be positive"},
		{[]string{"--model", "emoji"}, "not a class-conditional DiT"},
		{[]string{"--flex-model", "emoji-flex"}, "emoji-flex"},
	} {
		var so, se bytes.Buffer
		if code := run(append([]string{"flex-errors"}, tc.args...), &so, &se); code == 0 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("flex-errors %v: exit %d, stderr %q, want an error with %q", tc.args, code, se.String(), tc.want)
		}
	}
}

func TestFlexifyRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--steps", "1"}, "--out is required"},
		{[]string{"--out", "x", "--min-level", "1"}, "--min-level"},
		{[]string{"--out", "x", "--guidance-distill", "-1"}, "--guidance-distill"},
		{[]string{"--out", "x", "--ema", "1"}, "--ema"},
		{[]string{"--out", "x", "--guidance-distill-scale", "2"}, "--guidance-distill-scale needs"},
		{[]string{"--out", "x", "--guidance-distill", "40", "--guidance-distill-scale", "-1"}, "--guidance-distill-scale must"},
		{[]string{"--out", "x", "--lora", "0", "--lora-modulation"}, "--lora-modulation"},
	} {
		var so, se bytes.Buffer
		if code := run(append([]string{"flexify"}, tc.args...), &so, &se); code == 0 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("flexify %v: exit %d, stderr %q, want an error naming %s", tc.args, code, se.String(), tc.want)
		}
	}
}

// runJSON runs the command line args, which must succeed, and decodes its
// standard output into v.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	var so, se bytes.Buffer
	if code := run(args, &so, &se); code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, se.String())
	}
	if err := json.Unmarshal(so.Bytes(), v); err != nil {
		t.Fatalf("%s: output %q: %v", strings.Join(args, " "), so.String(), err)
	}
}
