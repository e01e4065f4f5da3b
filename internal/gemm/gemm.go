// Package gemm multiplies float32 matrices: SGEMM and SGEMV on row-major
// storage, with assembly micro-kernels on amd64 and a portable Go twin.
//
// Sgemm walks C by cache blocks and runs a register-tiled micro-kernel
// (AVX-512, AVX2+FMA, or Go, chosen by simd.Current at call time) over
// panels of op(A) and op(B). The kernels take strided panels, so A is read
// in place; B is packed into contiguous micro-panels when it is transposed
// or reused by many rows of C, and ragged edges are packed with zero
// padding. Large products are cut into chunks along M or N that the worker
// pool takes in turn. Products with one row or one column, and Sgemv, run
// on separate memory-bound matrix-vector kernels.
//
// GemmBF16 is the inference product of a Linear layer, x·Wᵀ, with the
// weight packed once (PackBF16) and both operands rounded to bfloat16;
// with AVX512_BF16 its micro-kernel runs at twice the float32 FMA rate.
package gemm

import (
	"fmt"
	"sync/atomic"

	"tessera/internal/parallel"
	"tessera/internal/simd"
)

// parallelMinFlops is the product size (m*n*k) from which Sgemm splits the
// work across the pool; smaller products finish before a hand-off pays off.
const parallelMinFlops = 128 * 128 * 128

// Info names the SGEMM micro-kernel the current level runs, e.g.
// "avx512 6x64".
func Info() string { return kernelFor(simd.Current(), 0, 0).name }

// kernelFor picks the micro-kernel of level l for an m×n product: the one
// whose register tiles cover it at the least cost (padded area times the
// kernel's weight), the default on ties (or when m, n are 0).
func kernelFor(l simd.Level, m, n int) *microKernel {
	ks := archKernels(l)
	if len(ks) == 0 {
		return genericKernel
	}
	cost := func(kr *microKernel) int {
		w := kr.weight
		if w == 0 {
			w = 100
		}
		return roundUp(m, kr.mr) * roundUp(n, kr.nr) * w
	}
	best := ks[0]
	for _, kr := range ks[1:] {
		if cost(kr) < cost(best) {
			best = kr
		}
	}
	return best
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices, where
// op(A) is m×k (A is m×k with row stride lda, or k×m when transA), op(B) is
// k×n (B is k×n with row stride ldb, or n×k when transB) and C is m×n with
// row stride ldc. With beta == 0, C is overwritten and never read. In Go:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += opA(i, p) * opB(p, j)
//			}
//			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//		}
//	}
//
// With alpha == 0 or k == 0, A and B are not read. Sgemm panics with a
// descriptive message when a slice is too short for the sizes and strides
// given.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	k = max(k, 0)
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("A", a, ar, ac, lda)
	checkMatrix("B", b, br, bc, ldb)
	checkMatrix("C", c, m, n, ldc)
	if k == 0 || alpha == 0 {
		for i := 0; i < m; i++ {
			scaleVec(c[i*ldc:i*ldc+n], beta)
		}
		return
	}
	if n == 1 {
		// A column of C: op(A) times the single column of op(B).
		x, xb := vector(b, k, ldb, !transB)
		y, yb := vector(c, m, ldc, true)
		if !transA {
			gemv(false, m, k, alpha, a, lda, x, beta, y)
		} else {
			gemv(true, k, m, alpha, a, lda, x, beta, y)
		}
		finish(xb, yb, c, m, ldc)
		return
	}
	if m == 1 {
		// A row of C: the single row of op(A) times op(B).
		x, xb := vector(a, k, lda, transA)
		if !transB {
			gemv(true, k, n, alpha, b, ldb, x, beta, c[:n])
		} else {
			gemv(false, n, k, alpha, b, ldb, x, beta, c[:n])
		}
		finish(xb, nil, nil, 0, 0)
		return
	}
	sgemm(kernelFor(simd.Current(), m, n), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemv computes y = alpha*op(A)*x + beta*y, where A is m×n row-major with
// row stride lda and op(A) is A (len(y) = m) or Aᵀ when transA (len(y) = n).
// With beta == 0, y is overwritten and never read.
func Sgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	checkMatrix("A", a, m, n, lda)
	nx, ny := n, m
	if transA {
		nx, ny = m, n
	}
	if len(x) < nx || len(y) < ny {
		panic(fmt.Sprintf("gemm: Sgemv with %dx%d A (transA=%v) needs len(x) >= %d and len(y) >= %d, have %d and %d", m, n, transA, nx, ny, len(x), len(y)))
	}
	if alpha == 0 {
		scaleVec(y[:ny], beta)
		return
	}
	gemv(transA, m, n, alpha, a, lda, x[:nx], beta, y[:ny])
}

// checkMatrix panics unless s holds a rows×cols matrix with row stride ld.
func checkMatrix(name string, s []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols && rows > 1 {
		panic(fmt.Sprintf("gemm: %s is %dx%d but its row stride is %d", name, rows, cols, ld))
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("gemm: %s is %dx%d with row stride %d: needs %d elements, has %d", name, rows, cols, ld, need, len(s)))
	}
}

