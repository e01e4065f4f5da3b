//go:build !amd64 || purego

package gemm

func streamA(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	return false
}

func canStreamA(n, k, lda int) bool { return false }
