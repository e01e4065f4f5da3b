package nn

import (
	"math"
	"testing"

	"tessera/autodiff"
	"tessera/tensor"
)

// checkGrads compares the gradients Backward gives for loss = Σ y⊙r (r a
// fixed random tensor) with central finite differences, for a few elements
// of every trainable parameter of layer and of the input x if it is a
// Param. Frozen parameters must get no gradient.
func checkGrads(t *testing.T, layer any, x *autodiff.Var, forward func(g *autodiff.Graph) *autodiff.Var) {
	t.Helper()
	rng := tensor.NewRNG(99)
	y0 := forward(autodiff.NoGrad())
	r := rng.Normal(y0.Shape()...)
	lossAt := func() float64 {
		y := forward(autodiff.NoGrad()).Value.Contiguous().Data()
		s := 0.0
		for i, v := range y {
			s += float64(v) * float64(r.Data()[i])
		}
		return s
	}
	g := autodiff.NewGraph()
	loss := g.SumAll(g.Mul(forward(g), autodiff.Const(r)))
	if err := g.Backward(loss); err != nil {
		t.Fatal(err)
	}
	named := NamedParams(layer)
	if x != nil && x.RequiresGrad() {
		named = append(named, NamedParam{"input", x})
	}
	for _, p := range named {
		if !p.Var.RequiresGrad() {
			if p.Var.Grad != nil {
				t.Errorf("%s: frozen parameter got a gradient", p.Name)
			}
			continue
		}
		if p.Var.Grad == nil {
			t.Errorf("%s: no gradient", p.Name)
			continue
		}
		val, grad := p.Var.Value.Data(), p.Var.Grad.Contiguous().Data()
		for _, i := range sampleIdx(len(val)) {
			const h = 1e-2
			orig := val[i]
			val[i] = orig + h
			up := lossAt()
			val[i] = orig - h
			down := lossAt()
			val[i] = orig
			fd := (up - down) / (2 * h)
			if d := math.Abs(fd - float64(grad[i])); d > 2e-2*math.Max(1, math.Abs(fd)) {
				t.Errorf("%s[%d]: gradient %v, finite difference %v", p.Name, i, grad[i], fd)
			}
		}
	}
}

// sampleIdx picks up to 6 indices spread over [0, n).
func sampleIdx(n int) []int {
	if n <= 6 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return []int{0, 1, n / 3, n / 2, 2 * n / 3, n - 1}
}

func TestGradients(t *testing.T) {
	rng := tensor.NewRNG(31)
	param := func(shape ...int) *autodiff.Var { return autodiff.Param(rng.Normal(shape...)) }

	lora := NewLinear(rng, 4, 3, true)
	lora.EnableLoRA(rng, 2, 4)
	lora.LoraB.SetTensor(rng.Normal(3, 2))

	ln := NewLayerNorm(5, 1e-5, true)
	ln.Weight.SetTensor(rng.Normal(5))
	rms := NewRMSNorm(5, 1e-6)
	rms.Weight.SetTensor(rng.Normal(5))
	attn := NewAttention(rng, 8, 2)
	gqa := NewGroupedAttention(rng, 8, 4, 2)
	emb := NewEmbedding(rng, 5, 3)
	temb := NewTimestepEmbedding(rng, 4)
	for _, l := range []*Linear{temb.Lin1, temb.Lin2} {
		Normal(rng, l.Weight.Value, 0.3)
	}

	tests := []struct {
		name  string
		layer any
		x     *autodiff.Var
		fwd   func(layer any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var
	}{
		{"linear", NewLinear(rng, 4, 3, true), param(2, 4), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*Linear).Forward(g, x)
		}},
		{"linear lora", lora, param(2, 4), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*Linear).Forward(g, x)
		}},
		{"layernorm", ln, param(3, 5), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*LayerNorm).Forward(g, x)
		}},
		{"rmsnorm", rms, param(3, 5), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*RMSNorm).Forward(g, x)
		}},
		{"mlp", NewMLP(rng, 4, 6, 3), param(2, 4), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*MLP).Forward(g, x)
		}},
		{"swiglu", NewSwiGLU(rng, 4, 6), param(2, 4), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*SwiGLU).Forward(g, x)
		}},
		{"attention causal", attn, param(2, 3, 8), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*Attention).Forward(g, x, tensor.AttentionOptions{Mask: tensor.MaskCausal})
		}},
		{"grouped attention", gqa, param(1, 4, 8), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*GroupedAttention).Forward(g, x, tensor.AttentionOptions{})
		}},
		{"conv2d", NewConv2d(rng, 2, 3, 3, 2, 1, true), param(1, 2, 5, 5), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*Conv2d).Forward(g, x)
		}},
		{"patch embed", NewPatchEmbed(rng, 2, 3, 2), param(1, 2, 4, 4), func(l any, g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
			return l.(*PatchEmbed).Forward(g, x)
		}},
		{"embedding", emb, nil, func(l any, g *autodiff.Graph, _ *autodiff.Var) *autodiff.Var {
			return l.(*Embedding).Forward(g, []int{4, 1, 4})
		}},
		{"timestep embedding", temb, nil, func(l any, g *autodiff.Graph, _ *autodiff.Var) *autodiff.Var {
			return l.(*TimestepEmbedding).Forward(g, []float32{1, 250})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGrads(t, tc.layer, tc.x, func(g *autodiff.Graph) *autodiff.Var { return tc.fwd(tc.layer, g, tc.x) })
		})
	}
}

// Under NoGrad the same layer code records nothing.
func TestNoGradRecordsNothing(t *testing.T) {
	rng := tensor.NewRNG(1)
	m := NewMLP(rng, 4, 8, 4)
	g := autodiff.NoGrad()
	y := m.Forward(g, autodiff.Const(rng.Normal(2, 4)))
	if g.Len() != 0 {
		t.Errorf("NoGrad graph recorded %d operations", g.Len())
	}
	if err := g.Backward(g.SumAll(y)); err == nil {
		t.Error("Backward on a NoGrad graph succeeded")
	}
}
