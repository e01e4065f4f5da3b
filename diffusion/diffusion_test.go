package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"tessera/autodiff"
	"tessera/tensor"
)

// gaussian is data x0 ~ N(mu_k, sd_k²) independently per coordinate k of a
// sample; its flow velocity and noise prediction are known in closed form.
type gaussian struct {
	mu, sd  []float64
	epsilon bool // predict ε on DiT's discrete process instead of the velocity
	calls   int
}

func (g *gaussian) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	g.calls++
	out := tensor.New(x.Shape()...)
	xd, od := x.Data(), out.Data()
	b := x.Dim(0)
	per := len(xd) / b
	ab := AlphasCumprod()
	for i := 0; i < b; i++ {
		for k := 0; k < per; k++ {
			j := i*per + k
			mu, sd := g.mu[k%len(g.mu)], g.sd[k%len(g.sd)]
			xv := float64(xd[j])
			if g.epsilon {
				a := ab[int(t[i])]
				// x_t = √a·x0 + √(1−a)·ε, so E[ε|x] = √(1−a)/(a·sd² + 1−a)·(x − √a·mu).
				od[j] = float32(math.Sqrt(1-a) / (a*sd*sd + 1 - a) * (xv - math.Sqrt(a)*mu))
				continue
			}
			s := float64(t[i]) / 1000
			v2 := (1-s)*(1-s)*sd*sd + s*s
			d := xv - (1-s)*mu
			// E[ε − x0 | x_s] with x_s = (1−s)·x0 + s·ε.
			od[j] = float32(s/v2*d - mu - (1-s)*sd*sd/v2*d)
		}
	}
	return out, nil
}

// exactFlow is the ODE solution at level b from x at level a:
// x_b = (1−b)·mu + σ(b)/σ(a)·(x_a − (1−a)·mu), σ(s)² = (1−s)²·sd² + s².
func (g *gaussian) exactFlow(x *tensor.Tensor, a, b float64) []float64 {
	d := x.Data()
	per := len(d) / x.Dim(0)
	out := make([]float64, len(d))
	sigma := func(s, sd float64) float64 { return math.Sqrt((1-s)*(1-s)*sd*sd + s*s) }
	for j, v := range d {
		k := j % per
		mu, sd := g.mu[k%len(g.mu)], g.sd[k%len(g.sd)]
		out[j] = (1-b)*mu + sigma(b, sd)/sigma(a, sd)*(float64(v)-(1-a)*mu)
	}
	return out
}

// logSNRUniform returns n+1 levels from a to b equally spaced in
// λ = log((1−s)/s), the variable DPM-Solver steps in.
func logSNRUniform(a, b float64) func(int) ([]float64, error) {
	return func(n int) ([]float64, error) {
		la, lb := math.Log((1-a)/a), math.Log((1-b)/b)
		s := make([]float64, n+1)
		for i := range s {
			l := la + (lb-la)*float64(i)/float64(n)
			s[i] = 1 / (1 + math.Exp(l))
		}
		return s, nil
	}
}

func maxErr(got *tensor.Tensor, want []float64) float64 {
	e := 0.0
	for j, v := range got.Data() {
		e = math.Max(e, math.Abs(float64(v)-want[j]))
	}
	return e
}

func newGaussian() *gaussian {
	return &gaussian{mu: []float64{1, -0.5, 2, 0}, sd: []float64{0.5, 0.4, 1.5, 0.8}}
}

func TestFlowSamplersConvergeAtTheirOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := Noise(rng, 3, 4, 2)
	type sampler func(Model, *tensor.Tensor, []int, []float64) (*tensor.Tensor, Stats, error)
	shift3 := func(n int) ([]float64, error) { return Shifted(n, 3) }
	lq := func(n int) ([]float64, error) { return LinearQuadratic(n, DefaultLQThreshold) }
	inner := logSNRUniform(0.9, 0.05)
	cases := []struct {
		name     string
		fn       sampler
		schedule func(int) ([]float64, error)
		// order is the expected convergence order; the observed order of
		// the two finest step counts must lie within ±0.3 of it (at least
		// order−0.3 where the ends of [0, 1] slow the approach).
		order   float64
		atLeast bool
		evals   func(steps int) int
	}{
		{"euler", Euler, Uniform, 1, false, func(n int) int { return n }},
		{"euler/shifted", Euler, shift3, 1, false, func(n int) int { return n }},
		{"euler/lq", Euler, lq, 1, false, func(n int) int { return n }},
		{"euler/inner", Euler, inner, 1, false, func(n int) int { return n }},
		{"heun", Heun, Uniform, 2, false, func(n int) int { return 2*n - 1 }},
		{"heun/shifted", Heun, shift3, 2, false, func(n int) int { return 2*n - 1 }},
		{"heun/inner", Heun, inner, 2, false, func(n int) int { return 2 * n }},
		{"dpm++2m", DPMSolver2M, Uniform, 2, true, func(n int) int { return n }},
		{"dpm++2m/shifted", DPMSolver2M, shift3, 2, true, func(n int) int { return n }},
		{"dpm++2m/inner", DPMSolver2M, inner, 2, false, func(n int) int { return n }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGaussian()
			var errs []float64
			for _, n := range []int{16, 32, 64, 128, 256} {
				sig, err := c.schedule(n)
				if err != nil {
					t.Fatal(err)
				}
				want := g.exactFlow(noise, sig[0], sig[n])
				g.calls = 0
				got, st, err := c.fn(g, noise, []int{0, 1, 2}, sig)
				if err != nil {
					t.Fatal(err)
				}
				if st.NetworkEvals != c.evals(n) || g.calls != st.NetworkEvals || st.Steps != n {
					t.Errorf("steps %d: stats %+v, model saw %d calls, want %d evals", n, st, g.calls, c.evals(n))
				}
				errs = append(errs, maxErr(got, want))
			}
			for i := 1; i < len(errs); i++ {
				if !(errs[i] < errs[i-1]) {
					t.Fatalf("errors %v do not fall with steps", errs)
				}
			}
			k := len(errs) - 1
			order := math.Log2(errs[k-1] / errs[k])
			if (!c.atLeast && math.Abs(order-c.order) > 0.3) || (c.atLeast && order < 1.4) {
				t.Errorf("errors %v: observed order %.2f, want %.0f", errs, order, c.order)
			}
		})
	}
}

func TestDDIMConvergesOnEpsilonModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	noise := Noise(rng, 2, 4)
	g := newGaussian()
	g.epsilon = true
	ab := AlphasCumprod()
	var errs []float64
	for _, n := range []int{10, 20, 40, 100} {
		ts, err := DDIMTimesteps(n)
		if err != nil {
			t.Fatal(err)
		}
		// Exact probability-flow endpoint from x_T at the first timestep:
		// x̄ = x/√ᾱ has marginal N(mu, sd² + σ̄²), σ̄² = (1−ᾱ)/ᾱ.
		a := ab[ts[0]]
		sb2 := (1 - a) / a
		want := make([]float64, noise.Numel())
		for j, v := range noise.Data() {
			mu, sd := g.mu[j%4], g.sd[j%4]
			want[j] = mu + sd/math.Sqrt(sd*sd+sb2)*(float64(v)/math.Sqrt(a)-mu)
		}
		got, st, err := DDIM(g, noise, []int{0, 0}, n)
		if err != nil {
			t.Fatal(err)
		}
		if st.NetworkEvals != n {
			t.Errorf("ddim %d steps: %d evaluations", n, st.NetworkEvals)
		}
		errs = append(errs, maxErr(got, want))
	}
	for i := 1; i < len(errs); i++ {
		if !(errs[i] < errs[i-1]) {
			t.Errorf("DDIM errors %v do not fall with steps", errs)
		}
	}
	if errs[len(errs)-1] > 0.05 {
		t.Errorf("DDIM error at 100 steps %g", errs[len(errs)-1])
	}
}

