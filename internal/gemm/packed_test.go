package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// GemmPacked equals the reference A·Wᵀ (+ C) on every kernel level: rows
// fewer than a tile, a partial last tile, columns past the last full
// panel, k shorter than the unrolled loop, strided A and C, and the panels
// split among calls as threads would split them.
func TestGemmPacked(t *testing.T) {
	cases := []struct{ m, n, k, lda, ldc int }{
		{17, 768, 384, 384, 768},   // a verification pass of 16 drafts
		{1, 64, 9, 9, 64},          // one row
		{5, 100, 33, 40, 130},      // fewer rows than a tile, partial panel, strided
		{6, 264, 7, 7, 264},        // one tile, k below the unroll
		{40, 130, 1024, 1024, 131}, // many tiles, a partial one
		{13, 64, 64, 64, 64},
	}
	forEachPath(t, func(t *testing.T) {
		for _, tc := range cases {
			for _, beta := range []float32{0, 1} {
				for _, split := range []int{1, 3} {
					t.Run(fmt.Sprintf("%dx%dx%d/beta%g/split%d", tc.m, tc.n, tc.k, beta, split), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.k)))
						a := randSlice(r, tc.m*tc.lda)
						w := randSlice(r, tc.n*tc.k)
						c0 := randSlice(r, tc.m*tc.ldc)
						c := append([]float32(nil), c0...)
						for i := 0; i < tc.m; i++ {
							for j := tc.n; j < tc.ldc; j++ {
								c[i*tc.ldc+j] = sentinel
							}
						}
						p := PackF32(w, tc.n, tc.k, tc.k)
						if p.N() != tc.n || p.K() != tc.k {
							t.Fatalf("packed %dx%d, want %dx%d", p.N(), p.K(), tc.n, tc.k)
						}
						panels := p.Panels()
						for s := 0; s < split; s++ {
							GemmPacked(tc.m, a, tc.lda, p, s*panels/split, (s+1)*panels/split, beta, c, tc.ldc)
						}
						want, scale := refGemm(false, true, tc.m, tc.n, tc.k, 1, a, tc.lda, w, tc.k, beta, c0, tc.ldc)
						for i := 0; i < tc.m; i++ {
							for j := 0; j < tc.ldc; j++ {
								got := c[i*tc.ldc+j]
								if j >= tc.n {
									if got != sentinel {
										t.Fatalf("C[%d,%d] beyond n written", i, j)
									}
									continue
								}
								if w := want[i*tc.n+j]; math.Abs(float64(got)-w) > 1e-5*scale[i*tc.n+j]+1e-6 {
									t.Fatalf("C[%d,%d] = %g, want %g", i, j, got, w)
								}
							}
						}
					})
				}
			}
		}
	})
}

// A product's rows do not depend on the other rows of A or on how the
// panels are split: row i of a pass over m rows equals the same row
// computed alone, bit for bit (a verification pass and the decoding it
// replaces agree).
func TestGemmPackedRowsIndependent(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		const m, n, k = 17, 130, 200
		r := rand.New(rand.NewPCG(3, 4))
		a := randSlice(r, m*k)
		p := PackF32(randSlice(r, n*k), n, k, k)
		all := make([]float32, m*n)
		GemmPacked(m, a, k, p, 0, p.Panels(), 0, all, n)
		for i := 0; i < m; i++ {
			one := make([]float32, n)
			GemmPacked(1, a[i*k:], k, p, 0, p.Panels(), 0, one, n)
			for j := range one {
				if one[j] != all[i*n+j] {
					t.Fatalf("row %d col %d: %g alone, %g in the pass", i, j, one[j], all[i*n+j])
				}
			}
		}
	})
}

func TestPackF32Rejects(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("PackF32 of a 0x3 matrix did not panic")
		}
	}()
	PackF32(nil, 0, 3, 3)
}
