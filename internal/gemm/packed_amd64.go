//go:build amd64 && !purego

package gemm

import (
	"unsafe"

	"tessera/internal/simd"
)

// packedTile computes the rows×64 tile c = a·pan (+ c when beta == 1) for
// rows (1…6) rows of a (row stride lda) and one k×64 panel, prefetching
// from pf when the tile is full.
func packedTile(rows, k int, a []float32, lda int, pan, c []float32, ldc int, beta float32, pf []float32) {
	_ = a[(rows-1)*lda+k-1]
	_ = pan[k*packedNR-1]
	_ = c[(rows-1)*ldc+packedNR-1]
	switch l := simd.Current(); {
	case l == simd.AVX512:
		if rows == packedMR {
			kernAVX512x6x64pf(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta, uintptr(unsafe.Pointer(&pf[0])))
			return
		}
		// Direct calls: the arguments of a call through a function value
		// would escape.
		switch rows {
		case 1:
			kernAVX512x1x64(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta)
		case 2:
			kernAVX512x2x64(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta)
		case 3:
			kernAVX512x3x64(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta)
		case 4:
			kernAVX512x4x64(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta)
		default:
			kernAVX512x5x64(k, &a[0], lda, 1, &pan[0], packedNR, &c[0], ldc, 1, beta)
		}
	case l == simd.AVX2 && rows == packedMR:
		for v := 0; v < packedNR; v += 16 {
			kernAVX2x6x16(k, &a[0], lda, 1, &pan[v], packedNR, &c[v], ldc, 1, beta)
		}
	case l == simd.AVX2:
		// Row by row through the 6-row kernel (its six rows all read row
		// i and write one scratch row), so that every row is summed as in
		// a full tile.
		var row [packedNR]float32
		for i := 0; i < rows; i++ {
			for v := 0; v < packedNR; v += 16 {
				kernAVX2x6x16(k, &a[i*lda], 0, 1, &pan[v], packedNR, &row[v], 0, 1, 0)
			}
			mergeTile(c[i*ldc:], ldc, row[:], packedNR, 1, packedNR, beta)
		}
	default:
		packedTileGo(rows, k, a, lda, pan, c, ldc, beta)
	}
}
