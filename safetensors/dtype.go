package safetensors

import (
	"math"
	"sync"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types of the safetensors format. Tensor converts F32, F16,
// BF16 and F64 to float32; Int64s and Int32s read the integer types. The
// other types are accepted in a file (Names and Info list them) but cannot
// be converted.
const (
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F64    DType = "F64"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
)

var dtypeSizes = map[DType]int{
	F32: 4, F16: 2, BF16: 2, F64: 8,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	Bool: 1, F8E5M2: 1, F8E4M3: 1, F8E8M0: 1,
}

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows the size of.
func (d DType) Valid() bool { return d.Size() > 0 }

// IsFloat reports whether Tensor can convert d to float32.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// IsInt reports whether d is a signed or unsigned integer type.
func (d DType) IsInt() bool {
	switch d {
	case I64, I32, I16, I8, U64, U32, U16, U8:
		return true
	}
	return false
}

// f16Table maps every IEEE 754 binary16 bit pattern to its float32 value.
var (
	f16Once  sync.Once
	f16Table []float32
)

func f16Values() []float32 {
	f16Once.Do(func() {
		f16Table = make([]float32, 1<<16)
		for h := range f16Table {
			f16Table[h] = F16ToFloat32(uint16(h))
		}
	})
	return f16Table
}

// F16ToFloat32 converts an IEEE 754 binary16 bit pattern to float32
// exactly (every binary16 value, subnormals included, is a float32). NaN
// payloads are kept.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0: // zero or subnormal: man * 2^-24
		v := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	}
}

// Float32ToF16 rounds f to the nearest binary16 value, ties to even.
// Values beyond the binary16 range become infinities, values below half the
// smallest subnormal become signed zeros, and NaNs stay (quiet) NaNs.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // binary16 biased exponent
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		if e < -10 { // below 2^-25: rounds to zero
			return sign
		}
		// Subnormal result: the 24-bit significand in units of 2^-24.
		m := man | 0x800000
		shift := uint(14 - e)
		r := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // a carry into the exponent is right, up to infinity
	}
	return sign | uint16(r)
}

// BF16ToFloat32 converts a bfloat16 bit pattern to float32 (exact).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 rounds f to the nearest bfloat16 value, ties to even;
// NaNs stay (quiet) NaNs.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
