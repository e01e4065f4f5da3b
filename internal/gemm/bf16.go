package gemm

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"tessera/internal/parallel"
)

// bfloat16 products: C = A·Wᵀ (+ C) with A and W rounded to bfloat16 (8-bit
// significand, float32's exponent range) and every product accumulated in
// float32. On CPUs with AVX512_BF16 one VDPBF16PS does 32 multiply-adds, twice
// the float32 FMA rate, so inference layers whose weights are packed once
// (PackBF16) run at up to twice the speed of Sgemm, at a relative rounding
// error of about 2⁻⁹ per operand.
//
// The packed weight is a sequence of panels of bf16NR output columns; panel
// q holds, for each pair of input positions (2p, 2p+1) and each of its
// columns j, one 32-bit word: bf16(W[q*NR+j][2p]) in the low half and
// bf16(W[q*NR+j][2p+1]) in the high half (zero past the matrix). A is
// converted row by row to the same pairs, so the kernel broadcasts one
// word of A and multiplies it against a vector of 16 columns.

const (
	bf16MR = 6  // rows of the register tile
	bf16NR = 64 // columns of the register tile (four vectors of 16)
	// bf16BlockBytes bounds the converted rows of A one worker keeps hot
	// (its share of L2) while it sweeps the weight panels.
	bf16BlockBytes = 128 << 10
)

// PackedBF16 is an n×k matrix W, rounded to bfloat16 and laid out for
// GemmBF16, which computes A·Wᵀ: W is a Linear layer's weight [out, in].
type PackedBF16 struct {
	n, k int
	kp   int      // pairs: ceil(k/2)
	data []uint32 // panels of kp×bf16NR words
}

// N is the number of rows of W (columns of the product).
func (p *PackedBF16) N() int { return p.n }

// K is the number of columns of W (the inner dimension).
func (p *PackedBF16) K() int { return p.k }

// PackBF16 rounds the n×k row-major matrix w (row stride ldw) to bfloat16
// and packs it for GemmBF16.
func PackBF16(w []float32, n, k, ldw int) *PackedBF16 {
	if n <= 0 || k <= 0 {
		panic(fmt.Sprintf("gemm: PackBF16 of a %dx%d matrix", n, k))
	}
	checkMatrix("W", w, n, k, ldw)
	kp := (k + 1) / 2
	panels := (n + bf16NR - 1) / bf16NR
	p := &PackedBF16{n: n, k: k, kp: kp, data: make([]uint32, panels*kp*bf16NR)}
	row := make([]uint32, kp)
	for j := 0; j < n; j++ {
		bf16Row(row, w[j*ldw:j*ldw+k])
		pan := p.data[j/bf16NR*kp*bf16NR+j%bf16NR:]
		for q, v := range row {
			pan[q*bf16NR] = v
		}
	}
	return p
}

// BF16Native reports whether GemmBF16 runs on native bfloat16 dot-product
// instructions at the current kernel level (otherwise it runs a portable Go
// loop, far slower than Sgemm).
func BF16Native() bool { return bf16Native() }

// GemmBF16 computes C = A·Wᵀ + bias + beta*C for the m×k row-major matrix
// A (row stride lda), the packed n×k matrix W, the n values of bias (added
// to every row; nil for none) and the m×n matrix C (row stride ldc), with A
// and W rounded to bfloat16 and float32 accumulation. beta is 0 (C is
// overwritten and never read) or 1.
func GemmBF16(m int, a []float32, lda int, w *PackedBF16, bias []float32, beta float32, c []float32, ldc int) {
	if m <= 0 {
		return
	}
	if beta != 0 && beta != 1 {
		panic(fmt.Sprintf("gemm: GemmBF16 with beta %v (want 0 or 1)", beta))
	}
	n, k := w.n, w.k
	checkMatrix("A", a, m, k, lda)
	checkMatrix("C", c, m, n, ldc)
	if bias != nil && len(bias) < n {
		panic(fmt.Sprintf("gemm: GemmBF16 bias has %d values for %d columns", len(bias), n))
	}
	kp := w.kp
	panels := (n + bf16NR - 1) / bf16NR
	// Rows per block: a multiple of the tile height whose converted rows
	// fit the block budget.
	mc := max(bf16MR, min(384, bf16BlockBytes/(4*kp))/bf16MR*bf16MR)
	threads := parallel.Threads()
	if m*n*k < parallelMinFlops {
		threads = 1
	}
	blocks := (m + mc - 1) / mc
	if threads > 1 && blocks < 2*threads && panels >= 2 {
		// Few rows: convert A once, then share out the panels.
		ws := getBF16Workspace(roundUp(m, bf16MR) * kp)
		defer bf16Workspaces.Put(ws)
		bf16ConvertRows(ws.a, a, lda, m, k, kp)
		var next atomic.Int64
		parallel.Split(threads, min(threads, panels), func(_, _ int) {
			tile := getBF16Workspace(0)
			defer bf16Workspaces.Put(tile)
			for {
				q := int(next.Add(1) - 1)
				if q >= panels {
					return
				}
				bf16Panel(ws.a, m, kp, w, q, bias, c, ldc, beta, tile)
			}
		})
		return
	}
	var next atomic.Int64
	run := func() {
		ws := getBF16Workspace(roundUp(mc, bf16MR) * kp)
		defer bf16Workspaces.Put(ws)
		for {
			b := int(next.Add(1) - 1)
			if b >= blocks {
				return
			}
			lo := b * mc
			rows := min(mc, m-lo)
			bf16ConvertRows(ws.a, a[lo*lda:], lda, rows, k, kp)
			for q := 0; q < panels; q++ {
				bf16Panel(ws.a, rows, kp, w, q, bias, c[lo*ldc:], ldc, beta, ws)
			}
		}
	}
	if threads <= 1 || blocks == 1 {
		run()
		return
	}
	parallel.Split(threads, min(threads, blocks), func(_, _ int) { run() })
}

