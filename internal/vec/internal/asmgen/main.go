// Command asmgen writes the amd64 assembly of package vec (vec_amd64.s),
// the Go declarations and dispatchers of those routines (vec_amd64.go) and
// their portable stand-ins (vec_other.go). Each kernel is described once,
// as the body of one vector step; the generator wraps it in an unrolled main
// loop, a one-vector loop and a masked tail, for AVX-512 (16 lanes, K-mask
// tails, VSCALEFPS) and for AVX2+FMA (8 lanes, VMASKMOVPS tails).
//
// Run it with `go generate ./internal/vec`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// isa describes one instruction-set target.
type isa struct {
	name  string // suffix of the routine names
	level string // simd level constant
	lanes int
	nregs int    // vector registers usable by slots, scalars and constants
	pfx   string // register prefix: "Z" or "Y"
}

var (
	avx512 = isa{name: "AVX512", level: "simd.AVX512", lanes: 16, nregs: 32, pfx: "Z"}
	avx2   = isa{name: "AVX2", level: "simd.AVX2", lanes: 8, nregs: 15, pfx: "Y"} // Y15 holds the tail mask
)

// input is one streamed operand; fill is the value of lanes past the end in
// the tail: "" for zero, a constant name, or a scalar argument name.
type input struct {
	ptr  string
	fill string
}

// kernel describes one routine.
type kernel struct {
	name    string
	doc     string // the Go loop it computes, over i in [0, n)
	ptrs    []string
	scalars []string
	results []string // float32 reductions, one accumulator each
	accMax  []bool   // accumulator combines with max instead of add
	ins     []input
	outs    []string // pointers stored, in the order body returns registers
	temps   int
	body    func(e *emitter, in, tmp, acc []string) []string
}

// emitter writes the instructions of one routine for one isa.
type emitter struct {
	isa     isa
	b       *bytes.Buffer
	consts  map[string]string // constant name -> register (AVX-512)
	order   []string
	scalars map[string]string
	next    int // next free constant register, counting down
}

func (e *emitter) i(format string, args ...any) {
	fmt.Fprintf(e.b, "\t"+format+"\n", args...)
}

// k returns an operand holding the broadcast constant name, usable as the
// first (memory-capable) source of an instruction.
func (e *emitter) k(name string) string {
	if _, ok := constants[name]; !ok {
		log.Fatalf("unknown constant %s", name)
	}
	if e.isa.lanes == 8 {
		return name + "<>(SB)"
	}
	if r, ok := e.consts[name]; ok {
		return r
	}
	r := fmt.Sprintf("Z%d", e.next)
	e.next--
	e.consts[name] = r
	e.order = append(e.order, name)
	return r
}

// kreg returns a register holding constant name, loading it into tmp when
// the isa keeps constants in memory.
func (e *emitter) kreg(name, tmp string) string {
	op := e.k(name)
	if e.isa.lanes == 8 {
		e.i("VMOVUPS %s, %s", op, tmp)
		return tmp
	}
	return op
}

// s returns the register holding scalar argument name.
func (e *emitter) s(name string) string {
	r, ok := e.scalars[name]
	if !ok {
		log.Fatalf("unknown scalar %s", name)
	}
	return r
}

// x returns the 128-bit name of a vector register.
func x(r string) string { return "X" + r[1:] }

// y returns the 256-bit name of a vector register.
func y(r string) string { return "Y" + r[1:] }

// exp replaces v by exp(v) using temporaries n and t: clamp to [-104, 89]
// (so -Inf gives 0 and large inputs +Inf), v = n·ln2 + r with
// n = round(v·log2e), exp(r) by its degree-6 Taylor polynomial (|r| <= ln2/2,
// truncation error < 2e-7), then scaling by 2^n.
func (e *emitter) exp(v, n, t string) {
	e.i("VMINPS %s, %s, %s", v, e.kreg("expHi", t), v) // v as second source keeps NaN
	e.i("VMAXPS %s, %s, %s", v, e.kreg("expLo", t), v)
	e.i("VMULPS %s, %s, %s", e.k("log2e"), v, n)
	if e.isa.lanes == 16 {
		e.i("VRNDSCALEPS $0, %s, %s", n, n)
	} else {
		e.i("VROUNDPS $0, %s, %s", n, n)
	}
	e.i("VFNMADD231PS %s, %s, %s", e.k("ln2hi"), n, v)
	e.i("VFNMADD231PS %s, %s, %s", e.k("ln2lo"), n, v)
	if e.isa.lanes == 16 {
		e.i("VMOVAPS %s, %s", e.k("c6"), t)
	} else {
		e.i("VMOVUPS %s, %s", e.k("c6"), t)
	}
	// Horner from the x⁶ coefficient down to the constant term.
	for _, c := range []string{"c5", "c4", "c3", "c2", "one", "one"} {
		e.i("VFMADD213PS %s, %s, %s", e.k(c), v, t)
	}
	if e.isa.lanes == 16 {
		e.i("VSCALEFPS %s, %s, %s", n, t, v)
		return
	}
	// 2^n as 2^(n>>1) · 2^(n-(n>>1)): both halves stay normal for n in
	// [-150, 128], so the products underflow and overflow correctly.
	e.i("VCVTPS2DQ %s, %s", n, n)
	e.i("VPSRAD $1, %s, %s", n, v)
	e.i("VPSUBD %s, %s, %s", v, n, n)
	e.i("VPADDD %s, %s, %s", e.k("bias"), v, v)
	e.i("VPSLLD $23, %s, %s", v, v)
	e.i("VMULPS %s, %s, %s", v, t, t)
	e.i("VPADDD %s, %s, %s", e.k("bias"), n, n)
	e.i("VPSLLD $23, %s, %s", n, n)
	e.i("VMULPS %s, %s, %s", n, t, v)
}

