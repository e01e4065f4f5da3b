//go:build amd64 && !purego

package gemm

import "tessera/internal/simd"

//go:generate go run gen_kernels.go

// The micro-kernels below are written by gen_kernels.go. Each multiplies an
// MR×k panel of A (row stride rsa, column stride csa) by a k×NR panel of B
// (row stride ldb) and updates an MR×NR tile of C; packed panels have
// rsa = 1, csa = MR, ldb = NR. In Go:
//
//	for i := 0; i < MR; i++ {
//		for j := 0; j < NR; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[i*rsa+p*csa] * b[p*ldb+j]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}

// kernAVX512x6x64 is the loop above with MR=6, NR=64 (AVX-512).
//
//go:noescape
func kernAVX512x6x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

// kernAVX512x8x48 is the loop above with MR=8, NR=48 (AVX-512).
//
//go:noescape
func kernAVX512x8x48(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

// kernAVX512x12x16 is the loop above with MR=12, NR=16 (AVX-512), for
// products with few columns.
//
//go:noescape
func kernAVX512x12x16(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

// kernAVX512x6x64pf is kernAVX512x6x64 prefetching six cache lines into
// L2 from pf (an address, advanced by 384 bytes) every four steps of k:
// callers streaming packed panels of B from memory point it at the next
// panel. Prefetches never fault, so pf may point anywhere.
//
//go:noescape
func kernAVX512x6x64pf(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, pf uintptr)

// kernAVX512x1x64 … kernAVX512x5x64 are the loop above with MR=1…5,
// NR=64 (AVX-512): the last rows of a product over packed panels
// (GemmPacked) when they do not fill a 6-row tile.
//
//go:noescape
func kernAVX512x1x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x2x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x3x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x4x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

//go:noescape
func kernAVX512x5x64(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

// kernAVX2x6x16 is the loop above with MR=6, NR=16 (AVX2+FMA).
//
//go:noescape
func kernAVX2x6x16(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)

var (
	avx512Kernels = map[string]*microKernel{
		"6x64": {name: "avx512 6x64", mr: 6, nr: 64, mc: 96, kc: 512, nc: 1024, asm: kernAVX512x6x64},
		"8x48": {name: "avx512 8x48", mr: 8, nr: 48, mc: 96, kc: 512, nc: 1008, asm: kernAVX512x8x48},
		// Narrow: only worth it when it saves much padding (its twelve rows
		// of A also collide in L1 when their stride is a power of two).
		"12x16": {name: "avx512 12x16", mr: 12, nr: 16, mc: 96, kc: 512, nc: 1024, weight: 140, asm: kernAVX512x12x16},
	}
	// The first kernel is the default; the others are taken for shapes
	// they tile with less padding.
	avx512Choices = []*microKernel{avx512Kernels["6x64"], avx512Kernels["8x48"], avx512Kernels["12x16"]}
	avx2Choices   = []*microKernel{{name: "avx2 6x16", mr: 6, nr: 16, mc: 96, kc: 512, nc: 1024, asm: kernAVX2x6x16}}
)

// archKernels returns the assembly micro-kernels for level l, default
// first, or nil.
func archKernels(l simd.Level) []*microKernel {
	switch l {
	case simd.AVX512:
		return avx512Choices
	case simd.AVX2:
		return avx2Choices
	}
	return nil
}

// transpose16x16AVX512 is
//
//	for i := 0; i < 16; i++ {
//		for j := 0; j < 16; j++ {
//			dst[j*ldd+i] = src[i*lds+j]
//		}
//	}
//
//go:noescape
func transpose16x16AVX512(src *float32, lds int, dst *float32, ldd int)

// transpose8x8AVX is
//
//	for i := 0; i < 8; i++ {
//		for j := 0; j < 8; j++ {
//			dst[j*ldd+i] = src[i*lds+j]
//		}
//	}
//
//go:noescape
func transpose8x8AVX(src *float32, lds int, dst *float32, ldd int)

// transposeBlock is, for rows rows of src (row stride lds) of n floats each:
//
//	for r := 0; r < rows; r++ {
//		for p := 0; p < n; p++ {
//			dst[p*ldd+r] = src[r*lds+p]
//		}
//	}
//
// It returns how many leading columns p it handled (possibly 0); the caller
// finishes the rest.
func transposeBlock(rows, n int, src []float32, lds int, dst []float32, ldd int) int {
	bs := 16
	kern := transpose16x16AVX512
	switch l := simd.Current(); {
	case l >= simd.AVX512 && rows%16 == 0:
	case l >= simd.AVX2 && rows%8 == 0:
		bs, kern = 8, transpose8x8AVX
	default:
		return 0
	}
	done := n / bs * bs
	if done == 0 {
		return 0
	}
	_ = src[(rows-1)*lds+done-1]
	_ = dst[(done-1)*ldd+rows-1]
	for r := 0; r < rows; r += bs {
		for p := 0; p < done; p += bs {
			kern(&src[r*lds+p], lds, &dst[p*ldd+r], ldd)
		}
	}
	return done
}
