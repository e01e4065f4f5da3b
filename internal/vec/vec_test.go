package vec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"tessera/internal/parallel"
	"tessera/internal/simd"
)

var lengths = []int{0, 1, 7, 15, 16, 17, 31, 33, 100, 1000, 4097}

var widths = []int{1, 7, 64, 256, 384, 1000}

// eachLevel runs fn as a subtest on every kernel level this CPU supports,
// restoring the previous level afterwards.
func eachLevel(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, l := range simd.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			prev := simd.Set(l)
			defer simd.Set(prev)
			fn(t)
		})
	}
}

func randSlice(r *rand.Rand, n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return s
}

func clone(s []float32) []float32 { return append([]float32(nil), s...) }

// near reports whether got is within abs + rel·|want| of want; NaNs match
// NaNs and infinities match equal infinities.
func near(got float32, want, abs, rel float64) bool {
	g := float64(got)
	switch {
	case math.IsNaN(want):
		return math.IsNaN(g)
	case math.IsInf(want, 0) || math.IsInf(g, 0):
		return g == want
	}
	return math.Abs(g-want) <= abs+rel*math.Abs(want)
}

func checkAll(t *testing.T, what string, got []float32, want []float64, abs, rel float64) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if !near(got[i], want[i], abs, rel) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d mismatches in all", what, bad)
	}
}

func TestBinary(t *testing.T) {
	ops := []struct {
		name string
		fn   func(dst, a, b []float32)
		ref  func(a, b float64) float64
	}{
		{"Add", Add, func(a, b float64) float64 { return a + b }},
		{"Sub", Sub, func(a, b float64) float64 { return a - b }},
		{"Mul", Mul, func(a, b float64) float64 { return a * b }},
		{"Div", Div, func(a, b float64) float64 { return a / b }},
	}
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, op := range ops {
			for _, n := range append(lengths, 1<<17+3) {
				a, b := randSlice(r, n, -4, 4), randSlice(r, n, 0.5, 3)
				want := make([]float64, n)
				for i := range want {
					// float32 rounding of the exact result: these ops are
					// correctly rounded, so the kernels must match exactly.
					want[i] = float64(float32(op.ref(float64(a[i]), float64(b[i]))))
				}
				dst := make([]float32, n)
				op.fn(dst, a, b)
				checkAll(t, fmt.Sprintf("%s n=%d", op.name, n), dst, want, 0, 0)
				alias := clone(a)
				op.fn(alias, alias, b)
				checkAll(t, fmt.Sprintf("%s aliased n=%d", op.name, n), alias, want, 0, 0)
			}
		}
	})
}

func TestScalarOps(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range append(lengths, 1<<16) {
			a, x := randSlice(r, n, -4, 4), randSlice(r, n, -4, 4)
			const s = 1.7
			wantAdd, wantScale, wantAxpy := make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range a {
				wantAdd[i] = float64(a[i] + s)
				wantScale[i] = float64(a[i] * s)
				wantAxpy[i] = float64(a[i]) + s*float64(x[i])
			}
			dst := clone(a)
			AddScalar(dst, dst, s)
			checkAll(t, fmt.Sprintf("AddScalar n=%d", n), dst, wantAdd, 0, 0)
			dst = make([]float32, n)
			Scale(dst, a, s)
			checkAll(t, fmt.Sprintf("Scale n=%d", n), dst, wantScale, 0, 0)
			y := clone(a)
			Axpy(y, s, x)
			checkAll(t, fmt.Sprintf("Axpy n=%d", n), y, wantAxpy, 1e-6, 2e-7)
		}
	})
}

func TestReductions(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range lengths {
			a, b := randSlice(r, n, -2, 2), randSlice(r, n, -2, 2)
			var dot, sum, mag, dmag float64
			m := math.Inf(-1)
			for i := range a {
				dot += float64(a[i]) * float64(b[i])
				dmag += math.Abs(float64(a[i]) * float64(b[i]))
				sum += float64(a[i])
				mag += math.Abs(float64(a[i]))
				m = math.Max(m, float64(a[i]))
			}
			if got := Dot(a, b); !near(got, dot, 1e-6*dmag+1e-7, 0) {
				t.Errorf("Dot n=%d = %g, want %g", n, got, dot)
			}
			if got := Sum(a); !near(got, sum, 1e-6*mag+1e-7, 0) {
				t.Errorf("Sum n=%d = %g, want %g", n, got, sum)
			}
			if n > 0 {
				if got := Max(a); float64(got) != m {
					t.Errorf("Max n=%d = %g, want %g", n, got, m)
				}
				// The maximum in each position, including the masked tail.
				for _, at := range []int{0, n / 2, n - 1} {
					c := clone(a)
					c[at] = 1e30
					if got := Max(c); got != 1e30 {
						t.Errorf("Max n=%d with peak at %d = %g", n, at, got)
					}
				}
				neg := randSlice(r, n, -9, -5)
				if got, want := Max(neg), maxOfGeneric(neg); got != want {
					t.Errorf("Max of negatives n=%d = %g, want %g", n, got, want)
				}
			}
		}
	})
}