const (
	sqrt2OverPi = 0.7978845608028654
	geluA       = 0.044715
)

// constants maps names to the float32 bits broadcast in every lane.
var constants = map[string]uint32{
	"expHi":  math.Float32bits(89),
	"expLo":  math.Float32bits(-104),
	"log2e":  math.Float32bits(float32(math.Log2E)),
	"ln2hi":  math.Float32bits(float32(math.Ln2)),
	"ln2lo":  math.Float32bits(float32(math.Ln2 - float64(float32(math.Ln2)))),
	"c6":     math.Float32bits(1.0 / 720),
	"c5":     math.Float32bits(1.0 / 120),
	"c4":     math.Float32bits(1.0 / 24),
	"c3":     math.Float32bits(1.0 / 6),
	"c2":     math.Float32bits(0.5),
	"one":    math.Float32bits(1),
	"negOne": math.Float32bits(-1),
	"bias":   127,
	"negInf": math.Float32bits(float32(math.Inf(-1))),
	// GELU-tanh: exp(-2u) with u = √(2/π)(x + a·x³) is x·(g1·x² + g0).
	"geluG1": math.Float32bits(float32(-2 * sqrt2OverPi * geluA)),
	"geluG0": math.Float32bits(float32(-2 * sqrt2OverPi)),
	// du/dx = d1·x² + d0.
	"geluD1": math.Float32bits(float32(3 * sqrt2OverPi * geluA)),
	"geluD0": math.Float32bits(float32(sqrt2OverPi)),
	"gradHi": math.Float32bits(20),
	"sigHi":  math.Float32bits(80),
	"sigLo":  math.Float32bits(-80),
	"gradLo": math.Float32bits(-20),
}

func binop(op string) func(e *emitter, in, tmp, acc []string) []string {
	return func(e *emitter, in, tmp, acc []string) []string {
		e.i("%s %s, %s, %s", op, in[1], in[0], in[0])
		return in[:1]
	}
}

func scalarop(op string) func(e *emitter, in, tmp, acc []string) []string {
	return func(e *emitter, in, tmp, acc []string) []string {
		e.i("%s %s, %s, %s", op, e.s("s"), in[0], in[0])
		return in[:1]
	}
}

// sigmoidPair takes v holding -z and leaves s = 1/(1+exp(-z)) in t and
// 1-s in v, the latter computed as exp(-z)·s so that it keeps its relative
// accuracy when s is close to 1.
// The argument is capped at 80 so that exp(-z) stays finite and the product
// never becomes Inf·0.
func sigmoidPair(e *emitter, v, n, t string) {
	e.i("VMINPS %s, %s, %s", v, e.kreg("sigHi", t), v)
	e.exp(v, n, t)
	e.i("VADDPS %s, %s, %s", e.k("one"), v, n)
	e.i("VDIVPS %s, %s, %s", n, e.kreg("one", t), t)
	e.i("VMULPS %s, %s, %s", t, v, v)
}

// normalise replaces v by (v - mu) * rs.
func normalise(e *emitter, v string) {
	e.i("VSUBPS %s, %s, %s", e.s("mu"), v, v)
	e.i("VMULPS %s, %s, %s", e.s("rs"), v, v)
}

