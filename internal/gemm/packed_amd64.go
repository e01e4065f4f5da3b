//go:build amd64 && !purego

package gemm

import (
	"unsafe"

	"tessera/internal/simd"
)

// packedTile computes the 6×64 tile c = a·pan (+ c when beta == 1) for six
// rows of a (row stride lda) and one k×64 panel, prefetching from pf.
func packedTile(k int, a []float32, lda int, pan, c []float32, ldc int, beta float32, pf []float32) {
	_ = a[(packedMR-1)*lda+k-1]
	_ = pan[k*packedNR-1]
	_ = c[(packedMR-1)*ldc+packedNR-1]
	switch simd.Current() {
	case simd.AVX512:
		kernAVX512x6x64pf(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta, uintptr(unsafe.Pointer(&pf[0])))
	case simd.AVX2:
		for v := 0; v < packedNR; v += 16 {
			kernAVX2x6x16(k, &a[0], lda, 1, &pan[v], packedNR, &c[v], ldc, 1, beta)
		}
	default:
		packedTileGo(k, a, lda, pan, c, ldc, beta)
	}
}
