package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"tessera/autodiff"
	"tessera/internal/parallel"
	"tessera/internal/simd"
	"tessera/tensor"
)

// pair returns the two parameters of the PyTorch reference script: a [2,3]
// weight and a [2] bias.
func pair() []*autodiff.Var {
	return []*autodiff.Var{
		autodiff.Param(tensor.FromData([]float32{0.5, -1, 2, 0, 0.25, -0.75}, 2, 3)),
		autodiff.Param(tensor.FromData([]float32{0.1, -0.2}, 2)),
	}
}

// setRefGrads sets the gradients the reference script uses at step s.
func setRefGrads(ps []*autodiff.Var, s int) {
	gp := []float32{0.1, -0.2, 0.3, 1, -0.5, 0}
	for i := range gp {
		gp[i] = gp[i]*float32(s+1) - 0.05*float32(s)
	}
	gb := []float32{0.3 / float32(s+1), -0.01 / float32(s+1)}
	ps[0].Grad = tensor.FromData(gp, 2, 3)
	ps[1].Grad = tensor.FromData(gb, 2)
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*math.Max(1, math.Abs(want[i])) {
			t.Errorf("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

// The expected values come from torch 1.13 running the same three steps
// (lr 0.01, betas 0.9/0.999, eps 1e-8, weight decay 0.1 for AdamW).
func TestOptimizersMatchPyTorch(t *testing.T) {
	tests := []struct {
		name       string
		make       func([]*autodiff.Var) Optimizer
		wantW      []float64
		wantB      []float64
		tolerance  float64
		skipThread bool
	}{
		{
			name: "adamw",
			make: func(ps []*autodiff.Var) Optimizer {
				return NewAdamW(ps, AdamWConfig{LR: 0.01, WeightDecay: 0.1})
			},
			wantW:     []float64{0.46875086426734924, -0.9680531620979309, 1.9646236896514893, -0.029255399480462074, 0.2783491611480713, -0.7320326566696167},
			wantB:     []float64{0.07167623937129974, -0.171376571059227},
			tolerance: 1e-6,
		},
		{
			name: "sgd nesterov weight decay",
			make: func(ps []*autodiff.Var) Optimizer {
				return NewSGD(ps, SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: true})
			},
			wantW:     []float64{0.3830994963645935, -0.6686031818389893, 1.5802171230316162, -1.421617031097412, 1.0075976848602295, -0.711441695690155},
			wantB:     []float64{-0.06326061487197876, -0.19297774136066437},
			tolerance: 1e-6,
		},
		{
			name: "sgd dampening",
			make: func(ps []*autodiff.Var) Optimizer {
				return NewSGD(ps, SGDConfig{LR: 0.1, Momentum: 0.8, Dampening: 0.1})
			},
			wantW:     []float64{0.4333000183105469, -0.8152999877929688, 1.7656999826431274, -0.820900022983551, 0.6861000061035156, -0.7329000234603882},
			wantB:     []float64{-0.006500003393739462, -0.19644999504089355},
			tolerance: 1e-6,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := pair()
			opt := tc.make(ps)
			for s := 0; s < 3; s++ {
				setRefGrads(ps, s)
				opt.Step()
			}
			assertClose(t, "weight", ps[0].Value.Data(), tc.wantW, tc.tolerance)
			assertClose(t, "bias", ps[1].Value.Data(), tc.wantB, tc.tolerance)
		})
	}
}

func TestAdamWDecayMatricesOnly(t *testing.T) {
	ps := pair()
	bias0 := append([]float32(nil), ps[1].Value.Data()...)
	opt := NewAdamW(ps, AdamWConfig{LR: 0.5, WeightDecay: 1, DecayMatricesOnly: true})
	ps[0].Grad = tensor.New(2, 3)
	ps[1].Grad = tensor.New(2)
	opt.Step()
	// Zero gradients: only decay moves a parameter, by the factor 1 - lr*wd.
	assertClose(t, "weight", ps[0].Value.Data(), []float64{0.25, -0.5, 1, 0, 0.125, -0.375}, 1e-7)
	assertClose(t, "bias", ps[1].Value.Data(), []float64{float64(bias0[0]), float64(bias0[1])}, 0)
}

func TestSkipsFrozenAndGradless(t *testing.T) {
	for _, name := range []string{"adamw", "sgd"} {
		t.Run(name, func(t *testing.T) {
			ps := pair()
			ps = append(ps, autodiff.Param(tensor.FromData([]float32{3, 4}, 2)))
			ps[0].SetRequiresGrad(false)
			setRefGrads(ps, 0) // ps[2] keeps a nil gradient
			var opt Optimizer = NewAdamW(ps, AdamWConfig{LR: 0.1})
			if name == "sgd" {
				opt = NewSGD(ps, SGDConfig{LR: 0.1, Momentum: 0.9})
			}
			opt.Step()
			assertClose(t, "frozen", ps[0].Value.Data(), []float64{0.5, -1, 2, 0, 0.25, -0.75}, 0)
			assertClose(t, "gradless", ps[2].Value.Data(), []float64{3, 4}, 0)
			if b := ps[1].Value.Data(); b[0] == 0.1 {
				t.Errorf("trainable parameter not updated: %v", b)
			}
		})
	}
}

func TestClipGradNorm(t *testing.T) {
	tests := []struct {
		name     string
		max      float32
		wantNorm float32
		wantP    []float64
		wantQ    []float64
	}{
		// torch.nn.utils.clip_grad_norm_ gives 1.4999999, 1.9999999, 5.9999995.
		{"clipped", 6.5, 13, []float64{1.5, 0, 2}, []float64{6, 0}},
		{"unclipped", 20, 13, []float64{3, 0, 4}, []float64{12, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := autodiff.Param(tensor.New(3))
			q := autodiff.Param(tensor.New(2))
			r := autodiff.Param(tensor.New(4)) // no gradient: ignored
			p.Grad = tensor.FromData([]float32{3, 0, 4}, 3)
			q.Grad = tensor.FromData([]float32{12, 0}, 2)
			n := ClipGradNorm([]*autodiff.Var{p, q, r}, tc.max)
			if n != tc.wantNorm {
				t.Errorf("norm %v, want %v", n, tc.wantNorm)
			}
			assertClose(t, "p", p.Grad.Data(), tc.wantP, 1e-6)
			assertClose(t, "q", q.Grad.Data(), tc.wantQ, 1e-6)
		})
	}
}

// randParams returns parameters of assorted sizes, one larger than a grain,
// with random values and gradients.
func randParams(seed uint64) []*autodiff.Var {
	r := rand.New(rand.NewPCG(seed, 1))
	var ps []*autodiff.Var
	for _, n := range []int{3, grain*3 + 17, 1000, 1, grain - 1} {
		v, g := make([]float32, n), make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
			g[i] = float32(r.NormFloat64())
		}
		p := autodiff.Param(tensor.FromData(v, n))
		p.Grad = tensor.FromData(g, n)
		ps = append(ps, p)
	}
	return ps
}