var kernels = []kernel{
	{name: "add", doc: "dst[i] = a[i] + b[i]", ptrs: []string{"dst", "a", "b"},
		ins: []input{{ptr: "a"}, {ptr: "b"}}, outs: []string{"dst"}, body: binop("VADDPS")},
	{name: "sub", doc: "dst[i] = a[i] - b[i]", ptrs: []string{"dst", "a", "b"},
		ins: []input{{ptr: "a"}, {ptr: "b"}}, outs: []string{"dst"}, body: binop("VSUBPS")},
	{name: "mul", doc: "dst[i] = a[i] * b[i]", ptrs: []string{"dst", "a", "b"},
		ins: []input{{ptr: "a"}, {ptr: "b"}}, outs: []string{"dst"}, body: binop("VMULPS")},
	{name: "div", doc: "dst[i] = a[i] / b[i]", ptrs: []string{"dst", "a", "b"},
		ins: []input{{ptr: "a"}, {ptr: "b", fill: "one"}}, outs: []string{"dst"}, temps: 1, body: binop("VDIVPS")},
	{name: "addScalar", doc: "dst[i] = a[i] + s", ptrs: []string{"dst", "a"}, scalars: []string{"s"},
		ins: []input{{ptr: "a"}}, outs: []string{"dst"}, body: scalarop("VADDPS")},
	{name: "scale", doc: "dst[i] = a[i] * s", ptrs: []string{"dst", "a"}, scalars: []string{"s"},
		ins: []input{{ptr: "a"}}, outs: []string{"dst"}, body: scalarop("VMULPS")},
	{name: "axpy", doc: "y[i] += alpha * x[i] (fused multiply-add)", ptrs: []string{"y", "x"}, scalars: []string{"alpha"},
		ins: []input{{ptr: "y"}, {ptr: "x"}}, outs: []string{"y"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VFMADD231PS %s, %s, %s", e.s("alpha"), in[1], in[0])
			return in[:1]
		}},
	{name: "dot", doc: "s += a[i] * b[i]; return s", ptrs: []string{"a", "b"}, results: []string{"ret"},
		ins: []input{{ptr: "a"}, {ptr: "b"}},
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VFMADD231PS %s, %s, %s", in[1], in[0], acc[0])
			return nil
		}},
	{name: "sum", doc: "s += a[i]; return s", ptrs: []string{"a"}, results: []string{"ret"},
		ins: []input{{ptr: "a"}},
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VADDPS %s, %s, %s", in[0], acc[0], acc[0])
			return nil
		}},
	{name: "maxOf", doc: "m = max(m, a[i]) starting from -Inf; return m", ptrs: []string{"a"}, results: []string{"ret"}, accMax: []bool{true},
		ins: []input{{ptr: "a", fill: "negInf"}}, temps: 1,
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VMAXPS %s, %s, %s", in[0], acc[0], acc[0])
			return nil
		}},
	{name: "sumSqDev", doc: "s += (a[i] - mu) * (a[i] - mu); return s", ptrs: []string{"a"}, scalars: []string{"mu"}, results: []string{"ret"},
		ins: []input{{ptr: "a", fill: "mu"}},
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VSUBPS %s, %s, %s", e.s("mu"), in[0], in[0])
			e.i("VFMADD231PS %s, %s, %s", in[0], in[0], acc[0])
			return nil
		}},
	{name: "exp", doc: "dst[i] = exp(a[i])", ptrs: []string{"dst", "a"},
		ins: []input{{ptr: "a"}}, outs: []string{"dst"}, temps: 2,
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.exp(in[0], tmp[0], tmp[1])
			return in[:1]
		}},
	{name: "expShiftSum", doc: "dst[i] = exp(a[i] - m); s += dst[i]; return s", ptrs: []string{"dst", "a"}, scalars: []string{"m"}, results: []string{"ret"},
		ins: []input{{ptr: "a", fill: "negInf"}}, outs: []string{"dst"}, temps: 2,
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VSUBPS %s, %s, %s", e.s("m"), in[0], in[0])
			e.exp(in[0], tmp[0], tmp[1])
			e.i("VADDPS %s, %s, %s", in[0], acc[0], acc[0])
			return in[:1]
		}},
	{name: "geluTanh", doc: "dst[i] = x[i] / (1 + exp(-2u)), u = √(2/π)(x[i] + 0.044715x[i]³)", ptrs: []string{"dst", "x"},
		ins: []input{{ptr: "x"}}, outs: []string{"dst"}, temps: 3,
		body: func(e *emitter, in, tmp, acc []string) []string {
			v, a, n, t := in[0], tmp[0], tmp[1], tmp[2]
			e.i("VMULPS %s, %s, %s", v, v, a)
			e.i("VMOVUPS %s, %s", e.k("geluG1"), t)
			e.i("VFMADD213PS %s, %s, %s", e.k("geluG0"), a, t)
			e.i("VMULPS %s, %s, %s", v, t, a)
			e.exp(a, n, t)
			e.i("VADDPS %s, %s, %s", e.k("one"), a, a)
			e.i("VDIVPS %s, %s, %s", a, v, v)
			return in[:1]
		}},
	{name: "geluTanhGrad", doc: "dx[i] = dy[i] * (s + 2x[i]·s(1-s)·du), s = 1/(1 + exp(-2u)), du = √(2/π)(1 + 3·0.044715x[i]²)", ptrs: []string{"dx", "x", "dy"},
		ins: []input{{ptr: "x"}, {ptr: "dy"}}, outs: []string{"dx"}, temps: 3,
		body: func(e *emitter, in, tmp, acc []string) []string {
			v, g, a, n, t := in[0], in[1], tmp[0], tmp[1], tmp[2]
			// Beyond |x| = 20 the derivative is 0 or 1 in float32; clamping
			// keeps x²·s(1-s) from becoming Inf·0.
			e.i("VMINPS %s, %s, %s", v, e.kreg("gradHi", a), v)
			e.i("VMAXPS %s, %s, %s", v, e.kreg("gradLo", a), v)
			e.i("VMULPS %s, %s, %s", v, v, a)
			e.i("VMOVUPS %s, %s", e.k("geluG1"), t)
			e.i("VFMADD213PS %s, %s, %s", e.k("geluG0"), a, t)
			e.i("VMULPS %s, %s, %s", v, t, a)
			sigmoidPair(e, a, n, t) // t = s, a = 1-s
			e.i("VMULPS %s, %s, %s", v, v, n)
			e.i("VMULPS %s, %s, %s", e.k("geluD1"), n, n)
			e.i("VADDPS %s, %s, %s", e.k("geluD0"), n, n) // n = du
			e.i("VMULPS %s, %s, %s", v, n, n)             // x·du
			e.i("VMULPS %s, %s, %s", a, n, n)             // x·du·(1-s)
			e.i("VMULPS %s, %s, %s", t, n, n)
			e.i("VADDPS %s, %s, %s", n, n, n)
			e.i("VADDPS %s, %s, %s", t, n, n)
			e.i("VMULPS %s, %s, %s", n, g, g)
			return in[1:2]
		}},
	{name: "silu", doc: "dst[i] = x[i] / (1 + exp(-x[i]))", ptrs: []string{"dst", "x"},
		ins: []input{{ptr: "x"}}, outs: []string{"dst"}, temps: 3,
		body: func(e *emitter, in, tmp, acc []string) []string {
			v, a, n, t := in[0], tmp[0], tmp[1], tmp[2]
			e.i("VMULPS %s, %s, %s", e.k("negOne"), v, a)
			e.exp(a, n, t)
			e.i("VADDPS %s, %s, %s", e.k("one"), a, a)
			e.i("VDIVPS %s, %s, %s", a, v, v)
			return in[:1]
		}},
	{name: "siluGrad", doc: "dx[i] = dy[i] * s(1 + x[i](1-s)), s = 1/(1 + exp(-x[i]))", ptrs: []string{"dx", "x", "dy"},
		ins: []input{{ptr: "x"}, {ptr: "dy"}}, outs: []string{"dx"}, temps: 3,
		body: func(e *emitter, in, tmp, acc []string) []string {
			v, g, a, n, t := in[0], in[1], tmp[0], tmp[1], tmp[2]
			// Beyond |x| = 80 the derivative is 1 or below 1e-32.
			e.i("VMINPS %s, %s, %s", v, e.kreg("sigHi", a), v)
			e.i("VMAXPS %s, %s, %s", v, e.kreg("sigLo", a), v)
			e.i("VMULPS %s, %s, %s", e.k("negOne"), v, a)
			sigmoidPair(e, a, n, t)                         // t = s, a = 1-s
			e.i("VFMADD213PS %s, %s, %s", e.k("one"), v, a) // 1 + x(1-s)
			e.i("VMULPS %s, %s, %s", t, a, a)
			e.i("VMULPS %s, %s, %s", a, g, g)
			return in[1:2]
		}},
	{name: "softmaxGradApply", doc: "dx[i] = y[i] * (dy[i] - d)", ptrs: []string{"dx", "y", "dy"}, scalars: []string{"d"},
		ins: []input{{ptr: "y"}, {ptr: "dy"}}, outs: []string{"dx"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			e.i("VSUBPS %s, %s, %s", e.s("d"), in[1], in[1])
			e.i("VMULPS %s, %s, %s", in[1], in[0], in[0])
			return in[:1]
		}},
	{name: "normPlain", doc: "dst[i] = (x[i] - mu) * rs", ptrs: []string{"dst", "x"}, scalars: []string{"mu", "rs"},
		ins: []input{{ptr: "x"}}, outs: []string{"dst"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			return in[:1]
		}},
	{name: "normScale", doc: "dst[i] = (x[i] - mu) * rs * gamma[i]", ptrs: []string{"dst", "x", "gamma"}, scalars: []string{"mu", "rs"},
		ins: []input{{ptr: "x"}, {ptr: "gamma"}}, outs: []string{"dst"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VMULPS %s, %s, %s", in[1], in[0], in[0])
			return in[:1]
		}},
	{name: "normAffine", doc: "dst[i] = (x[i] - mu) * rs * gamma[i] + beta[i]", ptrs: []string{"dst", "x", "gamma", "beta"}, scalars: []string{"mu", "rs"},
		ins: []input{{ptr: "x"}, {ptr: "gamma"}, {ptr: "beta"}}, outs: []string{"dst"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VFMADD213PS %s, %s, %s", in[2], in[1], in[0])
			return in[:1]
		}},
	{name: "normGradAcc", doc: "dgamma[i] += dy[i] * (x[i] - mu) * rs", ptrs: []string{"dgamma", "x", "dy"}, scalars: []string{"mu", "rs"},
		ins: []input{{ptr: "dgamma"}, {ptr: "x"}, {ptr: "dy"}}, outs: []string{"dgamma"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[1])
			e.i("VFMADD231PS %s, %s, %s", in[2], in[1], in[0])
			return in[:1]
		}},
	{name: "normGradSums", doc: "g := dy[i] * gamma[i]; sg += g; sgx += g * (x[i] - mu) * rs; return sg, sgx", ptrs: []string{"x", "dy", "gamma"}, scalars: []string{"mu", "rs"},
		results: []string{"sg", "sgx"}, ins: []input{{ptr: "x"}, {ptr: "dy"}, {ptr: "gamma"}},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VMULPS %s, %s, %s", in[2], in[1], in[1])
			e.i("VADDPS %s, %s, %s", in[1], acc[0], acc[0])
			e.i("VFMADD231PS %s, %s, %s", in[1], in[0], acc[1])
			return nil
		}},
	{name: "normGradSumsPlain", doc: "g := dy[i]; sg += g; sgx += g * (x[i] - mu) * rs; return sg, sgx", ptrs: []string{"x", "dy"}, scalars: []string{"mu", "rs"},
		results: []string{"sg", "sgx"}, ins: []input{{ptr: "x"}, {ptr: "dy"}},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VADDPS %s, %s, %s", in[1], acc[0], acc[0])
			e.i("VFMADD231PS %s, %s, %s", in[1], in[0], acc[1])
			return nil
		}},
	{name: "normGradApply", doc: "dx[i] = rs * (dy[i]*gamma[i] - a - (x[i] - mu)*rs*b)", ptrs: []string{"dx", "x", "dy", "gamma"}, scalars: []string{"mu", "rs", "a", "b"},
		ins: []input{{ptr: "x"}, {ptr: "dy"}, {ptr: "gamma"}}, outs: []string{"dx"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VMULPS %s, %s, %s", in[2], in[1], in[1])
			e.i("VSUBPS %s, %s, %s", e.s("a"), in[1], in[1])
			e.i("VFNMADD231PS %s, %s, %s", e.s("b"), in[0], in[1])
			e.i("VMULPS %s, %s, %s", e.s("rs"), in[1], in[1])
			return in[1:2]
		}},
	{name: "normGradApplyPlain", doc: "dx[i] = rs * (dy[i] - a - (x[i] - mu)*rs*b)", ptrs: []string{"dx", "x", "dy"}, scalars: []string{"mu", "rs", "a", "b"},
		ins: []input{{ptr: "x"}, {ptr: "dy"}}, outs: []string{"dx"},
		body: func(e *emitter, in, tmp, acc []string) []string {
			normalise(e, in[0])
			e.i("VSUBPS %s, %s, %s", e.s("a"), in[1], in[1])
			e.i("VFNMADD231PS %s, %s, %s", e.s("b"), in[0], in[1])
			e.i("VMULPS %s, %s, %s", e.s("rs"), in[1], in[1])
			return in[1:2]
		}},
}

