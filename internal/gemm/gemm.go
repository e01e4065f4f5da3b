// Package gemm multiplies float32 matrices: SGEMM and SGEMV on row-major
// storage, with assembly micro-kernels on amd64 and a portable Go twin.
package gemm

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(A) is m×k (A is m×k with row stride lda, or k×m when transA), op(B) is
// k×n (B is k×n with row stride ldb, or n×k when transB) and C is m×n with
// row stride ldc. With beta == 0, C is overwritten and never read. In Go:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += opA(i, p) * opB(p, j)
//			}
//			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//		}
//	}
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmGeneric(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemv computes y = alpha*op(A)*x + beta*y, where A is m×n row-major with
// row stride lda and op(A) is A (len(y) = m) or Aᵀ when transA (len(y) = n).
// With beta == 0, y is overwritten and never read.
func Sgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	if transA {
		Sgemm(true, false, n, 1, m, alpha, a, lda, x, 1, beta, y, 1)
		return
	}
	Sgemm(false, false, m, 1, n, alpha, a, lda, x, 1, beta, y, 1)
}

func sgemmGeneric(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if av == 0 {
				continue
			}
			if transB {
				for j := range ci {
					ci[j] += av * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += av * bv
				}
			}
		}
	}
}
