package gemm

import (
	"sync"
	"sync/atomic"

	"tessera/internal/parallel"
	"tessera/internal/simd"
)

// gemvParallelMin is the matrix size (elements) from which SGEMV is split
// across the worker pool; below it the hand-off costs more than it saves.
const gemvParallelMin = 1 << 18

// gemvColBlock bounds the slice of y one pass of the transposed kernel
// updates, so that it stays in L1 while the rows stream past.
const gemvColBlock = 4096

// gemv computes y = alpha*op(A)*x + beta*y for contiguous x and y, where A
// is m×n with row stride lda: op(A) = A (len(y) = m, len(x) = n) or Aᵀ
// (len(y) = n, len(x) = m). beta == 0 never reads y.
//
// Large products are cut into chunks of y (rows of A, or column strips of
// A when transposed) that the workers take in turn; every element of y is
// computed within one chunk in a fixed order, so results do not depend on
// the number of threads.
func gemv(trans bool, m, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	l := simd.Current()
	threads := parallel.Threads()
	if m*n < gemvParallelMin {
		threads = 1
	}
	if !trans {
		chunked(m, 16, threads, chunksPerWorker, func(lo, hi int) { gemvRows(l, lo, hi, n, alpha, a, lda, x, beta, y) })
		return
	}
	if m < 2*gemvBandRows {
		// Too few rows for bands: contiguous strips of columns.
		chunked(n, 64, threads, 1, func(lo, hi int) { gemvCols(l, 0, m, lo, hi, alpha, a, lda, x, beta, y) })
		return
	}
	// Transposed, the rows are cut into bands (by m alone, so that the sums
	// do not depend on the thread count); each band streams its rows front
	// to back into its own partial y, and the partials are added in order.
	bands := min((m+gemvBandRows-1)/gemvBandRows, gemvMaxBands)
	pb := getVec(bands * n)
	part := *pb
	chunked(bands, 1, threads, chunksPerWorker, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			r0, r1 := m*b/bands/4*4, m*(b+1)/bands/4*4
			if b == bands-1 {
				r1 = m
			}
			gemvCols(l, r0, r1, 0, n, alpha, a, lda, x, 0, part[b*n:(b+1)*n])
		}
	})
	scaleVec(y, beta)
	for b := 0; b < bands; b++ {
		for j, v := range part[b*n : (b+1)*n] {
			y[j] += v
		}
	}
	release(pb)
}

// Bands of the transposed SGEMV: at least gemvBandRows rows each, at most
// gemvMaxBands of them.
const (
	gemvBandRows = 256
	gemvMaxBands = 16
)

// chunksPerWorker is how many chunks of rows the untransposed SGEMV cuts
// per worker.
const chunksPerWorker = 4

// chunked runs fn over [0, n) in up to threads*perWorker contiguous chunks
// (multiples of unit, the last one excepted) taken in turn by up to threads
// workers.
func chunked(n, unit, threads, perWorker int, fn func(lo, hi int)) {
	units := (n + unit - 1) / unit
	chunks := min(units, threads*perWorker)
	if threads <= 1 || chunks <= 1 {
		fn(0, n)
		return
	}
	var next atomic.Int64
	parallel.Split(threads, min(threads, chunks), func(_, _ int) {
		for {
			ch := int(next.Add(1) - 1)
			if ch >= chunks {
				return
			}
			fn(units*ch/chunks*unit, min(units*(ch+1)/chunks*unit, n))
		}
	})
}

// gemvRows computes y[i] for lo <= i < hi of the untransposed product.
func gemvRows(l simd.Level, lo, hi, n int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	var out [4]float32
	i := lo
	for ; i < hi; i += 4 {
		rows := min(4, hi-i)
		if rows == 4 {
			dot4(l, n, a[i*lda:], lda, x, &out)
		} else {
			for r := 0; r < rows; r++ {
				out[r] = dotGo(a[(i+r)*lda:(i+r)*lda+n], x[:n])
			}
		}
		for r := 0; r < rows; r++ {
			if beta == 0 {
				y[i+r] = alpha * out[r]
			} else {
				y[i+r] = alpha*out[r] + beta*y[i+r]
			}
		}
	}
}

// gemvCols computes y[j0:j1] = alpha*Σ_{lo<=i<hi} x[i]*A[i, j0:j1] + beta*y[j0:j1]
// (one band of rows of the transposed product).
func gemvCols(l simd.Level, lo, hi, j0, j1 int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32) {
	for jb := j0; jb < j1; jb += gemvColBlock {
		je := min(jb+gemvColBlock, j1)
		yb := y[jb:je]
		scaleVec(yb, beta)
		var s [4]float32
		i := lo
		for ; i+4 <= hi; i += 4 {
			s = [4]float32{alpha * x[i], alpha * x[i+1], alpha * x[i+2], alpha * x[i+3]}
			axpy4(l, je-jb, yb, a[i*lda+jb:], lda, &s)
		}
		for ; i < hi; i++ {
			s := alpha * x[i]
			row := a[i*lda+jb : i*lda+je]
			for j, v := range row {
				yb[j] += s * v
			}
		}
	}
}

// scaleVec is y *= beta, with y = 0 (never read) when beta == 0.
func scaleVec(y []float32, beta float32) {
	switch beta {
	case 0:
		clear(y)
	case 1:
	default:
		for j := range y {
			y[j] *= beta
		}
	}
}

// dotGo is  for j := range x { s += a[j] * x[j] }; return s
func dotGo(a, x []float32) float32 {
	var s0, s1, s2, s3 float32
	a = a[:len(x)]
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += a[j] * x[j]
		s1 += a[j+1] * x[j+1]
		s2 += a[j+2] * x[j+2]
		s3 += a[j+3] * x[j+3]
	}
	for ; j < len(x); j++ {
		s0 += a[j] * x[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// dot4Go is the portable dot4: out[r] (+)= a[r*lda:r*lda+len(x)]·x for
// r < 4, adding to out when add is set.
func dot4Go(a []float32, lda int, x []float32, out *[4]float32, add bool) {
	for r := 0; r < 4; r++ {
		d := dotGo(a[r*lda:r*lda+len(x)], x)
		if add {
			out[r] += d
		} else {
			out[r] = d
		}
	}
}

// axpy4Go is the portable axpy4 on y[:len(y)].
func axpy4Go(y, a []float32, lda int, s *[4]float32) {
	n := len(y)
	a0, a1, a2, a3 := a[:n], a[lda:lda+n], a[2*lda:2*lda+n], a[3*lda:3*lda+n]
	s0, s1, s2, s3 := s[0], s[1], s[2], s[3]
	for j := range y {
		y[j] += (s0*a0[j] + s1*a1[j]) + (s2*a2[j] + s3*a3[j])
	}
}

var vecPool = sync.Pool{New: func() any { return new([]float32) }}

// getVec returns a pooled buffer of n floats; release returns it.
func getVec(n int) *[]float32 {
	bp := vecPool.Get().(*[]float32)
	if cap(*bp) < n {
		*bp = make([]float32, n)
	}
	*bp = (*bp)[:n]
	return bp
}

// gather copies the n elements src[0], src[inc], … into a pooled buffer;
// release returns it.
func gather(src []float32, n, inc int) *[]float32 {
	bp := getVec(n)
	for i, buf := 0, *bp; i < n; i++ {
		buf[i] = src[i*inc]
	}
	return bp
}

func release(bp *[]float32) { vecPool.Put(bp) }
