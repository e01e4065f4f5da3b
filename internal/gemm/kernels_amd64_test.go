//go:build amd64 && !purego

package gemm

import (
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
