//go:build amd64 && !purego

package gemm

import "tessera/internal/simd"

// sgemvRowsAVX512 is, for m a multiple of 4 and n a multiple of 16,
//
//	for i := 0; i < m; i++ {
//		var s float32
//		for j := 0; j < n; j++ {
//			s += a[i*lda+j] * x[j]
//		}
//		if acc != 0 {
//			s += y[i]
//		}
//		y[i] = s
//	}
//
// reading A in blocks of four rows and prefetching the next block.
//
//go:noescape
func sgemvRowsAVX512(m, n int, a *float32, lda int, x, y *float32, acc int)

// sgemvRowsNTAAVX512 is sgemvRowsAVX512 prefetching with the
// non-temporal hint.
//
//go:noescape
func sgemvRowsNTAAVX512(m, n int, a *float32, lda int, x, y *float32, acc int)

// sgemvRowsAVX2 is sgemvRowsAVX512 with Y registers, for n a multiple of 8.
//
//go:noescape
func sgemvRowsAVX2(m, n int, a *float32, lda int, x, y *float32, acc int)

// sgemvTAVX512 is, for n a multiple of 16 and m > 0,
//
//	for j := 0; j < n; j++ {
//		var s float32
//		for i := 0; i < m; i++ {
//			s += x[i] * a[i*lda+j]
//		}
//		y[j] = s
//	}
//
// with even and odd rows summed apart and added at the end.
//
//go:noescape
func sgemvTAVX512(m, n int, a *float32, lda int, x, y *float32)

// sgemvTAsm computes y[:cols] = Aᵀ·x on the vector path of level l for the
// leading columns it handles and returns how many (none off AVX-512).
func sgemvTAsm(l simd.Level, m, n int, a []float32, lda int, x, y []float32) (cols int) {
	if l != simd.AVX512 || m <= 0 {
		return 0
	}
	cols = n &^ 15
	if cols == 0 {
		return 0
	}
	_ = a[(m-1)*lda+cols-1]
	_ = x[m-1]
	_ = y[cols-1]
	sgemvTAVX512(m, cols, &a[0], lda, &x[0], &y[0])
	return cols
}

// sgemvRowsAsm runs the vector kernel of level l on the leading rows and
// columns it handles (rows in fours, columns in 16s or 8s) and returns how
// many of each it covered; it covers nothing on the generic level. nt
// asks for non-temporal prefetches (AVX-512 only).
func sgemvRowsAsm(l simd.Level, m, n int, a []float32, lda int, x, y []float32, acc, nt bool) (rows, cols int) {
	switch l {
	case simd.AVX512:
		rows, cols = m&^3, n&^15
	case simd.AVX2:
		rows, cols = m&^3, n&^7
	default:
		return 0, 0
	}
	if rows == 0 || cols == 0 {
		return 0, 0
	}
	_ = a[(rows-1)*lda+cols-1]
	_ = x[cols-1]
	_ = y[rows-1]
	ac := 0
	if acc {
		ac = 1
	}
	switch {
	case l == simd.AVX512 && nt:
		sgemvRowsNTAAVX512(rows, cols, &a[0], lda, &x[0], &y[0], ac)
	case l == simd.AVX512:
		sgemvRowsAVX512(rows, cols, &a[0], lda, &x[0], &y[0], ac)
	default:
		sgemvRowsAVX2(rows, cols, &a[0], lda, &x[0], &y[0], ac)
	}
	return rows, cols
}
