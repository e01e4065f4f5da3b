package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tessera/tensor"
)

// build assembles a file the way the Python reference does: header length,
// the header padded with spaces to a multiple of 8, then data.
func build(header string, data []byte) []byte {
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// le concatenates little-endian encodings of the values.
func le(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		switch v := v.(type) {
		case float32:
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, v)
		case int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case float64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		default:
			panic("le: unsupported type")
		}
	}
	return b
}

// TestParseReference reads a file laid out exactly as
// peers/pytorch/safetensors_io.py writes it (compact JSON, sorted names,
// metadata last, space padding).
func TestParseReference(t *testing.T) {
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"F16","shape":[4],"data_offsets":[8,16]},` +
		`"c":{"dtype":"BF16","shape":[1,2],"data_offsets":[16,20]},` +
		`"d":{"dtype":"I64","shape":[2],"data_offsets":[20,36]},` +
		`"e":{"dtype":"I32","shape":[],"data_offsets":[36,40]},` +
		`"f":{"dtype":"F64","shape":[1],"data_offsets":[40,48]},` +
		`"__metadata__":{"format":"pt"}}`
	data := le(float32(1), float32(-2.5),
		uint16(0x3c00), uint16(0x0001), uint16(0x7c00), uint16(0xfe00),
		uint16(0x3f80), uint16(0xc049),
		int64(7), int64(-1),
		int32(42),
		float64(0.1))
	f, err := Parse(build(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if m := f.Metadata(); len(m) != 1 || m["format"] != "pt" {
		t.Errorf("Metadata = %v", m)
	}
	floats := []struct {
		name  string
		shape []int
		want  []float32
	}{
		{"a", []int{2}, []float32{1, -2.5}},
		{"b", []int{4}, []float32{1, 0x1p-24, float32(math.Inf(1)), float32(math.NaN())}},
		{"c", []int{1, 2}, []float32{1, -3.140625}},
		{"f", []int{1}, []float32{0.1}},
	}
	for _, tc := range floats {
		x, err := f.Tensor(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x.Shape(), tc.shape) {
			t.Errorf("%s: shape %v, want %v", tc.name, x.Shape(), tc.shape)
		}
		for i, w := range tc.want {
			g := x.Data()[i]
			if g != w && !(math.IsNaN(float64(g)) && math.IsNaN(float64(w))) {
				t.Errorf("%s[%d] = %g, want %g", tc.name, i, g, w)
			}
		}
	}
	if got, err := f.Int64s("d"); err != nil || !slices.Equal(got, []int64{7, -1}) {
		t.Errorf("Int64s(d) = %v, %v", got, err)
	}
	if got, err := f.Int32s("d"); err != nil || !slices.Equal(got, []int32{7, -1}) {
		t.Errorf("Int32s(d) = %v, %v", got, err)
	}
	if got, err := f.Int32s("e"); err != nil || !slices.Equal(got, []int32{42}) {
		t.Errorf("Int32s(e) = %v, %v", got, err)
	}
	if got, err := f.Int64s("e"); err != nil || !slices.Equal(got, []int64{42}) {
		t.Errorf("Int64s(e) = %v, %v", got, err)
	}
	info, ok := f.Info("c")
	if !ok || info.DType != BF16 || info.Offsets != [2]int64{16, 20} || !slices.Equal(info.Shape, []int{1, 2}) {
		t.Errorf("Info(c) = %+v, %v", info, ok)
	}
}

// TestMarshalMatchesReference checks that Marshal writes the same bytes as
// the Python reference for a file without metadata.
func TestMarshalMatchesReference(t *testing.T) {
	header := `{"bias":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},` +
		`"labels":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},` +
		`"w":{"dtype":"F32","shape":[1,2],"data_offsets":[28,36]}}`
	want := build(header, le(float32(1), float32(2), float32(3), int64(4), int64(-5), float32(0.5), float32(-0.25)))
	got, err := Marshal(map[string]*tensor.Tensor{
		"w":    tensor.FromData([]float32{0.5, -0.25}, 1, 2),
		"bias": tensor.FromData([]float32{1, 2, 3}, 3),
	}, &SaveOptions{Ints: map[string]IntTensor{"labels": Int64Tensor([]int64{4, -5}, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal:\n got %q\nwant %q", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -1, 0.1, 1.0 / 3, 65504, 1e-6, -7.5e-8, 3e38, float32(math.Inf(-1)), 123.456}
	tests := []struct {
		dtype DType
		conv  func(float32) float32 // expected value after the round trip
	}{
		{F32, func(v float32) float32 { return v }},
		{"", func(v float32) float32 { return v }},
		{F16, func(v float32) float32 { return F16ToFloat32(Float32ToF16(v)) }},
		{BF16, func(v float32) float32 { return BF16ToFloat32(Float32ToBF16(v)) }},
	}
	for _, tc := range tests {
		t.Run(string(tc.dtype), func(t *testing.T) {
			// A transposed view checks that non-contiguous tensors are written row-major.
			base := tensor.FromData(slices.Clone(vals[:10]), 2, 5)
			view := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
			tensors := map[string]*tensor.Tensor{
				"x":      tensor.FromData(slices.Clone(vals), 11),
				"m":      base,
				"s":      tensor.Scalar(2.5),
				"empty":  tensor.New(0, 4),
				"nested": view,
			}
			path := filepath.Join(t.TempDir(), "t.safetensors")
			opt := &SaveOptions{
				DType:    tc.dtype,
				Metadata: map[string]string{"format": "pt", "note": "<a & b>", "ü": "ß"},
				Ints: map[string]IntTensor{
					"labels": Int64Tensor([]int64{math.MinInt64, -1, 0, math.MaxInt64}, 2, 2),
					"ids":    Int32Tensor([]int32{math.MinInt32, 5, math.MaxInt32}, 3),
				},
			}
			if err := Save(path, tensors, opt); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got, want := f.Names(), []string{"empty", "ids", "labels", "m", "nested", "s", "x"}; !slices.Equal(got, want) {
				t.Errorf("Names = %v, want %v", got, want)
			}
			for name, src := range tensors {
				got, err := f.Tensor(name)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got.Shape(), src.Shape()) {
					t.Errorf("%s: shape %v, want %v", name, got.Shape(), src.Shape())
				}
				for i, v := range src.Data() {
					if w := tc.conv(v); got.Data()[i] != w {
						t.Errorf("%s[%d] = %g, want %g", name, i, got.Data()[i], w)
					}
				}
				info, _ := f.Info(name)
				if want := cmpOr(tc.dtype, F32); info.DType != want {
					t.Errorf("%s stored as %s, want %s", name, info.DType, want)
				}
			}
			if got, err := f.Int64s("labels"); err != nil || !slices.Equal(got, opt.Ints["labels"].Data) {
				t.Errorf("labels = %v, %v", got, err)
			}
			if got, err := f.Int32s("ids"); err != nil || !slices.Equal(got, []int32{math.MinInt32, 5, math.MaxInt32}) {
				t.Errorf("ids = %v, %v", got, err)
			}
			if info, _ := f.Info("ids"); info.DType != I32 {
				t.Errorf("ids stored as %s", info.DType)
			}
			if m := f.Metadata(); len(m) != 3 || m["note"] != "<a & b>" || m["ü"] != "ß" {
				t.Errorf("Metadata = %v", m)
			}
			// The data section starts 8-byte aligned.
			raw, _ := os.ReadFile(path)
			if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
				t.Errorf("header length %d not a multiple of 8", n)
			}
		})
	}
}

func cmpOr(d, def DType) DType {
	if d == "" {
		return def
	}
	return d
}

func TestAccessorErrors(t *testing.T) {
	b, err := Marshal(map[string]*tensor.Tensor{"w": tensor.New(2)},
		&SaveOptions{Ints: map[string]IntTensor{"big": Int64Tensor([]int64{1 << 40}, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"missing", func() error { _, err := f.Tensor("nope"); return err }, `no tensor "nope"`},
		{"int as float", func() error { _, err := f.Tensor("big"); return err }, `tensor "big" has dtype I64, not a float type`},
		{"float as int", func() error { _, err := f.Int64s("w"); return err }, `tensor "w" has dtype F32, not an integer type`},
		{"int32 overflow", func() error { _, err := f.Int32s("big"); return err }, `element 0 (1099511627776) does not fit in int32`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	f.Close()
	if _, err := f.Tensor("w"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tensor after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want a not-exist error", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644)
	_, err := Open(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(bad) = %v, want an ErrInvalid naming %s", err, bad)
	}
	empty := filepath.Join(dir, "empty.safetensors")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("Open(empty) = %v", err)
	}
}

func TestSaveErrors(t *testing.T) {
	ok := map[string]*tensor.Tensor{"w": tensor.New(2)}
	tests := []struct {
		name    string
		tensors map[string]*tensor.Tensor
		opt     *SaveOptions
		want    string
	}{
		{"nil tensor", map[string]*tensor.Tensor{"w": nil}, nil, `tensor "w" is nil`},
		{"bad dtype", ok, &SaveOptions{DType: I64}, `not "I64"`},
		{"reserved name", map[string]*tensor.Tensor{"__metadata__": tensor.New(1)}, nil, "reserved"},
		{"float and int", ok, &SaveOptions{Ints: map[string]IntTensor{"w": Int64Tensor([]int64{1}, 1)}}, "both a float and an integer"},
		{"int shape", ok, &SaveOptions{Ints: map[string]IntTensor{"y": Int64Tensor([]int64{1, 2}, 3)}}, "2 values for shape [3]"},
		{"int dtype", ok, &SaveOptions{Ints: map[string]IntTensor{"y": {DType: F32, Shape: []int{1}, Data: []int64{1}}}}, "must be I64 or I32"},
		{"int32 range", ok, &SaveOptions{Ints: map[string]IntTensor{"y": {DType: I32, Shape: []int{1}, Data: []int64{1 << 31}}}}, "does not fit in I32"},
		{"negative shape", ok, &SaveOptions{Ints: map[string]IntTensor{"y": {Shape: []int{-1}}}}, "negative dimension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.safetensors")
			err := Save(path, tc.tensors, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Save error = %v, want it to contain %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("failed Save left %v", ents)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	f32x2 := le(float32(1), float32(2))
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "file is 0 bytes, too short"},
		{"short", []byte{1, 2, 3}, "file is 3 bytes"},
		{"header longer than file", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "header length 100 exceeds the 2 bytes"},
		{"absurd header", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length 1099511627776 exceeds the limit of 100000000"},
		{"invalid json", build(`{"w":`, nil), "not valid JSON"},
		{"not an object", build(`[1,2]`, nil), "not a JSON object"},
		{"trailing garbage", build(`{} x`, nil), "after the JSON object"},
		{"invalid utf8", build("{\"\xff\":1}", nil), "not valid UTF-8"},
		{"entry not object", build(`{"w":3}`, nil), `tensor "w": entry 3 is not a JSON object`},
		{"unknown dtype", build(`{"w":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}`, f32x2), `tensor "w": unknown dtype "F17"`},
		{"dtype not string", build(`{"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, f32x2), `dtype 4 is not a string`},
		{"missing dtype", build(`{"w":{"shape":[2],"data_offsets":[0,8]}}`, f32x2), `tensor "w": missing "dtype"`},
		{"missing shape", build(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, f32x2), `missing "shape"`},
		{"missing offsets", build(`{"w":{"dtype":"F32","shape":[2]}}`, f32x2), `missing "data_offsets"`},
		{"negative shape", build(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32x2), `shape [-2] has negative dimension -2`},
		{"fractional shape", build(`{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, f32x2), `shape dimension 0 is 2.5`},
		{"huge dimension", build(`{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}`, f32x2), `shape dimension 0 is 99999999999999999999`},
		{"shape overflow", build(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, f32x2), `more elements than fit`},
		{"shape not list", build(`{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, f32x2), `shape 2 is not a list`},
		{"offsets not pair", build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, f32x2), `data_offsets [0] is not a list of two`},
		{"negative offset", build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, f32x2), `data_offsets[0] is -8`},
		{"end before begin", build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, f32x2), `data_offsets [8, 0] end before they begin`},
		{"past end", build(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, f32x2), `data_offsets [0, 16] run past the end of the 8-byte data section`},
		{"size mismatch", build(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32x2), `hold 8 bytes, but dtype F32 shape [3] needs 3 elements × 4 bytes = 12`},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2),
			`tensor "b" data_offsets [4, 8] overlap tensor "a" [0, 8]`},
		{"empty inside another", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, f32x2),
			`tensor "b" data_offsets [4, 4] overlap tensor "a"`},
		{"gap at start", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2),
			`gap: bytes [0, 4) of the data section at the start of the data section belong to no tensor`},
		{"gap between", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}}`, f32x2),
			`gap: bytes [4, 6) of the data section after tensor "a" belong to no tensor (tensor "b" begins at 6)`},
		{"trailing data", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32x2),
			`data section is 8 bytes but tensors cover only [0, 4): 4 trailing bytes`},
		{"duplicate", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2),
			`duplicate entry "a"`},
		{"metadata not strings", build(`{"__metadata__":{"epoch":3}}`, nil), `__metadata__ key "epoch": value 3 is not a string`},
		{"metadata not object", build(`{"__metadata__":[1]}`, nil), `__metadata__ is not a JSON object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file)
			if err == nil {
				t.Fatalf("Parse succeeded with %d tensors, want error containing %q", f.Len(), tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParseEdgeCases covers valid but unusual files.
func TestParseEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		file  []byte
		names []string
	}{
		{"no tensors", build(`{}`, nil), nil},
		{"null metadata", build(`{"__metadata__":null}`, nil), nil},
		{"unpadded header", append(binary.LittleEndian.AppendUint64(nil, 2), "{}"...), nil},
		{"empty tensors share an offset", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"I64","shape":[3,0],"data_offsets":[0,0]}}`, nil), []string{"a", "b"}},
		{"unknown entry keys ignored", build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":true}}`, []byte{1, 2}), []string{"a"}},
		{"whitespace in header", build("{ \"a\" : {\"dtype\":\"I8\",\n\"shape\":[ 1 ],\"data_offsets\":[0,1]} }\n", []byte{0xff}), []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Names(); !slices.Equal(got, tc.names) && !(len(got) == 0 && len(tc.names) == 0) {
				t.Errorf("Names = %v, want %v", got, tc.names)
			}
		})
	}
	f, err := Parse(build(`{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{0xff, 0xff}))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Int64s("a"); !slices.Equal(v, []int64{-1}) {
		t.Errorf("I8 0xff = %v, want -1", v)
	}
	if v, _ := f.Int32s("b"); !slices.Equal(v, []int32{255}) {
		t.Errorf("U8 0xff = %v, want 255", v)
	}
}
