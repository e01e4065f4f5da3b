//go:build !amd64 || purego

package gemm

// packedTile computes the 6×64 tile c = a·pan (+ c when beta == 1) for six
// rows of a (row stride lda) and one k×64 panel.
func packedTile(k int, a []float32, lda int, pan, c []float32, ldc int, beta float32, pf []float32) {
	packedTileGo(k, a, lda, pan, c, ldc, beta)
}
