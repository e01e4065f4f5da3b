//go:build !amd64 || purego

package gemm

// packedTile computes the rows×64 tile c = a·pan (+ c when beta == 1) for
// rows (1…6) rows of a (row stride lda) and one k×64 panel.
func packedTile(rows, k int, a []float32, lda int, pan, c []float32, ldc int, beta float32, pf []float32) {
	packedTileGo(rows, k, a, lda, pan, c, ldc, beta)
}
