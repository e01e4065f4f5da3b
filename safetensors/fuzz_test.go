package safetensors

import (
	"math"
	"testing"

	"tessera/tensor"
)

// FuzzParse checks that no input makes Parse or the accessors panic, and
// that every file Parse accepts can be read and re-encoded losslessly.
func FuzzParse(f *testing.F) {
	for _, opt := range []*SaveOptions{
		nil,
		{DType: F16, Metadata: map[string]string{"k": "v"}},
		{DType: BF16, Ints: map[string]IntTensor{"y": Int64Tensor([]int64{3, -4}, 2), "z": Int32Tensor([]int32{7}, 1, 1)}},
	} {
		b, err := Marshal(map[string]*tensor.Tensor{
			"a": tensor.FromData([]float32{1, -2, 0.5}, 3),
			"b": tensor.FromData([]float32{1e-7, 65504, 3, 4}, 2, 2),
			"s": tensor.Scalar(7),
		}, opt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F64","shape":[1],"data_offsets":[2,10]}}`, make([]byte, 10)))
	f.Add(build(`{"a":{"dtype":"F32","shape":[0,4294967296],"data_offsets":[0,0]}}`, nil))
	f.Add(build(`{"__metadata__":{"a":"b"},"x":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		floats := map[string]*tensor.Tensor{}
		ints := map[string]IntTensor{}
		for _, name := range file.Names() {
			info, ok := file.Info(name)
			if !ok {
				t.Fatalf("Names lists %q but Info does not know it", name)
			}
			switch {
			case info.DType.IsFloat():
				x, err := file.Tensor(name)
				if err != nil {
					t.Fatalf("Tensor(%q): %v", name, err)
				}
				if x.Numel() != info.Numel() {
					t.Fatalf("Tensor(%q) has %d elements, Info says %d", name, x.Numel(), info.Numel())
				}
				floats[name] = x
			case info.DType.IsInt():
				v, err := file.Int64s(name)
				if err != nil {
					if info.DType == U64 {
						continue
					}
					t.Fatalf("Int64s(%q): %v", name, err)
				}
				ints[name] = Int64Tensor(v, info.Shape...)
				file.Int32s(name)
			default:
				if _, err := file.Tensor(name); err == nil {
					t.Fatalf("Tensor(%q) converted dtype %s", name, info.DType)
				}
			}
		}
		// Re-encode what was read; F64 may round, everything else is exact.
		out, err := Marshal(floats, &SaveOptions{Metadata: file.Metadata(), Ints: ints})
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		for name, x := range floats {
			y, err := again.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range x.Data() {
				if math.Float32bits(v) != math.Float32bits(y.Data()[i]) {
					t.Fatalf("%s[%d]: %g became %g", name, i, v, y.Data()[i])
				}
			}
		}
		if len(again.Metadata()) != len(file.Metadata()) {
			t.Fatalf("metadata %v became %v", file.Metadata(), again.Metadata())
		}
	})
}
