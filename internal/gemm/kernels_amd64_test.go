//go:build amd64 && !purego

package gemm

import (
	"math/rand/v2"
	"testing"

	"tessera/internal/simd"
)

// TestEveryKernel runs the SGEMM table through each assembly micro-kernel
// the CPU supports, not only the one Sgemm would pick for each shape.
func TestEveryKernel(t *testing.T) {
	cases := gemmCases()
	var kernels []*microKernel
	if simd.Supported() >= simd.AVX2 {
		kernels = append(kernels, avx2Choices...)
	}
	if simd.Supported() >= simd.AVX512 {
		kernels = append(kernels, avx512Choices...)
	}
	for _, kr := range kernels {
		t.Run(kr.name, func(t *testing.T) {
			testSgemmCases(t, cases, func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
				if k == 0 || alpha == 0 || m == 0 || n == 0 {
					Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					return
				}
				sgemm(kr, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			})
		})
	}
}

func TestTransposeBlock(t *testing.T) {
	defer simd.Set(simd.Current())
	r := rand.New(rand.NewPCG(9, 9))
	for _, l := range simd.Levels() {
		for _, tc := range []struct{ rows, n, lds, ldd int }{{16, 16, 16, 16}, {32, 37, 40, 64}, {8, 19, 19, 16}, {24, 8, 9, 48}, {16, 5, 5, 16}} {
			simd.Set(l)
			src := randSlice(r, (tc.rows-1)*tc.lds+tc.n)
			dst := make([]float32, (tc.n-1)*tc.ldd+tc.rows)
			done := transposeBlock(tc.rows, tc.n, src, tc.lds, dst, tc.ldd)
			if done < 0 || done > tc.n || (l >= simd.AVX2 && tc.rows%8 == 0 && tc.n >= 16 && done == 0) {
				t.Fatalf("%v %+v: handled %d columns", l, tc, done)
			}
			for p := 0; p < done; p++ {
				for i := 0; i < tc.rows; i++ {
					if got, want := dst[p*tc.ldd+i], src[i*tc.lds+p]; got != want {
						t.Fatalf("%v %+v: dst[%d][%d] = %v, want %v", l, tc, p, i, got, want)
					}
				}
			}
		}
	}
}
