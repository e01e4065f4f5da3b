package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gaussian(n, d int, mean, std float64, seed uint64) *Features {
	r := rand.New(rand.NewPCG(seed, 1))
	f := &Features{N: n, Dim: d, Data: make([]float64, n*d)}
	for i := range f.Data {
		f.Data[i] = mean + std*r.NormFloat64()
	}
	return f
}

func TestFIDClosedForm(t *testing.T) {
	// For isotropic Gaussians N(μa, σa²I) and N(μb, σb²I) in d dimensions,
	// FID = d(μa−μb)² + d(σa−σb)².
	tests := []struct {
		name           string
		ma, sa, mb, sb float64
	}{
		{"same", 0, 1, 0, 1},
		{"shifted", 0, 1, 0.5, 1},
		{"scaled", 0, 1, 0, 2},
		{"both", 1, 0.5, -1, 1.5},
	}
	const n, d = 20000, 8
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := gaussian(n, d, tc.ma, tc.sa, uint64(2*i))
			b := gaussian(n, d, tc.mb, tc.sb, uint64(2*i+1))
			got, err := FID(a, b)
			if err != nil {
				t.Fatal(err)
			}
			want := d*(tc.ma-tc.mb)*(tc.ma-tc.mb) + d*(tc.sa-tc.sb)*(tc.sa-tc.sb)
			if math.Abs(got-want) > 0.05+0.03*want {
				t.Fatalf("FID = %.4f, want %.4f", got, want)
			}
		})
	}
}

func TestFIDCorrelated(t *testing.T) {
	// A rotation leaves FID between a set and itself at zero, and FID is
	// symmetric.
	a := gaussian(3000, 5, 0, 1, 7)
	for i := 0; i < a.N; i++ {
		r := a.row(i)
		r[1] += 0.8 * r[0]
		r[2] -= 0.5 * r[1]
	}
	b := gaussian(3000, 5, 0.2, 1.3, 8)
	ab, _ := FID(a, b)
	ba, _ := FID(b, a)
	aa, _ := FID(a, a)
	if math.Abs(ab-ba) > 1e-6*math.Max(1, ab) {
		t.Fatalf("FID not symmetric: %v vs %v", ab, ba)
	}
	if math.Abs(aa) > 1e-6 {
		t.Fatalf("FID(a, a) = %v, want 0", aa)
	}
}

func TestKID(t *testing.T) {
	a := gaussian(1000, 4, 0, 1, 1)
	b := gaussian(1000, 4, 0, 1, 2)
	c := gaussian(1000, 4, 1, 1, 3)
	same, err := KID(a, b, 10, 200, 0)
	if err != nil {
		t.Fatal(err)
	}
	diff, _ := KID(a, c, 10, 200, 0)
	if math.Abs(same.Mean) > 3*same.Std+0.01 {
		t.Errorf("KID of equal distributions %.4f ± %.4f, want near 0", same.Mean, same.Std)
	}
	if diff.Mean < 10*math.Abs(same.Mean)+0.1 {
		t.Errorf("KID of shifted distributions %.4f, not clearly above %.4f", diff.Mean, same.Mean)
	}
}

func TestErrors(t *testing.T) {
	a := gaussian(10, 3, 0, 1, 1)
	b := gaussian(10, 4, 0, 1, 1)
	if _, err := FID(a, b); err == nil {
		t.Error("FID: want an error for different dimensions")
	}
	if _, err := KID(a, b, 2, 5, 0); err == nil {
		t.Error("KID: want an error for different dimensions")
	}
	if _, err := NewFeatures([][]float32{{1, 2}, {3}}); err == nil {
		t.Error("NewFeatures: want an error for ragged rows")
	}
	if _, err := PSNR([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("PSNR: want an error for different sizes")
	}
}

func TestPSNR(t *testing.T) {
	a := []float32{0, 0, 0, 0}
	b := []float32{0.2, -0.2, 0.2, -0.2}
	got, _ := PSNR(a, b)
	want := 10 * math.Log10(4/0.04)
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("PSNR = %v, want %v", got, want)
	}
	if inf, _ := PSNR(a, a); !math.IsInf(inf, 1) {
		t.Fatalf("PSNR of identical images = %v, want +Inf", inf)
	}
}