// vector returns the n elements of a matrix row (contiguous) or column
// (stride ld) as a contiguous slice, gathering a column into a pooled buffer
// (returned as the second result, nil when s is used in place).
func vector(s []float32, n, ld int, column bool) ([]float32, *[]float32) {
	if !column || ld == 1 || n == 1 {
		return s[:n], nil
	}
	buf := gather(s, n, ld)
	return *buf, buf
}

// finish scatters a gathered column result back into C and releases the
// buffers of vector.
func finish(xb, yb *[]float32, c []float32, m, ldc int) {
	if yb != nil {
		for i, v := range *yb {
			c[i*ldc] = v
		}
		release(yb)
	}
	if xb != nil {
		release(xb)
	}
}

// sgemm runs the blocked product, split across the worker pool when it is
// big enough. The work is cut into more chunks than workers, which take
// them in turn: a worker that starts late or is preempted on a shared
// machine then does less, instead of holding up the others.
func sgemm(kr *microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	threads := parallel.Threads()
	if m*n*k < parallelMinFlops {
		threads = 1
	}
	alongM, chunks := splitPlan(kr, m, n, threads)
	if chunks <= 1 {
		ws := getWorkspace(kr)
		sgemmBlocked(kr, ws, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		workspaces.Put(ws)
		return
	}
	unit, dim := kr.mr, m
	if !alongM {
		unit, dim = kr.nr, n
	}
	tiles := (dim + unit - 1) / unit
	var next atomic.Int64
	parallel.Split(threads, min(threads, chunks), func(_, _ int) {
		ws := getWorkspace(kr)
		defer workspaces.Put(ws)
		for {
			ch := int(next.Add(1) - 1)
			if ch >= chunks {
				return
			}
			lo, hi := tiles*ch/chunks*unit, min(tiles*(ch+1)/chunks*unit, dim)
			if alongM {
				aoff := lo * lda
				if transA {
					aoff = lo
				}
				sgemmBlocked(kr, ws, transA, transB, hi-lo, n, k, alpha, a[aoff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
				continue
			}
			boff := lo
			if transB {
				boff = lo * ldb
			}
			sgemmBlocked(kr, ws, transA, transB, m, hi-lo, k, alpha, a, lda, b[boff:], ldb, beta, c[lo:], ldc)
		}
	})
}

// Chunking of a parallel product: about chunksPerThread chunks per worker,
// none narrower than minChunkCols columns or shorter than minChunkRows rows.
// Splitting N costs nothing extra (each chunk packs only its own columns of
// B), so it is preferred when every worker gets splitMinCols columns;
// otherwise M is split, and each chunk packs B again.
const (
	chunksPerThread = 4
	minChunkCols    = 128
	minChunkRows    = 256
	splitMinCols    = 256
)

// splitPlan chooses the dimension to split an m×n product along for threads
// workers and the number of chunks (1: run it whole).
func splitPlan(kr *microKernel, m, n, threads int) (alongM bool, chunks int) {
	if threads <= 1 {
		return true, 1
	}
	if n >= threads*splitMinCols {
		tn := (n + kr.nr - 1) / kr.nr
		return false, max(min(tn, threads*chunksPerThread, n/minChunkCols), 1)
	}
	tm := (m + kr.mr - 1) / kr.mr
	return true, max(min(tm, threads), min(tm, threads*chunksPerThread, m/minChunkRows), 1)
}
