//go:build ignore

// gen_kernels writes sgemm_amd64.s, the register-tiled SGEMM micro-kernels
// for AVX-512 (Z registers) and AVX2+FMA (Y registers) and the in-register
// transposes that pack transposed B, and sgemv_amd64.s, the memory-bound
// SGEMV kernels. Run it with `go generate ./internal/gemm`.
//
// Every micro-kernel has the Go signature
//
//	func name(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)
//
// and computes, for an MR×k panel of A with row stride rsa and column
// stride csa, and a k×NR panel of B with row stride ldb (a packed panel has
// rsa = 1, csa = MR, ldb = NR; an unpacked one its matrix's strides):
//
//	for i := 0; i < MR; i++ {
//		for j := 0; j < NR; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[i*rsa+p*csa] * b[p*ldb+j]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}
package main

import (
	"bytes"
	"fmt"
	"os"
)

type kernel struct {
	// pf adds an argument pf (an address, as uintptr) and prefetches pfLine
	// cache lines from it per unrolled iteration, advancing it: the caller
	// points it at the next panel it will read (of A or of B) so that
	// reading it from memory overlaps this panel's arithmetic.
	pf     bool
	pfLine int    // cache lines prefetched per unrolled iteration (pf only)
	pfHint string // the prefetch instruction (pf only)
	name   string
	mr, nv int    // rows, vectors per row
	reg    string // "Z" or "Y"
	width  int    // floats per vector
	unroll int    // k-loop unroll
}

func (k kernel) nr() int { return k.nv * k.width }

var w bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }

