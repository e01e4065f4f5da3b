package gemm

import (
	"sync"
	"unsafe"
)

// microKernel is one register-tiled inner kernel with the cache blocking
// tuned for it. Exactly one of asm and gen is set.
type microKernel struct {
	name       string
	mr, nr     int // register tile
	mc, kc, nc int // cache blocks: A block mc×kc (L2), B panel kc×nc (L3)
	// weight is the kernel's cost per padded tile element relative to the
	// fastest kernel of its level, in percent (0 means 100).
	weight int
	asm    func(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)
	gen    func(k int, a []float32, rsa, csa int, b []float32, ldb int, c []float32, ldc int, alpha, beta float32)
}

// call runs the kernel on the MR×k panel a (strides rsa, csa), the k×NR
// panel b (row stride ldb) and the MR×NR tile at c; see kernels_amd64.go
// for the loop it computes.
func (kr *microKernel) call(k int, a []float32, rsa, csa int, b []float32, ldb int, c []float32, ldc int, alpha, beta float32) {
	// The assembly trusts its arguments: check the far corners here.
	_ = a[(kr.mr-1)*rsa+(k-1)*csa]
	_ = b[(k-1)*ldb+kr.nr-1]
	_ = c[(kr.mr-1)*ldc+kr.nr-1]
	if kr.asm != nil {
		kr.asm(k, &a[0], rsa, csa, &b[0], ldb, &c[0], ldc, alpha, beta)
		return
	}
	kr.gen(k, a, rsa, csa, b, ldb, c, ldc, alpha, beta)
}

// workspace holds one worker's packing buffers and edge tile.
type workspace struct {
	ap, bp, tile []float32
	aedge, bedge []float32 // one zero-padded edge panel of A and of B
}

var workspaces sync.Pool

// getWorkspace returns buffers big enough for kr, 64-byte aligned.
func getWorkspace(kr *microKernel) *workspace {
	ws, _ := workspaces.Get().(*workspace)
	if ws == nil {
		ws = new(workspace)
	}
	ws.ap = alignedBuf(ws.ap, roundUp(kr.mc, kr.mr)*kr.kc)
	ws.bp = alignedBuf(ws.bp, roundUp(kr.nc, kr.nr)*kr.kc)
	ws.tile = alignedBuf(ws.tile, kr.mr*kr.nr)
	ws.aedge = alignedBuf(ws.aedge, kr.mr*kr.kc)
	ws.bedge = alignedBuf(ws.bedge, kr.nr*kr.kc)
	return ws
}

// alignedBuf returns a slice of n floats starting on a 64-byte boundary,
// reusing buf when it is large enough.
func alignedBuf(buf []float32, n int) []float32 {
	if cap(buf) >= n && uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64 == 0 {
		return buf[:n]
	}
	raw := make([]float32, n+16)
	off := 0
	for uintptr(unsafe.Pointer(&raw[off]))%64 != 0 {
		off++
	}
	return raw[off : off+n : off+n]
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// Packing policy, for tuning: packAuto decides by shape, packAlways and
// packNever force it where the layout allows.
const (
	packAuto = iota
	packAlways
	packNever
)

var packAMode, packBMode = packAuto, packAuto

// packBMinRows is the number of rows of C from which a row-major B is packed:
// below it each B panel is reused too few times to repay the copy, and the
// kernel reads B in place.
const packBMinRows = 256

// sgemmBlocked computes C = alpha*op(A)*op(B) + beta*C for one worker's
// share, by cache blocks: for each kc×nc panel of B and each mc×kc block of
// A the micro-kernel sweeps the register tiles. Panels are packed into
// contiguous micro-panels unless the kernel can read them in place (A in
// either layout; B untransposed when few rows of C reuse it); edge panels
// are always packed with zero padding. k > 0 and alpha != 0.
func sgemmBlocked(kr *microKernel, ws *workspace, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	mr, nr := kr.mr, kr.nr
	directA := packAMode != packAlways
	directB := !transB && (packBMode == packNever || packBMode == packAuto && m < packBMinRows)
	// op(A)(i, p) = a[i*ars+p*acs].
	ars, acs := lda, 1
	if transA {
		ars, acs = 1, lda
	}
	for jc := 0; jc < n; jc += kr.nc {
		nc := min(kr.nc, n-jc)
		for pc := 0; pc < k; pc += kr.kc {
			kc := min(kr.kc, k-pc)
			// With several k blocks, the first one applies beta and the
			// later ones accumulate.
			bet := beta
			if pc > 0 {
				bet = 1
			}
			if !directB {
				packB(ws.bp, b, ldb, transB, pc, kc, jc, nc, nr)
			} else if nc%nr != 0 {
				packB(ws.bedge, b, ldb, transB, pc, kc, jc+nc/nr*nr, nc%nr, nr)
			}
			for ic := 0; ic < m; ic += kr.mc {
				mc := min(kr.mc, m-ic)
				if !directA {
					packA(ws.ap, a, lda, transA, ic, mc, pc, kc, mr)
				} else if mc%mr != 0 {
					packA(ws.aedge, a, lda, transA, ic+mc/mr*mr, mc%mr, pc, kc, mr)
				}
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bpan, bld := ws.bp[jr*kc:], nr
					if directB {
						bpan, bld = b[pc*ldb+jc+jr:], ldb
						if cols < nr {
							bpan, bld = ws.bedge, nr
						}
					}
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						apan, rsa, csa := ws.ap[ir*kc:], 1, mr
						if directA {
							apan, rsa, csa = a[(ic+ir)*ars+pc*acs:], ars, acs
							if rows < mr {
								apan, rsa, csa = ws.aedge, 1, mr
							}
						}
						ci := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							kr.call(kc, apan, rsa, csa, bpan, bld, c[ci:], ldc, alpha, bet)
							continue
						}
						kr.call(kc, apan, rsa, csa, bpan, bld, ws.tile, nr, alpha, 0)
						mergeTile(c[ci:], ldc, ws.tile, nr, rows, cols, bet)
					}
				}
			}
		}
	}
}

