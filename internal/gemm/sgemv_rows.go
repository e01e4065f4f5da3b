package gemm

import (
	"fmt"

	"tessera/internal/simd"
)

// SgemvRows computes y = A·x + beta·y for an m×n matrix A with row stride
// lda (len(x) >= n, len(y) >= m) on the calling goroutine, with no worker
// hand-off and no allocation: the building block of callers that split the
// rows across their own threads (batch-1 decoding). beta == 0 never reads
// y. The vector kernels stream A in blocks of four rows with software
// prefetch one block ahead; the result does not depend on how the caller
// cuts the rows as long as the cuts fall on multiples of 4.
func SgemvRows(m, n int, a []float32, lda int, x []float32, beta float32, y []float32) {
	sgemvRows(m, n, a, lda, x, beta, y, false)
}

// SgemvRowsStream is SgemvRows for a matrix read once in a long stream of
// data larger than the caches: it is prefetched with the non-temporal hint
// so that it displaces less of what the caches hold (on AVX-512; the
// result is the same as SgemvRows').
func SgemvRowsStream(m, n int, a []float32, lda int, x []float32, beta float32, y []float32) {
	sgemvRows(m, n, a, lda, x, beta, y, true)
}

func sgemvRows(m, n int, a []float32, lda int, x []float32, beta float32, y []float32, nt bool) {
	if m <= 0 {
		return
	}
	if n <= 0 {
		scaleVec(y[:m], beta)
		return
	}
	checkMatrix("A", a, m, n, lda)
	if len(x) < n || len(y) < m {
		panic(fmt.Sprintf("gemm: SgemvRows with %dx%d A needs len(x) >= %d and len(y) >= %d, have %d and %d", m, n, n, m, len(x), len(y)))
	}
	acc := beta != 0
	if acc && beta != 1 {
		scaleVec(y[:m], beta)
	}
	rows, cols := sgemvRowsAsm(simd.Current(), m, n, a, lda, x, y, acc, nt)
	if cols < n {
		// Columns the kernel left: added to its rows.
		xt := x[cols:n]
		for i := 0; i < rows; i++ {
			y[i] += dotGo(a[i*lda+cols:i*lda+n], xt)
		}
	}
	for i := rows; i < m; i++ {
		s := dotGo(a[i*lda:i*lda+n], x[:n])
		if acc {
			s += y[i]
		}
		y[i] = s
	}
}

// SgemvTRows computes y = alpha·Aᵀ·x + beta·y for an m×n matrix A with row
// stride lda (len(x) >= m, len(y) >= n) on the calling goroutine, with no
// worker hand-off and no allocation: the rows of A are streamed front to
// back, four at a time, into y. beta == 0 never reads y.
func SgemvTRows(m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	if n <= 0 {
		return
	}
	if m <= 0 || alpha == 0 {
		scaleVec(y[:n], beta)
		return
	}
	checkMatrix("A", a, m, n, lda)
	if len(x) < m || len(y) < n {
		panic(fmt.Sprintf("gemm: SgemvTRows with %dx%d A needs len(x) >= %d and len(y) >= %d, have %d and %d", m, n, m, n, len(x), len(y)))
	}
	l := simd.Current()
	if beta == 0 {
		// The AVX-512 kernel writes Aᵀ·x for whole 16-column blocks.
		cols := sgemvTAsm(l, m, n, a, lda, x, y)
		if alpha != 1 {
			for j := range y[:cols] {
				y[j] *= alpha
			}
		}
		if cols == n {
			return
		}
		a, y, n = a[cols:], y[cols:], n-cols
	}
	gemvCols(l, 0, m, 0, n, alpha, a, lda, x, beta, y)
}
