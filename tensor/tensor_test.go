package tensor

import (
	"fmt"
	"math"
	"testing"

	"tessera/internal/simd"
)

// eachIndex calls fn with every multi-index of shape in row-major order.
func eachIndex(shape []int, fn func(idx []int)) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	idx := make([]int, len(shape))
	for i := 0; i < n; i++ {
		fn(idx)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

// bcastIndex maps an index of the broadcast shape to one of shape.
func bcastIndex(idx, shape []int) []int {
	out := make([]int, len(shape))
	lead := len(idx) - len(shape)
	for i := range shape {
		if shape[i] != 1 {
			out[i] = idx[lead+i]
		}
	}
	return out
}

func near(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*(1+math.Abs(b))
}

func assertClose(t *testing.T, name string, got *Tensor, want []float32, tol float64) {
	t.Helper()
	g := got.Data()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(want))
	}
	for i := range g {
		if !near(float64(g[i]), float64(want[i]), tol) {
			t.Fatalf("%s: element %d = %v, want %v", name, i, g[i], want[i])
		}
	}
}

// eachLevel runs fn once per kernel level this CPU supports.
func eachLevel(t *testing.T, fn func(t *testing.T)) {
	for _, l := range simd.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			prev := simd.Set(l)
			defer simd.Set(prev)
			fn(t)
		})
	}
}

