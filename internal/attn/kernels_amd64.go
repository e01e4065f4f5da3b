//go:build amd64 && !purego

package attn

const haveAsm = true

// gemmAVX512 is gemm (see its doc comment for the Go loop) with AVX-512:
// 4 rows × 64 columns per register block, masked column tails.
//
//go:noescape
func gemmAVX512(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32)

// gemmAVX2 is gemm with AVX2 and FMA: 4 rows × 16 columns per register
// block, masked column tails.
//
//go:noescape
func gemmAVX2(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32)

// softmaxColsAVX512 is softmaxCols with AVX-512, 16 columns at a time.
//
//go:noescape
func softmaxColsAVX512(s *float32, ld, k, n int, m, l, alpha *float32)

// softmaxColsAVX2 is softmaxCols with AVX2 and FMA, 8 columns at a time.
//
//go:noescape
func softmaxColsAVX2(s *float32, ld, k, n int, m, l, alpha *float32)

// softmaxGradColsAVX512 is softmaxGradCols with AVX-512.
//
//go:noescape
func softmaxGradColsAVX512(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32)

// softmaxGradColsAVX2 is softmaxGradCols with AVX2 and FMA.
//
//go:noescape
func softmaxGradColsAVX2(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32)

// tailMask16[i] has the i low bits set: the AVX-512 lane mask of a column
// tail of i elements.
var tailMask16 = [17]uint16{0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 2047, 4095, 8191, 16383, 32767, 65535}

// tailMask8[8-i:][:8] has i leading all-ones lanes: the AVX2 lane mask of a
// column tail of i elements.
var tailMask8 = [16]int32{-1, -1, -1, -1, -1, -1, -1, -1}

// expTab holds the constants of expf, eight copies each so that AVX2 code
// can use them as memory operands.
var expTab = func() (t [12][8]float32) {
	vals := [12]float32{negBig, expLimit, log2e, ln2Hi, ln2Lo, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1}
	for i, v := range vals {
		for j := range t[i] {
			t[i][j] = v
		}
	}
	return t
}()

// dotKeysAVX512 is dotKeys with AVX-512: one key row per iteration,
// 16 lanes at a time and a horizontal sum.
//
//go:noescape
func dotKeysAVX512(s *float32, lds int, k *float32, ks int, q *float32, nk, d int)

// dotKeysAVX2 is dotKeys with AVX2 and FMA.
//
//go:noescape
func dotKeysAVX2(s *float32, lds int, k *float32, ks int, q *float32, nk, d int)