var ptrRegs = []string{"DI", "SI", "DX", "R8", "R9", "R10"}

// frame lays out the ABI0 argument frame: pointers, n, float32 scalars,
// then float32 results starting at a multiple of 8.
type frame struct {
	off  map[string]int
	size int
}

func layout(k kernel) frame {
	f := frame{off: map[string]int{}}
	o := 0
	for _, p := range k.ptrs {
		f.off[p] = o
		o += 8
	}
	f.off["n"] = o
	o += 8
	for _, s := range k.scalars {
		f.off[s] = o
		o += 4
	}
	if len(k.results) > 0 {
		o = (o + 7) &^ 7
		for _, r := range k.results {
			f.off[r] = o
			o += 4
		}
	}
	f.size = o
	return f
}

func (k kernel) ptrReg(p string) string {
	for i, q := range k.ptrs {
		if q == p {
			return ptrRegs[i]
		}
	}
	log.Fatalf("%s: unknown pointer %s", k.name, p)
	return ""
}

// gen writes routine k for target t.
func gen(out *bytes.Buffer, k kernel, t isa) {
	f := layout(k)
	// Dry run to learn how many constant registers the body needs.
	probe := &emitter{isa: t, b: &bytes.Buffer{}, consts: map[string]string{}, scalars: map[string]string{}, next: 31}
	for _, s := range k.scalars {
		probe.scalars[s] = "Z0"
	}
	probe.collect(k)
	nconst := 0
	if t.lanes == 16 {
		nconst = len(probe.consts)
		for _, in := range k.ins {
			if _, ok := constants[in.fill]; ok {
				if _, seen := probe.consts[in.fill]; !seen {
					nconst++
				}
			}
		}
	}
	perSlot := len(k.ins) + k.temps + len(k.results)
	budget := t.nregs - len(k.scalars) - nconst
	unroll := min(4, budget/perSlot)
	if unroll < 1 {
		log.Fatalf("%s/%s: not enough registers", k.name, t.name)
	}
	e := &emitter{isa: t, b: &bytes.Buffer{}, consts: map[string]string{}, scalars: map[string]string{}, next: t.nregs - 1}
	reg := func(i int) string { return fmt.Sprintf("%s%d", t.pfx, i) }
	for _, s := range k.scalars {
		e.scalars[s] = reg(e.next)
		e.next--
	}
	// Slot registers.
	type slot struct{ in, tmp, acc []string }
	slots := make([]slot, unroll)
	r := 0
	for s := range slots {
		for range k.ins {
			slots[s].in = append(slots[s].in, reg(r))
			r++
		}
		for range k.temps {
			slots[s].tmp = append(slots[s].tmp, reg(r))
			r++
		}
		for range k.results {
			slots[s].acc = append(slots[s].acc, reg(r))
			r++
		}
	}
	w := t.lanes
	step := func(s slot, tail bool, off int) {
		for j, in := range k.ins {
			p := k.ptrReg(in.ptr)
			dst := s.in[j]
			mem := fmt.Sprintf("%d(%s)(AX*4)", off, p)
			switch {
			case !tail:
				e.i("VMOVUPS %s, %s", mem, dst)
			case t.lanes == 16 && in.fill == "":
				e.i("VMOVUPS.Z %s, K1, %s", mem, dst)
			case t.lanes == 16:
				var fill string
				if _, ok := constants[in.fill]; ok {
					fill = e.k(in.fill)
				} else {
					fill = e.s(in.fill)
				}
				e.i("VMOVAPS %s, %s", fill, dst)
				e.i("VMOVUPS %s, K1, %s", mem, dst)
			default:
				e.i("VMASKMOVPS %s, Y15, %s", mem, dst)
				if in.fill != "" {
					var fill string
					if _, ok := constants[in.fill]; ok {
						fill = e.kreg(in.fill, s.tmp[0])
					} else {
						fill = e.s(in.fill)
					}
					e.i("VBLENDVPS Y15, %s, %s, %s", dst, fill, dst)
				}
			}
		}
		outs := k.body(e, s.in, s.tmp, s.acc)
		for j, o := range k.outs {
			mem := fmt.Sprintf("%d(%s)(AX*4)", off, k.ptrReg(o))
			switch {
			case !tail:
				e.i("VMOVUPS %s, %s", outs[j], mem)
			case t.lanes == 16:
				e.i("VMOVUPS %s, K1, %s", outs[j], mem)
			default:
				e.i("VMASKMOVPS %s, Y15, %s", outs[j], mem)
			}
		}
	}
	// Body, written first so that the constants it uses are known.
	body := e.b
	fmt.Fprintf(body, "\tXORQ AX, AX\n")
	if unroll > 1 {
		fmt.Fprintf(body, "loopU:\n")
		e.i("MOVQ R13, BX")
		e.i("SUBQ AX, BX")
		e.i("CMPQ BX, $%d", unroll*w)
		e.i("JLT loop1")
		for s := range slots {
			step(slots[s], false, 4*w*s)
		}
		e.i("ADDQ $%d, AX", unroll*w)
		e.i("JMP loopU")
	}
	fmt.Fprintf(body, "loop1:\n")
	e.i("MOVQ R13, BX")
	e.i("SUBQ AX, BX")
	e.i("CMPQ BX, $%d", w)
	e.i("JLT tail")
	step(slots[0], false, 0)
	e.i("ADDQ $%d, AX", w)
	e.i("JMP loop1")
	fmt.Fprintf(body, "tail:\n")
	e.i("TESTQ BX, BX")
	e.i("JEQ done")
	if t.lanes == 16 {
		e.i("MOVQ BX, CX")
		e.i("MOVL $1, R13")
		e.i("SHLL CX, R13")
		e.i("DECL R13")
		e.i("KMOVW R13, K1")
	} else {
		e.i("LEAQ tailmask<>+32(SB), R13")
		e.i("SHLQ $2, BX")
		e.i("SUBQ BX, R13")
		e.i("VMOVDQU (R13), Y15")
	}
	step(slots[0], true, 0)
	fmt.Fprintf(body, "done:\n")
	for j, res := range k.results {
		op := "VADDPS"
		ops := "VADDSS"
		if j < len(k.accMax) && k.accMax[j] {
			op, ops = "VMAXPS", "VMAXSS"
		}
		a := slots[0].acc[j]
		for s := 1; s < unroll; s++ {
			e.i("%s %s, %s, %s", op, slots[s].acc[j], a, a)
		}
		tmp := slots[0].in[0]
		if t.lanes == 16 {
			e.i("VEXTRACTF64X4 $1, %s, %s", a, y(tmp))
			e.i("%s %s, %s, %s", op, y(tmp), y(a), y(a))
			e.i("VEXTRACTF32X4 $1, %s, %s", y(a), x(tmp))
		} else {
			e.i("VEXTRACTF128 $1, %s, %s", a, x(tmp))
		}
		e.i("%s %s, %s, %s", op, x(tmp), x(a), x(a))
		e.i("VMOVHLPS %s, %s, %s", x(a), x(a), x(tmp))
		e.i("%s %s, %s, %s", op, x(tmp), x(a), x(a))
		e.i("VMOVSHDUP %s, %s", x(a), x(tmp))
		e.i("%s %s, %s, %s", ops, x(tmp), x(a), x(a))
		e.i("VMOVSS %s, %s+%d(FP)", x(a), res, f.off[res])
	}
	e.i("VZEROUPPER")
	e.i("RET")

	// Prologue.
	fmt.Fprintf(out, "// func %s%s(%s)%s\n", k.name, t.name, goParams(k), resultType(k))
	fmt.Fprintf(out, "TEXT ·%s%s(SB), NOSPLIT, $0-%d\n", k.name, t.name, f.size)
	for i, p := range k.ptrs {
		fmt.Fprintf(out, "\tMOVQ %s+%d(FP), %s\n", p, f.off[p], ptrRegs[i])
	}
	fmt.Fprintf(out, "\tMOVQ n+%d(FP), R13\n", f.off["n"])
	for _, s := range k.scalars {
		fmt.Fprintf(out, "\tVBROADCASTSS %s+%d(FP), %s\n", s, f.off[s], e.scalars[s])
	}
	names := append([]string(nil), e.order...)
	for _, c := range names {
		fmt.Fprintf(out, "\tVBROADCASTSS %s<>(SB), %s\n", c, e.consts[c])
	}
	for j := range k.results {
		for s := range slots {
			a := slots[s].acc[j]
			if j < len(k.accMax) && k.accMax[j] {
				if t.lanes == 16 {
					fmt.Fprintf(out, "\tVBROADCASTSS negInf<>(SB), %s\n", a)
				} else {
					fmt.Fprintf(out, "\tVMOVUPS negInf<>(SB), %s\n", a)
				}
			} else {
				fmt.Fprintf(out, "\tVXORPS %s, %s, %s\n", a, a, a)
			}
		}
	}
	out.Write(body.Bytes())
	out.WriteString("\n")
	if e.next < r-1 {
		log.Fatalf("%s/%s: registers overlap (slots use %d, constants reach %d)", k.name, t.name, r, e.next)
	}
}