func TestExp(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		// A dense sweep of [-87, 88] for the relative error bound.
		const n = 1 << 18
		a := make([]float32, n)
		for i := range a {
			a[i] = float32(-87 + 175*float64(i)/(n-1))
		}
		dst := make([]float32, n)
		Exp(dst, a)
		var worst float64
		for i, v := range a {
			want := math.Exp(float64(v))
			worst = math.Max(worst, math.Abs(float64(dst[i])-want)/want)
		}
		t.Logf("max relative error of Exp on [-87, 88]: %.3g", worst)
		if worst > 2e-6 {
			t.Errorf("max relative error %.3g > 2e-6", worst)
		}
		r := rand.New(rand.NewPCG(7, 8))
		for _, n := range lengths {
			a := randSlice(r, n, -20, 20)
			want := make([]float64, n)
			for i, v := range a {
				want[i] = math.Exp(float64(v))
			}
			got := clone(a)
			Exp(got, got)
			checkAll(t, fmt.Sprintf("Exp aliased n=%d", n), got, want, 0, 2e-6)
		}
		inf, nan := float32(math.Inf(1)), float32(math.NaN())
		extremes := []float32{float32(math.Inf(-1)), -1e30, -200, -104, -100, -88, 0, 88.5, 88.72, 88.8, 100, 1e30, inf, nan}
		got := make([]float32, len(extremes))
		Exp(got, extremes)
		for i, v := range extremes {
			want := float64(float32(math.Exp(float64(v))))
			if !near(got[i], want, 1e-44, 2e-6) {
				t.Errorf("Exp(%g) = %g, want %g", v, got[i], want)
			}
		}
		if got[0] != 0 {
			t.Errorf("Exp(-Inf) = %g, want exactly 0", got[0])
		}
	})
}

// unary describes an activation, its float64 reference and derivative.
type unary struct {
	name      string
	fwd       func(dst, x []float32)
	grad      func(dx, x, dy []float32)
	ref, dref func(x float64) float64
	abs, rel  float64
}

func geluTanhRef(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(sqrt2OverPi*(x+geluCubic*x*x*x)))
}

func siluRef(x float64) float64 { return x / (1 + math.Exp(-x)) }

func geluRef(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// fd is the central finite difference of f at x.
func fd(f func(float64) float64, x float64) float64 {
	h := 1e-5 * math.Max(1, math.Abs(x))
	return (f(x+h) - f(x-h)) / (2 * h)
}

var activations = []unary{
	{"GELUTanh", GELUTanh, GELUTanhGrad, geluTanhRef, nil, 1e-6, 1e-6},
	{"SiLU", SiLU, SiLUGrad, siluRef, nil, 1e-6, 1e-6},
	{"GELU", GELU, GELUGrad, geluRef, nil, 1e-6, 1e-6},
}

func TestActivations(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, act := range activations {
			for _, n := range append(lengths, 1<<16+5) {
				x := randSlice(r, n, -6, 6)
				want := make([]float64, n)
				for i, v := range x {
					want[i] = act.ref(float64(v))
				}
				got := make([]float32, n)
				act.fwd(got, x)
				checkAll(t, fmt.Sprintf("%s n=%d", act.name, n), got, want, act.abs, act.rel)
				alias := clone(x)
				act.fwd(alias, alias)
				checkAll(t, fmt.Sprintf("%s aliased n=%d", act.name, n), alias, want, act.abs, act.rel)
			}
			ext := []float32{-1e30, -1e4, -200, -90, -50, -10, -1e-30, 0, 1e-30, 10, 50, 90, 200, 1e4, 1e30}
			want := make([]float64, len(ext))
			for i, v := range ext {
				want[i] = float64(float32(act.ref(float64(v))))
			}
			got := make([]float32, len(ext))
			act.fwd(got, ext)
			checkAll(t, act.name+" extremes", got, want, 1e-6, 1e-6)
		}
	})
}

