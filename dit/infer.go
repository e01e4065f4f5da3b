package dit

import (
	"sync"

	"tessera/internal/vec"
	"tessera/tensor"
)

// Inference path of a block. Under NoGrad a block's intermediates (the
// modulated inputs, qkv, the attention output, the first residual stream
// and the MLP's hidden layer) live in scratch buffers reused from call to
// call, so sampling does not allocate, clear and fault in tens of
// megabytes per block; only the block's output is a new tensor (callers
// such as the block cache may keep it).

// blockScratch holds one block evaluation's intermediates.
type blockScratch struct {
	a, qkv, o, h1, f, fc1 []float32
}

var scratchPool sync.Pool

// buf returns *s resized to n, growing it when needed. Contents are
// undefined: every user overwrites the whole buffer.
func buf(s *[]float32, n int) []float32 {
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	*s = (*s)[:n]
	return *s
}

// infer is Forward at inference on tensors: h [B, T, D], SiLU(c) [B, 1, D].
func (blk *Block) infer(h, c *tensor.Tensor) *tensor.Tensor {
	b, t, d := dims3(h)
	heads := blk.Attn.Heads
	hd := d / heads
	mod := blk.AdaLN.Infer(c, nil) // [B, 1, 6D]
	part := func(i int) *tensor.Tensor { return mod.Slice(2, i*d, (i+1)*d) }
	ws, _ := scratchPool.Get().(*blockScratch)
	if ws == nil {
		ws = new(blockScratch)
	}
	defer scratchPool.Put(ws)

	a := modulateNormInto(tensor.FromData(buf(&ws.a, b*t*d), b, t, d), h, part(0), part(1))
	qkv := blk.Attn.QKV.Infer(a, tensor.FromData(buf(&ws.qkv, b*t*3*d), b, t, 3*d)).Reshape(b, t, 3, heads, hd)
	q := qkv.Slice(2, 0, 1).Squeeze(2)
	k := qkv.Slice(2, 1, 2).Squeeze(2)
	v := qkv.Slice(2, 2, 3).Squeeze(2)
	o := tensor.AttentionInto(tensor.FromData(buf(&ws.o, b*t*d), b, t, heads, hd), q, k, v, tensor.AttentionOptions{})
	h1 := blk.Attn.Proj.Infer(o.Reshape(b, t, d), tensor.FromData(buf(&ws.h1, b*t*d), b, t, d))
	gatedResidualInPlace(h1, h, part(2))

	f := modulateNormInto(tensor.FromData(buf(&ws.f, b*t*d), b, t, d), h1, part(3), part(4))
	hidden := blk.MLP.FC1.Out()
	fc1 := blk.MLP.FC1.Infer(f, tensor.FromData(buf(&ws.fc1, b*t*hidden), b, t, hidden))
	vec.GELUTanh(fc1.Data(), fc1.Data())
	out := blk.MLP.FC2.Infer(fc1, nil)
	gatedResidualInPlace(out, h1, part(5))
	return out
}