// The parallel step must equal the serial kernel bit for bit whatever the
// thread count, and state must round-trip exactly.
func TestAdamWParallelAndState(t *testing.T) {
	run := func(threads int) []*autodiff.Var {
		old := parallel.SetThreads(threads)
		defer parallel.SetThreads(old)
		ps := randParams(7)
		opt := NewAdamW(ps, AdamWConfig{LR: 0.01, WeightDecay: 0.05})
		opt.Step()
		opt.Step()
		// Save, restore into a fresh optimiser, and continue there.
		opt2 := NewAdamW(ps, AdamWConfig{LR: 0.01, WeightDecay: 0.05})
		if err := opt2.Load(opt.State()); err != nil {
			t.Fatal(err)
		}
		opt2.Step()
		return ps
	}
	// Serial reference with the kernel directly.
	ref := randParams(7)
	for _, p := range ref {
		n := p.Value.Numel()
		m, v := make([]float32, n), make([]float32, n)
		for s := 1; s <= 3; s++ {
			c := newAdamWCoef(float64(float32(0.01)), float64(float32(0.9)), float64(float32(0.999)), float64(float32(1e-8)), float64(float32(0.05)), s)
			adamwGeneric(p.Value.Data(), p.Grad.Data(), m, v, c)
		}
	}
	for _, threads := range []int{1, 2, 3} {
		got := run(threads)
		for i := range got {
			g, w := got[i].Value.Data(), ref[i].Value.Data()
			for j := range g {
				if g[j] != w[j] {
					t.Fatalf("threads %d: param %d[%d] = %v, serial %v", threads, i, j, g[j], w[j])
				}
			}
		}
	}
}

// Every kernel level must round exactly as the Go loop does, for every
// length (vector body plus tail).
func TestAdamWKernelLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := newAdamWCoef(3e-4, 0.9, 0.95, 1e-8, 0.1, 7)
	for _, level := range simd.Levels() {
		t.Run(level.String(), func(t *testing.T) {
			old := simd.Set(level)
			defer simd.Set(old)
			for _, n := range []int{1, 7, 8, 15, 16, 17, 33, 1003} {
				arrays := make([][]float32, 8) // p, g, m, v for the kernel, then for the reference
				for i := range 4 {
					arrays[i] = make([]float32, n)
					for j := range arrays[i] {
						arrays[i][j] = float32(r.NormFloat64())
					}
					if i == 3 { // v >= 0
						for j := range arrays[i] {
							arrays[i][j] *= arrays[i][j]
						}
					}
					arrays[i+4] = append([]float32(nil), arrays[i]...)
				}
				adamw(arrays[0], arrays[1], arrays[2], arrays[3], c)
				adamwGeneric(arrays[4], arrays[5], arrays[6], arrays[7], c)
				for _, k := range []int{0, 2, 3} {
					for j := range n {
						if arrays[k][j] != arrays[k+4][j] {
							t.Fatalf("n=%d: array %d[%d] = %v, Go loop %v", n, k, j, arrays[k][j], arrays[k+4][j])
						}
					}
				}
			}
		})
	}
}

