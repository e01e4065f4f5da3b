package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat32ToF16(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"third", 1.0 / 3, 0x3555},
		{"tenth", 0.1, 0x2e66},
		{"max", 65504, 0x7bff},
		{"below halfway to overflow", 65519, 0x7bff},
		{"halfway to overflow rounds to inf", 65520, 0x7c00},
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"nan", float32(math.NaN()), 0x7e00},
		{"smallest normal", 0x1p-14, 0x0400},
		{"largest subnormal", 1023 * 0x1p-24, 0x03ff},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"half smallest subnormal ties to zero", 0x1p-25, 0x0000},
		{"above half smallest subnormal", 1.5 * 0x1p-25, 0x0001},
		{"1.5 subnormal ties to even 2", 1.5 * 0x1p-24, 0x0002},
		{"2.5 subnormal ties to even 2", 2.5 * 0x1p-24, 0x0002},
		{"tiny", 1e-10, 0x0000},
		{"subnormal rounding up to normal", 1023.5 * 0x1p-24, 0x0400},
		{"tie between 1 and next goes to even", 1 + 0x1p-11, 0x3c00},
		{"tie above odd goes up", 1 + 3*0x1p-11, 0x3c02},
		{"just above tie", 1 + 0x1p-11 + 0x1p-20, 0x3c01},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Float32ToF16(tc.in); got != tc.want {
				t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
}

// f16Ref computes a binary16 value from its fields in float64.
func f16Ref(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return s * math.Inf(1)
	case 0:
		return s * math.Ldexp(m, -24)
	}
	return s * math.Ldexp(1+m/1024, e-15)
}

func TestF16ToFloat32AllPatterns(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got := F16ToFloat32(uint16(h))
		want := f16Ref(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToFloat32(%#04x) = %g, want NaN", h, got)
			}
			if back := Float32ToF16(got); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("F16ToFloat32(%#04x) = %g, want %g", h, got, want)
		}
		if back := Float32ToF16(got); back != uint16(h) {
			t.Fatalf("round trip of %#04x gave %#04x", h, back)
		}
		if tab := f16Values()[h]; math.Float32bits(tab) != math.Float32bits(got) {
			t.Fatalf("table[%#04x] = %g, want %g", h, tab, got)
		}
	}
}

// TestFloat32ToF16Nearest checks on random inputs that the result is the
// nearest binary16 value, ties to the even pattern.
func TestFloat32ToF16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := float32(math.Ldexp(r.Float64()*2-1, r.IntN(44)-28))
		if i%4 == 0 { // exact ties: a float32 just at a binary16 midpoint
			h := uint16(r.IntN(0x7bff))
			x = float32((f16Ref(h) + f16Ref(h+1)) / 2)
		}
		h := Float32ToF16(x)
		got := f16Ref(h)
		d := math.Abs(float64(x) - got)
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7fff > 0x7c00 || (nb^h)&0x8000 != 0 {
				continue
			}
			dn := math.Abs(float64(x) - f16Ref(nb))
			if dn < d || (dn == d && h&1 == 1) {
				t.Fatalf("Float32ToF16(%g) = %#04x (%g), but %#04x (%g) is nearer or the even tie", x, h, got, nb, f16Ref(nb))
			}
		}
	}
}

func TestFloat32ToBF16(t *testing.T) {
	tests := []struct {
		name string
		in   uint32 // float32 bits
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"pi rounds down", 0x40490fdb, 0x4049},
		{"tie to even (down)", 0x3f808000, 0x3f80},
		{"tie to even (up)", 0x3f818000, 0x3f82},
		{"above tie", 0x3f808001, 0x3f81},
		{"negative", 0xc0490fdb, 0xc049},
		{"max float32 overflows", 0x7f7fffff, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"-inf", 0xff800000, 0xff80},
		{"quiet nan", 0x7fc00000, 0x7fc0},
		{"signalling nan with low payload stays nan", 0x7f800001, 0x7fc0},
		{"negative zero", 0x80000000, 0x8000},
		{"subnormal", 0x00012345, 0x0001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Float32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
				t.Errorf("Float32ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
	for h := 0; h < 1<<16; h++ {
		f := BF16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := Float32ToBF16(f); back != uint16(h) {
			t.Fatalf("bf16 round trip of %#04x gave %#04x", h, back)
		}
	}
}

func TestDTypeSize(t *testing.T) {
	tests := []struct {
		d    DType
		size int
	}{{F32, 4}, {F16, 2}, {BF16, 2}, {F64, 8}, {I64, 8}, {I32, 4}, {U8, 1}, {Bool, 1}, {"F17", 0}, {"", 0}}
	for _, tc := range tests {
		if got := tc.d.Size(); got != tc.size {
			t.Errorf("%q.Size() = %d, want %d", tc.d, got, tc.size)
		}
		if tc.d.Valid() != (tc.size > 0) {
			t.Errorf("%q.Valid() = %v", tc.d, tc.d.Valid())
		}
	}
}