func gen(k kernel) {
	nreg := k.mr*k.nv + k.nv + 2
	limit := 32
	if k.reg == "Y" {
		limit = 16
	}
	if nreg > limit || k.mr > 12 {
		panic(fmt.Sprintf("%s: tile too large", k.name))
	}
	acc := func(r, v int) string { return fmt.Sprintf("%s%d", k.reg, r*k.nv+v) }
	bv := func(v int) string { return fmt.Sprintf("%s%d", k.reg, k.mr*k.nv+v) }
	tmp := func(i int) string { return fmt.Sprintf("%s%d", k.reg, k.mr*k.nv+k.nv+i%2) }
	vb := k.width * 4 // bytes per vector
	// Row r of the A panel is at bases[r/3] + (r%3)*rsa: three rows per base
	// register, addressed with index scales 1 and 2.
	bases := []string{"AX", "R12", "R13", "DI"}[:(k.mr+2)/3]
	arow := func(r int) string {
		b := bases[r/3]
		switch r % 3 {
		case 1:
			return fmt.Sprintf("(%s)(R11*1)", b)
		case 2:
			return fmt.Sprintf("(%s)(R11*2)", b)
		}
		return fmt.Sprintf("(%s)", b)
	}

	if k.pf {
		p("// func %s(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, pf uintptr)", k.name)
		p("TEXT ·%s(SB), NOSPLIT, $0-80", k.name)
		p("\tMOVQ pf+72(FP), R14")
	} else {
		p("// func %s(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32)", k.name)
		p("TEXT ·%s(SB), NOSPLIT, $0-72", k.name)
	}
	p("\tMOVQ k+0(FP), CX")
	p("\tMOVQ a+8(FP), AX")
	p("\tMOVQ rsa+16(FP), R11")
	p("\tSHLQ $2, R11")
	p("\tMOVQ csa+24(FP), R10")
	p("\tSHLQ $2, R10")
	p("\tMOVQ b+32(FP), BX")
	p("\tMOVQ ldb+40(FP), R9")
	p("\tSHLQ $2, R9")
	p("\tMOVQ c+48(FP), DX")
	p("\tMOVQ ldc+56(FP), SI")
	p("\tSHLQ $2, SI")
	for i := 1; i < len(bases); i++ {
		p("\tLEAQ (%s)(R11*2), %s", bases[i-1], bases[i])
		p("\tADDQ R11, %s", bases[i])
	}
	// Prefetch the C tile so its lines arrive while the k-loop runs.
	p("\tMOVQ DX, R8")
	for r := 0; r < k.mr; r++ {
		for off := 0; off < k.nr()*4; off += 64 {
			p("\tPREFETCHT0 %d(R8)", off)
		}
		if r < k.mr-1 {
			p("\tADDQ SI, R8")
		}
	}
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nv; v++ {
			a := acc(r, v)
			p("\tVXORPS %s, %s, %s", a, a, a)
		}
	}
	body := func() {
		for v := 0; v < k.nv; v++ {
			p("\tVMOVUPS %d(BX), %s", v*vb, bv(v))
		}
		for r := 0; r < k.mr; r++ {
			if k.nv == 1 && k.reg == "Z" {
				// One use per element: fold the broadcast into the FMA.
				p("\tVFMADD231PS.BCST %s, %s, %s", arow(r), bv(0), acc(r, 0))
				continue
			}
			t := tmp(r)
			p("\tVBROADCASTSS %s, %s", arow(r), t)
			for v := 0; v < k.nv; v++ {
				p("\tVFMADD231PS %s, %s, %s", bv(v), t, acc(r, v))
			}
		}
		p("\tADDQ R9, BX")
		for _, b := range bases {
			p("\tADDQ R10, %s", b)
		}
	}
	p("\tMOVQ CX, R8")
	p("\tSHRQ $%d, R8", log2(k.unroll))
	p("\tJZ %s_tail", k.name)
	p("%s_loop:", k.name)
	for u := 0; u < k.unroll; u++ {
		body()
		if k.pf && u == 0 {
			for l := 0; l < k.pfLine; l++ {
				p("\t%s %d(R14)", k.pfHint, 64*l)
			}
			p("\tADDQ $%d, R14", 64*k.pfLine)
		}
	}
	p("\tDECQ R8")
	p("\tJNZ %s_loop", k.name)
	p("%s_tail:", k.name)
	p("\tANDQ $%d, CX", k.unroll-1)
	p("\tJZ %s_update", k.name)
	p("%s_tailloop:", k.name)
	body()
	p("\tDECQ CX")
	p("\tJNZ %s_tailloop", k.name)

	p("%s_update:", k.name)
	alpha, beta := bv(0), tmp(0)
	p("\tVBROADCASTSS alpha+64(FP), %s", alpha)
	p("\tVBROADCASTSS beta+68(FP), %s", beta)
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nv; v++ {
			p("\tVMULPS %s, %s, %s", alpha, acc(r, v), acc(r, v))
		}
	}
	// beta == 0 (either sign) never reads C.
	p("\tMOVL beta+68(FP), R8")
	p("\tANDL $0x7fffffff, R8")
	p("\tJZ %s_store", k.name)
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nv; v++ {
			p("\tVFMADD231PS %d(DX), %s, %s", v*vb, beta, acc(r, v))
			p("\tVMOVUPS %s, %d(DX)", acc(r, v), v*vb)
		}
		if r < k.mr-1 {
			p("\tADDQ SI, DX")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("%s_store:", k.name)
	for r := 0; r < k.mr; r++ {
		for v := 0; v < k.nv; v++ {
			p("\tVMOVUPS %s, %d(DX)", acc(r, v), v*vb)
		}
		if r < k.mr-1 {
			p("\tADDQ SI, DX")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genDot4 writes dot4: four dot products of rows a, a+lda, a+2lda, a+3lda
// with x, over n floats (n a multiple of 2*width).
func genDot4(name, reg string, width int) {
	vb := width * 4
	acc := func(r, v int) string { return fmt.Sprintf("%s%d", reg, r*2+v) }
	xv := func(v int) string { return fmt.Sprintf("%s%d", reg, 8+v) }
	p("// func %s(n int, a *float32, lda int, x *float32, out *[4]float32)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	p("\tMOVQ n+0(FP), CX")
	p("\tMOVQ a+8(FP), AX")
	p("\tMOVQ lda+16(FP), R11")
	p("\tSHLQ $2, R11")
	p("\tMOVQ x+24(FP), DI")
	p("\tLEAQ (AX)(R11*1), BX")
	p("\tLEAQ (AX)(R11*2), DX")
	p("\tLEAQ (BX)(R11*2), SI")
	for r := 0; r < 4; r++ {
		for v := 0; v < 2; v++ {
			p("\tVXORPS %s, %s, %s", acc(r, v), acc(r, v), acc(r, v))
		}
	}
	rows := []string{"AX", "BX", "DX", "SI"}
	p("\tSHRQ $%d, CX", log2(2*width))
	p("\tJZ %s_reduce", name)
	p("%s_loop:", name)
	for v := 0; v < 2; v++ {
		p("\tVMOVUPS %d(DI), %s", v*vb, xv(v))
	}
	for v := 0; v < 2; v++ {
		for r := 0; r < 4; r++ {
			p("\tVFMADD231PS %d(%s), %s, %s", v*vb, rows[r], xv(v), acc(r, v))
		}
	}
	for _, r := range append(rows, "DI") {
		p("\tADDQ $%d, %s", 2*vb, r)
	}
	p("\tDECQ CX")
	p("\tJNZ %s_loop", name)
	p("%s_reduce:", name)
	p("\tMOVQ out+32(FP), DI")
	for r := 0; r < 4; r++ {
		a0, a1 := acc(r, 0), acc(r, 1)
		y := "Y" + a0[1:]
		x := "X" + a0[1:]
		p("\tVADDPS %s, %s, %s", a1, a0, a0)
		if reg == "Z" {
			p("\tVEXTRACTF64X4 $1, %s, Y10", a0)
			p("\tVADDPS Y10, %s, %s", y, y)
		}
		p("\tVEXTRACTF128 $1, %s, X10", y)
		p("\tVADDPS X10, %s, %s", x, x)
		p("\tVHADDPS %s, %s, %s", x, x, x)
		p("\tVHADDPS %s, %s, %s", x, x, x)
		p("\tVMOVSS %s, %d(DI)", x, 4*r)
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genAxpy4 writes axpy4: y[j] += s[0]*a[j] + s[1]*a[lda+j] + s[2]*a[2lda+j]
// + s[3]*a[3lda+j] for j < n (n a multiple of 2*width).
func genAxpy4(name, reg string, width int) {
	vb := width * 4
	r := func(i int) string { return fmt.Sprintf("%s%d", reg, i) }
	p("// func %s(n int, y, a *float32, lda int, s *[4]float32)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-40", name)
	p("\tMOVQ n+0(FP), CX")
	p("\tMOVQ y+8(FP), DI")
	p("\tMOVQ a+16(FP), AX")
	p("\tMOVQ lda+24(FP), R11")
	p("\tSHLQ $2, R11")
	p("\tMOVQ s+32(FP), R8")
	p("\tLEAQ (AX)(R11*1), BX")
	p("\tLEAQ (AX)(R11*2), DX")
	p("\tLEAQ (BX)(R11*2), SI")
	for i := 0; i < 4; i++ {
		p("\tVBROADCASTSS %d(R8), %s", 4*i, r(8+i))
	}
	rows := []string{"AX", "BX", "DX", "SI"}
	p("\tSHRQ $%d, CX", log2(2*width))
	p("\tJZ %s_done", name)
	p("%s_loop:", name)
	for v := 0; v < 2; v++ {
		t0, t1 := r(2*v), r(2*v+1)
		p("\tVMOVUPS %d(DI), %s", v*vb, t0)
		p("\tVMULPS %d(%s), %s, %s", v*vb, rows[2], r(10), t1)
		p("\tVFMADD231PS %d(%s), %s, %s", v*vb, rows[0], r(8), t0)
		p("\tVFMADD231PS %d(%s), %s, %s", v*vb, rows[3], r(11), t1)
		p("\tVFMADD231PS %d(%s), %s, %s", v*vb, rows[1], r(9), t0)
	}
	for v := 0; v < 2; v++ {
		p("\tVADDPS %s, %s, %s", r(2*v+1), r(2*v), r(2*v))
		p("\tVMOVUPS %s, %d(DI)", r(2*v), v*vb)
	}
	for _, x := range append(rows, "DI") {
		p("\tADDQ $%d, %s", 2*vb, x)
	}
	p("\tDECQ CX")
	p("\tJNZ %s_loop", name)
	p("%s_done:", name)
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genTranspose16 writes transpose16x16: dst[j*ldd+i] = src[i*lds+j] for
// i, j < 16, in four shuffle stages over 32 Z registers.
func genTranspose16(name string) {
	z := func(i int) string { return fmt.Sprintf("Z%d", i) }
	p("// func %s(src *float32, lds int, dst *float32, ldd int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	p("\tMOVQ src+0(FP), AX")
	p("\tMOVQ lds+8(FP), BX")
	p("\tSHLQ $2, BX")
	p("\tMOVQ dst+16(FP), DX")
	p("\tMOVQ ldd+24(FP), SI")
	p("\tSHLQ $2, SI")
	for r := 0; r < 16; r++ {
		p("\tVMOVUPS (AX), %s", z(r))
		if r < 15 {
			p("\tADDQ BX, AX")
		}
	}
	// Stage 1: interleave row pairs: [a0 b0 a1 b1 | …] and [a2 b2 a3 b3 | …].
	for g := 0; g < 4; g++ {
		for q := 0; q < 2; q++ {
			a, b := 4*g+2*q, 4*g+2*q+1
			p("\tVUNPCKLPS %s, %s, %s", z(b), z(a), z(16+4*g+2*q))
			p("\tVUNPCKHPS %s, %s, %s", z(b), z(a), z(16+4*g+2*q+1))
		}
	}
	// Stage 2: each 128-bit lane of Z(4g+c) holds column 4L+c of rows
	// 4g … 4g+3.
	for g := 0; g < 4; g++ {
		lo0, hi0, lo1, hi1 := z(16+4*g), z(16+4*g+1), z(16+4*g+2), z(16+4*g+3)
		p("\tVSHUFPS $0x44, %s, %s, %s", lo1, lo0, z(4*g))
		p("\tVSHUFPS $0xEE, %s, %s, %s", lo1, lo0, z(4*g+1))
		p("\tVSHUFPS $0x44, %s, %s, %s", hi1, hi0, z(4*g+2))
		p("\tVSHUFPS $0xEE, %s, %s, %s", hi1, hi0, z(4*g+3))
	}
	// Stage 3: pair row groups (0,1) and (2,3) lane-wise.
	for c := 0; c < 4; c++ {
		for h := 0; h < 2; h++ {
			u0, u1 := z(4*(2*h)+c), z(4*(2*h+1)+c)
			p("\tVSHUFF32X4 $0x44, %s, %s, %s", u1, u0, z(16+8*h+2*c))
			p("\tVSHUFF32X4 $0xEE, %s, %s, %s", u1, u0, z(16+8*h+2*c+1))
		}
	}
	// Stage 4: gather lane L of the four groups into output row 4L+c.
	for c := 0; c < 4; c++ {
		lo0, hi0 := z(16+2*c), z(16+2*c+1)
		lo1, hi1 := z(16+8+2*c), z(16+8+2*c+1)
		p("\tVSHUFF32X4 $0x88, %s, %s, %s", lo1, lo0, z(c))
		p("\tVSHUFF32X4 $0xDD, %s, %s, %s", lo1, lo0, z(4+c))
		p("\tVSHUFF32X4 $0x88, %s, %s, %s", hi1, hi0, z(8+c))
		p("\tVSHUFF32X4 $0xDD, %s, %s, %s", hi1, hi0, z(12+c))
	}
	for r := 0; r < 16; r++ {
		p("\tVMOVUPS %s, (DX)", z(r))
		if r < 15 {
			p("\tADDQ SI, DX")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genTranspose8 writes transpose8x8 (AVX): dst[j*ldd+i] = src[i*lds+j]
// for i, j < 8, in three shuffle stages over 16 Y registers.
func genTranspose8(name string) {
	y := func(i int) string { return fmt.Sprintf("Y%d", i) }
	p("// func %s(src *float32, lds int, dst *float32, ldd int)", name)
	p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	p("\tMOVQ src+0(FP), AX")
	p("\tMOVQ lds+8(FP), BX")
	p("\tSHLQ $2, BX")
	p("\tMOVQ dst+16(FP), DX")
	p("\tMOVQ ldd+24(FP), SI")
	p("\tSHLQ $2, SI")
	for r := 0; r < 8; r++ {
		p("\tVMOVUPS (AX), %s", y(r))
		if r < 7 {
			p("\tADDQ BX, AX")
		}
	}
	// Stage 1: interleave row pairs.
	for q := 0; q < 4; q++ {
		p("\tVUNPCKLPS %s, %s, %s", y(2*q+1), y(2*q), y(8+2*q))
		p("\tVUNPCKHPS %s, %s, %s", y(2*q+1), y(2*q), y(8+2*q+1))
	}
	// Stage 2: lane L of Y(4h+c) holds column 4L+c of rows 4h … 4h+3.
	for h := 0; h < 2; h++ {
		lo0, hi0, lo1, hi1 := y(8+4*h), y(8+4*h+1), y(8+4*h+2), y(8+4*h+3)
		p("\tVSHUFPS $0x44, %s, %s, %s", lo1, lo0, y(4*h))
		p("\tVSHUFPS $0xEE, %s, %s, %s", lo1, lo0, y(4*h+1))
		p("\tVSHUFPS $0x44, %s, %s, %s", hi1, hi0, y(4*h+2))
		p("\tVSHUFPS $0xEE, %s, %s, %s", hi1, hi0, y(4*h+3))
	}
	// Stage 3: join the row halves lane by lane.
	for c := 0; c < 4; c++ {
		p("\tVPERM2F128 $0x20, %s, %s, %s", y(4+c), y(c), y(8+c))
		p("\tVPERM2F128 $0x31, %s, %s, %s", y(4+c), y(c), y(12+c))
	}
	for r := 0; r < 8; r++ {
		p("\tVMOVUPS %s, (DX)", y(8+r))
		if r < 7 {
			p("\tADDQ SI, DX")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

func writeFile(name string) {
	if err := os.WriteFile(name, w.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w.Reset()
}

func header() {
	p("// Code generated by gen_kernels.go; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !purego")
	p("")
	p("#include \"textflag.h\"")
	p("")
}

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	if 1<<l != n {
		panic("unroll must be a power of two")
	}
	return l
}

func main() {
	header()
	for _, k := range []kernel{
		{name: "kernAVX512x6x64", mr: 6, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x8x48", mr: 8, nv: 3, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x12x16", mr: 12, nv: 1, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x6x64pf", mr: 6, nv: 4, reg: "Z", width: 16, unroll: 4, pf: true, pfLine: 6, pfHint: "PREFETCHT1"},
		{name: "kernAVX512x1x64", mr: 1, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x2x64", mr: 2, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x3x64", mr: 3, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x4x64", mr: 4, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX512x5x64", mr: 5, nv: 4, reg: "Z", width: 16, unroll: 4},
		{name: "kernAVX2x6x16", mr: 6, nv: 2, reg: "Y", width: 8, unroll: 4},
	} {
		gen(k)
	}
	genTranspose16("transpose16x16AVX512")
	genTranspose8("transpose8x8AVX")
	writeFile("sgemm_amd64.s")
	header()
	genDot4("dot4AVX512", "Z", 16)
	genDot4("dot4AVX2", "Y", 8)
	genAxpy4("axpy4AVX512", "Z", 16)
	genAxpy4("axpy4AVX2", "Y", 8)
	writeFile("sgemv_amd64.s")
}
