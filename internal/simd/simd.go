// Package simd chooses which instruction set the kernels use.
//
// The choice is made once, at start-up, from the CPU's features
// (golang.org/x/sys/cpu) and the environment variable TESSERA_KERNELS:
//
//	TESSERA_KERNELS=generic   portable Go loops only
//	TESSERA_KERNELS=avx2      AVX2+FMA at most
//	TESSERA_KERNELS=avx512    AVX-512 where the CPU has it (the default)
//
// Tests switch levels with Set to run the same table on every path.
package simd

import (
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Level is an instruction-set tier.
type Level int32

// Instruction-set tiers, in increasing order of capability.
const (
	Generic Level = iota // portable Go
	AVX2                 // AVX2 and FMA3
	AVX512               // AVX-512 F, BW, DQ, VL
)

func (l Level) String() string {
	switch l {
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	default:
		return "generic"
	}
}

var current atomic.Int32

func init() { current.Store(int32(fromEnv(os.Getenv("TESSERA_KERNELS")))) }

// Supported reports the highest level this CPU can run.
func Supported() Level {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX2
	default:
		return Generic
	}
}

func fromEnv(v string) Level {
	max := Supported()
	want := max
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "generic", "purego", "go":
		want = Generic
	case "avx2":
		want = AVX2
	}
	if want > max {
		want = max
	}
	return want
}

// Current is the level the kernels dispatch on.
func Current() Level { return Level(current.Load()) }

// Set forces a level (capped at what the CPU supports) and returns the
// previous one, so that a test can restore it.
func Set(l Level) Level {
	if s := Supported(); l > s {
		l = s
	}
	return Level(current.Swap(int32(l)))
}

// HasBF16 reports whether the CPU has the AVX-512 bfloat16 instructions
// (VDPBF16PS, VCVTNE2PS2BF16). Kernels that use them also require the
// current level to be AVX512.
func HasBF16() bool { return cpu.X86.HasAVX512BF16 && Supported() == AVX512 }

// Levels lists every level this CPU can run, lowest first; kernel tests
// iterate over it.
func Levels() []Level {
	out := []Level{Generic}
	for l := AVX2; l <= Supported(); l++ {
		out = append(out, l)
	}
	return out
}
