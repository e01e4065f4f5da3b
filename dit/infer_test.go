package dit

import (
	"math"
	"testing"

	"tessera/autodiff"
	"tessera/nn"
	"tessera/tensor"
)

// TestInferenceMatchesRecordedForward checks the NoGrad block path (fused
// ops, scratch buffers, bfloat16 when asked) against the recorded one, and
// that a later call does not overwrite an earlier call's output.
func TestInferenceMatchesRecordedForward(t *testing.T) {
	cfg := Config{InputSize: 8, PatchSize: 2, InChannels: 2, HiddenSize: 32, Depth: 3, NumHeads: 4,
		MLPRatio: 4, NumClasses: 4}
	m, err := New(cfg, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	rng := tensor.NewRNG(2)
	for _, p := range nn.NamedParams(m) {
		if p.Var.RequiresGrad() {
			p.Var.Value.CopyFrom(rng.Uniform(-0.2, 0.2, p.Var.Value.Shape()...))
		}
	}
	x := rng.Normal(3, 2, 8, 8)
	ts, y := []float32{5, 500, 990}, []int{0, 3, 4}
	want := m.Forward(autodiff.NewGraph(), autodiff.Const(x), ts, y).Value.Contiguous()

	tests := []struct {
		name string
		prec nn.Precision
		tol  float64
	}{
		{"f32", nn.F32, 1e-5},
		{"bf16", nn.BF16, 3e-2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nn.SetPrecision(m, tc.prec)
			defer nn.SetPrecision(m, nn.F32)
			got, err := m.Predict(x, ts, y)
			if err != nil {
				t.Fatal(err)
			}
			keep := got.Clone()
			if d := relMax(got, want); d > tc.tol {
				t.Fatalf("NoGrad output differs from the recorded forward by %.3g (max relative), want <= %g", d, tc.tol)
			}
			if _, err := m.Predict(rng.Normal(3, 2, 8, 8), ts, y); err != nil {
				t.Fatal(err)
			}
			if d := relMax(got, keep); d != 0 {
				t.Fatalf("a second call changed the first call's output by %.3g", d)
			}
		})
	}
}

func relMax(a, b *tensor.Tensor) float64 {
	var d, m float64
	bd := b.Contiguous().Data()
	for i, v := range a.Contiguous().Data() {
		d = math.Max(d, math.Abs(float64(v-bd[i])))
		m = math.Max(m, math.Abs(float64(bd[i])))
	}
	return d / m
}
