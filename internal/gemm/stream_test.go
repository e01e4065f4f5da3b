package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// SgemmStreamA equals the reference product on every kernel level, on
// the streamed shapes (16 columns, contiguous rows; k beyond one kernel
// block, m not a multiple of the 12-row panel) and on the others.
func TestSgemmStreamA(t *testing.T) {
	cases := []struct{ m, n, k, lda, ldb, ldc int }{
		{96, 16, 384, 384, 17, 17},    // a verification pass: 16 columns of a 17-wide buffer
		{100, 16, 1024, 1024, 16, 16}, // two kernel blocks of k, a partial panel
		{12, 16, 7, 7, 16, 16},        // k shorter than the unrolled loop
		{30, 16, 390, 392, 16, 20},    // strided rows: Sgemm
		{40, 32, 64, 64, 32, 32},      // 32 columns: Sgemm
		{5, 1, 9, 9, 1, 1},
	}
	forEachPath(t, func(t *testing.T) {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.k)))
				a := randSlice(r, tc.m*tc.lda)
				b := randSlice(r, tc.k*tc.ldb)
				c := make([]float32, tc.m*tc.ldc)
				for i := range c {
					c[i] = sentinel
				}
				SgemmStreamA(tc.m, tc.n, tc.k, a, tc.lda, b, tc.ldb, c, tc.ldc)
				want, scale := refGemm(false, false, tc.m, tc.n, tc.k, 1, a, tc.lda, b, tc.ldb, 0, nil, tc.ldc)
				for i := 0; i < tc.m; i++ {
					for j := 0; j < tc.ldc; j++ {
						got := c[i*tc.ldc+j]
						if j >= tc.n {
							if got != sentinel {
								t.Fatalf("C[%d,%d] beyond n written", i, j)
							}
							continue
						}
						w := want[i*tc.n+j]
						if math.Abs(float64(got)-w) > 1e-5*scale[i*tc.n+j]+1e-6 {
							t.Fatalf("C[%d,%d] = %g, want %g", i, j, got, w)
						}
					}
				}
			})
		}
	})
}
