//go:build !amd64 || purego

package gemm

func bf16Native() bool { return false }

func bf16KernNative(kp int, a, b []uint32, c []float32, ldc, acc int, bias []float32) {
	bf16KernGeneric(kp, a, b, c, ldc, acc, bias)
}

func bf16CvtNative(dst []uint32, src []float32) { bf16Row(dst, src) }
