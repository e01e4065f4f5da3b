package tensor

import (
	"math"
	"testing"
)

// TestLinearBF16 checks LinearBF16 against Linear on shapes with and
// without bias, leading dimensions and a strided input, within bfloat16's
// rounding.
func TestLinearBF16(t *testing.T) {
	r := NewRNG(7)
	tests := []struct {
		name    string
		x       *Tensor
		out     int
		hasBias bool
	}{
		{"vector", r.Normal(40), 70, true},
		{"batch", r.Normal(3, 5, 64), 130, true},
		{"no bias", r.Normal(9, 33), 16, false},
		{"strided", r.Normal(12, 48).Transpose(0, 1), 64, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.x.Dim(-1)
			w := r.Normal(tc.out, in)
			var b *Tensor
			if tc.hasBias {
				b = r.Normal(tc.out)
			}
			want := Linear(tc.x, w, b)
			got := LinearBF16(tc.x, PackBF16(w), b)
			if !SameShape(got, want) {
				t.Fatalf("shape %v, want %v", got.Shape(), want.Shape())
			}
			gd, wd := got.Data(), want.Data()
			var num, den float64
			for i := range gd {
				num += float64(gd[i]-wd[i]) * float64(gd[i]-wd[i])
				den += float64(wd[i]) * float64(wd[i])
			}
			if rel := math.Sqrt(num / den); rel > 8e-3 {
				t.Fatalf("relative RMS difference %.3g to float32, want <= 8e-3", rel)
			}
		})
	}
}
