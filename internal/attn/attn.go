// Package attn computes scaled dot-product attention on float32 slices:
// forward with an online softmax (the log-sum-exp of each query row is saved
// for the backward pass), backward, full/causal/block-causal/block-diagonal
// and explicit boolean masks, grouped key/value heads, and key/value buffers
// larger than the part in use (a KV cache).
package attn

import (
	"math"
)

// MaskKind says which keys a query may attend to.
type MaskKind int

// Mask kinds. Query i sits at absolute position QOffset+i; key j at j.
const (
	Full          MaskKind = iota // every key
	Causal                        // keys j <= pos
	BlockCausal                   // keys with j/Block <= pos/Block
	BlockDiagonal                 // keys with j/Block == pos/Block
	Explicit                      // Allow[i*Tk+j]
)

// Mask describes the attention pattern.
type Mask struct {
	Kind    MaskKind
	Block   int    // block length for BlockCausal and BlockDiagonal
	QOffset int    // absolute position of query 0 (KV-cache decoding)
	Allow   []bool // Explicit only: Tq×Tk, true where query i may see key j
}

// Allowed reports whether query i may attend to key j.
func (m *Mask) Allowed(i, j, tk int) bool {
	pos := m.QOffset + i
	switch m.Kind {
	case Causal:
		return j <= pos
	case BlockCausal:
		return j/m.Block <= pos/m.Block
	case BlockDiagonal:
		return j/m.Block == pos/m.Block
	case Explicit:
		return m.Allow[i*tk+j]
	default:
		return true
	}
}

// Params fixes the shapes and layout of one attention call.
//
// Layout is token-major: q and out are [Batch, Tq, Heads, Dim] and k, v are
// [Batch, KVCap, KVHeads, Dim], of which the first Tk positions are used. The
// row strides (elements from one token to the next) may exceed Heads*Dim, so
// q, k and v can be views into one fused qkv buffer. Query head h reads
// key/value head h / (Heads/KVHeads).
type Params struct {
	Batch, Heads, KVHeads int
	Tq, Tk, Dim           int
	KVCap                 int // positions per batch entry in k and v; 0 means Tk
	QStride, KStride      int // row strides; 0 means Heads*Dim / KVHeads*Dim
	VStride, OStride      int
	Scale                 float32 // 0 means 1/sqrt(Dim)
	Mask                  Mask
}

// Normalize fills the zero-valued defaults of p.
func (p Params) Normalize() Params {
	if p.KVHeads == 0 {
		p.KVHeads = p.Heads
	}
	if p.KVCap == 0 {
		p.KVCap = p.Tk
	}
	if p.QStride == 0 {
		p.QStride = p.Heads * p.Dim
	}
	if p.OStride == 0 {
		p.OStride = p.Heads * p.Dim
	}
	if p.KStride == 0 {
		p.KStride = p.KVHeads * p.Dim
	}
	if p.VStride == 0 {
		p.VStride = p.KVHeads * p.Dim
	}
	if p.Scale == 0 {
		p.Scale = float32(1 / math.Sqrt(float64(p.Dim)))
	}
	return p
}

// Forward writes softmax(q·kᵀ·Scale, masked)·v into out and, when lse is
// non-nil ([Batch, Heads, Tq]), the log-sum-exp of each scaled score row.
// A query that may see no key gets a zero output and lse = -Inf.
func Forward(out, lse, q, k, v []float32, p Params) {
	p = p.Normalize()
	forwardGeneric(out, lse, q, k, v, p)
}

// Backward computes dq, dk and dv (overwritten; dk and dv have the layout of
// k and v, and only their first Tk positions are written) from the saved
// out and lse of Forward and the output gradient dout (layout of out).
func Backward(dq, dk, dv, q, k, v, out, lse, dout []float32, p Params) {
	p = p.Normalize()
	backwardGeneric(dq, dk, dv, q, k, v, out, lse, dout, p)
}

