//go:build !amd64 || purego

package attn

const haveAsm = false

func gemmAVX512(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32) {
	panic("attn: no assembly kernels in this build")
}

func gemmAVX2(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32) {
	panic("attn: no assembly kernels in this build")
}

func softmaxColsAVX512(s *float32, ld, k, n int, m, l, alpha *float32) {
	panic("attn: no assembly kernels in this build")
}

func softmaxColsAVX2(s *float32, ld, k, n int, m, l, alpha *float32) {
	panic("attn: no assembly kernels in this build")
}

func softmaxGradColsAVX512(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32) {
	panic("attn: no assembly kernels in this build")
}

func softmaxGradColsAVX2(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32) {
	panic("attn: no assembly kernels in this build")
}

func dotKeysAVX512(s *float32, lds int, k *float32, ks int, q *float32, nk, d int) {
	panic("attn: no assembly kernels in this build")
}

func dotKeysAVX2(s *float32, lds int, k *float32, ks int, q *float32, nk, d int) {
	panic("attn: no assembly kernels in this build")
}