func TestViews(t *testing.T) {
	x := Arange(0, 24, 1).Reshape(2, 3, 4)
	tests := []struct {
		name  string
		got   *Tensor
		shape []int
		at    func(idx []int) float32
	}{
		{"reshape-infer", x.Reshape(4, -1), []int{4, 6}, func(i []int) float32 { return float32(i[0]*6 + i[1]) }},
		{"permute", x.Permute(2, 0, 1), []int{4, 2, 3}, func(i []int) float32 { return x.At(i[1], i[2], i[0]) }},
		{"transpose", x.Transpose(0, -1), []int{4, 3, 2}, func(i []int) float32 { return x.At(i[2], i[1], i[0]) }},
		{"slice", x.Slice(2, 1, 3), []int{2, 3, 2}, func(i []int) float32 { return x.At(i[0], i[1], i[2]+1) }},
		{"narrow", x.Narrow(1, 1, 2), []int{2, 2, 4}, func(i []int) float32 { return x.At(i[0], i[1]+1, i[2]) }},
		{"index", x.Index(1, 2), []int{2, 4}, func(i []int) float32 { return x.At(i[0], 2, i[1]) }},
		{"unsqueeze", x.Unsqueeze(1), []int{2, 1, 3, 4}, func(i []int) float32 { return x.At(i[0], i[2], i[3]) }},
		{"unsqueeze-end", x.Unsqueeze(-1), []int{2, 3, 4, 1}, func(i []int) float32 { return x.At(i[0], i[1], i[2]) }},
		{"squeeze", x.Unsqueeze(0).Unsqueeze(2).Squeeze(), []int{2, 3, 4}, func(i []int) float32 { return x.At(i...) }},
		{"broadcast", x.Slice(1, 0, 1).BroadcastTo(5, 2, 3, 4), []int{5, 2, 3, 4}, func(i []int) float32 { return x.At(i[1], 0, i[3]) }},
		{"reshape-of-permuted", x.Permute(1, 0, 2).Reshape(3, 8), []int{3, 8}, func(i []int) float32 { return x.At(i[1]/4, i[0], i[1]%4) }},
		{"concat", Concat(1, x.Slice(1, 2, 3), x.Slice(1, 0, 2)), []int{2, 3, 4}, func(i []int) float32 { return x.At(i[0], (i[1]+2)%3, i[2]) }},
		{"split", x.Split(2, 1, 3)[1], []int{2, 3, 3}, func(i []int) float32 { return x.At(i[0], i[1], i[2]+1) }},
		{"chunk", x.Chunk(2, 1)[1], []int{2, 1, 4}, func(i []int) float32 { return x.At(i[0], i[1]+2, i[2]) }},
		{"clone-transposed", x.Transpose(1, 2).Clone(), []int{2, 4, 3}, func(i []int) float32 { return x.At(i[0], i[2], i[1]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if fmt.Sprint(tc.got.Shape()) != fmt.Sprint(tc.shape) {
				t.Fatalf("shape %v, want %v", tc.got.Shape(), tc.shape)
			}
			data := tc.got.Data()
			k := 0
			eachIndex(tc.shape, func(idx []int) {
				if want := tc.at(idx); data[k] != want || tc.got.At(idx...) != want {
					t.Fatalf("at %v: %v / %v, want %v", idx, data[k], tc.got.At(idx...), want)
				}
				k++
			})
		})
	}
}

func TestViewsShareStorage(t *testing.T) {
	x := Zeros(3, 4)
	x.Slice(1, 1, 3).Transpose(0, 1).Set(7, 1, 2) // x[2, 2]
	x.Reshape(12).Set(5, 0)
	if x.At(2, 2) != 7 || x.At(0, 0) != 5 {
		t.Fatalf("writes through views not visible: %v", x.Data())
	}
	if got := len(x.Chunk(3, 1)); got != 2 {
		t.Errorf("Chunk(3) of 4 gave %d pieces, want 2 (2+2)", got)
	}
}

func TestCreation(t *testing.T) {
	assertClose(t, "Arange", Arange(1, 2, 0.25), []float32{1, 1.25, 1.5, 1.75}, 0)
	assertClose(t, "Arange-neg", Arange(3, 0, -1), []float32{3, 2, 1}, 0)
	assertClose(t, "Full", Full(2.5, 2, 2), []float32{2.5, 2.5, 2.5, 2.5}, 0)
	assertClose(t, "Ones", Ones(3), []float32{1, 1, 1}, 0)
	assertClose(t, "Zeros", Zeros(1, 2), []float32{0, 0}, 0)
}

func TestSplitMixSeedingMatchesReference(t *testing.T) {
	// SplitMix64's published first output for seed 1234567 seeds word 0.
	r := NewRNG(1234567)
	if r.State()[0] != 6457827717110365317 {
		t.Fatalf("state[0] = %d, want 6457827717110365317", r.State()[0])
	}
}

func TestRNGGolden(t *testing.T) {
	r := NewRNG(42)
	got := []uint64{r.Uint64(), r.Uint64(), r.Uint64()}
	want := []uint64{goldenU64[0], goldenU64[1], goldenU64[2]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Uint64 stream %v, want %v", got, want)
	}
	n := NewRNG(7).Normal(4).Data()
	for i, w := range goldenNormal {
		if n[i] != w {
			t.Fatalf("Normal stream %v, want %v", n, goldenNormal)
		}
	}
}

var (
	goldenU64    = [3]uint64{1546998764402558742, 6990951692964543102, 12544586762248559009}
	goldenNormal = []float32{-0.279024, 1.5277232, 1.8997686, -0.22669575}
)

func TestRNGDistributionAndResume(t *testing.T) {
	r := NewRNG(1)
	x := r.Normal(20001).Data()
	var s, ss float64
	for _, v := range x {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	mean, vr := s/float64(len(x)), ss/float64(len(x))-s*s/float64(len(x)*len(x))
	if math.Abs(mean) > 0.03 || math.Abs(vr-1) > 0.05 {
		t.Errorf("normal mean %.4f var %.4f", mean, vr)
	}
	u := r.Uniform(-2, 3, 10000).Data()
	for _, v := range u {
		if v < -2 || v >= 3 {
			t.Fatalf("uniform value %v outside [-2, 3)", v)
		}
	}
	st := r.State()
	a := []int{r.Intn(10), r.Intn(1000)}
	p := r.Perm(6)
	if err := r.SetState(st); err != nil {
		t.Fatal(err)
	}
	b := []int{r.Intn(10), r.Intn(1000)}
	if fmt.Sprint(a, p) != fmt.Sprint(b, r.Perm(6)) {
		t.Fatalf("resume from State gave a different stream")
	}
	seen := make([]bool, 6)
	for _, v := range p {
		seen[v] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("Perm %v misses %d", p, i)
		}
	}
	if r.SetState([4]uint64{}) == nil {
		t.Error("all-zero state accepted")
	}
}

func refBinary(a, b *Tensor, f func(x, y float32) float32) []float32 {
	shape, _ := BroadcastShape(a.Shape(), b.Shape())
	var out []float32
	eachIndex(shape, func(idx []int) {
		out = append(out, f(a.At(bcastIndex(idx, a.Shape())...), b.At(bcastIndex(idx, b.Shape())...)))
	})
	return out
}

func TestBinaryBroadcast(t *testing.T) {
	r := NewRNG(3)
	big := r.Normal(4, 64, 300)
	tests := []struct {
		name string
		a, b *Tensor
	}{
		{"same", r.Normal(3, 5), r.Normal(3, 5)},
		{"row", r.Normal(4, 6), r.Normal(6)},
		{"row-left", r.Normal(6), r.Normal(4, 6)},
		{"B1C", r.Normal(2, 5, 7), r.Normal(2, 1, 7)},
		{"column", r.Normal(5, 4), r.Normal(5, 1)},
		{"scalar", r.Normal(3, 2), Scalar(1.5)},
		{"outer", r.Normal(4, 1), r.Normal(1, 3)},
		{"transposed", r.Normal(4, 3).Transpose(0, 1), r.Normal(3, 4)},
		{"sliced", r.Normal(3, 8).Slice(1, 2, 6), r.Normal(1, 4)},
		{"big-parallel", big, r.Normal(300)},
		{"big-B1C", big, r.Normal(4, 1, 300)},
		{"big-strided", big.Transpose(1, 2), r.Normal(300, 64)},
	}
	ops := []struct {
		name string
		f    func(a, b *Tensor) *Tensor
		ref  func(x, y float32) float32
	}{
		{"Add", Add, func(x, y float32) float32 { return x + y }},
		{"Sub", Sub, func(x, y float32) float32 { return x - y }},
		{"Mul", Mul, func(x, y float32) float32 { return x * y }},
		{"Div", Div, func(x, y float32) float32 { return x / y }},
	}
	eachLevel(t, func(t *testing.T) {
		for _, tc := range tests {
			for _, op := range ops {
				assertClose(t, tc.name+"/"+op.name, op.f(tc.a, tc.b), refBinary(tc.a, tc.b, op.ref), 1e-6)
			}
		}
	})
}

func TestSumToAndAddInPlace(t *testing.T) {
	r := NewRNG(4)
	g := r.Normal(3, 4, 5)
	for _, shape := range [][]int{{5}, {3, 1, 5}, {1, 4, 1}, {3, 4, 5}, {}} {
		got := SumTo(g, shape...)
		want := New(shape...)
		eachIndex(g.Shape(), func(idx []int) {
			bi := bcastIndex(idx, shape)
			want.Set(want.At(bi...)+g.At(idx...), bi...)
		})
		assertClose(t, fmt.Sprint("SumTo", shape), got, want.Data(), 1e-5)
	}
	dst := Ones(4, 6)
	AddInPlace(dst.Slice(1, 2, 5), Full(2, 3))
	if dst.At(0, 2) != 3 || dst.At(3, 4) != 3 || dst.At(0, 5) != 1 || dst.At(1, 1) != 1 {
		t.Fatalf("AddInPlace into a view: %v", dst.Data())
	}
}

func TestUnary(t *testing.T) {
	r := NewRNG(5)
	x := r.Uniform(0.1, 3, 2, 3).Transpose(0, 1)
	tests := []struct {
		name string
		f    func(*Tensor) *Tensor
		ref  func(float64) float64
	}{
		{"Exp", Exp, math.Exp},
		{"Log", Log, math.Log},
		{"Neg", Neg, func(v float64) float64 { return -v }},
		{"Sqrt", Sqrt, math.Sqrt},
		{"Square", Square, func(v float64) float64 { return v * v }},
		{"Tanh", Tanh, math.Tanh},
		{"Sigmoid", Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"SiLU", SiLU, func(v float64) float64 { return v / (1 + math.Exp(-v)) }},
		{"GELU", GELU, func(v float64) float64 { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }},
		{"GELUTanh", GELUTanh, func(v float64) float64 {
			return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		}},
		{"AddScalar", func(t *Tensor) *Tensor { return AddScalar(t, 2) }, func(v float64) float64 { return v + 2 }},
		{"Scale", func(t *Tensor) *Tensor { return Scale(t, -3) }, func(v float64) float64 { return -3 * v }},
	}
	eachLevel(t, func(t *testing.T) {
		for _, tc := range tests {
			var want []float32
			for _, v := range x.Data() {
				want = append(want, float32(tc.ref(float64(v))))
			}
			assertClose(t, tc.name, tc.f(x), want, 1e-5)
		}
	})
}

func TestReductions(t *testing.T) {
	r := NewRNG(6)
	x := r.Normal(3, 4, 5).Permute(1, 0, 2) // [4, 3, 5], non-contiguous
	for dim := 0; dim < 3; dim++ {
		shape := x.Shape()
		shape[dim] = 1
		sum, mx := New(shape...), Full(float32(math.Inf(-1)), shape...)
		arg := make([]int, len(sum.Data()))
		eachIndex(x.Shape(), func(idx []int) {
			ri := append([]int(nil), idx...)
			ri[dim] = 0
			sum.Set(sum.At(ri...)+x.At(idx...), ri...)
			if v := x.At(idx...); v > mx.At(ri...) {
				mx.Set(v, ri...)
				k := 0
				for d := range ri {
					k = k*shape[d] + ri[d]
				}
				arg[k] = idx[dim]
			}
		})
		name := fmt.Sprint("dim", dim)
		assertClose(t, name+"/Sum", Sum(x, dim, true), sum.Data(), 1e-5)
		s := Sum(x, dim, false)
		if s.Rank() != 2 {
			t.Fatalf("Sum without keepdim has shape %v", s.Shape())
		}
		mean := Scale(sum, 1/float32(x.Dim(dim)))
		assertClose(t, name+"/Mean", Mean(x, dim, false), mean.Data(), 1e-5)
		assertClose(t, name+"/Max", Max(x, dim, true), mx.Data(), 0)
		if fmt.Sprint(Argmax(x, dim)) != fmt.Sprint(arg) {
			t.Fatalf("%s Argmax %v, want %v", name, Argmax(x, dim), arg)
		}
	}
	var all float64
	for _, v := range x.Data() {
		all += float64(v)
	}
	if !near(float64(SumAll(x)), all, 1e-6) || !near(float64(MeanAll(x)), all/60, 1e-6) {
		t.Fatalf("SumAll %v MeanAll %v, want %v", SumAll(x), MeanAll(x), all)
	}
}

func TestSoftmaxAndNorms(t *testing.T) {
	r := NewRNG(8)
	x := r.Normal(6, 10).Transpose(0, 1) // [10, 6]
	gamma, beta := r.Normal(6), r.Normal(6)
	var sm, lsm, ln, lnNo, rms []float32
	for i := 0; i < 10; i++ {
		row := make([]float64, 6)
		var m, mu, ss float64 = math.Inf(-1), 0, 0
		for j := range row {
			row[j] = float64(x.At(i, j))
			m = math.Max(m, row[j])
			mu += row[j] / 6
			ss += row[j] * row[j] / 6
		}
		var z, vr float64
		for _, v := range row {
			z += math.Exp(v - m)
			vr += (v - mu) * (v - mu) / 6
		}
		for j, v := range row {
			sm = append(sm, float32(math.Exp(v-m)/z))
			lsm = append(lsm, float32(v-m-math.Log(z)))
			xh := (v - mu) / math.Sqrt(vr+1e-5)
			ln = append(ln, float32(xh*float64(gamma.At(j))+float64(beta.At(j))))
			lnNo = append(lnNo, float32(xh))
			rms = append(rms, float32(v/math.Sqrt(ss+1e-6)*float64(gamma.At(j))))
		}
	}
	eachLevel(t, func(t *testing.T) {
		assertClose(t, "Softmax", Softmax(x), sm, 1e-5)
		assertClose(t, "LogSoftmax", LogSoftmax(x), lsm, 1e-5)
		assertClose(t, "LayerNorm", LayerNorm(x, gamma, beta, 1e-5), ln, 1e-4)
		assertClose(t, "LayerNorm-noaffine", LayerNorm(x, nil, nil, 1e-5), lnNo, 1e-4)
		assertClose(t, "RMSNorm", RMSNorm(x, gamma, 1e-6), rms, 1e-4)
	})
}

func refMatMul(a, b *Tensor) []float32 {
	ab, bb := a.Shape()[:a.Rank()-2], b.Shape()[:b.Rank()-2]
	batch, _ := BroadcastShape(ab, bb)
	m, k, n := a.Dim(-2), a.Dim(-1), b.Dim(-1)
	var out []float32
	eachIndex(append(batch, m, n), func(idx []int) {
		bi := idx[:len(batch)]
		i, j := idx[len(batch)], idx[len(batch)+1]
		var s float64
		for p := 0; p < k; p++ {
			ia := append(bcastIndex(bi, ab), i, p)
			ib := append(bcastIndex(bi, bb), p, j)
			s += float64(a.At(ia...)) * float64(b.At(ib...))
		}
		out = append(out, float32(s))
	})
	return out
}

func TestMatMul(t *testing.T) {
	r := NewRNG(9)
	tests := []struct {
		name string
		a, b *Tensor
	}{
		{"2d", r.Normal(5, 7), r.Normal(7, 3)},
		{"transA", r.Normal(7, 5).Transpose(0, 1), r.Normal(7, 3)},
		{"transB", r.Normal(5, 7), r.Normal(3, 7).Transpose(0, 1)},
		{"both", r.Normal(7, 5).Transpose(0, 1), r.Normal(3, 7).Transpose(0, 1)},
		{"row-strided", r.Normal(5, 12).Slice(1, 2, 9), r.Normal(7, 4)},
		{"batched", r.Normal(2, 3, 5, 4), r.Normal(2, 3, 4, 6)},
		{"fold-rows", r.Normal(3, 5, 4), r.Normal(4, 6)},
		{"fold-strided", r.Normal(3, 5, 9).Slice(2, 1, 5), r.Normal(6, 4).Transpose(0, 1)},
		{"broadcast", r.Normal(2, 1, 5, 4), r.Normal(3, 4, 2)},
		{"batch-transposed", r.Normal(2, 4, 5).Transpose(1, 2), r.Normal(2, 4, 3)},
		{"permuted-heads", r.Normal(2, 5, 3, 4).Permute(0, 2, 1, 3), r.Normal(2, 5, 3, 4).Permute(0, 2, 3, 1)},
	}
	x, w, b := r.Normal(2, 3, 4), r.Normal(5, 4), r.Normal(5)
	xp := r.Normal(4, 2, 3).Permute(1, 2, 0) // [2, 3, 4], rows not foldable
	eachLevel(t, func(t *testing.T) {
		for _, tc := range tests {
			assertClose(t, tc.name, MatMul(tc.a, tc.b), refMatMul(tc.a, tc.b), 1e-5)
		}
		ref := Add(MatMul(x, w.Transpose(0, 1)), b).Data()
		assertClose(t, "Linear", Linear(x, w, b), ref, 1e-5)
		assertClose(t, "Linear-permuted", Linear(xp, w, b), Add(MatMul(xp.Contiguous(), w.Transpose(0, 1)), b).Data(), 1e-5)
		assertClose(t, "Linear-vector", Linear(x.Index(0, 1).Index(0, 2), w, nil), refMatMul(x.Slice(0, 1, 2).Slice(1, 2, 3).Reshape(1, 4), w.Transpose(0, 1)), 1e-5)
	})
}

func TestLargeReductionsInParallel(t *testing.T) {
	x := NewRNG(12).Normal(64, 40, 33)
	for dim := 0; dim < 3; dim++ {
		got := Sum(x, dim, false)
		want := New(got.Shape()...)
		acc := make([]float64, want.Numel())
		k := 0
		eachIndex(x.Shape(), func(idx []int) {
			o := 0
			for d, i := range idx {
				if d != dim {
					o = o*x.Dim(d) + i
				}
			}
			acc[o] += float64(x.Data()[k])
			k++
		})
		for i, v := range acc {
			want.Data()[i] = float32(v)
		}
		assertClose(t, fmt.Sprint("Sum dim ", dim), got, want.Data(), 1e-4)
	}
}

// refAttention is the textbook definition with an explicit score matrix.
func refAttention(q, k, v *Tensor, opt AttentionOptions) []float32 {
	b, tq, h, d := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	tk, hkv := k.Dim(1), k.Dim(2)
	scale := float64(opt.Scale)
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(d))
	}
	out := New(b, tq, h, d)
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			kh := hi / (h / hkv)
			for i := 0; i < tq; i++ {
				pos := opt.QOffset + i
				s := make([]float64, tk)
				m := math.Inf(-1)
				for j := 0; j < tk; j++ {
					ok := true
					switch opt.Mask {
					case MaskCausal:
						ok = j <= pos
					case MaskBlockCausal:
						ok = j/opt.Block <= pos/opt.Block
					case MaskBlockDiagonal:
						ok = j/opt.Block == pos/opt.Block
					case MaskExplicit:
						ok = opt.Allow[i*tk+j]
					}
					s[j] = math.Inf(-1)
					if ok {
						var dot float64
						for c := 0; c < d; c++ {
							dot += float64(q.At(bi, i, hi, c)) * float64(k.At(bi, j, kh, c))
						}
						s[j] = dot * scale
					}
					m = math.Max(m, s[j])
				}
				if math.IsInf(m, -1) {
					continue
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					z += s[j]
				}
				for c := 0; c < d; c++ {
					var acc float64
					for j := range s {
						acc += s[j] / z * float64(v.At(bi, j, kh, c))
					}
					out.Set(float32(acc), bi, i, hi, c)
				}
			}
		}
	}
	return out.Data()
}