// collect runs k's body once on placeholder registers to learn which
// constants it uses.
func (e *emitter) collect(k kernel) {
	ph := func(c int) []string {
		out := make([]string, c)
		for i := range out {
			out[i] = "Z0"
		}
		return out
	}
	k.body(e, ph(len(k.ins)), ph(max(k.temps, 1)), ph(len(k.results)))
	for _, in := range k.ins {
		if _, ok := constants[in.fill]; ok {
			e.k(in.fill)
		}
	}
}

func goParams(k kernel) string {
	var parts []string
	parts = append(parts, strings.Join(k.ptrs, ", ")+" *float32", "n int")
	if len(k.scalars) > 0 {
		parts = append(parts, strings.Join(k.scalars, ", ")+" float32")
	}
	return strings.Join(parts, ", ")
}

func sliceParams(k kernel) string {
	s := strings.Join(k.ptrs, ", ") + " []float32"
	if len(k.scalars) > 0 {
		s += ", " + strings.Join(k.scalars, ", ") + " float32"
	}
	return s
}

func resultType(k kernel) string {
	switch len(k.results) {
	case 0:
		return ""
	case 1:
		return " float32"
	default:
		return " (" + strings.Join(k.results, ", ") + " float32)"
	}
}

func callArgs(k kernel, asm bool) string {
	var a []string
	for _, p := range k.ptrs {
		if asm {
			a = append(a, "&"+p+"[0]")
		} else {
			a = append(a, p)
		}
	}
	if asm {
		a = append(a, "n")
	}
	a = append(a, k.scalars...)
	return strings.Join(a, ", ")
}

