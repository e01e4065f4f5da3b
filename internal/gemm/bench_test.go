package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"tessera/internal/parallel"
)

// BenchmarkSgemm reports GFLOP/s of C = A*B (row-major, no transposes) on the
// shapes that dominate transformer training and inference.
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct{ m, n, k, threads int }{
		{1024, 1024, 1024, 2},
		{512, 512, 512, 2},
		{256, 256, 256, 2},
		{4096, 384, 384, 2},
		{64, 1536, 384, 2},
		{1, 4096, 4096, 2},
		{1024, 1024, 1024, 1},
	}
	for _, s := range shapes {
		b.Run(fmt.Sprintf("%dx%dx%d/threads=%d", s.m, s.n, s.k, s.threads), func(b *testing.B) {
			benchGemm(b, false, false, s.m, s.n, s.k, s.threads)
		})
	}
}

// BenchmarkSgemmTransB measures the Linear-layer layout x·Wᵀ.
func BenchmarkSgemmTransB(b *testing.B) {
	b.Run("4096x384x384/threads=2", func(b *testing.B) { benchGemm(b, false, true, 4096, 384, 384, 2) })
}

func benchGemm(b *testing.B, transA, transB bool, m, n, k, threads int) {
	defer parallel.SetThreads(parallel.SetThreads(threads))
	r := rand.New(rand.NewPCG(1, 1))
	a, bb, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	Sgemm(transA, transB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	// The machine is shared, so besides the mean rate report the best single
	// call, which is what the PyTorch peer (gemm.py) reports too.
	best := time.Duration(math.MaxInt64)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		Sgemm(transA, transB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
		best = min(best, time.Since(t0))
	}
	flops := 2 * float64(m) * float64(n) * float64(k)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOP/s")
}

// BenchmarkSgemv reports GFLOP/s and the implied read bandwidth of y = A·x
// and y = Aᵀ·x on a 4096×4096 matrix (64 MiB, larger than the caches).
func BenchmarkSgemv(b *testing.B) {
	const m, n = 4096, 4096
	r := rand.New(rand.NewPCG(1, 1))
	a, x, y := randSlice(r, m*n), randSlice(r, max(m, n)), make([]float32, max(m, n))
	for _, trans := range []bool{false, true} {
		b.Run(fmt.Sprintf("trans=%v/threads=2", trans), func(b *testing.B) {
			defer parallel.SetThreads(parallel.SetThreads(2))
			best := time.Duration(math.MaxInt64)
			for b.Loop() {
				t0 := time.Now()
				Sgemv(trans, m, n, 1, a, n, x, 0, y)
				best = min(best, time.Since(t0))
			}
			b.ReportMetric(2*m*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(2*m*n/best.Seconds()/1e9, "best-GFLOP/s")
			b.ReportMetric(4*m*n/best.Seconds()/1e9, "best-GB/s")
		})
	}
}

// BenchmarkLinear compares the float32 Linear-layer product x·Wᵀ (Sgemm)
// with the bfloat16 one on a prepacked weight (GemmBF16), on the shapes of
// the mnist DiT sampling with guidance (128 images of 64 tokens) and of a
// 1024³ product.
func BenchmarkLinear(b *testing.B) {
	shapes := []struct{ m, n, k int }{
		{8192, 384, 128}, {8192, 512, 128}, {8192, 128, 512}, {64, 384, 128}, {1024, 1024, 1024},
	}
	for _, s := range shapes {
		r := rand.New(rand.NewPCG(1, 1))
		x, w, c := randSlice(r, s.m*s.k), randSlice(r, s.n*s.k), make([]float32, s.m*s.n)
		pw := PackBF16(w, s.n, s.k, s.k)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		for _, prec := range []string{"f32", "bf16"} {
			if prec == "bf16" && !BF16Native() {
				continue
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.m, s.n, s.k, prec), func(b *testing.B) {
				defer parallel.SetThreads(parallel.SetThreads(2))
				for b.Loop() {
					if prec == "f32" {
						Sgemm(false, true, s.m, s.n, s.k, 1, x, s.k, w, s.k, 0, c, s.n)
					} else {
						GemmBF16(s.m, x, s.k, pw, nil, 0, c, s.n)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkGemmPacked reports GFLOP/s of a batched pass of a few tokens
// through the projections of a 6-layer, width-384 decoder (40 MB of packed
// float32 weights, more than the L3 cache holds, so every pass reads them
// from memory), one thread, against Sgemm on the same row-major weights
// (which packs them on every call).
func BenchmarkGemmPacked(b *testing.B) {
	type mat struct{ n, k int }
	var mats []mat
	for l := 0; l < 6; l++ {
		mats = append(mats, mat{768, 384}, mat{384, 384}, mat{2048, 384}, mat{384, 1024})
	}
	r := rand.New(rand.NewPCG(1, 2))
	var rows [][]float32
	var packed []*Packed
	flops := 0
	for _, m := range mats {
		w := randSlice(r, m.n*m.k)
		rows = append(rows, w)
		packed = append(packed, PackF32(w, m.n, m.k, m.k))
		flops += 2 * m.n * m.k
	}
	x := randSlice(r, 64*2048)
	c := make([]float32, 64*2048)
	defer parallel.SetThreads(parallel.SetThreads(1))
	for _, tokens := range []int{17, 40} {
		b.Run(fmt.Sprintf("tokens=%d/packed", tokens), func(b *testing.B) {
			for b.Loop() {
				for _, p := range packed {
					GemmPacked(tokens, x, p.K(), p, 0, p.Panels(), 0, c, p.N())
				}
			}
			b.ReportMetric(float64(flops*tokens)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("tokens=%d/sgemm", tokens), func(b *testing.B) {
			for b.Loop() {
				for i, m := range mats {
					Sgemm(false, true, tokens, m.n, m.k, 1, x, m.k, rows[i], m.k, 0, c, m.n)
				}
			}
			b.ReportMetric(float64(flops*tokens)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
