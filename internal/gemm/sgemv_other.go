//go:build !amd64 || purego

package gemm

import "tessera/internal/simd"

// dot4 computes the four dot products of rows a[0:], a[lda:], a[2lda:],
// a[3lda:] with x[:n] into out.
func dot4(_ simd.Level, n int, a []float32, lda int, x []float32, out *[4]float32) {
	dot4Go(a, lda, x[:n], out, false)
}

// axpy4 adds s[0]*a[0:n] + … + s[3]*a[3lda:3lda+n] to y[:n].
func axpy4(_ simd.Level, n int, y, a []float32, lda int, s *[4]float32) {
	axpy4Go(y[:n], a, lda, s)
}
