//go:build !amd64 || purego

package gemm

import "tessera/internal/simd"

// sgemvRowsAsm covers nothing off amd64: SgemvRows runs its Go loops.
func sgemvRowsAsm(_ simd.Level, _, _ int, _ []float32, _ int, _, _ []float32, _, _ bool) (rows, cols int) {
	return 0, 0
}

// sgemvTAsm covers nothing off amd64: SgemvTRows runs its Go loops.
func sgemvTAsm(_ simd.Level, _, _ int, _ []float32, _ int, _, _ []float32) (cols int) {
	return 0
}