func TestDDIMTimestepsMatchDiTRespacing(t *testing.T) {
	cases := []struct {
		steps       int
		first, last int
	}{
		{50, 980, 0}, {32, 992, 0}, {250, 996, 0}, {1000, 999, 0}, {2, 500, 0},
	}
	for _, c := range cases {
		ts, err := DDIMTimesteps(c.steps)
		if err != nil {
			t.Fatalf("steps %d: %v", c.steps, err)
		}
		if len(ts) != c.steps || ts[0] != c.first || ts[len(ts)-1] != c.last {
			t.Errorf("steps %d: got %d timesteps %d..%d, want %d..%d", c.steps, len(ts), ts[0], ts[len(ts)-1], c.first, c.last)
		}
	}
	for _, n := range []int{0, 1, 1001} {
		if _, err := DDIMTimesteps(n); err == nil {
			t.Errorf("%d steps accepted (DiT's respacing has no such grid)", n)
		}
	}
}

func TestSchedulesEndpointsAndMonotone(t *testing.T) {
	lq := func(n int) ([]float64, error) { return LinearQuadratic(n, DefaultLQThreshold) }
	sh := func(n int) ([]float64, error) { return Shifted(n, 3) }
	sh2 := func(n int) ([]float64, error) { return Shifted(n, 0.5) }
	for name, f := range map[string]func(int) ([]float64, error){"uniform": Uniform, "lq": lq, "shift3": sh, "shift0.5": sh2} {
		for _, n := range []int{1, 2, 3, 10, 32, 50, 51, 1000} {
			s, err := f(n)
			if err != nil {
				t.Fatalf("%s %d: %v", name, n, err)
			}
			if len(s) != n+1 || s[0] != 1 || s[n] != 0 {
				t.Errorf("%s %d: %d levels from %g to %g", name, n, len(s), s[0], s[n])
			}
			if err := checkSigmas(s); err != nil {
				t.Errorf("%s %d: %v", name, n, err)
			}
		}
	}
	if _, err := Uniform(0); err == nil {
		t.Error("Uniform(0) accepted")
	}
	if _, err := Shifted(10, -1); err == nil {
		t.Error("negative shift accepted")
	}
}

func TestLinearQuadraticMatchesMovieGen(t *testing.T) {
	s, err := LinearQuadratic(50, 0.025)
	if err != nil {
		t.Fatal(err)
	}
	u := func(i int) float64 { return 1 - s[i] }
	for i := 0; i < 25; i++ {
		if math.Abs(u(i)-float64(i)/1000) > 1e-12 {
			t.Errorf("u_%d = %g, want %g", i, u(i), float64(i)/1000)
		}
	}
	for i := 25; i <= 50; i++ {
		fi := float64(i)
		if want := 0.00152*fi*fi - 0.075*fi + 0.95; math.Abs(u(i)-want) > 1e-12 {
			t.Errorf("u_%d = %.6f, want %.6f", i, u(i), want)
		}
	}
	for _, c := range []struct {
		i    int
		want float64
	}{{25, 0.025}, {26, 0.0275}, {49, 0.9245}, {50, 1}} { // the notes' rounded values
		if math.Abs(u(c.i)-c.want) > 5e-5 {
			t.Errorf("u_%d = %g, want %g", c.i, u(c.i), c.want)
		}
	}
	if d := u(50) - u(49); math.Abs(d-0.0755) > 5e-5 {
		t.Errorf("last step %g, want 0.0755", d)
	}
}

func TestGuidedBatchesBothBranches(t *testing.T) {
	rec := &recorder{}
	g := Guided{Model: rec, Scale: 3, Null: 10}
	x := tensor.FromData([]float32{1, 2, 3, 4}, 2, 2)
	out, err := g.Predict(x, []float32{500, 500}, []int{4, 7})
	if err != nil {
		t.Fatal(err)
	}
	if rec.calls != 1 || len(rec.y) != 4 || rec.y[0] != 4 || rec.y[1] != 7 || rec.y[2] != 10 || rec.y[3] != 10 {
		t.Fatalf("model called %d times with labels %v, want one batched call [4 7 10 10]", rec.calls, rec.y)
	}
	// recorder returns x·(label+1): c = x·(y+1), u = x·11.
	want := []float32{}
	for i, v := range x.Data() {
		c, u := v*float32([]int{4, 7}[i/2]+1), v*11
		want = append(want, u+3*(c-u))
	}
	for i, v := range out.Data() {
		if math.Abs(float64(v-want[i])) > 1e-5 {
			t.Errorf("out[%d] = %g, want %g", i, v, want[i])
		}
	}
}

