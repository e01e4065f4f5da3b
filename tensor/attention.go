package tensor

import (
	"fmt"

	"tessera/internal/attn"
)

// MaskKind says which keys a query may attend to. Query i sits at absolute
// position QOffset+i; key j at j.
type MaskKind int

// Attention mask kinds.
const (
	MaskFull          MaskKind = iota // every key
	MaskCausal                        // keys j <= position
	MaskBlockCausal                   // key blocks <= the query's block
	MaskBlockDiagonal                 // keys in the query's block only
	MaskExplicit                      // Allow[i*Tk+j]
)

// AttentionOptions configures Attention.
type AttentionOptions struct {
	Mask    MaskKind
	Block   int     // block length for MaskBlockCausal and MaskBlockDiagonal
	Allow   []bool  // MaskExplicit: Tq×Tk, true where query i may see key j
	QOffset int     // absolute position of query 0 (KV-cache decoding)
	Scale   float32 // multiplies the scores; 0 means 1/sqrt(head dim)
}

// tokenLayout returns the token stride and the positions per batch entry
// of a [B, T, H, D] view whose heads are packed (D stride 1, H stride D),
// or ok = false when the view must be copied first.
func tokenLayout(t *Tensor) (stride, capacity int, ok bool) {
	s := t.strides
	b, tl, h, d := t.shape[0], t.shape[1], t.shape[2], t.shape[3]
	if (s[3] != 1 && d > 1) || (s[2] != d && h > 1) {
		return 0, 0, false
	}
	stride = s[1]
	if tl == 1 || stride < h*d {
		stride = h * d
		if tl > 1 && s[1] != stride {
			return 0, 0, false
		}
	}
	capacity = tl
	if b > 1 {
		if s[0]%stride != 0 || s[0]/stride < tl {
			return 0, 0, false
		}
		capacity = s[0] / stride
	}
	return stride, capacity, true
}

func attnParams(q, k, v *Tensor, opt AttentionOptions) (attn.Params, *Tensor, *Tensor, *Tensor) {
	if q.Rank() != 4 || k.Rank() != 4 || v.Rank() != 4 {
		panic(fmt.Sprintf("tensor.Attention: q %v, k %v, v %v must be [B, T, H, D]", q.shape, k.shape, v.shape))
	}
	b, tq, h, d := q.shape[0], q.shape[1], q.shape[2], q.shape[3]
	tk, hkv := k.shape[1], k.shape[2]
	if k.shape[0] != b || v.shape[0] != b || k.shape[3] != d || v.shape[3] != d ||
		v.shape[1] != tk || v.shape[2] != hkv || hkv == 0 || h%hkv != 0 {
		panic(fmt.Sprintf("tensor.Attention: q %v, k %v, v %v do not fit", q.shape, k.shape, v.shape))
	}
	switch opt.Mask {
	case MaskBlockCausal, MaskBlockDiagonal:
		if opt.Block < 1 {
			panic(fmt.Sprintf("tensor.Attention: block mask with block length %d", opt.Block))
		}
	case MaskExplicit:
		if len(opt.Allow) != tq*tk {
			panic(fmt.Sprintf("tensor.Attention: explicit mask of %d entries for %d×%d", len(opt.Allow), tq, tk))
		}
	}
	qs, qcap, ok := tokenLayout(q)
	if !ok || qcap != tq {
		q = q.Contiguous()
		qs, _, _ = tokenLayout(q)
	}
	ks, kcap, ok := tokenLayout(k)
	if !ok {
		k = k.Contiguous()
		ks, kcap, _ = tokenLayout(k)
	}
	vs, vcap, ok := tokenLayout(v)
	if !ok || vcap != kcap {
		v = v.Contiguous()
		vs, vcap, _ = tokenLayout(v)
		if vcap != kcap {
			k = k.Contiguous()
			ks, kcap, _ = tokenLayout(k)
		}
	}
	p := attn.Params{
		Batch: b, Heads: h, KVHeads: hkv, Tq: tq, Tk: tk, Dim: d, KVCap: kcap,
		QStride: qs, KStride: ks, VStride: vs, OStride: h * d, Scale: opt.Scale,
		Mask: attn.Mask{Kind: attn.MaskKind(opt.Mask), Block: opt.Block, QOffset: opt.QOffset, Allow: opt.Allow},
	}
	return p, q, k, v
}

// Attention returns softmax(q·kᵀ·scale, masked)·v for q [B, Tq, H, D] and
// k, v [B, Tk, Hkv, D] (H a multiple of Hkv), as [B, Tq, H, D]. q, k and v
// may be strided views (for example slices of a fused qkv tensor or a KV
// cache); their token strides are passed to the kernel, not copied.
func Attention(q, k, v *Tensor, opt AttentionOptions) *Tensor {
	out, _ := AttentionLSE(q, k, v, opt)
	return out
}

// AttentionInto is Attention writing into out, a contiguous [B, Tq, H, D]
// tensor (no log-sum-exp is kept). It returns out.
func AttentionInto(out, q, k, v *Tensor, opt AttentionOptions) *Tensor {
	p, q, k, v := attnParams(q, k, v, opt)
	if !out.IsContiguous() || out.Rank() != 4 || out.shape[0] != p.Batch || out.shape[1] != p.Tq || out.shape[2] != p.Heads || out.shape[3] != p.Dim {
		panic(fmt.Sprintf("tensor.AttentionInto: out %v, want contiguous [%d %d %d %d]", out.shape, p.Batch, p.Tq, p.Heads, p.Dim))
	}
	attn.Forward(out.Data(), nil, q.data[q.offset:], k.data[k.offset:], v.data[v.offset:], p)
	return out
}

// AttentionLSE is Attention that also returns the log-sum-exp of each
// scaled score row, [B, H, Tq], which AttentionBackward needs.
func AttentionLSE(q, k, v *Tensor, opt AttentionOptions) (out, lse *Tensor) {
	p, q, k, v := attnParams(q, k, v, opt)
	out = New(p.Batch, p.Tq, p.Heads, p.Dim)
	lse = New(p.Batch, p.Heads, p.Tq)
	attn.Forward(out.data, lse.data, q.data[q.offset:], k.data[k.offset:], v.data[v.offset:], p)
	return out, lse
}

// AttentionBackward returns the gradients of q, k and v (contiguous, shaped
// like them) from the out and lse of AttentionLSE and the output gradient.
func AttentionBackward(q, k, v, out, lse, dout *Tensor, opt AttentionOptions) (dq, dk, dv *Tensor) {
	q, k, v = q.Contiguous(), k.Contiguous(), v.Contiguous()
	p, _, _, _ := attnParams(q, k, v, opt)
	dq, dk, dv = New(q.shape...), New(k.shape...), New(v.shape...)
	attn.Backward(dq.data, dk.data, dv.data, q.Data(), k.Data(), v.Data(),
		out.Contiguous().Data(), lse.Contiguous().Data(), dout.Contiguous().Data(), p)
	return dq, dk, dv
}
