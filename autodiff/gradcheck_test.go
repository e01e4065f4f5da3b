package autodiff

import (
	"fmt"
	"math"
	"testing"

	"tessera/tensor"
)

// gradCase builds an output from its inputs; the check differentiates
// Σ out·R for a fixed random R.
type gradCase struct {
	name   string
	inputs []*tensor.Tensor
	f      func(g *Graph, x []*Var) *Var
	tol    float64 // relative tolerance; 0 means 1e-2
}

// weightedSum is Σ out·r accumulated in float64.
func weightedSum(out, r *tensor.Tensor) float64 {
	var s float64
	o, w := out.Data(), r.Data()
	for i := range o {
		s += float64(o[i]) * float64(w[i])
	}
	return s
}

// checkGrad compares Backward's gradients with central finite differences.
func checkGrad(t *testing.T, tc gradCase) {
	t.Helper()
	tol := tc.tol
	if tol == 0 {
		tol = 1e-2
	}
	vars := make([]*Var, len(tc.inputs))
	for i, in := range tc.inputs {
		vars[i] = Param(in.Clone())
	}
	g := NewGraph()
	out := tc.f(g, vars)
	r := tensor.NewRNG(99).Normal(out.Value.Shape()...)
	loss := g.SumAll(g.Mul(out, Const(r)))
	if err := g.Backward(loss); err != nil {
		t.Fatalf("%s: Backward: %v", tc.name, err)
	}
	eval := func() float64 {
		return weightedSum(tc.f(NoGrad(), vars).Value, r)
	}
	for vi, v := range vars {
		if v.Grad == nil {
			t.Fatalf("%s: input %d got no gradient", tc.name, vi)
		}
		ana := v.Grad.Data()
		data := v.Value.Data()
		num := make([]float64, len(data))
		var scale float64
		for i := range data {
			const h = 1e-2
			old := data[i]
			data[i] = old + h
			up := eval()
			data[i] = old - h
			down := eval()
			data[i] = old
			num[i] = (up - down) / (2 * h)
			scale = math.Max(scale, math.Abs(num[i]))
		}
		for i := range data {
			diff := math.Abs(num[i] - float64(ana[i]))
			if diff > tol*math.Max(math.Abs(num[i]), 0.1*scale)+1e-4 {
				t.Errorf("%s: input %d element %d: backward %.6g, finite difference %.6g", tc.name, vi, i, ana[i], num[i])
				return
			}
		}
	}
}

