package attn

import (
	"math"

	"tessera/internal/simd"
)

// The tiled attention drivers are built on three kernels, each with a
// portable Go body here and assembly versions for AVX2 and AVX-512:
//
//   - gemm4: a small matrix product whose left operand is read through two
//     strides, so the same kernel computes K·Qᵀ from key rows, P·V from a
//     transposed probability tile, and the backward products;
//   - softmaxCols: one step of the online softmax over a score tile stored
//     key-major (one column per query row), so every operation is vertical;
//   - softmaxGradCols: probabilities from the saved log-sum-exp and the
//     score gradient of the backward pass, in the same layout.

// negBig stands in for -Inf as a running maximum: exp(x - negBig) is still
// exp(-Inf) = 0 for masked scores, and exp(negBig - negBig) = 1 keeps the
// running sum of a fully masked row at 0 without NaNs.
const negBig = -1e30

// gemm computes, for the rows i < m (m a multiple of 4) and columns j < n,
//
//	s := float32(0)
//	if beta != nil { s = beta[i] * c[i*ldc+j] }
//	for p := 0; p < k; p++ { s += a[i*ars+p*aps] * b[p*ldb+j] }
//	c[i*ldc+j] = s
//
// c is not read when beta is nil.
func gemm(c []float32, ldc int, a []float32, ars, aps int, b []float32, ldb, m, k, n int, beta []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	if m%4 != 0 {
		panic("attn: gemm rows not a multiple of 4")
	}
	// The assembly trusts these bounds; a failure here is a bug in this package.
	if len(c) < (m-1)*ldc+n || (k > 0 && (len(a) < (m-1)*ars+(k-1)*aps+1 || len(b) < (k-1)*ldb+n)) || (beta != nil && len(beta) < m) {
		panic("attn: gemm operand out of range")
	}
	var bp *float32
	if beta != nil {
		bp = &beta[0]
	}
	if k == 0 {
		a, b = c, c // any valid pointer; never read
	}
	switch simd.Current() {
	case simd.AVX512:
		if haveAsm {
			gemmAVX512(&c[0], ldc, &a[0], ars, aps, &b[0], ldb, m, k, n, bp)
			return
		}
	case simd.AVX2:
		if haveAsm {
			gemmAVX2(&c[0], ldc, &a[0], ars, aps, &b[0], ldb, m, k, n, bp)
			return
		}
	}
	gemmGeneric(c, ldc, a, ars, aps, b, ldb, m, k, n, beta)
}

func gemmGeneric(c []float32, ldc int, a []float32, ars, aps int, b []float32, ldb, m, k, n int, beta []float32) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == nil {
			clear(ci)
		} else if s := beta[i]; s != 1 {
			for j := range ci {
				ci[j] *= s
			}
		}
		for p := 0; p < k; p++ {
			av := a[i*ars+p*aps]
			bp := b[p*ldb : p*ldb+n]
			for j, bv := range bp {
				ci[j] += av * bv
			}
		}
	}
}

// softmaxCols advances the online softmax of n columns (n a multiple of 16)
// over the k rows of the score tile s (row stride ld), in place. For each
// column r:
//
//	mx := m[r]; for j < k { mx = max(mx, s[j*ld+r]) }; mx = max(mx, negBig)
//	alpha[r] = exp(m[r] - mx)
//	sum := 0; for j < k { s[j*ld+r] = exp(s[j*ld+r] - mx); sum += s[j*ld+r] }
//	l[r] = alpha[r]*l[r] + sum; m[r] = mx
func softmaxCols(s []float32, ld, k, n int, m, l, alpha []float32) {
	if n <= 0 || k <= 0 {
		return
	}
	if n%16 != 0 || len(s) < (k-1)*ld+n || len(m) < n || len(l) < n || len(alpha) < n {
		panic("attn: softmaxCols operand out of range")
	}
	switch simd.Current() {
	case simd.AVX512:
		if haveAsm {
			softmaxColsAVX512(&s[0], ld, k, n, &m[0], &l[0], &alpha[0])
			return
		}
	case simd.AVX2:
		if haveAsm {
			softmaxColsAVX2(&s[0], ld, k, n, &m[0], &l[0], &alpha[0])
			return
		}
	}
	softmaxColsGeneric(s, ld, k, n, m, l, alpha)
}