func TestActivationGrads(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, act := range activations {
			for _, n := range append(lengths, 1<<16+5) {
				x, dy := randSlice(r, n, -6, 6), randSlice(r, n, -2, 2)
				want := make([]float64, n)
				for i, v := range x {
					want[i] = float64(dy[i]) * fd(act.ref, float64(v))
				}
				got := make([]float32, n)
				act.grad(got, x, dy)
				checkAll(t, fmt.Sprintf("%sGrad n=%d", act.name, n), got, want, 2e-6, 1e-5)
				alias := clone(dy)
				act.grad(alias, x, alias)
				checkAll(t, fmt.Sprintf("%sGrad aliased n=%d", act.name, n), alias, want, 2e-6, 1e-5)
			}
			ext := []float32{-1e30, -1e4, -200, -90, -50, 50, 90, 200, 1e4, 1e30}
			ones := make([]float32, len(ext))
			for i := range ones {
				ones[i] = 1
			}
			got := make([]float32, len(ext))
			act.grad(got, ext, ones)
			for i, v := range ext {
				want := 0.0
				if v > 0 {
					want = 1
				}
				if !near(got[i], want, 1e-6, 0) {
					t.Errorf("%sGrad(%g) = %g, want %g", act.name, v, got[i], want)
				}
			}
		}
	})
}

// softmaxRef is the float64 softmax of row.
func softmaxRef(row []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, v)
	}
	out := make([]float64, len(row))
	var s float64
	for i, v := range row {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func to64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// rowShapes lists (rows, cols) cases: every width with a few rows, a
// trailing partial row, and one case large enough to split across threads.
func rowShapes() [][2]int {
	var s [][2]int
	for _, w := range widths {
		s = append(s, [2]int{3, w})
	}
	return append(s, [2]int{1, 4097}, [2]int{80, 1000}, [2]int{600, 64})
}

func TestSoftmaxRows(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, sh := range rowShapes() {
			rows, cols := sh[0], sh[1]
			x := randSlice(r, rows*cols+1, -8, 8) // one trailing partial-row value
			if cols == 1 {
				x = x[:rows]
			}
			if cols > 4 && rows > 1 {
				x[1] = float32(math.Inf(-1)) // masked position
				x[cols+2] = 80               // large logits
				x[cols+3] = 79
			}
			want := make([]float64, rows*cols+1)
			for i := 0; i < rows; i++ {
				copy(want[i*cols:], softmaxRef(to64(x[i*cols:(i+1)*cols])))
			}
			got := make([]float32, len(x))
			alias := clone(x)
			if len(x) > rows*cols {
				want[rows*cols], got[rows*cols], alias[rows*cols] = -7, -7, -7
			}
			want = want[:len(x)]
			SoftmaxRows(got, x, cols)
			name := fmt.Sprintf("SoftmaxRows %dx%d", rows, cols)
			checkAll(t, name, got, want, 1e-7, 2e-6)
			SoftmaxRows(alias, alias, cols)
			checkAll(t, name+" aliased", alias, want, 1e-7, 2e-6)
		}
	})
}

func TestSoftmaxRowsGrad(t *testing.T) {
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, sh := range rowShapes() {
			rows, cols := sh[0], sh[1]
			if rows*cols > 5000 {
				rows = max(1, 5000/cols)
			}
			x, dy := randSlice(r, rows*cols, -3, 3), randSlice(r, rows*cols, -1, 1)
			y := make([]float32, len(x))
			SoftmaxRows(y, x, cols)
			want := make([]float64, len(x))
			for i := 0; i < rows; i++ {
				xr, gr := to64(x[i*cols:(i+1)*cols]), to64(dy[i*cols:(i+1)*cols])
				loss := func() float64 {
					var l float64
					for j, v := range softmaxRef(xr) {
						l += v * gr[j]
					}
					return l
				}
				for j := range xr {
					v := xr[j]
					want[i*cols+j] = fd(func(z float64) float64 { xr[j] = z; return loss() }, v)
					xr[j] = v
				}
			}
			got := make([]float32, len(x))
			SoftmaxRowsGrad(got, y, dy, cols)
			name := fmt.Sprintf("SoftmaxRowsGrad %dx%d", rows, cols)
			checkAll(t, name, got, want, 1e-6, 1e-4)
			SoftmaxRowsGrad(dy, y, dy, cols)
			checkAll(t, name+" aliased", dy, want, 1e-6, 1e-4)
		}
	})
}

