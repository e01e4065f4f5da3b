//go:build !amd64 || purego

package gemm

import "tessera/internal/simd"

// archKernels returns nil: without assembly every level runs the Go kernel.
func archKernels(simd.Level) []*microKernel { return nil }
