package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"tessera/internal/parallel"
	"tessera/internal/simd"
)

// forEachPath runs fn at every kernel level this CPU supports, with one and
// two worker threads, restoring both settings afterwards.
func forEachPath(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, l := range simd.Levels() {
		for _, th := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/threads=%d", l, th), func(t *testing.T) {
				prevL := simd.Set(l)
				prevT := parallel.SetThreads(th)
				defer func() {
					simd.Set(prevL)
					parallel.SetThreads(prevT)
				}()
				fn(t)
			})
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// refGemm is the float64 reference of Sgemm; it also returns, per element,
// the magnitude sum that bounds the float32 rounding error.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, mag float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				mag += math.Abs(float64(av) * float64(bv))
			}
			w := float64(alpha) * s
			mag *= math.Abs(float64(alpha))
			if beta != 0 {
				w += float64(beta) * float64(c[i*ldc+j])
				mag += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			want[i*n+j] = w
			scale[i*n+j] = mag
		}
	}
	return want, scale
}

const sentinel = float32(-12345.5)

func TestSgemm(t *testing.T) {
	cases := gemmCases()
	defer func(a, b int) { packAMode, packBMode = a, b }(packAMode, packBMode)
	for _, mode := range []int{packAuto, packAlways, packNever} {
		packAMode, packBMode = mode, mode
		t.Run(fmt.Sprintf("pack=%d", mode), func(t *testing.T) {
			forEachPath(t, func(t *testing.T) { testSgemmCases(t, cases, Sgemm) })
		})
	}
}

// gemmCases builds the SGEMM table: awkward shapes (1, 7, 17, 33, 100, 129,
// k beyond one cache block, n beyond one panel), every transpose pair, three
// alpha/beta pairs, and row strides wider than the rows.
func gemmCases() []gemmCase {
	shapes := []struct{ m, n, k int }{
		{1, 1, 1}, {1, 7, 17}, {7, 1, 33}, {2, 3, 1}, {17, 33, 7}, {33, 17, 100},
		{100, 129, 33}, {129, 100, 129}, {6, 64, 256}, {14, 32, 257}, {8, 48, 300},
		{64, 80, 520}, {130, 65, 20}, {5, 2100, 3}, {16, 520, 200}, {300, 40, 100}, {1030, 24, 100}, {20, 600, 200},
	}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-1.5, 0.25}}
	r := rand.New(rand.NewPCG(1, 2))
	var cases []gemmCase
	for _, s := range shapes {
		for tr := 0; tr < 4; tr++ {
			for si, sc := range scalars {
				tc := gemmCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s.m, n: s.n, k: s.k, alpha: sc.alpha, beta: sc.beta}
				// Odd cases get row strides wider than the rows.
				pad := (tr + si) % 2 * 3
				ar, ac := s.m, s.k
				if tc.transA {
					ar, ac = s.k, s.m
				}
				br, bc := s.k, s.n
				if tc.transB {
					br, bc = s.n, s.k
				}
				tc.lda, tc.ldb, tc.ldc = ac+pad, bc+pad, s.n+pad
				tc.a = randSlice(r, (ar-1)*tc.lda+ac)
				tc.b = randSlice(r, (br-1)*tc.ldb+bc)
				tc.c = randSlice(r, (s.m-1)*tc.ldc+s.n)
				tc.want, tc.scale = refGemm(tc.transA, tc.transB, s.m, s.n, s.k, sc.alpha, tc.a, tc.lda, tc.b, tc.ldb, sc.beta, tc.c, tc.ldc)
				tc.name = fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/alpha=%v/beta=%v/pad=%d", s.m, s.n, s.k, tc.transA, tc.transB, sc.alpha, sc.beta, pad)
				cases = append(cases, tc)
			}
		}
	}
	return cases
}

type gemmCase struct {
	name                   string
	transA, transB         bool
	m, n, k, lda, ldb, ldc int
	alpha, beta            float32
	a, b, c                []float32
	want, scale            []float64
}

// sgemmFunc has the signature of Sgemm.
type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// testSgemmCases runs the table through f, with C's stride padding holding a
// sentinel and, where beta == 0, its elements NaN.
func testSgemmCases(t *testing.T, cases []gemmCase, f sgemmFunc) {
	t.Helper()
	for _, tc := range cases {
		c := make([]float32, len(tc.c))
		for i := range c {
			col := i % tc.ldc
			switch {
			case col >= tc.n:
				c[i] = sentinel // stride padding: must stay untouched
			case tc.beta == 0:
				c[i] = float32(math.NaN()) // must never be read
			default:
				c[i] = tc.c[i]
			}
		}
		f(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.a, tc.lda, tc.b, tc.ldb, tc.beta, c, tc.ldc)
		if err := checkResult(c, tc.ldc, tc.m, tc.n, tc.k, tc.want, tc.scale); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}

// checkResult compares an m×n result with row stride ld to the reference
// of a k-term sum, allowing the float32 rounding bound of such a sum (k
// roundings relative to the magnitude sum, twice over), and checks the
// stride padding still holds the sentinel.
func checkResult(c []float32, ld, m, n, k int, want, scale []float64) error {
	const eps = 1.0 / (1 << 24)
	for i := 0; i < m; i++ {
		for j := 0; j < ld && i*ld+j < len(c); j++ {
			got := c[i*ld+j]
			if j >= n {
				if got != sentinel {
					return fmt.Errorf("padding (%d,%d) overwritten with %v", i, j, got)
				}
				continue
			}
			w, tol := want[i*n+j], 2*float64(k+2)*eps*scale[i*n+j]+1e-30
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				return fmt.Errorf("(%d,%d) = %v, want %v (tolerance %.3g)", i, j, got, w, tol)
			}
		}
	}
	return nil
}