// mergeTile writes the rows×cols corner of an edge tile into C:
// c = t + beta*c, with C never read when beta == 0.
func mergeTile(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		ci := c[i*ldc : i*ldc+cols]
		ti := t[i*ldt : i*ldt+cols]
		switch beta {
		case 0:
			copy(ci, ti)
		case 1:
			for j, v := range ti {
				ci[j] += v
			}
		default:
			for j, v := range ti {
				ci[j] = v + beta*ci[j]
			}
		}
	}
}

// packA copies the mc×kc block of op(A) at (i0, p0) into micro-panels of mr
// rows: panel q holds, for each p, rows q*mr … q*mr+mr-1 (zero beyond mc).
func packA(dst, a []float32, lda int, transA bool, i0, mc, p0, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		d := dst[ir*kc : (ir+mr)*kc]
		rows := min(mr, mc-ir)
		if transA {
			// op(A)(i, p) = a[p*lda+i]: each k step is a contiguous run.
			for p := 0; p < kc; p++ {
				src := a[(p0+p)*lda+i0+ir:]
				dp := d[p*mr : p*mr+mr]
				copy(dp, src[:rows])
				clear(dp[rows:])
			}
			continue
		}
		if rows < mr {
			clear(d)
		}
		for r := 0; r < rows; r++ {
			src := a[(i0+ir+r)*lda+p0 : (i0+ir+r)*lda+p0+kc]
			packStrided(d[r:], src, mr)
		}
	}
}

// packB copies the kc×nc block of op(B) at (p0, j0) into micro-panels of nr
// columns: panel q holds, for each p, columns q*nr … q*nr+nr-1 (zero beyond
// nc).
func packB(dst, b []float32, ldb int, transB bool, p0, kc, j0, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		d := dst[jr*kc : (jr+nr)*kc]
		cols := min(nr, nc-jr)
		if !transB {
			for p := 0; p < kc; p++ {
				dp := d[p*nr : p*nr+nr]
				copy(dp, b[(p0+p)*ldb+j0+jr:(p0+p)*ldb+j0+jr+cols])
				clear(dp[cols:])
			}
			continue
		}
		// op(B)(p, j) = b[j*ldb+p]: each column is a contiguous run.
		if cols < nr {
			clear(d)
		}
		src := b[(j0+jr)*ldb+p0:]
		done := transposeBlock(cols, kc, src, ldb, d, nr)
		for j := 0; j < cols && done < kc; j++ {
			packStrided(d[done*nr+j:], src[j*ldb+done:j*ldb+kc], nr)
		}
	}
}

// packStrided is  for p, v := range src { dst[p*stride] = v }
func packStrided(dst, src []float32, stride int) {
	if len(src) == 0 {
		return
	}
	_ = dst[(len(src)-1)*stride]
	for p, v := range src {
		dst[p*stride] = v
	}
}
