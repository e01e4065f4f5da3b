//go:build amd64 && !purego

package gemm

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// BenchmarkKernel measures each assembly micro-kernel alone on L1/L2-resident
// panels: the ceiling the blocked driver can reach.
func BenchmarkKernel(b *testing.B) {
	kernels := map[string]*microKernel{"avx2 6x16": avx2Choices[0]}
	for name, kr := range avx512Kernels {
		kernels["avx512 "+name] = kr
	}
	names := make([]string, 0, len(kernels))
	for n := range kernels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		kr := kernels[name]
		b.Run(name, func(b *testing.B) {
			const k = 256
			r := rand.New(rand.NewPCG(1, 1))
			a, bp := randSlice(r, kr.mr*k), randSlice(r, kr.nr*k)
			c := make([]float32, kr.mr*kr.nr)
			for b.Loop() {
				kr.call(k, a, 1, kr.mr, bp, kr.nr, c, kr.nr, 1, 1)
			}
			b.ReportMetric(2*float64(kr.mr*kr.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
