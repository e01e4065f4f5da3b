package llama

import (
	"math"
	"testing"
)

func TestArgmax(t *testing.T) {
	tests := []struct {
		x    []float32
		want int
	}{
		{[]float32{1}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 1}, 0},
		{[]float32{-3, -1, -2}, 1},
	}
	for _, tc := range tests {
		if got := Argmax(tc.x); got != tc.want {
			t.Errorf("Argmax(%v) = %d, want %d", tc.x, got, tc.want)
		}
	}
}

func TestDistribution(t *testing.T) {
	logits := []float32{2, 1, 0, -1, 3}
	soft := func(temp float64, keep []int) []float64 {
		out := make([]float64, len(logits))
		var sum float64
		for _, i := range keep {
			out[i] = math.Exp(float64(logits[i]) / temp)
			sum += out[i]
		}
		for i := range out {
			out[i] /= sum
		}
		return out
	}
	all := []int{0, 1, 2, 3, 4}
	tests := []struct {
		name string
		opt  SamplerOptions
		want []float64
	}{
		{"greedy", SamplerOptions{}, []float64{0, 0, 0, 0, 1}},
		{"temperature 1", SamplerOptions{Temperature: 1}, soft(1, all)},
		{"temperature 0.5", SamplerOptions{Temperature: 0.5}, soft(0.5, all)},
		{"top-k 2", SamplerOptions{Temperature: 1, TopK: 2}, soft(1, []int{4, 0})},
		{"top-k larger than vocab", SamplerOptions{Temperature: 1, TopK: 10}, soft(1, all)},
		// softmax(1) probabilities: 3→.636, 2→.234, 1→.086, …; 0.8 needs two.
		{"top-p 0.8", SamplerOptions{Temperature: 1, TopP: 0.8}, soft(1, []int{4, 0})},
		{"top-p 0.5", SamplerOptions{Temperature: 1, TopP: 0.5}, soft(1, []int{4})},
		{"top-p 0.95", SamplerOptions{Temperature: 1, TopP: 0.95}, soft(1, []int{4, 0, 1})},
		{"top-k 3 then top-p 0.9", SamplerOptions{Temperature: 1, TopK: 3, TopP: 0.9}, soft(1, []int{4, 0})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewSampler(tc.opt).Distribution(nil, logits)
			for i := range tc.want {
				if math.Abs(float64(got[i])-tc.want[i]) > 1e-6 {
					t.Fatalf("Distribution = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSampleFrequencies(t *testing.T) {
	logits := []float32{0, float32(math.Log(2)), float32(math.Log(5)), -20}
	s := NewSampler(SamplerOptions{Temperature: 1, Seed: 7})
	const n = 40000
	counts := make([]int, len(logits))
	for i := 0; i < n; i++ {
		counts[s.Sample(logits)]++
	}
	want := []float64{1.0 / 8, 2.0 / 8, 5.0 / 8, 0}
	for i, c := range counts {
		f := float64(c) / n
		if math.Abs(f-want[i]) > 0.01 {
			t.Errorf("token %d: frequency %.4f, want %.4f", i, f, want[i])
		}
	}
}

func TestSamplerSeeded(t *testing.T) {
	logits := make([]float32, 300)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	draw := func(seed uint64) []int {
		s := NewSampler(SamplerOptions{Temperature: 0.8, TopK: 50, TopP: 0.9, Seed: seed})
		out := make([]int, 64)
		for i := range out {
			out[i] = s.Sample(logits)
		}
		return out
	}
	a, b, c := draw(1), draw(1), draw(2)
	same := true
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed gave different tokens at %d: %d vs %d", i, a[i], b[i])
		}
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("different seeds gave identical sequences")
	}
	// Every sampled token lies in the top-k set.
	for _, id := range a {
		rank := 0
		for _, v := range logits {
			if v > logits[id] {
				rank++
			}
		}
		if rank >= 50 {
			t.Fatalf("token %d has rank %d, outside top-k 50", id, rank)
		}
	}
}
