package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"tessera/safetensors"
)

// The forward command reproduces the PyTorch reference outputs committed
// with the golden checkpoints.
func TestForwardMatchesReference(t *testing.T) {
	tests := []struct {
		dir, name string
	}{
		{"../../dit/testdata/golden", "out"},
		{"../../llama/testdata/golden", "logits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.safetensors")
			var so, se bytes.Buffer
			if code := run([]string{"forward", "--model", tc.dir, "--inputs", tc.dir + "/io.safetensors", "--out", out}, &so, &se); code != 0 {
				t.Fatalf("exit %d: %s", code, se.String())
			}
			ref, err := safetensors.Open(tc.dir + "/io.safetensors")
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			got, err := safetensors.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, _ := ref.Tensor(tc.name)
			have, err := got.Tensor(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			w, h := want.Data(), have.Data()
			if len(w) != len(h) {
				t.Fatalf("%d values, want %d", len(h), len(w))
			}
			var maxErr, scale float64
			for i := range w {
				maxErr = math.Max(maxErr, math.Abs(float64(w[i]-h[i])))
				scale = math.Max(scale, math.Abs(float64(w[i])))
			}
			if maxErr > 1e-4*math.Max(1, scale) {
				t.Fatalf("max error %g (reference scale %g)", maxErr, scale)
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"missing flags", []string{"forward"}, 2, "required"},
		{"unknown model", []string{"forward", "--model", "no-such-model", "--inputs", "x", "--out", "y"}, 1, "unknown model"},
		{"missing inputs", []string{"forward", "--model", "../../dit/testdata/golden", "--inputs", "/nonexistent.safetensors", "--out", "y"}, 1, "nonexistent"},
		{"wrong inputs", []string{"forward", "--model", "../../dit/testdata/golden", "--inputs", "../../llama/testdata/golden/io.safetensors", "--out", "y"}, 1, `"x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var so, se bytes.Buffer
			if code := run(tc.args, &so, &se); code != tc.want {
				t.Fatalf("exit %d, want %d: %s", code, tc.want, se.String())
			}
			if !strings.Contains(se.String(), tc.msg) {
				t.Fatalf("stderr %q does not mention %q", se.String(), tc.msg)
			}
		})
	}
}