func TestAttention(t *testing.T) {
	r := NewRNG(10)
	allow := make([]bool, 5*7)
	for i := range allow {
		allow[i] = r.Intn(3) > 0
	}
	allow[7] = false // row 1 sees nothing in part
	qkv := r.Normal(2, 5, 3, 4, 8)
	q, k, v := qkv.Index(2, 0), qkv.Index(2, 1), qkv.Index(2, 2)
	cache := r.Normal(2, 9, 2, 8) // KV cache with room for 9 positions
	tests := []struct {
		name    string
		q, k, v *Tensor
		opt     AttentionOptions
	}{
		{"full-fused", q, k, v, AttentionOptions{}},
		{"causal", q, k, v, AttentionOptions{Mask: MaskCausal}},
		{"block-causal", q, k, v, AttentionOptions{Mask: MaskBlockCausal, Block: 2}},
		{"block-diagonal", q, k, v, AttentionOptions{Mask: MaskBlockDiagonal, Block: 3, Scale: 0.5}},
		{"explicit-gqa", r.Normal(2, 5, 4, 8), r.Normal(2, 7, 2, 8), r.Normal(2, 7, 2, 8), AttentionOptions{Mask: MaskExplicit, Allow: allow}},
		{"kv-cache-decoding", r.Normal(2, 2, 4, 8), cache.Slice(1, 0, 6), cache.Slice(1, 0, 6), AttentionOptions{Mask: MaskCausal, QOffset: 4}},
		{"permuted", r.Normal(2, 4, 5, 8).Permute(0, 2, 1, 3), r.Normal(2, 5, 4, 8), r.Normal(2, 5, 4, 8), AttentionOptions{}},
	}
	for _, tc := range tests {
		assertClose(t, tc.name, Attention(tc.q, tc.k, tc.v, tc.opt), refAttention(tc.q, tc.k, tc.v, tc.opt), 1e-4)
	}
}