// normRef is the float64 LayerNorm (or, with rms, RMSNorm) of one row.
func normRef(row, gamma, beta []float64, eps float64, rms bool) []float64 {
	n := float64(len(row))
	var mu float64
	if !rms {
		for _, v := range row {
			mu += v
		}
		mu /= n
	}
	var ss float64
	for _, v := range row {
		ss += (v - mu) * (v - mu)
	}
	rs := 1 / math.Sqrt(ss/n+eps)
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = (v - mu) * rs
		if gamma != nil {
			out[i] *= gamma[i]
		}
		if beta != nil {
			out[i] += beta[i]
		}
	}
	return out
}

// normCase is one configuration of the normalisation tests.
type normCase struct {
	rows, cols       int
	gamma, beta, rms bool
	offset           float64
}

func normCases() []normCase {
	var cs []normCase
	for _, sh := range rowShapes() {
		for _, rms := range []bool{false, true} {
			for m := 0; m < 4; m++ {
				if rms && m >= 2 {
					continue
				}
				cs = append(cs, normCase{rows: sh[0], cols: sh[1], gamma: m&1 != 0, beta: m&2 != 0, rms: rms})
			}
		}
	}
	return append(cs, normCase{rows: 4, cols: 384, gamma: true, beta: true, offset: 100})
}

func (c normCase) String() string {
	kind := "LayerNorm"
	if c.rms {
		kind = "RMSNorm"
	}
	return fmt.Sprintf("%s %dx%d gamma=%v beta=%v offset=%g", kind, c.rows, c.cols, c.gamma, c.beta, c.offset)
}

func TestNorms(t *testing.T) {
	const eps = 1e-5
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, c := range normCases() {
			x := randSlice(r, c.rows*c.cols, c.offset-2, c.offset+2)
			var gamma, beta []float32
			if c.gamma {
				gamma = randSlice(r, c.cols, 0.5, 1.5)
			}
			if c.beta {
				beta = randSlice(r, c.cols, -1, 1)
			}
			want := make([]float64, len(x))
			for i := 0; i < c.rows; i++ {
				var g, b []float64
				if gamma != nil {
					g = to64(gamma)
				}
				if beta != nil {
					b = to64(beta)
				}
				copy(want[i*c.cols:], normRef(to64(x[i*c.cols:(i+1)*c.cols]), g, b, eps, c.rms))
			}
			tol := 2e-6
			if c.offset != 0 {
				tol = 2e-4 // x itself is only known to ulp(100) ≈ 8e-6
			}
			got := make([]float32, len(x))
			rstd := make([]float32, c.rows)
			if c.rms {
				RMSNorm(got, x, c.cols, eps, gamma, rstd)
				alias := clone(x)
				RMSNorm(alias, alias, c.cols, eps, gamma, nil)
				checkAll(t, c.String()+" aliased", alias, want, tol, tol)
			} else {
				mean := make([]float32, c.rows)
				LayerNorm(got, x, c.cols, eps, gamma, beta, mean, rstd)
				alias := clone(x)
				LayerNorm(alias, alias, c.cols, eps, gamma, beta, nil, nil)
				checkAll(t, c.String()+" aliased", alias, want, tol, tol)
				for i := range mean {
					var mu float64
					for _, v := range x[i*c.cols : (i+1)*c.cols] {
						mu += float64(v)
					}
					if !near(mean[i], mu/float64(c.cols), 1e-6, 1e-6) {
						t.Errorf("%v: mean[%d] = %g, want %g", c, i, mean[i], mu/float64(c.cols))
					}
				}
			}
			checkAll(t, c.String(), got, want, tol, tol)
			for i, rs := range rstd {
				if !(rs > 0) || math.IsInf(float64(rs), 0) {
					t.Errorf("%v: rstd[%d] = %g", c, i, rs)
				}
			}
		}
	})
}

