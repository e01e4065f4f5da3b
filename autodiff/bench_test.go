package autodiff

import (
	"testing"

	"tessera/tensor"
)

// ditBlock is a DiT block (adaLN-Zero) written with the graph ops, used to
// measure a training step the size of the README's DiT comparison.
type ditBlock struct {
	qkvW, qkvB, projW, projB, fc1W, fc1B, fc2W, fc2B, adaW, adaB *Var
}

func newDiTBlock(r *tensor.RNG, h int) *ditBlock {
	p := func(shape ...int) *Var { return Param(tensor.Scale(r.Normal(shape...), 0.02)) }
	return &ditBlock{
		qkvW: p(3*h, h), qkvB: p(3 * h), projW: p(h, h), projB: p(h),
		fc1W: p(4*h, h), fc1B: p(4 * h), fc2W: p(h, 4*h), fc2B: p(h),
		adaW: p(6*h, h), adaB: p(6 * h),
	}
}

func (b *ditBlock) forward(g *Graph, x, c *Var, heads int) *Var {
	bs, t, h := x.Value.Dim(0), x.Value.Dim(1), x.Value.Dim(2)
	mod := g.Chunk(g.Linear(g.SiLU(c), b.adaW, b.adaB), 6, 1) // 6 × [B, H]
	u := func(v *Var) *Var { return g.Unsqueeze(v, 1) }       // [B, 1, H]
	modulate := func(v, shift, scale *Var) *Var {
		return g.Add(g.Mul(v, g.AddScalar(u(scale), 1)), u(shift))
	}
	a := modulate(g.LayerNorm(x, nil, nil, 1e-6), mod[0], mod[1])
	qkv := g.Reshape(g.Linear(a, b.qkvW, b.qkvB), bs, t, 3, heads, h/heads)
	parts := g.Split(qkv, 2, 1, 1, 1)
	sq := func(v *Var) *Var { return g.Squeeze(v, 2) }
	o := g.Attention(sq(parts[0]), sq(parts[1]), sq(parts[2]), tensor.AttentionOptions{})
	o = g.Linear(g.Reshape(o, bs, t, h), b.projW, b.projB)
	x = g.Add(x, g.Mul(u(mod[2]), o))
	m := modulate(g.LayerNorm(x, nil, nil, 1e-6), mod[3], mod[4])
	m = g.Linear(g.GELUTanh(g.Linear(m, b.fc1W, b.fc1B)), b.fc2W, b.fc2B)
	return g.Add(x, g.Mul(u(mod[5]), m))
}

// BenchmarkDiTTrainStep is forward + backward of six DiT blocks on
// batch 32, 64 tokens, hidden 256, 4 heads.
func BenchmarkDiTTrainStep(b *testing.B) {
	const batch, tokens, hidden, depth, heads = 32, 64, 256, 6, 4
	r := tensor.NewRNG(1)
	blocks := make([]*ditBlock, depth)
	for i := range blocks {
		blocks[i] = newDiTBlock(r, hidden)
	}
	x0 := r.Normal(batch, tokens, hidden)
	c0 := r.Normal(batch, hidden)
	target := r.Normal(batch, tokens, hidden)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := NewGraph()
		x := Const(x0)
		for _, blk := range blocks {
			x = blk.forward(g, x, Const(c0), heads)
		}
		if err := g.Backward(g.MSE(x, Const(target))); err != nil {
			b.Fatal(err)
		}
		g.Release()
		for _, blk := range blocks {
			for _, p := range []*Var{blk.qkvW, blk.qkvB, blk.projW, blk.projB, blk.fc1W, blk.fc1B, blk.fc2W, blk.fc2B, blk.adaW, blk.adaB} {
				p.ZeroGrad()
			}
		}
	}
}