func refConv(x, w, b *Tensor, stride, pad int) *Tensor {
	n, c, h, wd := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	o, kh, kw := w.Dim(0), w.Dim(2), w.Dim(3)
	ho, wo := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := New(n, o, ho, wo)
	eachIndex(out.Shape(), func(idx []int) {
		var s float64
		if b != nil {
			s = float64(b.At(idx[1]))
		}
		for ci := 0; ci < c; ci++ {
			for ky := 0; ky < kh; ky++ {
				for kx := 0; kx < kw; kx++ {
					y, xx := idx[2]*stride-pad+ky, idx[3]*stride-pad+kx
					if y >= 0 && y < h && xx >= 0 && xx < wd {
						s += float64(x.At(idx[0], ci, y, xx)) * float64(w.At(idx[1], ci, ky, kx))
					}
				}
			}
		}
		out.Set(float32(s), idx...)
	})
	return out
}

// refConvTranspose scatters every input pixel through the kernel.
func refConvTranspose(x, w, b *Tensor, stride, pad int) *Tensor {
	n, ci, h, wd := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	co, kh, kw := w.Dim(1), w.Dim(2), w.Dim(3)
	ho, wo := (h-1)*stride-2*pad+kh, (wd-1)*stride-2*pad+kw
	out := New(n, co, ho, wo)
	eachIndex([]int{n, ci, h, wd}, func(idx []int) {
		for o := 0; o < co; o++ {
			for ky := 0; ky < kh; ky++ {
				for kx := 0; kx < kw; kx++ {
					y, xx := idx[2]*stride-pad+ky, idx[3]*stride-pad+kx
					if y >= 0 && y < ho && xx >= 0 && xx < wo {
						out.Set(out.At(idx[0], o, y, xx)+x.At(idx...)*w.At(idx[1], o, ky, kx), idx[0], o, y, xx)
					}
				}
			}
		}
	})
	if b != nil {
		out = Add(out, b.Reshape(1, co, 1, 1))
	}
	return out
}

