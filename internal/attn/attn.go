// Package attn computes scaled dot-product attention on float32 slices:
// forward with an online softmax (the log-sum-exp of each query row is saved
// for the backward pass), backward, full/causal/block-causal/block-diagonal
// and explicit boolean masks, grouped key/value heads, and key/value buffers
// larger than the part in use (a KV cache).
package attn

import (
	"fmt"
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
	p.check("Forward", len(q), len(k), len(v), len(out))
	if lse != nil && len(lse) < p.Batch*p.Heads*p.Tq {
		panic(fmt.Sprintf("attn.Forward: lse has %d elements, want %d", len(lse), p.Batch*p.Heads*p.Tq))
	}
	forwardTiled(out, lse, q, k, v, p)
}

// Backward computes dq, dk and dv (overwritten; dk and dv have the layout of
// k and v, and only their first Tk positions are written) from the saved
// out and lse of Forward and the output gradient dout (layout of out).
func Backward(dq, dk, dv, q, k, v, out, lse, dout []float32, p Params) {
	p = p.Normalize()
	p.check("Backward", len(q), len(k), len(v), len(out))
	p.check("Backward", len(dq), len(dk), len(dv), len(dout))
	if len(lse) < p.Batch*p.Heads*p.Tq {
		panic(fmt.Sprintf("attn.Backward: lse has %d elements, want %d", len(lse), p.Batch*p.Heads*p.Tq))
	}
	backwardTiled(dq, dk, dv, q, k, v, out, lse, dout, p)
}

// forwardNaive is the reference forward: one query row at a time, the
// scores of the whole row in a buffer.
// check panics with a clear message when the shapes of p are inconsistent
// or a buffer is too short for them (slice lengths nq, nk, nv, no).
func (p *Params) check(op string, nq, nk, nv, no int) {
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("attn.%s: %s", op, fmt.Sprintf(format, args...)))
	}
	switch {
	case p.Batch < 0 || p.Tq < 0 || p.Tk < 0:
		fail("negative size (Batch %d, Tq %d, Tk %d)", p.Batch, p.Tq, p.Tk)
	case p.Heads <= 0 || p.KVHeads <= 0 || p.Dim <= 0:
		fail("Heads %d, KVHeads %d and Dim %d must be positive", p.Heads, p.KVHeads, p.Dim)
	case p.Heads%p.KVHeads != 0:
		fail("Heads %d not a multiple of KVHeads %d", p.Heads, p.KVHeads)
	case p.KVCap < p.Tk:
		fail("KVCap %d < Tk %d", p.KVCap, p.Tk)
	case p.QStride < p.Heads*p.Dim || p.OStride < p.Heads*p.Dim:
		fail("QStride %d / OStride %d below Heads*Dim %d", p.QStride, p.OStride, p.Heads*p.Dim)
	case p.KStride < p.KVHeads*p.Dim || p.VStride < p.KVHeads*p.Dim:
		fail("KStride %d / VStride %d below KVHeads*Dim %d", p.KStride, p.VStride, p.KVHeads*p.Dim)
	case (p.Mask.Kind == BlockCausal || p.Mask.Kind == BlockDiagonal) && p.Mask.Block <= 0:
		fail("mask Block %d must be positive", p.Mask.Block)
	case p.Mask.Kind == Explicit && len(p.Mask.Allow) < p.Tq*p.Tk:
		fail("mask Allow has %d entries, want Tq*Tk = %d", len(p.Mask.Allow), p.Tq*p.Tk)
	case p.Mask.Kind < Full || p.Mask.Kind > Explicit:
		fail("unknown mask kind %d", p.Mask.Kind)
	}
	if p.Batch == 0 {
		return
	}
	need := func(name string, have, rows, stride, width int) {
		if rows == 0 {
			return
		}
		if want := (rows-1)*stride + width; have < want {
			fail("%s has %d elements, want at least %d", name, have, want)
		}
	}
	need("q", nq, p.Batch*p.Tq, p.QStride, p.Heads*p.Dim)
	need("out", no, p.Batch*p.Tq, p.OStride, p.Heads*p.Dim)
	need("k", nk, (p.Batch-1)*p.KVCap+p.Tk, p.KStride, p.KVHeads*p.Dim)
	need("v", nv, (p.Batch-1)*p.KVCap+p.Tk, p.VStride, p.KVHeads*p.Dim)
}

func forwardNaive(out, lse, q, k, v []float32, p Params) {
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

// backwardNaive is the reference backward: probabilities recomputed from
// lse one score at a time.
func backwardNaive(dq, dk, dv, q, k, v, out, lse, dout []float32, p Params) {
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
