package attn

import (
	"math"

	"tessera/internal/parallel"
)

// Tiling of the fast paths.
//
// A work item is one batch entry, one key/value head and a tile of query
// positions; its rows are the (position, query head) pairs of every query
// head that shares the key/value head, position-major, so K and V are read
// once for the whole group (the decode path: Tq = 1 and Heads/KVHeads rows).
// Scores are held key-major (S[j][r], one column per query row): the score
// tile is K·Qᵀ with K read in place through its row stride, the online
// softmax runs down the columns, and P·V reads Pᵀ through strides.
const (
	rowTile = 64 // query rows per work item
	keyTile = 64 // keys per tile when the row tile is full
	// Up to dotRows query rows (decoding), scores are dot products of each
	// query row with the key rows: a gemm tile would be mostly padding.
	dotRows = 4
)

var negInf = float32(math.Inf(-1))

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// keyRange returns the keys [lo, hi) that a query at absolute position pos
// may see under a range-shaped mask (Explicit is checked key by key on top
// of the full range).
func keyRange(mk *Mask, pos, tk int) (lo, hi int) {
	hi = tk
	switch mk.Kind {
	case Causal:
		hi = pos + 1
	case BlockCausal:
		hi = (floorDiv(pos, mk.Block) + 1) * mk.Block
	case BlockDiagonal:
		lo = floorDiv(pos, mk.Block) * mk.Block
		hi = lo + mk.Block
	}
	lo = min(max(lo, 0), tk)
	hi = min(max(hi, lo), tk)
	return lo, hi
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// tileLayout fixes the row tiling of one call.
type tileLayout struct {
	g   int // query heads per key/value head
	tq  int // query positions per row tile
	nqt int // row tiles per (batch, kv head)
	ld  int // column stride of score tiles: rows of a full tile, padded to 16
	bk  int // keys per key tile
}

func newLayout(p *Params) tileLayout {
	g := p.Heads / p.KVHeads
	tq := max(1, rowTile/g)
	tq = min(tq, max(p.Tq, 1))
	ld := roundUp(tq*g, 16)
	// Few rows (decoding): longer key tiles amortise the per-tile work.
	bk := keyTile
	if ld <= 16 {
		bk = 4 * keyTile
	}
	return tileLayout{g: g, tq: tq, nqt: (p.Tq + tq - 1) / tq, ld: ld, bk: bk}
}

// gemmRows is gemm with a left operand of rows rows read from src at base
// with row stride stride (unit column stride), k = d columns: rows past the
// last multiple of 4 are copied to scratch (4·d) so that src is never read
// out of range.
func gemmRows(c []float32, ldc int, src []float32, base, stride, rows, d int, b []float32, ldb, n int, scratch []float32) {
	m4 := rows &^ 3
	if m4 > 0 {
		gemm(c, ldc, src[base:], stride, 1, b, ldb, m4, d, n, nil)
	}
	if rows > m4 {
		clear(scratch[:4*d])
		for i := m4; i < rows; i++ {
			copy(scratch[(i-m4)*d:][:d], src[base+i*stride:][:d])
		}
		gemm(c[m4*ldc:], ldc, scratch, d, 1, b, ldb, 4, d, n, nil)
	}
}

// maskTile writes -Inf into the scores of the key tile [j0, j1) that the
// mask hides from the rows [0, rows) of a row tile starting at query t0.
func maskTile(s []float32, ld int, p *Params, lay *tileLayout, t0, rows, j0, j1 int) {
	mk := &p.Mask
	for r := 0; r < rows; r++ {
		t := t0 + r/lay.g
		lo, hi := keyRange(mk, mk.QOffset+t, p.Tk)
		for j := j0; j < min(lo, j1); j++ {
			s[(j-j0)*ld+r] = negInf
		}
		for j := max(hi, j0); j < j1; j++ {
			s[(j-j0)*ld+r] = negInf
		}
		if mk.Kind == Explicit {
			allow := mk.Allow[t*p.Tk:]
			for j := max(lo, j0); j < min(hi, j1); j++ {
				if !allow[j] {
					s[(j-j0)*ld+r] = negInf
				}
			}
		}
	}
}

// tileIsFull reports whether every row of positions [pa, pb] sees every
// key of [j0, j1).
func tileIsFull(p *Params, pa, pb, j0, j1 int) bool {
	if p.Mask.Kind == Explicit {
		return false
	}
	loB, _ := keyRange(&p.Mask, pb, p.Tk)
	_, hiA := keyRange(&p.Mask, pa, p.Tk)
	return j0 >= loB && j1 <= hiA
}

// fwdScratch is one worker's buffers for the forward pass.
type fwdScratch struct {
	qt, qr, s, o      []float32
	m, l, alpha, tail []float32
	offs              []int // offset in q of each row of the tile
}

func newFwdScratch(p *Params, lay *tileLayout) *fwdScratch {
	return &fwdScratch{
		qt:    make([]float32, p.Dim*lay.ld),
		qr:    make([]float32, dotRows*p.Dim),
		s:     make([]float32, roundUp(lay.bk, 4)*lay.ld),
		o:     make([]float32, lay.ld*p.Dim),
		m:     make([]float32, lay.ld),
		l:     make([]float32, lay.ld),
		alpha: make([]float32, lay.ld),
		tail:  make([]float32, 4*p.Dim),
		offs:  make([]int, lay.ld),
	}
}

func forwardTiled(out, lse, q, k, v []float32, p Params) {
	lay := newLayout(&p)
	items := p.Batch * p.KVHeads * lay.nqt
	parallel.For(items, 1, func(lo, hi int) {
		ws := newFwdScratch(&p, &lay)
		for it := lo; it < hi; it++ {
			qt := it % lay.nqt
			bh := it / lay.nqt
			forwardTile(ws, out, lse, q, k, v, &p, &lay, bh/p.KVHeads, bh%p.KVHeads, qt*lay.tq)
		}
	})
}

// forwardTile runs the online softmax for the query positions
// [t0, t0+tq) of batch entry b and every query head of key/value head kh.
func forwardTile(ws *fwdScratch, out, lse, q, k, v []float32, p *Params, lay *tileLayout, b, kh, t0 int) {
	d, g, ld := p.Dim, lay.g, lay.ld
	t1 := min(t0+lay.tq, p.Tq)
	rows := (t1 - t0) * g
	rows4 := roundUp(rows, 4)

	// Qᵀ (or Q for dot products), pre-scaled; zero padding columns.
	qt := ws.qt
	dot := rows <= dotRows
	if dot {
		clear(ws.s) // padding columns stay finite
	} else {
		clear(qt)
	}
	offs := ws.offs[:rows]
	for r := range offs {
		t, hq := t0+r/g, kh*g+r%g
		offs[r] = (b*p.Tq+t)*p.QStride + hq*d
	}
	if dot {
		for r, o := range offs {
			for c, x := range q[o : o+d] {
				ws.qr[r*d+c] = x * p.Scale
			}
		}
	} else {
		// Column by column: contiguous stores, and the rows' cache lines
		// stay in L1 across the columns.
		for c := 0; c < d; c++ {
			dst := qt[c*ld : c*ld+rows]
			for r, o := range offs {
				dst[r] = q[o+c] * p.Scale
			}
		}
	}
	for r := range ws.m {
		ws.m[r] = negBig
		ws.l[r] = 0
	}
	clear(ws.o)

	pa, pb := p.Mask.QOffset+t0, p.Mask.QOffset+t1-1
	jlo, _ := keyRange(&p.Mask, pa, p.Tk)
	_, jhi := keyRange(&p.Mask, pb, p.Tk)
	kbase := b*p.KVCap*p.KStride + kh*d
	vbase := b*p.KVCap*p.VStride + kh*d
	for j0 := jlo; j0 < jhi; j0 += lay.bk {
		j1 := min(j0+lay.bk, jhi)
		bk := j1 - j0
		if dot {
			for r := 0; r < rows; r++ {
				dotKeys(ws.s[r:], ld, k[kbase+j0*p.KStride:], p.KStride, ws.qr[r*d:], bk, d)
			}
		} else {
			gemmRows(ws.s, ld, k, kbase+j0*p.KStride, p.KStride, bk, d, qt, ld, ld, ws.tail)
		}
		if !tileIsFull(p, pa, pb, j0, j1) {
			maskTile(ws.s, ld, p, lay, t0, rows, j0, j1)
		}
		softmaxCols(ws.s, ld, bk, ld, ws.m, ws.l, ws.alpha)
		gemm(ws.o, d, ws.s, 1, ld, v[vbase+j0*p.VStride:], p.VStride, rows4, bk, d, ws.alpha)
	}

	for r := 0; r < rows; r++ {
		t, hq := t0+r/g, kh*g+r%g
		or := out[(b*p.Tq+t)*p.OStride+hq*d:][:d]
		l := ws.l[r]
		if l == 0 {
			clear(or)
		} else {
			inv := 1 / l
			for c, x := range ws.o[r*d : r*d+d] {
				or[c] = x * inv
			}
		}
		if lse != nil {
			if l == 0 {
				lse[(b*p.Heads+hq)*p.Tq+t] = negInf
			} else {
				lse[(b*p.Heads+hq)*p.Tq+t] = ws.m[r] + float32(math.Log(float64(l)))
			}
		}
	}
}

// bwdScratch is one worker's buffers for the backward pass of one
// (batch, kv head) pair: all its query rows are packed at once.
type bwdScratch struct {
	ldq              int       // column stride of qt and dot
	qt, dot          []float32 // Qᵀ·Scale and dOᵀ, d × ldq
	qr, dor, dq      []float32 // Q, dO and the dQ accumulator, ldq × d
	lse, delta, ones []float32
	s, dp, dkt, dvt  []float32
	tail             []float32
}

func newBwdScratch(p *Params, lay *tileLayout) *bwdScratch {
	ldq := roundUp(p.Tq*lay.g, 16) + 16
	bk4 := roundUp(lay.bk, 4)
	ws := &bwdScratch{
		ldq:   ldq,
		qt:    make([]float32, p.Dim*ldq),
		dot:   make([]float32, p.Dim*ldq),
		qr:    make([]float32, ldq*p.Dim),
		dor:   make([]float32, ldq*p.Dim),
		dq:    make([]float32, ldq*p.Dim),
		lse:   make([]float32, ldq),
		delta: make([]float32, ldq),
		ones:  make([]float32, ldq),
		s:     make([]float32, bk4*lay.ld),
		dp:    make([]float32, bk4*lay.ld),
		dkt:   make([]float32, bk4*p.Dim),
		dvt:   make([]float32, bk4*p.Dim),
		tail:  make([]float32, 4*p.Dim),
	}
	for i := range ws.ones {
		ws.ones[i] = 1
	}
	return ws
}

func backwardTiled(dq, dk, dv, q, k, v, out, lse, dout []float32, p Params) {
	lay := newLayout(&p)
	lay.bk = keyTile
	parallel.For(p.Batch*p.KVHeads, 1, func(lo, hi int) {
		ws := newBwdScratch(&p, &lay)
		for it := lo; it < hi; it++ {
			backwardGroup(ws, dq, dk, dv, q, k, v, out, lse, dout, &p, &lay, it/p.KVHeads, it%p.KVHeads)
		}
	})
}

// backwardGroup computes dq for every query head of key/value head kh of
// batch entry b, and dk, dv of that key/value head: key tiles outside, row
// tiles inside, so each dK/dV tile is finished before it is written.
func backwardGroup(ws *bwdScratch, dq, dk, dv, q, k, v, out, lse, dout []float32, p *Params, lay *tileLayout, b, kh int) {
	d, g, ld, ldq := p.Dim, lay.g, lay.ld, ws.ldq
	rows := p.Tq * g
	inf := float32(math.Inf(1))

	clear(ws.qt)
	clear(ws.dot)
	clear(ws.qr)
	clear(ws.dor)
	clear(ws.dq)
	for r := range ws.lse {
		ws.lse[r] = inf
		ws.delta[r] = 0
	}
	for r := 0; r < rows; r++ {
		t, hq := r/g, kh*g+r%g
		qr := q[(b*p.Tq+t)*p.QStride+hq*d:][:d]
		or := out[(b*p.Tq+t)*p.OStride+hq*d:][:d]
		gr := dout[(b*p.Tq+t)*p.OStride+hq*d:][:d]
		var delta float32
		for c := range d {
			ws.qt[c*ldq+r] = qr[c] * p.Scale
			ws.dot[c*ldq+r] = gr[c]
			delta += or[c] * gr[c]
		}
		copy(ws.qr[r*d:][:d], qr)
		copy(ws.dor[r*d:][:d], gr)
		ws.delta[r] = delta
		if l := lse[(b*p.Heads+hq)*p.Tq+t]; !math.IsInf(float64(l), -1) {
			ws.lse[r] = l
		}
	}

	kbase := b*p.KVCap*p.KStride + kh*d
	vbase := b*p.KVCap*p.VStride + kh*d
	for j := 0; j < p.Tk; j++ {
		clear(dk[kbase+j*p.KStride:][:d])
		clear(dv[vbase+j*p.VStride:][:d])
	}

	jlo, _ := keyRange(&p.Mask, p.Mask.QOffset, p.Tk)
	_, jhi := keyRange(&p.Mask, p.Mask.QOffset+p.Tq-1, p.Tk)
	for j0 := jlo; j0 < jhi; j0 += lay.bk {
		j1 := min(j0+lay.bk, jhi)
		bk := j1 - j0
		bk4 := roundUp(bk, 4)
		first := true
		for t0 := 0; t0 < p.Tq; t0 += lay.tq {
			t1 := min(t0+lay.tq, p.Tq)
			pa, pb := p.Mask.QOffset+t0, p.Mask.QOffset+t1-1
			if p.Mask.Kind != Explicit {
				loA, _ := keyRange(&p.Mask, pa, p.Tk)
				_, hiB := keyRange(&p.Mask, pb, p.Tk)
				if j0 >= hiB || j1 <= loA {
					continue
				}
			}
			r0, nr := t0*g, (t1-t0)*g
			n := roundUp(nr, 16)
			gemmRows(ws.s, ld, k, kbase+j0*p.KStride, p.KStride, bk, d, ws.qt[r0:], ldq, n, ws.tail)
			if !tileIsFull(p, pa, pb, j0, j1) {
				maskTile(ws.s, ld, p, lay, t0, nr, j0, j1)
			}
			gemmRows(ws.dp, ld, v, vbase+j0*p.VStride, p.VStride, bk, d, ws.dot[r0:], ldq, n, ws.tail)
			softmaxGradCols(ws.s, ws.dp, ld, bk, n, ws.lse[r0:], ws.delta[r0:], p.Scale)
			// Columns past nr belong to the next row tile; keep them out
			// of the dQ update below, which works on whole blocks of 4.
			for j := 0; j < bk; j++ {
				clear(ws.dp[j*ld+nr : j*ld+roundUp(nr, 4)])
			}
			var beta []float32
			if !first {
				beta = ws.ones
			}
			first = false
			gemm(ws.dvt, d, ws.s, ld, 1, ws.dor[r0*d:], d, bk4, nr, d, beta)
			gemm(ws.dkt, d, ws.dp, ld, 1, ws.qr[r0*d:], d, bk4, nr, d, beta)
			gemm(ws.dq[r0*d:], d, ws.dp, 1, ld, k[kbase+j0*p.KStride:], p.KStride, roundUp(nr, 4), bk, d, ws.ones)
		}
		if first {
			continue // no row sees this tile: dk, dv stay zero
		}
		for j := 0; j < bk; j++ {
			copy(dk[kbase+(j0+j)*p.KStride:][:d], ws.dkt[j*d:][:d])
			copy(dv[vbase+(j0+j)*p.VStride:][:d], ws.dvt[j*d:][:d])
		}
	}

	for r := 0; r < rows; r++ {
		t, hq := r/g, kh*g+r%g
		copy(dq[(b*p.Tq+t)*p.QStride+hq*d:][:d], ws.dq[r*d:][:d])
	}
}
