package nn

import (
	"math"
	"slices"
	"testing"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/tensor"
)

// ---- naive references (float64, plain loops) ----

func randT(rng *tensor.RNG, shape ...int) *tensor.Tensor { return rng.Normal(shape...) }

func f64(t *tensor.Tensor) []float64 {
	d := t.Contiguous().Data()
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}

// naiveLinear is x [n, in] · w[out, in]ᵀ + b.
func naiveLinear(x []float64, n, in int, w []float64, out int, b []float64) []float64 {
	y := make([]float64, n*out)
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			y[r*out+o] = s
		}
	}
	return y
}

func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

func mapf(x []float64, f func(float64) float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = f(v)
	}
	return out
}

func assertNear(t *testing.T, what string, got *tensor.Tensor, want []float64, tol float64) {
	t.Helper()
	g := got.Contiguous().Data()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(want))
	}
	worst, at := 0.0, 0
	for i := range g {
		d := math.Abs(float64(g[i])-want[i]) / math.Max(1, math.Abs(want[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: element %d = %v, want %v (error %.3g > %.3g)", what, at, g[at], want[at], worst, tol)
	}
}

func shapeIs(t *testing.T, what string, v *autodiff.Var, want ...int) {
	t.Helper()
	if got := v.Shape(); !slices.Equal(got, want) {
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
}

// ---- parameter walking ----

type block struct {
	Norm  *LayerNorm `safetensors:"norm"`
	Attn  *Linear    `safetensors:"attn,optional"`
	Extra *Linear    // untagged: not a checkpoint weight
}

type Embedded struct {
	Scale *autodiff.Var `safetensors:"scale"`
}

type toy struct {
	Embedded `safetensors:""`
	Untagged Embedded
	Blocks   []block        `safetensors:"blocks"`
	Head     Linear         `safetensors:"head"`
	Tied     *autodiff.Var  `safetensors:"tied"`
	Skip     *Linear        `safetensors:"-"`
	Arr      [1]*Embedding  `safetensors:"emb"`
	Nil      *autodiff.Var  `safetensors:"absent"`
	Any      any            `safetensors:"any"`
	Map      map[string]int `safetensors:"map"`
}

func TestNamedParams(t *testing.T) {
	rng := tensor.NewRNG(1)
	m := &toy{}
	m.Scale = autodiff.Param(tensor.Ones(1))
	m.Untagged.Scale = autodiff.Param(tensor.Ones(1))
	for i := 0; i < 11; i++ {
		m.Blocks = append(m.Blocks, block{Norm: NewLayerNorm(2, 1e-5, i == 0), Attn: NewLinear(rng, 2, 2, false), Extra: NewLinear(rng, 2, 2, true)})
	}
	m.Head = *NewLinear(rng, 2, 3, true)
	m.Tied = m.Head.Weight
	m.Skip = NewLinear(rng, 2, 2, true)
	m.Arr[0] = NewEmbedding(rng, 4, 2)
	m.Any = NewRMSNorm(2, 1e-6)

	var names []string
	for _, p := range NamedParams(m) {
		names = append(names, p.Name)
	}
	want := []string{"any.weight", "blocks.0.attn.weight", "blocks.0.norm.bias", "blocks.0.norm.weight"}
	for i := 1; i < 11; i++ {
		want = append(want, "blocks."+itoa(i)+".attn.weight")
	}
	want = append(want, "emb.0.weight", "head.bias", "head.weight", "scale", "tied")
	if !slices.Equal(names, want) {
		t.Errorf("names\n got %v\nwant %v", names, want)
	}
	ps := Params(m)
	if len(ps) != len(want)-1 {
		t.Errorf("Params: %d, want %d (tied weight once)", len(ps), len(want)-1)
	}
	if got, want := NumParams(m), 1+4+11*4+9+8+2; got != want {
		t.Errorf("NumParams = %d, want %d", got, want)
	}
	m.Head.Weight.SetRequiresGrad(false)
	if got := len(Trainable(m)); got != len(ps)-1 {
		t.Errorf("Trainable: %d, want %d", got, len(ps)-1)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"blocks.2.w", "blocks.10.w", -1},
		{"a.b", "a", 1},
		{"a.0", "a.x", -1},
		{"x", "x", 0},
	}
	for _, tc := range tests {
		got := naturalCompare(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("naturalCompare(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// ---- initialisers ----

func TestInitialisers(t *testing.T) {
	rng := tensor.NewRNG(3)
	tests := []struct {
		name          string
		shape         []int
		init          func(*tensor.Tensor)
		bound         float64 // |x| < bound (0: unbounded)
		mean, meanTol float64
		std, stdTol   float64
	}{
		{"xavier", []int{64, 192}, func(x *tensor.Tensor) { XavierUniform(rng, x) }, math.Sqrt(6.0 / 256), 0, 0.005, math.Sqrt(6.0/256) / math.Sqrt(3), 0.005},
		{"xavier conv", []int{8, 4, 3, 3}, func(x *tensor.Tensor) { XavierUniform(rng, x) }, math.Sqrt(6.0 / (36 + 72)), 0, 0.03, math.Sqrt(6.0/108) / math.Sqrt(3), 0.02},
		{"normal", []int{100, 100}, func(x *tensor.Tensor) { Normal(rng, x, 0.02) }, 0, 0, 0.001, 0.02, 0.001},
		{"linear default", []int{128, 64}, func(x *tensor.Tensor) { LinearDefault(rng, x, nil) }, 1.0 / 8, 0, 0.005, 1.0 / 8 / math.Sqrt(3), 0.003},
		{"zeros", []int{3, 3}, func(x *tensor.Tensor) { Normal(rng, x, 1); Zeros(x) }, 1e-30, 0, 0, 0, 0},
		{"ones", []int{3}, func(x *tensor.Tensor) { Ones(x) }, 0, 1, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := tensor.New(tc.shape...)
			tc.init(x)
			d := f64(x)
			var s, s2 float64
			for _, v := range d {
				if tc.bound > 0 && math.Abs(v) >= tc.bound {
					t.Fatalf("value %v outside ±%v", v, tc.bound)
				}
				s += v
				s2 += v * v
			}
			mean := s / float64(len(d))
			std := math.Sqrt(s2/float64(len(d)) - mean*mean)
			if math.Abs(mean-tc.mean) > tc.meanTol {
				t.Errorf("mean %v, want %v ± %v", mean, tc.mean, tc.meanTol)
			}
			if math.Abs(std-tc.std) > tc.stdTol {
				t.Errorf("std %v, want %v ± %v", std, tc.std, tc.stdTol)
			}
		})
	}
}

// ---- layers against naive references ----

func TestLinear(t *testing.T) {
	g := autodiff.NoGrad()
	l := &Linear{
		Weight: autodiff.Param(tensor.FromData([]float32{1, 2, 3, -1, 0, 0.5}, 2, 3)),
		Bias:   autodiff.Param(tensor.FromData([]float32{0.5, -1}, 2)),
	}
	x := autodiff.Const(tensor.FromData([]float32{1, 1, 1, 2, 0, -2}, 1, 2, 3))
	y := l.Forward(g, x)
	shapeIs(t, "y", y, 1, 2, 2)
	// Row 1: [1+2+3+0.5, -1+0+0.5-1]; row 2: [2-6+0.5, -2-1-1].
	assertNear(t, "y", y.Value, []float64{6.5, -1.5, -3.5, -4}, 1e-6)

	l.Bias = nil
	assertNear(t, "no bias", l.Forward(g, x).Value, []float64{6, -0.5, -4, -3}, 1e-6)
}

func TestLoRA(t *testing.T) {
	rng := tensor.NewRNG(5)
	g := autodiff.NoGrad()
	l := NewLinear(rng, 6, 4, true)
	x := autodiff.Const(randT(rng, 2, 3, 6))
	base := l.Forward(g, x).Value.Clone()

	l.EnableLoRA(rng, 2, 8) // scale 4
	if l.Weight.RequiresGrad() || l.Bias.RequiresGrad() {
		t.Error("base weights still trainable with LoRA on")
	}
	if !l.LoraA.RequiresGrad() || !l.LoraB.RequiresGrad() {
		t.Error("adapter not trainable")
	}
	assertNear(t, "fresh adapter", l.Forward(g, x).Value, f64(base), 0)

	// Give B values, as training would, and compare with the definition.
	l.LoraB.SetTensor(randT(rng, 4, 2))
	xs := f64(x.Value)
	want := naiveLinear(xs, 6, 6, f64(l.Weight.Value), 4, f64(l.Bias.Value))
	low := naiveLinear(naiveLinear(xs, 6, 6, f64(l.LoraA.Value), 2, nil), 6, 2, f64(l.LoraB.Value), 4, nil)
	for i := range want {
		want[i] += 4 * low[i]
	}
	assertNear(t, "adapter", l.Forward(g, x).Value, want, 1e-5)

	names := map[string]bool{}
	for _, p := range NamedParams(l) {
		names[p.Name] = true
	}
	for _, n := range []string{"weight", "bias", "lora_A", "lora_B"} {
		if !names[n] {
			t.Errorf("parameter %q missing from %v", n, names)
		}
	}

	// Folded computes the same without touching l.
	before := l.Weight.Value.Clone()
	f := (&Linear{Weight: l.Weight, Bias: l.Bias}).Folded(l.LoraA.Value, l.LoraB.Value, l.LoraScale)
	assertNear(t, "folded", f.Forward(g, x).Value, want, 1e-5)
	assertNear(t, "weight after Folded", l.Weight.Value, f64(before), 0)

	l.Merge()
	if l.LoraA != nil || l.LoraB != nil || !l.Weight.RequiresGrad() {
		t.Error("Merge left the adapter in place or the weight frozen")
	}
	assertNear(t, "merged", l.Forward(g, x).Value, want, 1e-5)
}

func TestEnableLoRAAll(t *testing.T) {
	rng := tensor.NewRNG(2)
	a := NewAttention(rng, 8, 2)
	m := &struct {
		Attn *Attention `safetensors:"attn"`
		MLP  *MLP       `safetensors:"mlp"`
	}{a, NewMLP(rng, 8, 16, 8)}
	n := EnableLoRAAll(m, rng, 2, 2, func(name string) bool { return name == "attn.qkv" || name == "attn.proj" })
	if n != 2 || a.QKV.LoraA == nil || m.MLP.FC1.LoraA != nil {
		t.Fatalf("enabled %d adapters; qkv %v, fc1 %v", n, a.QKV.LoraA != nil, m.MLP.FC1.LoraA != nil)
	}
	if got := len(Trainable(m)); got != 4+4 {
		t.Errorf("%d trainable parameters, want 4 adapters + 4 MLP", got)
	}
	MergeAll(m)
	if a.QKV.LoraA != nil || a.Proj.LoraA != nil {
		t.Error("MergeAll left adapters")
	}
}

func naiveLayerNorm(x []float64, rows, dim int, w, b []float64, eps float64, rms bool) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := x[r*dim : (r+1)*dim]
		mean, sq := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(dim)
		if rms {
			mean = 0
		}
		for _, v := range row {
			sq += (v - mean) * (v - mean)
		}
		inv := 1 / math.Sqrt(sq/float64(dim)+eps)
		for i, v := range row {
			y := (v - mean) * inv
			if w != nil {
				y *= w[i]
			}
			if b != nil {
				y += b[i]
			}
			out[r*dim+i] = y
		}
	}
	return out
}

func TestNorms(t *testing.T) {
	rng := tensor.NewRNG(9)
	g := autodiff.NoGrad()
	x := autodiff.Const(randT(rng, 2, 3, 5))
	xs := f64(x.Value)

	ln := NewLayerNorm(5, 1e-5, true)
	ln.Weight.SetTensor(randT(rng, 5))
	ln.Bias.SetTensor(randT(rng, 5))
	assertNear(t, "layernorm", ln.Forward(g, x).Value, naiveLayerNorm(xs, 6, 5, f64(ln.Weight.Value), f64(ln.Bias.Value), 1e-5, false), 1e-5)

	plain := NewLayerNorm(5, 1e-6, false)
	if len(NamedParams(plain)) != 0 {
		t.Error("non-affine LayerNorm has parameters")
	}
	assertNear(t, "layernorm plain", plain.Forward(g, x).Value, naiveLayerNorm(xs, 6, 5, nil, nil, 1e-6, false), 1e-5)

	rms := NewRMSNorm(5, 1e-6)
	rms.Weight.SetTensor(randT(rng, 5))
	assertNear(t, "rmsnorm", rms.Forward(g, x).Value, naiveLayerNorm(xs, 6, 5, f64(rms.Weight.Value), nil, 1e-6, true), 1e-5)
}

func TestEmbedding(t *testing.T) {
	e := &Embedding{Weight: autodiff.Param(tensor.FromData([]float32{0, 1, 10, 11, 20, 21}, 3, 2))}
	y := e.Forward(autodiff.NoGrad(), []int{2, 0, 2})
	shapeIs(t, "y", y, 3, 2)
	assertNear(t, "y", y.Value, []float64{20, 21, 0, 1, 20, 21}, 0)
}

func TestMLPAndSwiGLU(t *testing.T) {
	rng := tensor.NewRNG(11)
	g := autodiff.NoGrad()
	x := autodiff.Const(randT(rng, 2, 2, 4))
	xs := f64(x.Value)

	m := NewMLP(rng, 4, 8, 3)
	h := mapf(naiveLinear(xs, 4, 4, f64(m.FC1.Weight.Value), 8, f64(m.FC1.Bias.Value)), geluTanh)
	want := naiveLinear(h, 4, 8, f64(m.FC2.Weight.Value), 3, f64(m.FC2.Bias.Value))
	y := m.Forward(g, x)
	shapeIs(t, "mlp", y, 2, 2, 3)
	assertNear(t, "mlp", y.Value, want, 1e-5)

	s := NewSwiGLU(rng, 4, 6)
	gate := mapf(naiveLinear(xs, 4, 4, f64(s.Gate.Weight.Value), 6, nil), silu)
	up := naiveLinear(xs, 4, 4, f64(s.Up.Weight.Value), 6, nil)
	for i := range gate {
		gate[i] *= up[i]
	}
	assertNear(t, "swiglu", s.Forward(g, x).Value, naiveLinear(gate, 4, 6, f64(s.Down.Weight.Value), 4, nil), 1e-5)
}

// naiveConv is a direct NCHW convolution with zero padding.
func naiveConv(x []float64, b, cin, h, w int, wt []float64, cout, k int, bias []float64, stride, pad int) ([]float64, int, int) {
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	out := make([]float64, b*cout*oh*ow)
	for n := 0; n < b; n++ {
		for o := 0; o < cout; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					s := 0.0
					if bias != nil {
						s = bias[o]
					}
					for c := 0; c < cin; c++ {
						for ki := 0; ki < k; ki++ {
							for kj := 0; kj < k; kj++ {
								y, xx := i*stride-pad+ki, j*stride-pad+kj
								if y < 0 || y >= h || xx < 0 || xx >= w {
									continue
								}
								s += x[((n*cin+c)*h+y)*w+xx] * wt[((o*cin+c)*k+ki)*k+kj]
							}
						}
					}
					out[((n*cout+o)*oh+i)*ow+j] = s
				}
			}
		}
	}
	return out, oh, ow
}

