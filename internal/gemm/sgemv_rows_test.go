package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"tessera/internal/simd"
)

// TestSgemvRows checks SgemvRows against a float64 reference on every
// kernel level, for shapes that exercise the row and column tails of the
// vector kernels, padded row strides and the three kinds of beta.
func TestSgemvRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	cases := []struct{ m, n, lda int }{
		{1, 1, 1}, {3, 5, 5}, {4, 16, 16}, {4, 8, 8}, {8, 32, 32}, {5, 48, 50},
		{17, 40, 40}, {64, 256, 256}, {36, 688, 700}, {12, 1376, 1376}, {7, 24, 31}, {100, 3, 3},
	}
	for _, l := range simd.Levels() {
		prev := simd.Set(l)
		for _, c := range cases {
			for _, beta := range []float32{0, 1, -0.5} {
				name := fmt.Sprintf("%v/%dx%d/lda%d/beta%g", l, c.m, c.n, c.lda, beta)
				a := randSlice(r, (c.m-1)*c.lda+c.n)
				x := randSlice(r, c.n)
				y0 := randSlice(r, c.m+3)
				y := append([]float32(nil), y0...)
				SgemvRows(c.m, c.n, a, c.lda, x, beta, y)
				for i := 0; i < c.m; i++ {
					var want, mag float64
					for j := 0; j < c.n; j++ {
						p := float64(a[i*c.lda+j]) * float64(x[j])
						want += p
						mag += math.Abs(p)
					}
					want += float64(beta) * float64(y0[i])
					mag += math.Abs(float64(beta) * float64(y0[i]))
					if d := math.Abs(float64(y[i]) - want); d > 1e-5*mag+1e-6 {
						t.Fatalf("%s: y[%d] = %g, want %g", name, i, y[i], want)
					}
				}
				for i := c.m; i < len(y); i++ {
					if y[i] != y0[i] {
						t.Fatalf("%s: y[%d] past the %d rows was written", name, i, c.m)
					}
				}
			}
		}
		simd.Set(prev)
	}
}

// TestSgemvRowsSplitInvariant checks that cutting the rows at multiples of
// 4 gives the same bits as one call, the property threaded callers rely
// on, and that the streaming variant gives the same bits too.
func TestSgemvRowsSplitInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const m, n = 70, 200
	a, x := randSlice(r, m*n), randSlice(r, n)
	for _, l := range simd.Levels() {
		prev := simd.Set(l)
		whole := make([]float32, m)
		SgemvRows(m, n, a, n, x, 0, whole)
		parts := make([]float32, m)
		for _, cut := range [][2]int{{0, 20}, {20, 36}, {36, 70}} {
			SgemvRows(cut[1]-cut[0], n, a[cut[0]*n:], n, x, 0, parts[cut[0]:])
		}
		stream := make([]float32, m)
		SgemvRowsStream(m, n, a, n, x, 0, stream)
		for i := range whole {
			if whole[i] != parts[i] || whole[i] != stream[i] {
				t.Fatalf("%v: row %d: %g whole, %g in parts, %g streamed", l, i, whole[i], parts[i], stream[i])
			}
		}
		simd.Set(prev)
	}
}

// TestSgemvTRows checks SgemvTRows against a float64 reference on every
// kernel level.
func TestSgemvTRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	cases := []struct{ m, n, lda int }{{1, 1, 1}, {1, 16, 16}, {2, 112, 112}, {5, 120, 121}, {3, 32, 32}, {9, 64, 256}, {130, 48, 50}, {7, 5, 5}}
	for _, l := range simd.Levels() {
		prev := simd.Set(l)
		for _, c := range cases {
			for _, beta := range []float32{0, 1, 0.5} {
				const alpha = 0.75
				a := randSlice(r, (c.m-1)*c.lda+c.n)
				x, y0 := randSlice(r, c.m), randSlice(r, c.n)
				y := append([]float32(nil), y0...)
				SgemvTRows(c.m, c.n, alpha, a, c.lda, x, beta, y)
				for j := 0; j < c.n; j++ {
					want, mag := float64(beta)*float64(y0[j]), math.Abs(float64(beta)*float64(y0[j]))
					for i := 0; i < c.m; i++ {
						p := alpha * float64(a[i*c.lda+j]) * float64(x[i])
						want += p
						mag += math.Abs(p)
					}
					if d := math.Abs(float64(y[j]) - want); d > 1e-5*mag+1e-6 {
						t.Fatalf("%v %dx%d beta %g: y[%d] = %g, want %g", l, c.m, c.n, beta, j, y[j], want)
					}
				}
			}
		}
		simd.Set(prev)
	}
}
