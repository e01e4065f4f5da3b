package tensor

import (
	"fmt"

	"tessera/internal/gemm"
)

// BF16Weight is a Linear layer's weight [out, in] rounded to bfloat16 and
// packed for LinearBF16: an inference-time copy, made once and reused by
// every call. It does not follow later changes to the tensor it was made
// from.
type BF16Weight struct {
	p *gemm.PackedBF16
}

// PackBF16 rounds the weight w [out, in] to bfloat16 and packs it.
func PackBF16(w *Tensor) *BF16Weight {
	if w.Rank() != 2 {
		panic(fmt.Sprintf("tensor.PackBF16: weight %v is not a matrix", w.shape))
	}
	return &BF16Weight{p: gemm.PackBF16(w.Data(), w.shape[0], w.shape[1], w.shape[1])}
}

// Out is the output width (rows of the weight).
func (w *BF16Weight) Out() int { return w.p.N() }

// In is the input width (columns of the weight).
func (w *BF16Weight) In() int { return w.p.K() }

// BF16Native reports whether bfloat16 products run on native instructions
// here (AVX512_BF16 at the current kernel level); without them LinearBF16
// is correct but much slower than Linear.
func BF16Native() bool { return gemm.BF16Native() }

// LinearBF16 returns x·wᵀ + b like Linear, with x and the packed weight w
// rounded to bfloat16 and the products accumulated in float32 (relative
// error about 2⁻⁸ of the magnitudes involved).
func LinearBF16(x *Tensor, w *BF16Weight, b *Tensor) *Tensor {
	return LinearBF16Into(nil, x, w, b)
}

// LinearBF16Into is LinearBF16 writing into out, a contiguous tensor of
// the result's shape (nil: a new one). It returns out.
func LinearBF16Into(out, x *Tensor, w *BF16Weight, b *Tensor) *Tensor {
	in, outF := x.Dim(-1), w.Out()
	if in != w.In() || (b != nil && b.Numel() != outF) {
		bs := []int(nil)
		if b != nil {
			bs = b.shape
		}
		panic(fmt.Sprintf("tensor.LinearBF16: x %v, w [%d %d], b %v do not fit", x.shape, outF, w.In(), bs))
	}
	out = linearOut("LinearBF16Into", out, x, outF)
	var bias []float32
	if b != nil {
		bias = b.Data()
	}
	if rows := x.Numel() / in; rows > 0 {
		gemm.GemmBF16(rows, x.Data(), in, w.p, bias, 0, out.Data(), outF)
	}
	return out
}