func TestConv2dAndPatchEmbed(t *testing.T) {
	rng := tensor.NewRNG(13)
	g := autodiff.NoGrad()
	x := autodiff.Const(randT(rng, 2, 3, 5, 6))
	xs := f64(x.Value)
	tests := []struct{ k, stride, pad int }{{3, 1, 1}, {3, 2, 0}, {1, 1, 0}}
	for _, tc := range tests {
		c := NewConv2d(rng, 3, 4, tc.k, tc.stride, tc.pad, true)
		want, oh, ow := naiveConv(xs, 2, 3, 5, 6, f64(c.Weight.Value), 4, tc.k, f64(c.Bias.Value), tc.stride, tc.pad)
		y := c.Forward(g, x)
		shapeIs(t, "conv", y, 2, 4, oh, ow)
		assertNear(t, "conv", y.Value, want, 1e-5)
	}

	img := autodiff.Const(randT(rng, 2, 3, 4, 6))
	p := NewPatchEmbed(rng, 3, 5, 2)
	conv, _, _ := naiveConv(f64(img.Value), 2, 3, 4, 6, f64(p.Proj.Weight.Value), 5, 2, f64(p.Proj.Bias.Value), 2, 0)
	// conv is [2, 5, 2, 3]; tokens are [2, 6, 5] with token = row*3 + col.
	want := make([]float64, 2*6*5)
	for n := 0; n < 2; n++ {
		for d := 0; d < 5; d++ {
			for tok := 0; tok < 6; tok++ {
				want[(n*6+tok)*5+d] = conv[(n*5+d)*6+tok]
			}
		}
	}
	y := p.Forward(g, img)
	shapeIs(t, "patches", y, 2, 6, 5)
	assertNear(t, "patches", y.Value, want, 1e-5)
}