func TestSgemmZeroSizes(t *testing.T) {
	tests := []struct {
		name        string
		k           int
		alpha, beta float32
		want        float32
	}{
		{"k=0 beta=0", 0, 1, 0, 0},
		{"k=0 beta=2", 0, 1, 2, 6},
		{"alpha=0 beta=0", 4, 0, 0, 0},
		{"alpha=0 beta=0.5", 4, 0, 0.5, 1.5},
	}
	a := make([]float32, 3*4)
	b := make([]float32, 4*5)
	for i := range b {
		b[i] = float32(math.NaN()) // alpha == 0 means op(A)*op(B) is not computed
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := make([]float32, 3*5)
			for i := range c {
				c[i] = 3
				if tc.beta == 0 {
					c[i] = float32(math.NaN())
				}
			}
			Sgemm(false, false, 3, 5, tc.k, tc.alpha, a, max(tc.k, 1), b, 5, tc.beta, c, 5)
			for i, v := range c {
				if v != tc.want {
					t.Fatalf("c[%d] = %v, want %v", i, v, tc.want)
				}
			}
		})
	}
	// m == 0 or n == 0 touches nothing and accepts empty slices.
	Sgemm(false, false, 0, 5, 3, 1, nil, 3, nil, 5, 0, nil, 5)
	Sgemm(true, true, 4, 0, 3, 1, nil, 4, nil, 3, 0, nil, 1)
}

func TestSgemv(t *testing.T) {
	shapes := []struct{ m, n int }{{1, 1}, {1, 40}, {7, 1}, {4, 33}, {17, 7}, {33, 100}, {100, 129}, {129, 31}, {300, 260}, {260, 300}, {5, 4100}, {2100, 9}, {600, 500}, {513, 700}}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 1}, {-1.5, 0.25}}
	r := rand.New(rand.NewPCG(3, 4))
	type tcase struct {
		name        string
		trans       bool
		m, n, lda   int
		alpha, beta float32
		a, x, y     []float32
		want, scale []float64
	}
	var cases []tcase
	for _, s := range shapes {
		for _, trans := range []bool{false, true} {
			for si, sc := range scalars {
				tc := tcase{trans: trans, m: s.m, n: s.n, lda: s.n + si%2*5, alpha: sc.alpha, beta: sc.beta}
				tc.a = randSlice(r, (s.m-1)*tc.lda+s.n)
				nx, ny := s.n, s.m
				if trans {
					nx, ny = s.m, s.n
				}
				tc.x, tc.y = randSlice(r, nx), randSlice(r, ny)
				// y = alpha*op(A)*x + beta*y is the product (op(A)) × (x as a column).
				tc.want, tc.scale = refGemm(trans, false, ny, 1, nx, sc.alpha, tc.a, tc.lda, tc.x, 1, sc.beta, tc.y, 1)
				tc.name = fmt.Sprintf("%dx%d/trans=%v/alpha=%v/beta=%v/lda=%d", s.m, s.n, trans, sc.alpha, sc.beta, tc.lda)
				cases = append(cases, tc)
			}
		}
	}
	forEachPath(t, func(t *testing.T) {
		for _, tc := range cases {
			y := append([]float32(nil), tc.y...)
			if tc.beta == 0 {
				for i := range y {
					y[i] = float32(math.NaN())
				}
			}
			Sgemv(tc.trans, tc.m, tc.n, tc.alpha, tc.a, tc.lda, tc.x, tc.beta, y)
			if err := checkResult(y, 1, len(y), 1, len(tc.x), tc.want, tc.scale); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	})
}

// TestSgemmVectorShapes checks the products Sgemm hands to the SGEMV kernel
// (one row or one column of C) with strided vectors in every layout.
func TestSgemmVectorShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shapes := []struct{ m, n, k int }{{1, 300, 130}, {1, 37, 1000}, {300, 1, 130}, {37, 1, 1000}, {1, 1, 50}}
	forEachPath(t, func(t *testing.T) {
		for _, s := range shapes {
			for tr := 0; tr < 4; tr++ {
				transA, transB := tr&1 != 0, tr&2 != 0
				ar, ac := s.m, s.k
				if transA {
					ar, ac = s.k, s.m
				}
				br, bc := s.k, s.n
				if transB {
					br, bc = s.n, s.k
				}
				lda, ldb, ldc := ac+2, bc+3, s.n+4
				a := randSlice(r, (ar-1)*lda+ac)
				b := randSlice(r, (br-1)*ldb+bc)
				c := randSlice(r, (s.m-1)*ldc+s.n)
				for i := range c {
					if i%ldc >= s.n {
						c[i] = sentinel
					}
				}
				want, scale := refGemm(transA, transB, s.m, s.n, s.k, 0.75, a, lda, b, ldb, -0.5, c, ldc)
				Sgemm(transA, transB, s.m, s.n, s.k, 0.75, a, lda, b, ldb, -0.5, c, ldc)
				if err := checkResult(c, ldc, s.m, s.n, s.k, want, scale); err != nil {
					t.Fatalf("%dx%dx%d tA=%v tB=%v: %v", s.m, s.n, s.k, transA, transB, err)
				}
			}
		}
	})
}

