package attn

import (
	"math"
	"math/rand/v2"
	"testing"

	"tessera/internal/simd"
)

// eachLevel runs f once per instruction-set level this CPU supports.
func eachLevel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, lv := range simd.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			prev := simd.Set(lv)
			defer simd.Set(prev)
			f(t)
		})
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func TestExpf(t *testing.T) {
	cases := []struct {
		x    float32
		want float64
	}{
		{float32(math.Inf(-1)), 0},
		{-1000, 0},
		{-87.5, 0},
		{0, 1},
	}
	for _, c := range cases {
		if got := expf(c.x); float64(got) != c.want {
			t.Errorf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	worst := 0.0
	for x := float32(-86.9); x < 10; x += 0.0137 {
		want := math.Exp(float64(x))
		rel := math.Abs(float64(expf(x))-want) / want
		worst = max(worst, rel)
	}
	if worst > 4e-7 {
		t.Errorf("expf worst relative error %.3g, want <= 4e-7", worst)
	}
}

func TestGemmMatchesLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name                  string
		m, k, n, ars, aps, ld int
		beta                  bool
	}{
		{"64x64 rows", 8, 64, 64, 64, 1, 64, false},
		{"transposed A", 12, 33, 80, 1, 12, 80, true},
		{"tail 17", 4, 5, 17, 9, 1, 20, true},
		{"tail 3", 4, 7, 3, 7, 1, 3, false},
		{"n 40", 16, 1, 40, 1, 16, 41, true},
		{"k 0", 4, 0, 24, 1, 4, 24, true},
		{"n 200", 4, 9, 200, 9, 1, 200, false},
	}
	eachLevel(t, func(t *testing.T) {
		for _, c := range cases {
			a := randSlice(rng, (c.m-1)*c.ars+max(c.k-1, 0)*c.aps+1)
			b := randSlice(rng, max(c.k-1, 0)*c.ld+c.n)
			c0 := randSlice(rng, (c.m-1)*c.ld+c.n)
			var beta []float32
			if c.beta {
				beta = randSlice(rng, c.m)
			}
			want := append([]float32(nil), c0...)
			gemmGeneric(want, c.ld, a, c.ars, c.aps, b, c.ld, c.m, c.k, c.n, beta)
			got := append([]float32(nil), c0...)
			gemm(got, c.ld, a, c.ars, c.aps, b, c.ld, c.m, c.k, c.n, beta)
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s: c[%d] = %v, want %v", c.name, i, got[i], want[i])
				}
			}
		}
	})
}

func TestSoftmaxKernelsMatchLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const k, n, ld = 37, 48, 50
	inf := float32(math.Inf(-1))
	eachLevel(t, func(t *testing.T) {
		s := randSlice(rng, (k-1)*ld+n)
		for i := range s {
			s[i] *= 4
			if i%7 == 0 {
				s[i] = inf
			}
		}
		for j := 0; j < k; j++ { // column 5 fully masked
			s[j*ld+5] = inf
		}
		m := randSlice(rng, n)
		m[5] = negBig
		l := randSlice(rng, n)
		for i := range l {
			l[i] = float32(math.Abs(float64(l[i])))
		}
		l[5] = 0 // a column that has seen no key yet
		s2, m2, l2 := append([]float32(nil), s...), append([]float32(nil), m...), append([]float32(nil), l...)
		a1, a2 := make([]float32, n), make([]float32, n)
		softmaxColsGeneric(s, ld, k, n, m, l, a1)
		softmaxCols(s2, ld, k, n, m2, l2, a2)
		for _, pair := range [][2][]float32{{s, s2}, {m, m2}, {l, l2}, {a1, a2}} {
			for i := range pair[0] {
				if d := math.Abs(float64(pair[0][i] - pair[1][i])); d > 2e-6*(1+math.Abs(float64(pair[0][i]))) {
					t.Fatalf("element %d: got %v, want %v", i, pair[1][i], pair[0][i])
				}
			}
		}
		if l2[5] != 0 {
			t.Errorf("fully masked column: l = %v, want 0", l2[5])
		}

		dp := randSlice(rng, (k-1)*ld+n)
		lse := randSlice(rng, n)
		lse[3] = float32(math.Inf(1))
		delta := randSlice(rng, n)
		s3, dp3 := append([]float32(nil), s2...), append([]float32(nil), dp...)
		softmaxGradColsGeneric(s2, dp, ld, k, n, lse, delta, 0.3)
		softmaxGradCols(s3, dp3, ld, k, n, lse, delta, 0.3)
		for i := range s2 {
			if d := math.Abs(float64(s2[i] - s3[i])); d > 2e-6*(1+math.Abs(float64(s2[i]))) {
				t.Fatalf("p[%d] = %v, want %v", i, s3[i], s2[i])
			}
			if d := math.Abs(float64(dp[i] - dp3[i])); d > 2e-6*(1+math.Abs(float64(dp[i]))) {
				t.Fatalf("ds[%d] = %v, want %v", i, dp3[i], dp[i])
			}
		}
	})
}

func TestDotKeysMatchesLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	cases := []struct{ nk, d, ks, lds int }{
		{1, 8, 8, 16}, {37, 17, 20, 16}, {64, 64, 256, 16}, {5, 3, 3, 1}, {9, 128, 130, 32}, {7, 33, 40, 5},
	}
	eachLevel(t, func(t *testing.T) {
		for _, c := range cases {
			k := randSlice(rng, (c.nk-1)*c.ks+c.d)
			q := randSlice(rng, c.d)
			want := make([]float32, (c.nk-1)*c.lds+1)
			got := make([]float32, len(want))
			dotKeysGeneric(want, c.lds, k, c.ks, q, c.nk, c.d)
			dotKeys(got, c.lds, k, c.ks, q, c.nk, c.d)
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%+v: s[%d] = %v, want %v", c, i, got[i], want[i])
				}
			}
		}
	})
}