func TestGradCore(t *testing.T) {
	r := tensor.NewRNG(1)
	pos := func(shape ...int) *tensor.Tensor { return r.Uniform(0.5, 2, shape...) }
	cases := []gradCase{
		{name: "Add", inputs: []*tensor.Tensor{r.Normal(3, 4), r.Normal(3, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Add(x[0], x[1]) }},
		{name: "Add-bias", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(4)}, f: func(g *Graph, x []*Var) *Var { return g.Add(x[0], x[1]) }},
		{name: "Add-B1C", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(2, 1, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Add(x[0], x[1]) }},
		{name: "Sub-broadcast", inputs: []*tensor.Tensor{r.Normal(3, 1), r.Normal(1, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Sub(x[0], x[1]) }},
		{name: "Mul-broadcast", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(2, 1, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Mul(x[0], x[1]) }},
		{name: "Div", inputs: []*tensor.Tensor{r.Normal(3, 4), pos(4)}, f: func(g *Graph, x []*Var) *Var { return g.Div(x[0], x[1]) }},
		{name: "scalar-ops", inputs: []*tensor.Tensor{r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Neg(g.Scale(g.AddScalar(x[0], 1), 3)) }},
		{name: "Exp", inputs: []*tensor.Tensor{r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Exp(x[0]) }},
		{name: "Log", inputs: []*tensor.Tensor{pos(5)}, f: func(g *Graph, x []*Var) *Var { return g.Log(x[0]) }},
		{name: "Sqrt", inputs: []*tensor.Tensor{pos(5)}, f: func(g *Graph, x []*Var) *Var { return g.Sqrt(x[0]) }},
		{name: "Square", inputs: []*tensor.Tensor{r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Square(x[0]) }},
		{name: "Tanh", inputs: []*tensor.Tensor{r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Tanh(x[0]) }},
		{name: "Sigmoid", inputs: []*tensor.Tensor{r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Sigmoid(x[0]) }},
		{name: "MatMul", inputs: []*tensor.Tensor{r.Normal(3, 4), r.Normal(4, 5)}, f: func(g *Graph, x []*Var) *Var { return g.MatMul(x[0], x[1]) }},
		{name: "MatMul-batched", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(2, 4, 2)}, f: func(g *Graph, x []*Var) *Var { return g.MatMul(x[0], x[1]) }},
		{name: "MatMul-broadcast", inputs: []*tensor.Tensor{r.Normal(2, 1, 3, 4), r.Normal(3, 4, 2)}, f: func(g *Graph, x []*Var) *Var { return g.MatMul(x[0], x[1]) }},
		{name: "MatMul-shared-weight", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(4, 2)}, f: func(g *Graph, x []*Var) *Var { return g.MatMul(x[0], x[1]) }},
		{name: "MatMul-transposed-view", inputs: []*tensor.Tensor{r.Normal(4, 3), r.Normal(4, 5)}, f: func(g *Graph, x []*Var) *Var { return g.MatMul(g.Transpose(x[0], 0, 1), x[1]) }},
		{name: "Linear", inputs: []*tensor.Tensor{r.Normal(2, 3, 4), r.Normal(5, 4), r.Normal(5)}, f: func(g *Graph, x []*Var) *Var { return g.Linear(x[0], x[1], x[2]) }},
		{name: "Linear-nobias", inputs: []*tensor.Tensor{r.Normal(3, 4), r.Normal(2, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Linear(x[0], x[1], nil) }},
		{name: "Linear-strided-input", inputs: []*tensor.Tensor{r.Normal(3, 8), r.Normal(2, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Linear(g.Slice(x[0], 1, 2, 6), x[1], nil) }},
		{name: "Reshape", inputs: []*tensor.Tensor{r.Normal(2, 6)}, f: func(g *Graph, x []*Var) *Var { return g.Mul(g.Reshape(x[0], 3, -1), g.Reshape(x[0], 3, 4)) }},
		{name: "Permute", inputs: []*tensor.Tensor{r.Normal(2, 3, 4)}, f: func(g *Graph, x []*Var) *Var { return g.Reshape(g.Permute(x[0], 2, 0, 1), 4, 6) }},
		{name: "Slice-Concat", inputs: []*tensor.Tensor{r.Normal(3, 5), r.Normal(3, 2)}, f: func(g *Graph, x []*Var) *Var {
			return g.Concat(1, g.Slice(x[0], 1, 3, 5), x[1], g.Slice(x[0], 1, 0, 2))
		}},
		{name: "Split-Chunk", inputs: []*tensor.Tensor{r.Normal(4, 6)}, f: func(g *Graph, x []*Var) *Var {
			p := g.Split(x[0], 1, 1, 2, 3)
			c := g.Chunk(x[0], 2, 0)
			return g.Add(g.Mul(g.Concat(1, p[2], p[0], p[1]), x[0]), g.Concat(0, c[1], c[0]))
		}},
		{name: "Unsqueeze-Squeeze-Broadcast", inputs: []*tensor.Tensor{r.Normal(3)}, f: func(g *Graph, x []*Var) *Var {
			return g.Squeeze(g.BroadcastTo(g.Unsqueeze(x[0], 0), 1, 2, 3), 0)
		}},
		{name: "Sum-Mean", inputs: []*tensor.Tensor{r.Normal(2, 3, 4)}, f: func(g *Graph, x []*Var) *Var {
			return g.Add(g.Sum(x[0], 1, true), g.Unsqueeze(g.Mean(x[0], -1, false), -1))
		}},
		{name: "SumAll-MeanAll", inputs: []*tensor.Tensor{r.Normal(2, 3)}, f: func(g *Graph, x []*Var) *Var {
			return g.Add(g.SumAll(g.Square(x[0])), g.MeanAll(x[0]))
		}},
		{name: "MSE", inputs: []*tensor.Tensor{r.Normal(2, 3), r.Normal(2, 3)}, f: func(g *Graph, x []*Var) *Var { return g.MSE(x[0], x[1]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkGrad(t, tc) })
	}
}

func TestNoGradRecordsNothing(t *testing.T) {
	r := tensor.NewRNG(2)
	w := Param(r.Normal(4, 3))
	x := Const(r.Normal(2, 3))
	g := NoGrad()
	y := g.MSE(g.Linear(x, w, nil), Const(tensor.Zeros(2, 4)))
	if g.Len() != 0 || y.graph != nil || y.RequiresGrad() {
		t.Fatalf("NoGrad recorded %d ops (result graph %v)", g.Len(), y.graph)
	}
	if err := g.Backward(y); err == nil {
		t.Fatal("Backward on NoGrad graph succeeded")
	}
	// A recording graph with no trainable input records nothing either.
	g2 := NewGraph()
	z := g2.SumAll(g2.Exp(x))
	if g2.Len() != 0 {
		t.Fatalf("graph over constants recorded %d ops", g2.Len())
	}
	if err := g2.Backward(z); err == nil {
		t.Fatal("Backward with nothing recorded succeeded")
	}
}

func TestBackwardErrors(t *testing.T) {
	g := NewGraph()
	x := Param(tensor.Ones(3))
	y := g.Exp(x)
	if err := g.Backward(y); err == nil {
		t.Fatal("Backward of a 3-element loss succeeded")
	}
	other := NewGraph()
	if err := other.Backward(g.SumAll(y)); err == nil {
		t.Fatal("Backward on a graph that did not record the loss succeeded")
	}
}

func TestGradientsAccumulate(t *testing.T) {
	w := Param(tensor.FromData([]float32{1, 2}, 2))
	for step := 1; step <= 2; step++ {
		g := NewGraph()
		// w used twice: d/dw Σ(w*w + w) = 2w + 1.
		loss := g.SumAll(g.Add(g.Mul(w, w), w))
		if err := g.Backward(loss); err != nil {
			t.Fatal(err)
		}
		g.Release()
		want := []float32{3 * float32(step), 5 * float32(step)}
		if got := w.Grad.Data(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after %d backward passes Grad = %v, want %v", step, got, want)
		}
	}
	w.ZeroGrad()
	if w.Grad != nil {
		t.Fatal("ZeroGrad left a gradient")
	}
}

func TestLeafGradsAreIndependent(t *testing.T) {
	a, b := Param(tensor.Ones(3)), Param(tensor.Ones(3))
	g := NewGraph()
	if err := g.Backward(g.SumAll(g.Add(a, b))); err != nil {
		t.Fatal(err)
	}
	a.Grad.Data()[0] = 100
	if b.Grad.At(0) != 1 {
		t.Fatalf("leaves share a gradient buffer: b.Grad = %v", b.Grad)
	}
}

func TestFrozenParamGetsNoGrad(t *testing.T) {
	r := tensor.NewRNG(3)
	w, b := Param(r.Normal(2, 3)), Param(r.Normal(2))
	w.SetRequiresGrad(false)
	g := NewGraph()
	if err := g.Backward(g.SumAll(g.Linear(Const(r.Normal(4, 3)), w, b))); err != nil {
		t.Fatal(err)
	}
	if w.Grad != nil || b.Grad == nil {
		t.Fatalf("frozen weight grad %v, bias grad %v", w.Grad, b.Grad)
	}
}
