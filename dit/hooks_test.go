package dit

import (
	"testing"

	"tessera/autodiff"
	"tessera/tensor"
)

// ForwardBlocks with the plain runner is Forward, and a runner sees every
// block once, in order, with tokens of shape [B, T, D].
func TestForwardBlocksMatchesForward(t *testing.T) {
	cfg := Config{InputSize: 8, PatchSize: 2, InChannels: 2, HiddenSize: 16, Depth: 3, NumHeads: 2, MLPRatio: 2, NumClasses: 4, LearnSigma: true, Prediction: Velocity}
	rng := tensor.NewRNG(11)
	m, err := NewRandom(cfg, rng, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	x := rng.Normal(3, 2, 8, 8)
	ts, y := []float32{10, 500, 990}, []int{0, 3, 4}
	want, err := m.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	var seen []int
	got, err := m.PredictBlocks(x, ts, y, func(g *autodiff.Graph, i int, h, c *autodiff.Var) *autodiff.Var {
		seen = append(seen, i)
		if s := h.Shape(); s[0] != 3 || s[1] != cfg.Tokens() || s[2] != cfg.HiddenSize {
			t.Errorf("block %d input shape %v", i, s)
		}
		return m.Blocks[i].Forward(g, h, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != cfg.Depth || seen[0] != 0 || seen[cfg.Depth-1] != cfg.Depth-1 {
		t.Errorf("runner saw blocks %v", seen)
	}
	if !tensor.SameShape(got, want) {
		t.Fatalf("shape %v, want %v", got.Shape(), want.Shape())
	}
	for i, v := range got.Data() {
		if d := v - want.Data()[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("value %d: %g, want %g", i, v, want.Data()[i])
		}
	}
	if _, err := m.PredictBlocks(rng.Normal(1, 1, 8, 8), []float32{1}, []int{0}, nil); err == nil {
		t.Error("a wrong input shape was accepted")
	}
}
