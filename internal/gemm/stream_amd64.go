//go:build amd64 && !purego

package gemm

import (
	"unsafe"

	"tessera/internal/simd"
)

// streamA runs C = A·B for SgemmStreamA with the prefetching 12×16 kernel
// when the shapes and the CPU allow it, reporting whether it did.
func streamA(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	if !canStreamA(n, k, lda) {
		return false
	}
	const mr = 12
	full := m / mr * mr
	base := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	for i := 0; i < full; i += mr {
		// The next panel's rows follow this one's: prefetch them (past m
		// too, the caller's next rows; prefetches never fault). A call
		// over kc columns prefetches 12·kc floats, so the k blocks of a
		// panel together cover the next one.
		next := base + uintptr((i+mr)*lda*4)
		for pc := 0; pc < k; pc += streamKC {
			kc := min(streamKC, k-pc)
			var beta float32
			if pc > 0 {
				beta = 1
			}
			kernAVX512x12x16pf(kc, &a[i*lda+pc], lda, 1, &b[pc*ldb], ldb, &c[i*ldc], ldc, 1, beta, next)
			next += uintptr(mr * kc * 4)
		}
	}
	if full < m {
		Sgemm(false, false, m-full, n, k, 1, a[full*lda:], lda, b, ldb, 0, c[full*ldc:], ldc)
	}
	return true
}

// streamKC is the depth of one kernel call: B's 16-column panel of kc rows
// (32 KB) stays in L1.
const streamKC = 512

func canStreamA(n, k, lda int) bool {
	return simd.Current() >= simd.AVX512 && n == 16 && lda == k
}
