package vec

import (
	"math/rand/v2"
	"testing"

	"tessera/internal/simd"
)

// benchLevels runs fn as a sub-benchmark on every level this CPU supports,
// reporting throughput from bytes (read plus written per call).
func benchLevels(b *testing.B, bytes int, fn func()) {
	for _, l := range simd.Levels() {
		b.Run(l.String(), func(b *testing.B) {
			prev := simd.Set(l)
			defer simd.Set(prev)
			b.SetBytes(int64(bytes))
			for b.Loop() {
				fn()
			}
		})
	}
}

func benchData(n int) (x, y, z []float32) {
	r := rand.New(rand.NewPCG(1, 1))
	return randSlice(r, n, -3, 3), randSlice(r, n, -3, 3), make([]float32, n)
}

// 16K elements stay in L1/L2 and run on one goroutine.
const benchN = 1 << 14

func BenchmarkAdd(b *testing.B) {
	x, y, z := benchData(benchN)
	benchLevels(b, 12*benchN, func() { Add(z, x, y) })
}

func BenchmarkAxpy(b *testing.B) {
	x, y, _ := benchData(benchN)
	benchLevels(b, 12*benchN, func() { Axpy(y, 1e-3, x) })
}

func BenchmarkDot(b *testing.B) {
	x, y, _ := benchData(benchN)
	benchLevels(b, 8*benchN, func() { Dot(x, y) })
}

func BenchmarkExp(b *testing.B) {
	x, _, z := benchData(benchN)
	benchLevels(b, 8*benchN, func() { Exp(z, x) })
}

func BenchmarkGELUTanh(b *testing.B) {
	x, _, z := benchData(benchN)
	benchLevels(b, 8*benchN, func() { GELUTanh(z, x) })
}

func BenchmarkGELUTanhGrad(b *testing.B) {
	x, y, z := benchData(benchN)
	benchLevels(b, 12*benchN, func() { GELUTanhGrad(z, x, y) })
}

func BenchmarkSiLU(b *testing.B) {
	x, _, z := benchData(benchN)
	benchLevels(b, 8*benchN, func() { SiLU(z, x) })
}

func BenchmarkSoftmaxRows64(b *testing.B) {
	x, _, z := benchData(256 * 64)
	benchLevels(b, 8*len(x), func() { SoftmaxRows(z, x, 64) })
}

func BenchmarkSoftmaxRows1024(b *testing.B) {
	x, _, z := benchData(16 * 1024)
	benchLevels(b, 8*len(x), func() { SoftmaxRows(z, x, 1024) })
}

// The normalisation benchmarks use 2048 rows of 256 (512K elements), large
// enough to be split across threads.
func BenchmarkLayerNorm(b *testing.B) {
	x, _, z := benchData(2048 * 256)
	g, be, _ := benchData(256)
	mean, rstd := make([]float32, 2048), make([]float32, 2048)
	benchLevels(b, 8*len(x), func() { LayerNorm(z, x, 256, 1e-5, g, be, mean, rstd) })
}

func BenchmarkLayerNormGrad(b *testing.B) {
	x, dy, dx := benchData(2048 * 256)
	g, dg, db := benchData(256)
	mean, rstd := make([]float32, 2048), make([]float32, 2048)
	LayerNorm(dx, x, 256, 1e-5, g, nil, mean, rstd)
	benchLevels(b, 12*len(x), func() { LayerNormGrad(dx, dg, db, x, dy, g, mean, rstd, 256) })
}

func BenchmarkRMSNorm(b *testing.B) {
	x, _, z := benchData(2048 * 256)
	g, _, _ := benchData(256)
	rstd := make([]float32, 2048)
	benchLevels(b, 8*len(x), func() { RMSNorm(z, x, 256, 1e-5, g, rstd) })
}

func BenchmarkRMSNormGrad(b *testing.B) {
	x, dy, dx := benchData(2048 * 256)
	g, dg, _ := benchData(256)
	rstd := make([]float32, 2048)
	RMSNorm(dx, x, 256, 1e-5, g, rstd)
	benchLevels(b, 12*len(x), func() { RMSNormGrad(dx, dg, x, dy, g, rstd, 256) })
}
