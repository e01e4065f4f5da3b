//go:build !amd64 || purego

package gemm

import "tessera/internal/simd"

// archKernels returns nil: without assembly every level runs the Go kernel.
func archKernels(simd.Level) []*microKernel { return nil }

// transposeBlock handles no columns without assembly; the caller packs them.
func transposeBlock(rows, n int, src []float32, lds int, dst []float32, ldd int) int { return 0 }