type recorder struct {
	calls int
	y     []int
}

func (r *recorder) Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	r.calls++
	r.y = append([]int(nil), y...)
	out := x.Clone()
	d := out.Data()
	per := len(d) / x.Dim(0)
	for j := range d {
		d[j] *= float32(y[j/per] + 1)
	}
	return out, nil
}

func TestInterpolateAndLabels(t *testing.T) {
	x0 := tensor.FromData([]float32{1, 2, 3, 4}, 2, 2)
	eps := tensor.FromData([]float32{-1, 0, 1, 2}, 2, 2)
	xs, v := Interpolate(x0, eps, []float32{0.25, 1})
	wantX := []float32{0.5, 1.5, 1, 2}
	wantV := []float32{-2, -2, -2, -2}
	for i := range wantX {
		if xs.Data()[i] != wantX[i] || v.Data()[i] != wantV[i] {
			t.Fatalf("x_s %v target %v, want %v %v", xs.Data(), v.Data(), wantX, wantV)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	y := make([]int, 20000)
	dropped := 0
	for _, v := range DropLabels(rng, y, 10, 0.1) {
		if v == 10 {
			dropped++
		}
	}
	if f := float64(dropped) / float64(len(y)); math.Abs(f-0.1) > 0.01 {
		t.Errorf("dropped fraction %g, want 0.1", f)
	}
	s := NoiseLevels(rng, 20000, 0, 1)
	mean := 0.0
	for _, v := range s {
		if v <= 0 || v >= 1 {
			t.Fatalf("noise level %g outside (0, 1)", v)
		}
		mean += float64(v)
	}
	if mean /= float64(len(s)); math.Abs(mean-0.5) > 0.01 {
		t.Errorf("logit-normal(0,1) mean %g, want 0.5", mean)
	}
}

// affine is a one-parameter network out = w·x, whose flow-matching loss
// has a known gradient.
type affine struct{ w *autodiff.Var }

func (a affine) Forward(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int) *autodiff.Var {
	return g.Mul(x, a.w)
}

func TestLossGradientMatchesClosedForm(t *testing.T) {
	x0 := tensor.FromData([]float32{1, -2, 0.5, 3, -1, 2, 0, 1}, 2, 2, 2)
	net := affine{autodiff.Param(tensor.FromData([]float32{0.3}, 1))}
	g := autodiff.NewGraph()
	loss, err := Loss(g, net, x0, []int{0, 1}, tensor.NewRNG(9))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(loss); err != nil {
		t.Fatal(err)
	}
	// Replay the same draws: L = mean((w·x_s − v)²), dL/dw = 2·mean((w·x_s − v)·x_s).
	rng := tensor.NewRNG(9)
	s := NoiseLevels(rng, 2, 0, 1)
	eps := tensor.New(2, 2, 2)
	for i := range eps.Data() {
		eps.Data()[i] = float32(rng.NormFloat64())
	}
	xs, v := Interpolate(x0, eps, s)
	var wantL, wantG float64
	for i, xv := range xs.Data() {
		r := 0.3*float64(xv) - float64(v.Data()[i])
		wantL += r * r / 8
		wantG += 2 * r * float64(xv) / 8
	}
	if got := float64(loss.Value.Data()[0]); math.Abs(got-wantL) > 1e-5*math.Max(1, wantL) {
		t.Errorf("loss %g, want %g", got, wantL)
	}
	if got := float64(net.w.Grad.Data()[0]); math.Abs(got-wantG) > 1e-4*math.Max(1, math.Abs(wantG)) {
		t.Errorf("gradient %g, want %g", got, wantG)
	}
	if _, err := Loss(g, net, x0, []int{0}, rng); err == nil {
		t.Error("label count mismatch accepted")
	}
}
