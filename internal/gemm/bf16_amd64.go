//go:build amd64 && !purego

package gemm

import "tessera/internal/simd"

//go:generate go run gen_bf16.go

// bf16Kern6x64 is, for 6 rows of kp bfloat16 pairs at a (row stride lda
// words) and one packed panel b of kp×64 pairs (see bf16.go):
//
//	for i := 0; i < 6; i++ {
//		for j := 0; j < 64; j++ {
//			var s float32
//			for p := 0; p < kp; p++ {
//				s += hi(a[i*lda+p])*hi(b[p*64+j]) + lo(a[i*lda+p])*lo(b[p*64+j])
//			}
//			if bias != nil {
//				s += bias[j]
//			}
//			if acc != 0 {
//				s += c[i*ldc+j]
//			}
//			c[i*ldc+j] = s
//		}
//	}
//
// It needs AVX512_BF16.
//
//go:noescape
func bf16Kern6x64(kp int, a *uint32, lda int, b *uint32, c *float32, ldc int, acc int, bias *float32)

// bf16CvtAVX512 is, for n a multiple of 32,
//
//	for i := 0; i < n; i += 2 {
//		dst[i/2] = uint32(ToBF16(src[i])) | uint32(ToBF16(src[i+1]))<<16
//	}
//
// It needs AVX512_BF16.
//
//go:noescape
func bf16CvtAVX512(dst *uint32, src *float32, n int)

func bf16Native() bool { return simd.Current() >= simd.AVX512 && simd.HasBF16() }

func bf16KernNative(kp int, a, b []uint32, c []float32, ldc, acc int, bias []float32) {
	var bp *float32
	if bias != nil {
		bp = &bias[0]
	}
	bf16Kern6x64(kp, &a[0], kp, &b[0], &c[0], ldc, acc, bp)
}

func bf16CvtNative(dst []uint32, src []float32) {
	_ = dst[len(src)/2-1]
	bf16CvtAVX512(&dst[0], &src[0], len(src))
}
