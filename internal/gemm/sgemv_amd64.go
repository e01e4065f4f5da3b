//go:build amd64 && !purego

package gemm

import "tessera/internal/simd"

// dot4AVX512 is, for n a multiple of 32,
//
//	for r := 0; r < 4; r++ {
//		var s float32
//		for j := 0; j < n; j++ {
//			s += a[r*lda+j] * x[j]
//		}
//		out[r] = s
//	}
//
//go:noescape
func dot4AVX512(n int, a *float32, lda int, x *float32, out *[4]float32)

// dot4AVX2 is dot4AVX512 with Y registers, for n a multiple of 16.
//
//go:noescape
func dot4AVX2(n int, a *float32, lda int, x *float32, out *[4]float32)

// axpy4AVX512 is, for n a multiple of 32,
//
//	for j := 0; j < n; j++ {
//		y[j] += s[0]*a[j] + s[1]*a[lda+j] + s[2]*a[2*lda+j] + s[3]*a[3*lda+j]
//	}
//
//go:noescape
func axpy4AVX512(n int, y, a *float32, lda int, s *[4]float32)

// axpy4AVX2 is axpy4AVX512 with Y registers, for n a multiple of 16.
//
//go:noescape
func axpy4AVX2(n int, y, a *float32, lda int, s *[4]float32)

// dot4 computes the four dot products of rows a[0:], a[lda:], a[2lda:],
// a[3lda:] with x[:n] into out, on the vector path of level l.
func dot4(l simd.Level, n int, a []float32, lda int, x []float32, out *[4]float32) {
	var done int
	switch l {
	case simd.AVX512:
		done = n &^ 31
		if done > 0 {
			_ = a[3*lda+done-1]
			_ = x[done-1]
			dot4AVX512(done, &a[0], lda, &x[0], out)
		}
	case simd.AVX2:
		done = n &^ 15
		if done > 0 {
			_ = a[3*lda+done-1]
			_ = x[done-1]
			dot4AVX2(done, &a[0], lda, &x[0], out)
		}
	}
	if done == 0 {
		*out = [4]float32{}
	}
	if done < n {
		dot4Go(a[done:], lda, x[done:n], out, true)
	}
}

// axpy4 adds s[0]*a[0:n] + … + s[3]*a[3lda:3lda+n] to y[:n], on the vector
// path of level l.
func axpy4(l simd.Level, n int, y, a []float32, lda int, s *[4]float32) {
	var done int
	switch l {
	case simd.AVX512:
		done = n &^ 31
		if done > 0 {
			_ = a[3*lda+done-1]
			_ = y[done-1]
			axpy4AVX512(done, &y[0], &a[0], lda, s)
		}
	case simd.AVX2:
		done = n &^ 15
		if done > 0 {
			_ = a[3*lda+done-1]
			_ = y[done-1]
			axpy4AVX2(done, &y[0], &a[0], lda, s)
		}
	}
	if done < n {
		axpy4Go(y[done:n], a[done:], lda, s)
	}
}
