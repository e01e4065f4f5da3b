package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestToBF16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie
		{math.Float32frombits(0x00000001), 0x0000}, // subnormal flushed
		{math.Float32frombits(0x80400000), 0x8000}, // negative subnormal
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // max float rounds to +Inf
	}
	for _, tc := range tests {
		if got := ToBF16(tc.in); got != tc.want {
			t.Errorf("ToBF16(%v [%#08x]) = %#04x, want %#04x", tc.in, math.Float32bits(tc.in), got, tc.want)
		}
	}
	if nan := ToBF16(float32(math.NaN())); FromBF16(nan) == FromBF16(nan) {
		t.Errorf("ToBF16(NaN) = %#04x, not a NaN", nan)
	}
	if got := FromBF16(0x3fc0); got != 1.5 {
		t.Errorf("FromBF16(0x3fc0) = %v, want 1.5", got)
	}
}

// TestBF16RowMatchesScalar checks the vector conversion against ToBF16.
func TestBF16RowMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	forEachPath(t, func(t *testing.T) {
		for _, k := range []int{1, 2, 31, 32, 33, 64, 97, 130} {
			src := randSlice(r, k)
			src[0] = math.Float32frombits(0x3f818000) // a tie
			dst := make([]uint32, (k+1)/2)
			bf16Row(dst, src)
			for i, v := range src {
				got := uint16(dst[i/2] >> (16 * (i % 2)))
				if want := ToBF16(v); got != want {
					t.Fatalf("k=%d: element %d (%v) converted to %#04x, want %#04x", k, i, v, got, want)
				}
			}
			if k%2 == 1 && dst[k/2]>>16 != 0 {
				t.Fatalf("k=%d: odd tail not zero-padded", k)
			}
		}
	})
}

// TestGemmBF16 compares GemmBF16 with a float64 product of the
// bfloat16-rounded operands, on every path and edge shape.
func TestGemmBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{
		{1, 1, 1}, {1, 64, 2}, {5, 3, 7}, {6, 64, 32}, {7, 65, 33}, {13, 130, 64},
		{100, 384, 128}, {37, 16, 512}, {400, 128, 129}, {1000, 200, 96},
	}
	forEachPath(t, func(t *testing.T) {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, beta := range []float32{0, 1} {
				for _, withBias := range []bool{false, true} {
					t.Run(fmt.Sprintf("%dx%dx%d/beta=%v/bias=%v", m, n, k, beta, withBias), func(t *testing.T) {
						lda, ldw, ldc := k+3, k+1, n+2
						a, w, c := randSlice(r, m*lda), randSlice(r, n*ldw), randSlice(r, m*ldc)
						var bias []float32
						if withBias {
							bias = randSlice(r, n)
						}
						c0 := append([]float32(nil), c...)
						GemmBF16(m, a, lda, PackBF16(w, n, k, ldw), bias, beta, c, ldc)
						for i := 0; i < m; i++ {
							for j := 0; j < ldc; j++ {
								got := c[i*ldc+j]
								if j >= n {
									if got != c0[i*ldc+j] {
										t.Fatalf("C[%d][%d] beyond n changed", i, j)
									}
									continue
								}
								var want, mag float64
								for p := 0; p < k; p++ {
									x := float64(FromBF16(ToBF16(a[i*lda+p]))) * float64(FromBF16(ToBF16(w[j*ldw+p])))
									want += x
									mag += math.Abs(x)
								}
								if beta == 1 {
									want += float64(c0[i*ldc+j])
									mag += math.Abs(float64(c0[i*ldc+j]))
								}
								if bias != nil {
									want += float64(bias[j])
									mag += math.Abs(float64(bias[j]))
								}
								if d := math.Abs(float64(got) - want); d > 1e-6*(mag+1)*math.Sqrt(float64(k+1)) {
									t.Fatalf("C[%d][%d] = %v, want %v (|diff| %.3g, magnitude %.3g)", i, j, got, want, d, mag)
								}
							}
						}
					})
				}
			}
		}
	})
}

// TestGemmBF16CloseToFloat32 bounds the error bfloat16 rounding adds to a
// product of unit-scale operands.
func TestGemmBF16CloseToFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m, n, k := 64, 128, 256
	a, w := randSlice(r, m*k), randSlice(r, n*k)
	c := make([]float32, m*n)
	GemmBF16(m, a, k, PackBF16(w, n, k, k), nil, 0, c, n)
	ref := make([]float32, m*n)
	Sgemm(false, true, m, n, k, 1, a, k, w, k, 0, ref, n)
	var num, den float64
	for i := range c {
		num += float64(c[i]-ref[i]) * float64(c[i]-ref[i])
		den += float64(ref[i]) * float64(ref[i])
	}
	if rel := math.Sqrt(num / den); rel > 6e-3 {
		t.Fatalf("relative RMS difference to float32 %.3g, want <= 6e-3", rel)
	}
}
