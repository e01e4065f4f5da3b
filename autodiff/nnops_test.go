package autodiff

import (
	"testing"

	"tessera/tensor"
)

func TestGradNN(t *testing.T) {
	r := tensor.NewRNG(5)
	allow := make([]bool, 4*5)
	for i := range allow {
		allow[i] = r.Intn(4) > 0
	}
	allow[0], allow[1], allow[2], allow[3], allow[4] = true, false, false, false, false
	attnCase := func(name string, opt tensor.AttentionOptions, tq, tk int) gradCase {
		return gradCase{
			name:   "Attention-" + name,
			inputs: []*tensor.Tensor{r.Normal(2, tq, 4, 3), r.Normal(2, tk, 2, 3), r.Normal(2, tk, 2, 3)},
			f:      func(g *Graph, x []*Var) *Var { return g.Attention(x[0], x[1], x[2], opt) },
		}
	}
	cases := []gradCase{
		{name: "GELUTanh", inputs: []*tensor.Tensor{r.Normal(7)}, f: func(g *Graph, x []*Var) *Var { return g.GELUTanh(x[0]) }},
		{name: "GELU", inputs: []*tensor.Tensor{r.Normal(7)}, f: func(g *Graph, x []*Var) *Var { return g.GELU(x[0]) }},
		{name: "SiLU", inputs: []*tensor.Tensor{r.Normal(7)}, f: func(g *Graph, x []*Var) *Var { return g.SiLU(x[0]) }},
		{name: "Softmax", inputs: []*tensor.Tensor{r.Normal(3, 5)}, f: func(g *Graph, x []*Var) *Var { return g.Softmax(x[0]) }},
		{name: "LogSoftmax", inputs: []*tensor.Tensor{r.Normal(3, 5)}, f: func(g *Graph, x []*Var) *Var { return g.LogSoftmax(x[0]) }},
		{name: "LayerNorm-affine", inputs: []*tensor.Tensor{r.Normal(2, 3, 6), r.Normal(6), r.Normal(6)}, f: func(g *Graph, x []*Var) *Var {
			return g.LayerNorm(x[0], x[1], x[2], 1e-5)
		}},
		{name: "LayerNorm-plain", inputs: []*tensor.Tensor{r.Normal(4, 6)}, f: func(g *Graph, x []*Var) *Var { return g.LayerNorm(x[0], nil, nil, 1e-5) }},
		{name: "RMSNorm", inputs: []*tensor.Tensor{r.Normal(4, 6), r.Normal(6)}, f: func(g *Graph, x []*Var) *Var { return g.RMSNorm(x[0], x[1], 1e-6) }},
		{name: "RMSNorm-plain", inputs: []*tensor.Tensor{r.Normal(4, 6)}, f: func(g *Graph, x []*Var) *Var { return g.RMSNorm(x[0], nil, 1e-6) }},
		attnCase("full", tensor.AttentionOptions{}, 4, 5),
		attnCase("causal", tensor.AttentionOptions{Mask: tensor.MaskCausal}, 4, 4),
		attnCase("causal-offset", tensor.AttentionOptions{Mask: tensor.MaskCausal, QOffset: 2}, 3, 5),
		attnCase("block-causal", tensor.AttentionOptions{Mask: tensor.MaskBlockCausal, Block: 2}, 5, 5),
		attnCase("block-diagonal", tensor.AttentionOptions{Mask: tensor.MaskBlockDiagonal, Block: 2, Scale: 0.7}, 5, 5),
		attnCase("explicit", tensor.AttentionOptions{Mask: tensor.MaskExplicit, Allow: allow}, 4, 5),
		{name: "Attention-fused-qkv", inputs: []*tensor.Tensor{r.Normal(2, 4, 3*2*3)}, f: func(g *Graph, x []*Var) *Var {
			qkv := g.Reshape(x[0], 2, 4, 3, 2, 3)
			p := g.Split(qkv, 2, 1, 1, 1)
			sq := func(v *Var) *Var { return g.Squeeze(v, 2) }
			return g.Attention(sq(p[0]), sq(p[1]), sq(p[2]), tensor.AttentionOptions{Mask: tensor.MaskCausal})
		}},
		{name: "Embedding", inputs: []*tensor.Tensor{r.Normal(5, 3)}, f: func(g *Graph, x []*Var) *Var { return g.Embedding(x[0], []int{4, 1, 4, 0}) }},
		{name: "Conv2d", inputs: []*tensor.Tensor{r.Normal(2, 2, 5, 5), r.Normal(3, 2, 3, 3), r.Normal(3)}, f: func(g *Graph, x []*Var) *Var {
			return g.Conv2d(x[0], x[1], x[2], 2, 1)
		}},
		{name: "Conv2d-nobias", inputs: []*tensor.Tensor{r.Normal(1, 2, 4, 4), r.Normal(2, 2, 2, 2)}, f: func(g *Graph, x []*Var) *Var {
			return g.Conv2d(x[0], x[1], nil, 2, 0)
		}},
		{name: "ConvTranspose2d", inputs: []*tensor.Tensor{r.Normal(2, 3, 3, 3), r.Normal(3, 2, 4, 4), r.Normal(2)}, f: func(g *Graph, x []*Var) *Var {
			return g.ConvTranspose2d(x[0], x[1], x[2], 2, 1)
		}},
		{name: "CrossEntropy", inputs: []*tensor.Tensor{r.Normal(4, 5)}, f: func(g *Graph, x []*Var) *Var { return g.CrossEntropy(x[0], []int{1, 0, 4, 1}) }},
		{name: "BCEWithLogits", inputs: []*tensor.Tensor{r.Normal(2, 3), r.Uniform(0, 1, 2, 3)}, f: func(g *Graph, x []*Var) *Var {
			return g.BCEWithLogits(x[0], x[1])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkGrad(t, tc) })
	}
}

func TestLossValues(t *testing.T) {
	g := NoGrad()
	logits := Const(tensor.FromData([]float32{0, 0, 0, 0}, 2, 2))
	if got := g.CrossEntropy(logits, []int{0, 1}).Value.At(0); !closeTo(got, 0.6931472) {
		t.Errorf("CrossEntropy of uniform logits = %v, want ln 2", got)
	}
	bce := g.BCEWithLogits(Const(tensor.FromData([]float32{0, 100}, 2)), Const(tensor.FromData([]float32{1, 1}, 2)))
	if got := bce.Value.At(0); !closeTo(got, 0.6931472/2) {
		t.Errorf("BCEWithLogits = %v, want ln(2)/2", got)
	}
	mse := g.MSE(Const(tensor.FromData([]float32{1, 2}, 2)), Const(tensor.FromData([]float32{3, 2}, 2)))
	if got := mse.Value.At(0); got != 2 {
		t.Errorf("MSE = %v, want 2", got)
	}
}

func closeTo(a, b float32) bool { return a-b < 1e-6 && b-a < 1e-6 }