func TestConv(t *testing.T) {
	r := NewRNG(11)
	tests := []struct {
		name        string
		x, w, b     *Tensor
		stride, pad int
	}{
		{"3x3-pad1", r.Normal(2, 3, 6, 5), r.Normal(4, 3, 3, 3), r.Normal(4), 1, 1},
		{"stride2", r.Normal(2, 2, 7, 7), r.Normal(3, 2, 3, 3), nil, 2, 1},
		{"patchify", r.Normal(1, 3, 8, 8), r.Normal(5, 3, 4, 4), r.Normal(5), 4, 0},
		{"rect-kernel", r.Normal(1, 2, 5, 6), r.Normal(2, 2, 2, 3), r.Normal(2), 1, 0},
	}
	for _, tc := range tests {
		assertClose(t, tc.name, Conv2d(tc.x, tc.w, tc.b, tc.stride, tc.pad), refConv(tc.x, tc.w, tc.b, tc.stride, tc.pad).Data(), 1e-4)
	}
	tt := []struct {
		name        string
		x, w, b     *Tensor
		stride, pad int
	}{
		{"up2", r.Normal(2, 3, 4, 4), r.Normal(3, 2, 4, 4), r.Normal(2), 2, 1},
		{"same", r.Normal(1, 2, 5, 5), r.Normal(2, 3, 3, 3), nil, 1, 1},
		{"unpatchify", r.Normal(1, 4, 2, 3), r.Normal(4, 3, 2, 2), r.Normal(3), 2, 0},
	}
	for _, tc := range tt {
		assertClose(t, "transpose-"+tc.name, ConvTranspose2d(tc.x, tc.w, tc.b, tc.stride, tc.pad), refConvTranspose(tc.x, tc.w, tc.b, tc.stride, tc.pad).Data(), 1e-4)
	}
}

func TestEmbedding(t *testing.T) {
	table := Arange(0, 12, 1).Reshape(4, 3)
	assertClose(t, "Embedding", Embedding(table, []int{2, 0, 2}), []float32{6, 7, 8, 0, 1, 2, 6, 7, 8}, 0)
}