func TestSgemmShortSlicePanics(t *testing.T) {
	tests := []struct {
		name string
		call func()
		msg  string
	}{
		{"short A", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
		}, "A is 4x4"},
		{"short C", func() {
			Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
		}, "C is 4x4"},
		{"narrow stride", func() {
			Sgemm(false, true, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 3, 0, make([]float32, 16), 4)
		}, "row stride is 3"},
		{"short x", func() { Sgemv(false, 4, 4, 1, make([]float32, 16), 4, make([]float32, 3), 0, make([]float32, 4)) }, "len(x) >= 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.msg) {
					t.Fatalf("panic = %v, want one mentioning %q", r, tc.msg)
				}
			}()
			tc.call()
		})
	}
}

func TestInfo(t *testing.T) {
	prev := simd.Set(simd.Generic)
	defer simd.Set(prev)
	for _, l := range simd.Levels() {
		simd.Set(l)
		want := l.String()
		if archKernels(l) == nil {
			want = "generic" // built without assembly
		}
		if got := Info(); !strings.HasPrefix(got, want) {
			t.Errorf("at level %v Info() = %q, want it to start with %q", l, got, want)
		}
	}
}

func TestKernelChoice(t *testing.T) {
	if simd.Supported() < simd.AVX512 || archKernels(simd.AVX512) == nil {
		t.Skip("no AVX-512 kernels on this machine")
	}
	tests := []struct {
		m, n int
		want string
	}{
		{1024, 1024, "avx512 6x64"},
		{0, 0, "avx512 6x64"},
		{64, 1536, "avx512 8x48"},
		{4096, 80, "avx512 8x48"},
		{4096, 16, "avx512 12x16"},
		{4096, 32, "avx512 12x16"},
	}
	for _, tc := range tests {
		if got := kernelFor(simd.AVX512, tc.m, tc.n).name; got != tc.want {
			t.Errorf("kernelFor(%dx%d) = %s, want %s", tc.m, tc.n, got, tc.want)
		}
	}
}

func TestSplitPlan(t *testing.T) {
	kr := &microKernel{mr: 6, nr: 64}
	tests := []struct {
		m, n, threads int
		alongM        bool
		chunks        int
	}{
		{4096, 384, 2, true, 8},
		{64, 1536, 2, false, 8},
		{1024, 1024, 2, false, 8},
		{256, 256, 2, true, 2},
		{6, 4096, 2, false, 8},
		{1000, 1000, 1, true, 1},
		{7, 100, 2, true, 2},
		{1, 100, 2, true, 1},
	}
	for _, tc := range tests {
		alongM, chunks := splitPlan(kr, tc.m, tc.n, tc.threads)
		if alongM != tc.alongM || chunks != tc.chunks {
			t.Errorf("splitPlan(%dx%d, %d threads) = (alongM %v, %d chunks), want (%v, %d)", tc.m, tc.n, tc.threads, alongM, chunks, tc.alongM, tc.chunks)
		}
	}
}

// TestThreadsBitwise checks that splitting work across workers does not
// change any bit of the result: every output element is summed by one
// worker in the same order.
func TestThreadsBitwise(t *testing.T) {
	type product struct {
		name string
		size int
		run  func(out []float32)
	}
	r := rand.New(rand.NewPCG(7, 8))
	var tests []product
	for _, s := range []struct{ m, n, k int }{{300, 140, 600}, {64, 1100, 100}, {1, 3000, 200}, {3000, 1, 200}} {
		a, b := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n)
		tests = append(tests, product{fmt.Sprintf("sgemm %dx%dx%d", s.m, s.n, s.k), s.m * s.n, func(c []float32) {
			Sgemm(false, false, s.m, s.n, s.k, 1, a, s.k, b, s.n, 0, c, s.n)
		}})
	}
	a, x := randSlice(r, 700*500), randSlice(r, 700)
	tests = append(tests, product{"sgemv transposed", 500, func(y []float32) { Sgemv(true, 700, 500, 1, a, 500, x, 0, y) }})
	defer parallel.SetThreads(parallel.SetThreads(1))
	for _, tc := range tests {
		parallel.SetThreads(1)
		want := make([]float32, tc.size)
		tc.run(want)
		parallel.SetThreads(2)
		got := make([]float32, tc.size)
		tc.run(got)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d is %v with 2 threads, %v with 1", tc.name, i, got[i], want[i])
			}
		}
	}
}