// naiveAttention computes softmax(q·kᵀ/sqrt(D) + mask)·v for q [B, T, H, D]
// and k, v [B, T, Hkv, D], head h reading kv head h/(H/Hkv).
func naiveAttention(q, k, v []float64, b, tq, h, hkv, d int, causal bool) []float64 {
	out := make([]float64, b*tq*h*d)
	scale := 1 / math.Sqrt(float64(d))
	for n := 0; n < b; n++ {
		for hh := 0; hh < h; hh++ {
			kh := hh / (h / hkv)
			for i := 0; i < tq; i++ {
				qi := q[((n*tq+i)*h+hh)*d:][:d]
				scores := make([]float64, tq)
				mx := math.Inf(-1)
				for j := 0; j < tq; j++ {
					if causal && j > i {
						scores[j] = math.Inf(-1)
						continue
					}
					s := 0.0
					kj := k[((n*tq+j)*hkv+kh)*d:][:d]
					for e := range qi {
						s += qi[e] * kj[e]
					}
					scores[j] = s * scale
					mx = math.Max(mx, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				o := out[((n*tq+i)*h+hh)*d:][:d]
				for j := range scores {
					vj := v[((n*tq+j)*hkv+kh)*d:][:d]
					for e := range o {
						o[e] += scores[j] / sum * vj[e]
					}
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	rng := tensor.NewRNG(17)
	g := autodiff.NoGrad()
	const b, tk, dim, heads = 2, 5, 8, 2
	x := autodiff.Const(randT(rng, b, tk, dim))
	xs := f64(x.Value)
	a := NewAttention(rng, dim, heads)
	qkv := naiveLinear(xs, b*tk, dim, f64(a.QKV.Weight.Value), 3*dim, f64(a.QKV.Bias.Value))
	// Split the fused rows [q | k | v] like DiT's reshape(B, N, 3, H, D).
	q, k, v := make([]float64, b*tk*dim), make([]float64, b*tk*dim), make([]float64, b*tk*dim)
	for r := 0; r < b*tk; r++ {
		copy(q[r*dim:], qkv[r*3*dim:][:dim])
		copy(k[r*dim:], qkv[r*3*dim+dim:][:dim])
		copy(v[r*dim:], qkv[r*3*dim+2*dim:][:dim])
	}
	for _, causal := range []bool{false, true} {
		o := naiveAttention(q, k, v, b, tk, heads, heads, dim/heads, causal)
		want := naiveLinear(o, b*tk, dim, f64(a.Proj.Weight.Value), dim, f64(a.Proj.Bias.Value))
		opt := tensor.AttentionOptions{}
		if causal {
			opt.Mask = tensor.MaskCausal
		}
		y := a.Forward(g, x, opt)
		shapeIs(t, "attention", y, b, tk, dim)
		assertNear(t, "attention", y.Value, want, 1e-5)
	}
}

func TestGroupedAttention(t *testing.T) {
	rng := tensor.NewRNG(19)
	g := autodiff.NoGrad()
	const b, tk, dim, heads, kvHeads = 1, 4, 8, 4, 2
	x := autodiff.Const(randT(rng, b, tk, dim))
	xs := f64(x.Value)
	a := NewGroupedAttention(rng, dim, heads, kvHeads)
	q := naiveLinear(xs, b*tk, dim, f64(a.Q.Weight.Value), dim, nil)
	k := naiveLinear(xs, b*tk, dim, f64(a.K.Weight.Value), dim/2, nil)
	v := naiveLinear(xs, b*tk, dim, f64(a.V.Weight.Value), dim/2, nil)
	o := naiveAttention(q, k, v, b, tk, heads, kvHeads, dim/heads, true)
	want := naiveLinear(o, b*tk, dim, f64(a.O.Weight.Value), dim, nil)
	y := a.Forward(g, x, tensor.AttentionOptions{Mask: tensor.MaskCausal})
	shapeIs(t, "gqa", y, b, tk, dim)
	assertNear(t, "gqa", y.Value, want, 1e-5)

	called := false
	a.Rotary = func(g *autodiff.Graph, q, k *autodiff.Var, off int) (*autodiff.Var, *autodiff.Var) {
		called = true
		shapeIs(t, "rotary q", q, b, tk, heads, dim/heads)
		shapeIs(t, "rotary k", k, b, tk, kvHeads, dim/heads)
		return q, k
	}
	a.Forward(g, x, tensor.AttentionOptions{Mask: tensor.MaskCausal})
	if !called {
		t.Error("Rotary hook not called")
	}
}

func TestTimestepEmbedding(t *testing.T) {
	// torch (DiT's timestep_embedding(t, 8)) gives for t = 999:
	// [0.8106, -0.9987, 0.5403, 0.9999, 0.5857, -0.0509, 0.8415, 0.0100] (rounded).
	f := Frequencies([]float32{0, 999}, 8, 10000)
	assertNear(t, "t=0", tensor.FromData(f.Data()[:8], 8), []float64{1, 1, 1, 1, 0, 0, 0, 0}, 0)
	want := make([]float64, 8)
	for i := 0; i < 4; i++ {
		fr := math.Exp(-math.Log(10000) * float64(i) / 4)
		want[i], want[4+i] = math.Cos(999*fr), math.Sin(999*fr)
	}
	assertNear(t, "t=999", tensor.FromData(f.Data()[8:], 8), want, 1e-4)

	rng := tensor.NewRNG(23)
	e := NewTimestepEmbedding(rng, 6)
	ts := []float32{3, 500.5}
	y := e.Forward(autodiff.NoGrad(), ts)
	shapeIs(t, "embedding", y, 2, 6)
	h := mapf(naiveLinear(f64(Frequencies(ts, 256, 10000)), 2, 256, f64(e.Lin1.Weight.Value), 6, f64(e.Lin1.Bias.Value)), silu)
	assertNear(t, "embedding", y.Value, naiveLinear(h, 2, 6, f64(e.Lin2.Weight.Value), 6, f64(e.Lin2.Bias.Value)), 1e-5)

	var names []string
	for _, p := range NamedParams(e) {
		names = append(names, p.Name)
	}
	if want := []string{"mlp.0.bias", "mlp.0.weight", "mlp.2.bias", "mlp.2.weight"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
}

// NamedParams must name weights exactly as the checkpoint package binds
// them.
func TestNamesMatchCheckpointBinding(t *testing.T) {
	rng := tensor.NewRNG(8)
	type blockT struct {
		Norm *LayerNorm `safetensors:"norm1"`
		Attn *Attention `safetensors:"attn"`
		MLP  *MLP       `safetensors:"mlp"`
	}
	m := &struct {
		Patch  *PatchEmbed        `safetensors:"x_embedder"`
		Time   *TimestepEmbedding `safetensors:"t_embedder"`
		Blocks []blockT           `safetensors:"blocks"`
		GQA    *GroupedAttention  `safetensors:"self_attn"`
		FF     *SwiGLU            `safetensors:""`
		Emb    [2]*Embedding      `safetensors:"emb"`
		Norm   *RMSNorm           `safetensors:"norm"`
		Conv   *Conv2d            `safetensors:"conv,optional"`
		Skip   *Linear            `safetensors:"-"`
		Hidden *Linear
	}{
		Patch: NewPatchEmbed(rng, 3, 8, 2), Time: NewTimestepEmbedding(rng, 8),
		GQA: NewGroupedAttention(rng, 8, 4, 2), FF: NewSwiGLU(rng, 8, 16),
		Emb:  [2]*Embedding{NewEmbedding(rng, 3, 8), NewEmbedding(rng, 3, 8)},
		Norm: NewRMSNorm(8, 1e-6), Conv: NewConv2d(rng, 3, 3, 3, 1, 1, false),
		Skip: NewLinear(rng, 1, 1, false), Hidden: NewLinear(rng, 1, 1, false),
	}
	for range 11 {
		m.Blocks = append(m.Blocks, blockT{NewLayerNorm(8, 1e-6, false), NewAttention(rng, 8, 2), NewMLP(rng, 8, 16, 8)})
	}
	m.Blocks[3].Attn.QKV.EnableLoRA(rng, 2, 2)

	want, err := checkpoint.Names(m)
	if err != nil {
		t.Fatal(err)
	}
	// checkpoint lists nil slots too (absent LoRA adapters, biases); keep
	// the ones that hold a tensor.
	tensors, err := checkpoint.Tensors(m)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(n string) bool { return tensors[n] == nil })
	slices.SortFunc(want, naturalCompare)
	var got []string
	for _, p := range NamedParams(m) {
		got = append(got, p.Name)
		if tensors[p.Name] != p.Var.Value {
			t.Errorf("%s: checkpoint binds a different tensor", p.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("names differ from the checkpoint binding\n got %v\nwant %v", got, want)
	}
	if !slices.Contains(got, "blocks.3.attn.qkv.lora_A") || !slices.Contains(got, "blocks.10.mlp.fc2.bias") || !slices.Contains(got, "gate_proj.weight") {
		t.Errorf("expected names missing from %v", got)
	}
}

// TestSetPrecision checks that BF16 changes inference outputs only by
// bfloat16 rounding, leaves recorded (training) graphs in float32, and
// that F32 restores the exact float32 output.
func TestSetPrecision(t *testing.T) {
	rng := tensor.NewRNG(3)
	mlp := &struct {
		A *Linear `safetensors:"a"`
		B *Linear `safetensors:"b"`
	}{NewLinear(rng, 32, 96, true), NewLinear(rng, 96, 8, false)}
	x := autodiff.Const(rng.Normal(10, 32))
	run := func(g *autodiff.Graph) *tensor.Tensor {
		return mlp.B.Forward(g, g.GELUTanh(mlp.A.Forward(g, x))).Value
	}
	ref := run(autodiff.NoGrad())
	if n := SetPrecision(mlp, BF16); n != 2 {
		t.Fatalf("SetPrecision set %d layers, want 2", n)
	}
	low := run(autodiff.NoGrad())
	if d := maxRelDiff(low, ref); d == 0 || d > 0.05 {
		t.Errorf("bf16 output differs from float32 by %.3g (max relative), want (0, 0.05]", d)
	}
	if d := maxRelDiff(run(autodiff.NewGraph()), ref); d != 0 {
		t.Errorf("recording graph under BF16 differs from float32 by %.3g", d)
	}
	SetPrecision(mlp, F32)
	if d := maxRelDiff(run(autodiff.NoGrad()), ref); d != 0 {
		t.Errorf("after SetPrecision(F32) the output differs by %.3g", d)
	}
	for _, s := range []string{"f32", "bf16", "auto", ""} {
		if _, err := ParsePrecision(s); err != nil {
			t.Errorf("ParsePrecision(%q): %v", s, err)
		}
	}
	if _, err := ParsePrecision("fp8"); err == nil {
		t.Error("ParsePrecision(fp8) accepted")
	}
}

// maxRelDiff is max |a-b| / max |b|.
func maxRelDiff(a, b *tensor.Tensor) float64 {
	var d, m float64
	for i, v := range b.Data() {
		d = math.Max(d, math.Abs(float64(a.Data()[i]-v)))
		m = math.Max(m, math.Abs(float64(v)))
	}
	return d / m
}