func forwardGeneric(out, lse, q, k, v []float32, p Params) {
	group := p.Heads / p.KVHeads
	s := make([]float32, p.Tk)
	for b := 0; b < p.Batch; b++ {
		for h := 0; h < p.Heads; h++ {
			kh := h / group
			for i := 0; i < p.Tq; i++ {
				qi := q[(b*p.Tq+i)*p.QStride+h*p.Dim:][:p.Dim]
				oi := out[(b*p.Tq+i)*p.OStride+h*p.Dim:][:p.Dim]
				m := float32(math.Inf(-1))
				for j := 0; j < p.Tk; j++ {
					if !p.Mask.Allowed(i, j, p.Tk) {
						s[j] = float32(math.Inf(-1))
						continue
					}
					kj := k[(b*p.KVCap+j)*p.KStride+kh*p.Dim:][:p.Dim]
					var d float32
					for c := range qi {
						d += qi[c] * kj[c]
					}
					s[j] = d * p.Scale
					if s[j] > m {
						m = s[j]
					}
				}
				clear(oi)
				if math.IsInf(float64(m), -1) {
					if lse != nil {
						lse[(b*p.Heads+h)*p.Tq+i] = m
					}
					continue
				}
				var sum float64
				for j := 0; j < p.Tk; j++ {
					if math.IsInf(float64(s[j]), -1) {
						continue
					}
					e := float32(math.Exp(float64(s[j] - m)))
					sum += float64(e)
					vj := v[(b*p.KVCap+j)*p.VStride+kh*p.Dim:][:p.Dim]
					for c := range oi {
						oi[c] += e * vj[c]
					}
				}
				inv := float32(1 / sum)
				for c := range oi {
					oi[c] *= inv
				}
				if lse != nil {
					lse[(b*p.Heads+h)*p.Tq+i] = m + float32(math.Log(sum))
				}
			}
		}
	}
}

func backwardGeneric(dq, dk, dv, q, k, v, out, lse, dout []float32, p Params) {
	group := p.Heads / p.KVHeads
	for b := 0; b < p.Batch; b++ {
		for j := 0; j < p.Tk; j++ {
			clear(dk[(b*p.KVCap+j)*p.KStride:][:p.KVHeads*p.Dim])
			clear(dv[(b*p.KVCap+j)*p.VStride:][:p.KVHeads*p.Dim])
		}
		for h := 0; h < p.Heads; h++ {
			kh := h / group
			for i := 0; i < p.Tq; i++ {
				qi := q[(b*p.Tq+i)*p.QStride+h*p.Dim:][:p.Dim]
				oi := out[(b*p.Tq+i)*p.OStride+h*p.Dim:][:p.Dim]
				gi := dout[(b*p.Tq+i)*p.OStride+h*p.Dim:][:p.Dim]
				dqi := dq[(b*p.Tq+i)*p.QStride+h*p.Dim:][:p.Dim]
				clear(dqi)
				l := lse[(b*p.Heads+h)*p.Tq+i]
				if math.IsInf(float64(l), -1) {
					continue
				}
				var delta float32
				for c := range oi {
					delta += oi[c] * gi[c]
				}
				for j := 0; j < p.Tk; j++ {
					if !p.Mask.Allowed(i, j, p.Tk) {
						continue
					}
					kj := k[(b*p.KVCap+j)*p.KStride+kh*p.Dim:][:p.Dim]
					vj := v[(b*p.KVCap+j)*p.VStride+kh*p.Dim:][:p.Dim]
					var sc, dp float32
					for c := range qi {
						sc += qi[c] * kj[c]
						dp += gi[c] * vj[c]
					}
					pij := float32(math.Exp(float64(sc*p.Scale - l)))
					ds := pij * (dp - delta) * p.Scale
					dkj := dk[(b*p.KVCap+j)*p.KStride+kh*p.Dim:][:p.Dim]
					dvj := dv[(b*p.KVCap+j)*p.VStride+kh*p.Dim:][:p.Dim]
					for c := range qi {
						dqi[c] += ds * kj[c]
						dkj[c] += ds * qi[c]
						dvj[c] += pij * gi[c]
					}
				}
			}
		}
	}
}
