package gemm

import "fmt"

// Products with a weight matrix packed once: C = A·Wᵀ for a few rows of A
// (the tokens of a batched pass) and a weight W [n, k] read from memory on
// every call. Packing W into panels of packedNR columns, each stored k-major
// (for each input position, its packedNR weights side by side), turns every
// read of W into one sequential stream, and the 6×64 register tile reuses
// each weight for six rows of A (rows past a multiple of six take a tile
// of their height). The AVX-512 kernel prefetches the next panel into L2
// while it computes, so that streaming W from memory overlaps the
// arithmetic on the rows after the first six.

const (
	packedMR = 6  // rows of A per register tile
	packedNR = 64 // columns of W per panel
)

// Packed is an n×k matrix W laid out for GemmPacked: panel q holds, for
// each p < k, W[q*64+j][p] for j < 64 (zero past n).
type Packed struct {
	n, k int
	data []float32
}

// PackF32 packs the n×k row-major matrix w (row stride ldw) for
// GemmPacked.
func PackF32(w []float32, n, k, ldw int) *Packed {
	if n <= 0 || k <= 0 {
		panic(fmt.Sprintf("gemm: PackF32 of a %dx%d matrix", n, k))
	}
	return PackF32In(make([]float32, PackedLen(n, k)), w, n, k, ldw)
}

// PackedLen is the number of floats an n×k matrix takes packed.
func PackedLen(n, k int) int { return (n + packedNR - 1) / packedNR * packedNR * k }

// PackF32In is PackF32 writing the packed matrix into buf[:PackedLen(n,
// k)], which the result keeps: callers place several matrices in one
// allocation (on huge pages, say).
func PackF32In(buf, w []float32, n, k, ldw int) *Packed {
	if n <= 0 || k <= 0 {
		panic(fmt.Sprintf("gemm: PackF32 of a %dx%d matrix", n, k))
	}
	checkMatrix("W", w, n, k, ldw)
	size := PackedLen(n, k)
	if len(buf) < size {
		panic(fmt.Sprintf("gemm: PackF32In of a %dx%d matrix into %d floats (needs %d)", n, k, len(buf), size))
	}
	p := &Packed{n: n, k: k, data: buf[:size:size]}
	if n%packedNR != 0 {
		clear(p.data[n/packedNR*k*packedNR:])
	}
	for j := 0; j < n; j++ {
		pan := p.data[j/packedNR*k*packedNR+j%packedNR:]
		for q, v := range w[j*ldw : j*ldw+k] {
			pan[q*packedNR] = v
		}
	}
	return p
}

// N is the number of rows of W (columns of the product).
func (p *Packed) N() int { return p.n }

// K is the number of columns of W (the inner dimension).
func (p *Packed) K() int { return p.k }

// Panels is the number of panels, each PanelCols columns of the product.
func (p *Packed) Panels() int { return (p.n + packedNR - 1) / packedNR }

// PanelCols is the number of columns of the product per panel.
const PanelCols = packedNR

// Bytes is the size of the packed matrix.
func (p *Packed) Bytes() int { return 4 * len(p.data) }

// GemmPacked computes columns [q0*PanelCols, min(q1*PanelCols, n)) of
// C = A·Wᵀ + beta·C for the m×k row-major matrix A (row stride lda) and
// the packed n×k matrix W, on the calling goroutine: callers share the
// panels of one product among their own threads. C is m×n with row stride
// ldc; beta is 0 (C is overwritten and never read) or 1. Every element is
// computed the same way whatever the panel range, so results do not depend
// on how callers split the panels.
func GemmPacked(m int, a []float32, lda int, w *Packed, q0, q1 int, beta float32, c []float32, ldc int) {
	if m <= 0 || q0 >= q1 {
		return
	}
	if beta != 0 && beta != 1 {
		panic(fmt.Sprintf("gemm: GemmPacked with beta %v (want 0 or 1)", beta))
	}
	n, k := w.n, w.k
	if q0 < 0 || q1 > w.Panels() {
		panic(fmt.Sprintf("gemm: GemmPacked panels [%d, %d) of %d", q0, q1, w.Panels()))
	}
	checkMatrix("A", a, m, k, lda)
	checkMatrix("C", c, m, n, ldc)
	var tile [packedMR * packedNR]float32
	tiles := (m + packedMR - 1) / packedMR
	for q := q0; q < q1; q++ {
		pan := w.data[q*k*packedNR : (q+1)*k*packedNR]
		next := pan
		if q+1 < q1 {
			next = w.data[(q+1)*k*packedNR : (q+2)*k*packedNR]
		}
		col := q * packedNR
		cols := min(packedNR, n-col)
		for t := 0; t < tiles; t++ {
			// Each tile prefetches its share of the next panel; the last
			// one may have fewer rows. A partial panel (past n) goes
			// through a scratch tile.
			r := t * packedMR
			rows := min(packedMR, m-r)
			pf := next[min(t*k*packedNR/tiles, len(next)-1):]
			if cols == packedNR {
				packedTile(rows, k, a[r*lda:], lda, pan, c[r*ldc+col:], ldc, beta, pf)
				continue
			}
			packedTile(rows, k, a[r*lda:], lda, pan, tile[:], packedNR, 0, pf)
			mergeTile(c[r*ldc+col:], ldc, tile[:], packedNR, rows, cols, beta)
		}
	}
}

// packedTileGo is packedTile in Go: c = a·panel (+ c when beta == 1) for
// rows rows of a (row stride lda) and one k×64 panel.
func packedTileGo(rows, k int, a []float32, lda int, pan []float32, c []float32, ldc int, beta float32) {
	for i := 0; i < rows; i++ {
		var acc [packedNR]float32
		ai := a[i*lda : i*lda+k]
		for p, av := range ai {
			bp := pan[p*packedNR : p*packedNR+packedNR : p*packedNR+packedNR]
			for j, bv := range bp {
				acc[j] += av * bv
			}
		}
		mergeTile(c[i*ldc:], ldc, acc[:], packedNR, 1, packedNR, beta)
	}
}
