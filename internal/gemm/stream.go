package gemm

// SgemmStreamA computes C = A·B for a tall A [m, k] (row stride lda) read
// once from memory and a narrow B [k, n] (row stride ldb), such as a
// model's weights times the feature-major activations of a few tokens. C
// is [m, n] with row stride ldc and is overwritten. It runs on the calling
// goroutine.
//
// With AVX-512, n = 16 and contiguous rows (lda = k), A is
// multiplied 12 rows at a time by a kernel that prefetches the next 12
// rows while it computes, so that reading A from memory overlaps the
// arithmetic (the hardware prefetcher alone delivers about two thirds of
// what the arithmetic needs); otherwise it is Sgemm.
func SgemmStreamA(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	checkMatrix("A", a, m, k, lda)
	checkMatrix("B", b, k, n, ldb)
	checkMatrix("C", c, m, n, ldc)
	if k > 0 && streamA(m, n, k, a, lda, b, ldb, c, ldc) {
		return
	}
	Sgemm(false, false, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
}

// StreamsA reports whether SgemmStreamA prefetches A for these shapes
// (rather than running Sgemm).
func StreamsA(n, k, lda int) bool { return k > 0 && canStreamA(n, k, lda) }
