//go:build !amd64 || purego

package gemm

import "tessera/internal/simd"

// archKernel returns nil: without assembly every level runs the Go kernel.
func archKernel(simd.Level) *microKernel { return nil }