func softmaxColsGeneric(s []float32, ld, k, n int, m, l, alpha []float32) {
	mx := make([]float32, n)
	copy(mx, m[:n])
	for j := 0; j < k; j++ {
		for r, v := range s[j*ld : j*ld+n] {
			if v > mx[r] {
				mx[r] = v
			}
		}
	}
	for r := range mx {
		if mx[r] < negBig {
			mx[r] = negBig
		}
		alpha[r] = expf(m[r] - mx[r])
		l[r] *= alpha[r]
		m[r] = mx[r]
	}
	for j := 0; j < k; j++ {
		row := s[j*ld : j*ld+n]
		for r, v := range row {
			e := expf(v - mx[r])
			row[r] = e
			l[r] += e
		}
	}
}

// softmaxGradCols turns a score tile s and the tile dp = dO·Vᵀ (both k rows
// of n columns, n a multiple of 16, row stride ld, one column per query row)
// into probabilities and score gradients, in place:
//
//	p := exp(s[j*ld+r] - lse[r])
//	s[j*ld+r] = p
//	dp[j*ld+r] = p * (dp[j*ld+r] - delta[r]) * scale
//
// A row that saw no key must come with lse = +Inf, so that p = 0.
func softmaxGradCols(s, dp []float32, ld, k, n int, lse, delta []float32, scale float32) {
	if n <= 0 || k <= 0 {
		return
	}
	if n%16 != 0 || len(s) < (k-1)*ld+n || len(dp) < (k-1)*ld+n || len(lse) < n || len(delta) < n {
		panic("attn: softmaxGradCols operand out of range")
	}
	switch simd.Current() {
	case simd.AVX512:
		if haveAsm {
			softmaxGradColsAVX512(&s[0], &dp[0], ld, k, n, &lse[0], &delta[0], scale)
			return
		}
	case simd.AVX2:
		if haveAsm {
			softmaxGradColsAVX2(&s[0], &dp[0], ld, k, n, &lse[0], &delta[0], scale)
			return
		}
	}
	softmaxGradColsGeneric(s, dp, ld, k, n, lse, delta, scale)
}

func softmaxGradColsGeneric(s, dp []float32, ld, k, n int, lse, delta []float32, scale float32) {
	for j := 0; j < k; j++ {
		sr := s[j*ld : j*ld+n]
		dr := dp[j*ld : j*ld+n]
		for r := range sr {
			p := expf(sr[r] - lse[r])
			sr[r] = p
			dr[r] = p * (dr[r] - delta[r]) * scale
		}
	}
}

// Constants of expf, shared with the assembly (which loads them from
// expConsts in the same order).
const (
	expLimit = -87.0 // below this exp underflows; the result is 0
	log2e    = 1.44269504088896341
	ln2Hi    = 0.693359375
	ln2Lo    = -2.12194440e-4
)

// expf is exp(x) for x <= ~88 in float32, to a few ulp: x = n·ln2 + r with
// |r| <= ln2/2, e^r from its degree-7 Taylor polynomial, and 2^n put into
// the exponent bits. Inputs below expLimit (including -Inf) give 0.
func expf(x float32) float32 {
	if !(x >= expLimit) {
		return 0
	}
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return math.Float32frombits(math.Float32bits(p) + uint32(int32(n))<<23)
}

// dotKeys scores one query row against nk key rows (row stride ks), for
// the decode path where there are too few query rows to fill a gemm tile:
//
//	for j := 0; j < nk; j++ {
//		var sum float32
//		for c := 0; c < d; c++ { sum += k[j*ks+c] * q[c] }
//		s[j*lds] = sum
//	}
func dotKeys(s []float32, lds int, k []float32, ks int, q []float32, nk, d int) {
	if nk <= 0 {
		return
	}
	if len(s) < (nk-1)*lds+1 || len(k) < (nk-1)*ks+d || len(q) < d {
		panic("attn: dotKeys operand out of range")
	}
	switch simd.Current() {
	case simd.AVX512:
		if haveAsm {
			dotKeysAVX512(&s[0], lds, &k[0], ks, &q[0], nk, d)
			return
		}
	case simd.AVX2:
		if haveAsm {
			dotKeysAVX2(&s[0], lds, &k[0], ks, &q[0], nk, d)
			return
		}
	}
	dotKeysGeneric(s, lds, k, ks, q, nk, d)
}

func dotKeysGeneric(s []float32, lds int, k []float32, ks int, q []float32, nk, d int) {
	q = q[:d]
	for j := 0; j < nk; j++ {
		kj := k[j*ks : j*ks+d]
		var sum float32
		for c, x := range q {
			sum += kj[c] * x
		}
		s[j*lds] = sum
	}
}
