//go:build amd64 && !purego

package optim

import (
	"unsafe"

	"tessera/internal/simd"
)

// The assembly kernels use no fused multiply-add, so every level rounds
// exactly as adamwGeneric does: results do not depend on the CPU.

// adamwAVX2 is adamwGeneric on n elements (n a multiple of 8) of the arrays
// at p, g, m and v, 8 lanes at a time.
//
//go:noescape
func adamwAVX2(p, grad, m, v *float32, n int, c *adamwCoef)

// adamwAVX512 is adamwGeneric on n elements (n a multiple of 16) of the
// arrays at p, g, m and v, 16 lanes at a time.
//
//go:noescape
func adamwAVX512(p, grad, m, v *float32, n int, c *adamwCoef)

// adamw runs one AdamW step on a range of one parameter with the widest
// kernel simd.Current allows, finishing the tail in Go.
func adamw(p, g, m, v []float32, c adamwCoef) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	done := 0
	switch simd.Current() {
	case simd.AVX512:
		done = n &^ 15
		if done > 0 {
			adamwAVX512(unsafe.SliceData(p), unsafe.SliceData(g), unsafe.SliceData(m), unsafe.SliceData(v), done, &c)
		}
	case simd.AVX2:
		done = n &^ 7
		if done > 0 {
			adamwAVX2(unsafe.SliceData(p), unsafe.SliceData(g), unsafe.SliceData(m), unsafe.SliceData(v), done, &c)
		}
	}
	if done < n {
		adamwGeneric(p[done:], g[done:], m[done:], v[done:], c)
	}
}