func TestLoadRejectsBadState(t *testing.T) {
	ps := pair()
	setRefGrads(ps, 0)
	opt := NewAdamW(ps, AdamWConfig{})
	opt.Step()
	st := opt.State()
	st["adamw.1.m"] = tensor.New(3)
	if err := NewAdamW(pair(), AdamWConfig{}).Load(st); err == nil {
		t.Error("Load accepted a moment of the wrong size")
	}
	delete(st, "adamw.1.m")
	if err := NewAdamW(pair(), AdamWConfig{}).Load(st); err == nil {
		t.Error("Load accepted a state without a moment")
	}
	if err := NewEMA(pair(), 0.9).Load(map[string]*tensor.Tensor{}); err == nil {
		t.Error("EMA Load accepted an empty state")
	}
}

func TestEMA(t *testing.T) {
	ps := pair()
	e := NewEMA(ps, 0.5)
	copy(ps[1].Value.Data(), []float32{1.1, 0.8}) // the optimiser moved the bias by +1
	e.Update()                                    // shadow = 0.5*old + 0.5*new
	assertClose(t, "average", e.Average(1).Data(), []float64{0.6, 0.3}, 1e-7)

	e.Swap()
	assertClose(t, "swapped in", ps[1].Value.Data(), []float64{0.6, 0.3}, 1e-7)
	e.Swap()
	assertClose(t, "swapped back", ps[1].Value.Data(), []float64{1.1, 0.8}, 1e-7)

	other := pair()
	if err := e.CopyTo(other); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "copy", other[1].Value.Data(), []float64{0.6, 0.3}, 1e-7)
	if err := e.CopyTo(other[:1]); err == nil {
		t.Error("CopyTo accepted a shorter parameter list")
	}

	restored := NewEMA(pair(), 0.5)
	if err := restored.Load(e.State()); err != nil {
		t.Fatal(err)
	}
	if restored.Updates() != 1 {
		t.Errorf("restored %d updates, want 1", restored.Updates())
	}
	assertClose(t, "restored", restored.Average(1).Data(), []float64{0.6, 0.3}, 1e-7)
}

func TestEMAWarmup(t *testing.T) {
	ps := []*autodiff.Var{autodiff.Param(tensor.FromData([]float32{0}, 1))}
	e := NewEMA(ps, 0.999)
	e.Warmup = true
	ps[0].Value.Data()[0] = 10
	e.Update() // decay min(0.999, 1/10) = 0.1
	assertClose(t, "warm", e.Average(0).Data(), []float64{9}, 1e-6)
}

func TestSchedules(t *testing.T) {
	wc := WarmupCosine{Peak: 1, Final: 0.1, Warmup: 4, Total: 14}
	tests := []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"constant", Constant(0.3), 99, 0.3},
		{"warmup first", wc, 0, 0.25},
		{"warmup last", wc, 3, 1},
		{"cosine start", wc, 4, 1},
		{"cosine middle", wc, 9, 0.55},
		{"cosine end", wc, 14, 0.1},
		{"after end", wc, 100, 0.1},
		{"warmup constant", WarmupConstant{Peak: 2, Warmup: 2}, 0, 1},
		{"warmup constant after", WarmupConstant{Peak: 2, Warmup: 2}, 5, 2},
	}
	for _, tc := range tests {
		if got := tc.s.LR(tc.step); math.Abs(float64(got)-tc.want) > 1e-6 {
			t.Errorf("%s: LR(%d) = %v, want %v", tc.name, tc.step, got, tc.want)
		}
	}
}

// BenchmarkAdamWStep times one step over 3.1M parameters in six tensors at
// each kernel level, on one thread and on all.
func BenchmarkAdamWStep(b *testing.B) {
	ps := make([]*autodiff.Var, 0, 8)
	total := 0
	for _, n := range []int{1 << 20, 1 << 20, 1 << 19, 1 << 19, 4096, 4096} {
		p := autodiff.Param(tensor.New(n))
		p.Grad = tensor.New(n)
		for i := range p.Grad.Data() {
			p.Grad.Data()[i] = float32(i%7) - 3
		}
		ps = append(ps, p)
		total += n
	}
	opt := NewAdamW(ps, AdamWConfig{WeightDecay: 0.01})
	for _, level := range simd.Levels() {
		for _, threads := range []int{1, parallel.Threads()} {
			b.Run(fmt.Sprintf("%s/threads=%d", level, threads), func(b *testing.B) {
				oldL, oldT := simd.Set(level), parallel.SetThreads(threads)
				defer func() { simd.Set(oldL); parallel.SetThreads(oldT) }()
				b.SetBytes(int64(total) * 28) // read p, g, m, v; write p, m, v
				for b.Loop() {
					opt.Step()
				}
			})
		}
	}
}