func TestNormGrads(t *testing.T) {
	const eps = 1e-5
	eachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		for _, c := range normCases() {
			if c.offset != 0 {
				continue
			}
			rows, cols := c.rows, c.cols
			if rows*cols > 5000 && rows*cols < parallelRows {
				rows = max(1, 5000/cols)
			}
			big := rows*cols >= parallelRows // exercises the parallel split
			x, dy := randSlice(r, rows*cols, -2, 2), randSlice(r, rows*cols, -1, 1)
			var gamma []float32
			var g64 []float64
			if c.gamma {
				gamma = randSlice(r, cols, 0.5, 1.5)
				g64 = to64(gamma)
			}
			mean, rstd := make([]float32, rows), make([]float32, rows)
			y := make([]float32, len(x))
			if c.rms {
				RMSNorm(y, x, cols, eps, gamma, rstd)
			} else {
				LayerNorm(y, x, cols, eps, gamma, nil, mean, rstd)
			}
			// Reference: finite differences of L = Σ dy·norm(x) in float64
			// for dx (on a few rows when large); dgamma and dbeta in closed
			// form, Σ_rows dy·x̂ and Σ_rows dy.
			wantDx := make([]float64, len(x))
			checkRows := rows
			if big {
				checkRows = 2
			}
			wantDg, wantDb := make([]float64, cols), make([]float64, cols)
			for j := range wantDg {
				wantDg[j], wantDb[j] = 0.25, -0.5 // initial contents, added into
			}
			for i := 0; i < rows; i++ {
				xr, gr := to64(x[i*cols:(i+1)*cols]), to64(dy[i*cols:(i+1)*cols])
				xh := normRef(xr, nil, nil, eps, c.rms)
				for j := range xh {
					wantDg[j] += gr[j] * xh[j]
					wantDb[j] += gr[j]
				}
				if i >= checkRows {
					continue
				}
				loss := func() float64 {
					var l float64
					for j, v := range normRef(xr, g64, nil, eps, c.rms) {
						l += v * gr[j]
					}
					return l
				}
				for j := range xr {
					v := xr[j]
					wantDx[i*cols+j] = fd(func(z float64) float64 { xr[j] = z; return loss() }, v)
					xr[j] = v
				}
			}
			dx := make([]float32, len(x))
			dg, db := make([]float32, cols), make([]float32, cols)
			for j := range dg {
				dg[j], db[j] = 0.25, -0.5
			}
			if c.rms {
				RMSNormGrad(dx, dg, x, dy, gamma, rstd, cols)
			} else {
				LayerNormGrad(dx, dg, db, x, dy, gamma, mean, rstd, cols)
			}
			checkAll(t, c.String()+" dx", dx[:checkRows*cols], wantDx[:checkRows*cols], 2e-5, 1e-4)
			checkAll(t, c.String()+" dgamma", dg, wantDg, 1e-5*float64(rows), 1e-5)
			if !c.rms {
				checkAll(t, c.String()+" dbeta", db, wantDb, 1e-5*float64(rows), 1e-5)
			}
			// dx aliasing dy, without parameter gradients.
			alias := clone(dy)
			if c.rms {
				RMSNormGrad(alias, nil, x, alias, gamma, rstd, cols)
			} else {
				LayerNormGrad(alias, nil, nil, x, alias, gamma, mean, rstd, cols)
			}
			checkAll(t, c.String()+" dx aliased", alias[:checkRows*cols], wantDx[:checkRows*cols], 2e-5, 1e-4)
		}
	})
}

// TestThreadsAgree checks that splitting across goroutines does not change
// elementwise and row results.
func TestThreadsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	x := randSlice(r, 1<<17, -3, 3)
	run := func() ([]float32, []float32) {
		a, b := make([]float32, len(x)), make([]float32, len(x))
		GELUTanh(a, x)
		LayerNorm(b, x, 512, 1e-5, nil, nil, nil, nil)
		return a, b
	}
	prev := parallel.SetThreads(1)
	a1, b1 := run()
	parallel.SetThreads(4)
	a4, b4 := run()
	parallel.SetThreads(prev)
	for i := range a1 {
		if a1[i] != a4[i] || b1[i] != b4[i] {
			t.Fatalf("index %d: one thread gives %g, %g; four give %g, %g", i, a1[i], b1[i], a4[i], b4[i])
		}
	}
}

func TestPanics(t *testing.T) {
	cases := []struct {
		name string
		fn   func()
	}{
		{"Max empty", func() { Max(nil) }},
		{"Add short input", func() { Add(make([]float32, 4), make([]float32, 3), make([]float32, 4)) }},
		{"SoftmaxRows zero width", func() { SoftmaxRows(nil, make([]float32, 4), 0) }},
		{"LayerNorm short gamma", func() {
			LayerNorm(make([]float32, 8), make([]float32, 8), 4, 1e-5, make([]float32, 3), nil, nil, nil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", c.name)
				}
			}()
			c.fn()
		})
	}
}