// bf16Panel computes columns q*NR … of C for the rows converted in ab.
func bf16Panel(ab []uint32, rows, kp int, w *PackedBF16, q int, bias, c []float32, ldc int, beta float32, ws *bf16Workspace) {
	bp := w.data[q*kp*bf16NR : (q+1)*kp*bf16NR]
	col := q * bf16NR
	cols := min(bf16NR, w.n-col)
	acc := 0
	if beta != 0 {
		acc = 1
	}
	var bb []float32
	if bias != nil {
		bb = bias[col:]
		if cols < bf16NR {
			bb = ws.bias[:]
			copy(bb, bias[col:col+cols])
			clear(bb[cols:])
		}
	}
	for r := 0; r < rows; r += bf16MR {
		ar := ab[r*kp : (r+bf16MR)*kp]
		if cols == bf16NR && r+bf16MR <= rows {
			bf16Kernel(kp, ar, bp, c[r*ldc+col:], ldc, acc, bb)
			continue
		}
		bf16Kernel(kp, ar, bp, ws.tile[:], bf16NR, 0, bb)
		mergeTile(c[r*ldc+col:], ldc, ws.tile[:], bf16NR, min(bf16MR, rows-r), cols, beta)
	}
}

// bf16Kernel runs the 6×64 micro-kernel: c = a·b + bias (+ c when acc !=
// 0) for 6 rows of kp pairs in a (row stride kp), one packed panel b and
// 64 bias values (nil: none).
func bf16Kernel(kp int, a, b []uint32, c []float32, ldc, acc int, bias []float32) {
	_ = a[bf16MR*kp-1]
	_ = b[kp*bf16NR-1]
	_ = c[(bf16MR-1)*ldc+bf16NR-1]
	if bias != nil {
		_ = bias[bf16NR-1]
	}
	if bf16Native() {
		bf16KernNative(kp, a, b, c, ldc, acc, bias)
		return
	}
	bf16KernGeneric(kp, a, b, c, ldc, acc, bias)
}

// bf16KernGeneric is the micro-kernel in Go, with the semantics of
// VDPBF16PS: per pair, the high product is added before the low one.
func bf16KernGeneric(kp int, a, b []uint32, c []float32, ldc, acc int, bias []float32) {
	var t [bf16MR][bf16NR]float32
	if bias != nil {
		for r := range t {
			copy(t[r][:], bias[:bf16NR])
		}
	}
	for r := 0; r < bf16MR; r++ {
		ar := a[r*kp : r*kp+kp]
		tr := &t[r]
		for p, av := range ar {
			alo, ahi := bf16Lo(av), bf16Hi(av)
			bw := b[p*bf16NR : p*bf16NR+bf16NR]
			for j, bv := range bw {
				s := tr[j] + ahi*bf16Hi(bv)
				tr[j] = s + alo*bf16Lo(bv)
			}
		}
	}
	for r := 0; r < bf16MR; r++ {
		cr := c[r*ldc : r*ldc+bf16NR]
		for j := range cr {
			if acc != 0 {
				cr[j] += t[r][j]
			} else {
				cr[j] = t[r][j]
			}
		}
	}
}

func bf16Lo(v uint32) float32 { return math.Float32frombits(v << 16) }
func bf16Hi(v uint32) float32 { return math.Float32frombits(v &^ 0xffff) }

// ToBF16 rounds f to bfloat16 the way the conversion instructions do:
// round to nearest even, subnormals flushed to zero, NaN kept quiet.
func ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	switch {
	case b&0x7f800000 == 0: // zero or subnormal
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000: // NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// FromBF16 widens a bfloat16 to float32 (exactly).
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// bf16ConvertRows writes rows rows of A (k floats, row stride lda) as kp
// pairs each into dst, then zero rows up to a multiple of the tile height.
func bf16ConvertRows(dst []uint32, a []float32, lda, rows, k, kp int) {
	for r := 0; r < rows; r++ {
		bf16Row(dst[r*kp:r*kp+kp], a[r*lda:r*lda+k])
	}
	clear(dst[rows*kp : roundUp(rows, bf16MR)*kp])
}

// bf16Row converts src (len k) into ceil(k/2) pairs, the last padded with
// zero when k is odd.
func bf16Row(dst []uint32, src []float32) {
	done := 0
	if bf16Native() {
		done = len(src) / 32 * 32
		if done > 0 {
			bf16CvtNative(dst[:done/2], src[:done])
		}
	}
	for i := done; i < len(src); i += 2 {
		lo := uint32(ToBF16(src[i]))
		var hi uint32
		if i+1 < len(src) {
			hi = uint32(ToBF16(src[i+1]))
		}
		dst[i/2] = lo | hi<<16
	}
}

// bf16Workspace holds one worker's converted rows of A and edge tile.
type bf16Workspace struct {
	a    []uint32
	tile [bf16MR * bf16NR]float32
	bias [bf16NR]float32 // a zero-padded edge panel's bias
}

var bf16Workspaces sync.Pool

func getBF16Workspace(words int) *bf16Workspace {
	ws, _ := bf16Workspaces.Get().(*bf16Workspace)
	if ws == nil {
		ws = new(bf16Workspace)
	}
	if cap(ws.a) < words {
		ws.a = make([]uint32, words)
	}
	ws.a = ws.a[:words]
	return ws
}