const header = "// Code generated by ./internal/asmgen; DO NOT EDIT.\n\n"

func writeAsm(dir string) {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("//go:build amd64 && !purego\n\n#include \"textflag.h\"\n\n")
	names := make([]string, 0, len(constants))
	for n := range constants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for l := 0; l < 8; l++ {
			fmt.Fprintf(&b, "DATA %s<>+%d(SB)/4, $0x%08x\n", n, 4*l, constants[n])
		}
		fmt.Fprintf(&b, "GLOBL %s<>(SB), RODATA|NOPTR, $32\n\n", n)
	}
	for l := 0; l < 16; l++ {
		v := uint32(0xffffffff)
		if l >= 8 {
			v = 0
		}
		fmt.Fprintf(&b, "DATA tailmask<>+%d(SB)/4, $0x%08x\n", 4*l, v)
	}
	b.WriteString("GLOBL tailmask<>(SB), RODATA|NOPTR, $64\n\n")
	for _, k := range kernels {
		for _, t := range []isa{avx512, avx2} {
			gen(&b, k, t)
		}
	}
	write(filepath.Join(dir, "vec_amd64.s"), b.Bytes(), false)
}

func writeGo(dir string) {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("//go:build amd64 && !purego\n\npackage vec\n\nimport \"tessera/internal/simd\"\n\n")
	for _, k := range kernels {
		for _, t := range []isa{avx512, avx2} {
			fmt.Fprintf(&b, "// %s%s is, with %s instructions,\n//\tfor i := range n { %s }\n//\n//go:noescape\nfunc %s%s(%s)%s\n\n",
				k.name, t.name, t.name, k.doc, k.name, t.name, goParams(k), resultType(k))
		}
		ret := ""
		if len(k.results) > 0 {
			ret = "return "
		}
		zero := ""
		switch len(k.results) {
		case 1:
			zero = " 0"
			if len(k.accMax) > 0 && k.accMax[0] {
				zero = " float32(math.Inf(-1))"
			}
		case 2:
			zero = " 0, 0"
		}
		fmt.Fprintf(&b, "// %s is  for i := range n { %s }  with n = len(%s), on the\n// fastest kernels simd.Current() allows. Callers guarantee the lengths.\n",
			k.name, k.doc, k.ptrs[0])
		fmt.Fprintf(&b, "func %s(%s)%s {\n\tn := len(%s)\n\tif n == 0 {\n\t\treturn%s\n\t}\n\tswitch simd.Current() {\n", k.name, sliceParams(k), resultType(k), k.ptrs[0], zero)
		for _, t := range []isa{avx512, avx2} {
			fmt.Fprintf(&b, "\tcase %s:\n\t\t%s%s%s(%s)\n", t.level, ret, k.name, t.name, callArgs(k, true))
			if ret == "" {
				b.WriteString("\t\treturn\n")
			}
		}
		fmt.Fprintf(&b, "\t}\n\t%s%sGeneric(%s)\n}\n\n", ret, k.name, callArgs(k, false))
	}
	src := b.Bytes()
	if bytes.Contains(src, []byte("math.Inf")) {
		src = bytes.Replace(src, []byte("import \"tessera/internal/simd\""), []byte("import (\n\t\"math\"\n\n\t\"tessera/internal/simd\"\n)"), 1)
	}
	write(filepath.Join(dir, "vec_amd64.go"), src, true)

	b.Reset()
	b.WriteString(header)
	b.WriteString("//go:build !amd64 || purego\n\npackage vec\n\n")
	for _, k := range kernels {
		ret := ""
		if len(k.results) > 0 {
			ret = "return "
		}
		fmt.Fprintf(&b, "// %s is  for i := range n { %s }  with n = len(%s).\nfunc %s(%s)%s { %s%sGeneric(%s) }\n\n",
			k.name, k.doc, k.ptrs[0], k.name, sliceParams(k), resultType(k), ret, k.name, callArgs(k, false))
	}
	write(filepath.Join(dir, "vec_other.go"), b.Bytes(), true)
}

func write(path string, src []byte, gofmt bool) {
	if gofmt {
		var err error
		if src, err = format.Source(src); err != nil {
			log.Fatalf("format %s: %v", path, err)
		}
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	dir := flag.String("dir", ".", "directory of package vec")
	flag.Parse()
	writeAsm(*dir)
	writeGo(*dir)
}
