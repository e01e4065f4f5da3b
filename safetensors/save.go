package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"tessera/internal/atomicfile"
	"tessera/tensor"
)

// SaveOptions controls Save and Encode. A nil *SaveOptions means F32 with
// no metadata and no integer tensors.
type SaveOptions struct {
	// DType is the element type float tensors are stored as: F32 (the
	// default when empty), F16 or BF16, both rounded to nearest, ties to
	// even.
	DType DType
	// Metadata is written as the header's "__metadata__" object.
	Metadata map[string]string
	// Ints are integer tensors (labels, token ids) stored alongside the
	// float tensors; names must not repeat a float tensor's name.
	Ints map[string]IntTensor
}

// IntTensor is an integer tensor to save.
type IntTensor struct {
	// DType is I64 (the default when empty) or I32; I32 requires every
	// value to fit in int32.
	DType DType
	Shape []int
	Data  []int64 // row-major, len(Data) == product of Shape
}

// Int64Tensor returns an I64 IntTensor holding data with the given shape.
func Int64Tensor(data []int64, shape ...int) IntTensor {
	return IntTensor{DType: I64, Shape: shape, Data: data}
}

// Int32Tensor returns an I32 IntTensor holding data with the given shape.
func Int32Tensor(data []int32, shape ...int) IntTensor {
	d := make([]int64, len(data))
	for i, v := range data {
		d[i] = int64(v)
	}
	return IntTensor{DType: I32, Shape: shape, Data: d}
}

// Save writes tensors (and opt's integer tensors and metadata) to path as a
// safetensors file, names in sorted order. The file is replaced atomically:
// on any error nothing is left at path (an existing file stays as it was).
func Save(path string, tensors map[string]*tensor.Tensor, opt *SaveOptions) error {
	entries, hdr, err := plan(tensors, opt)
	if err != nil {
		return fmt.Errorf("safetensors: save %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error { return writeAll(w, entries, hdr) })
	if err != nil {
		return fmt.Errorf("safetensors: save: %w", err)
	}
	return nil
}

// Encode writes tensors (and opt's integer tensors and metadata) to w in
// the safetensors format, as Save does.
func Encode(w io.Writer, tensors map[string]*tensor.Tensor, opt *SaveOptions) error {
	entries, hdr, err := plan(tensors, opt)
	if err == nil {
		err = writeAll(w, entries, hdr)
	}
	if err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	return nil
}

// Marshal returns tensors encoded as a safetensors file.
func Marshal(tensors map[string]*tensor.Tensor, opt *SaveOptions) ([]byte, error) {
	var b bytes.Buffer
	if err := Encode(&b, tensors, opt); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type entry struct {
	name  string
	dtype DType
	shape []int
	f32   []float32 // float tensors
	ints  []int64   // integer tensors
	size  int64     // bytes
}

// plan checks the inputs and lays out the file: the entries in name order
// and the complete header, length prefix and padding included.
func plan(tensors map[string]*tensor.Tensor, opt *SaveOptions) ([]entry, []byte, error) {
	if opt == nil {
		opt = &SaveOptions{}
	}
	fdt := opt.DType
	if fdt == "" {
		fdt = F32
	}
	if fdt != F32 && fdt != F16 && fdt != BF16 {
		return nil, nil, fmt.Errorf("float tensors can be saved as F32, F16 or BF16, not %q", fdt)
	}
	var entries []entry
	for name, t := range tensors {
		if err := checkName(name); err != nil {
			return nil, nil, err
		}
		if t == nil {
			return nil, nil, fmt.Errorf("tensor %q is nil", name)
		}
		entries = append(entries, entry{name: name, dtype: fdt, shape: t.Shape(), f32: t.Data(), size: int64(t.Numel() * fdt.Size())})
	}
	for name, it := range opt.Ints {
		if err := checkName(name); err != nil {
			return nil, nil, err
		}
		if _, dup := tensors[name]; dup {
			return nil, nil, fmt.Errorf("tensor %q is both a float and an integer tensor", name)
		}
		dt := it.DType
		if dt == "" {
			dt = I64
		}
		if dt != I64 && dt != I32 {
			return nil, nil, fmt.Errorf("integer tensor %q: dtype must be I64 or I32, not %q", name, dt)
		}
		n := 1
		for _, d := range it.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("integer tensor %q: negative dimension in shape %v", name, it.Shape)
			}
			n *= d
		}
		if n != len(it.Data) {
			return nil, nil, fmt.Errorf("integer tensor %q: %d values for shape %v (%d elements)", name, len(it.Data), it.Shape, n)
		}
		if dt == I32 {
			for i, v := range it.Data {
				if v < math.MinInt32 || v > math.MaxInt32 {
					return nil, nil, fmt.Errorf("integer tensor %q: element %d (%d) does not fit in I32", name, i, v)
				}
			}
		}
		entries = append(entries, entry{name: name, dtype: dt, shape: slices.Clone(it.Shape), ints: it.Data, size: int64(n * dt.Size())})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })

	var h bytes.Buffer
	h.WriteString("{")
	if len(opt.Metadata) > 0 {
		h.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(opt.Metadata)) {
			if i > 0 {
				h.WriteByte(',')
			}
			writeString(&h, k)
			h.WriteByte(':')
			writeString(&h, opt.Metadata[k])
		}
		h.WriteString("}")
	}
	var off int64
	for i, e := range entries {
		if i > 0 || len(opt.Metadata) > 0 {
			h.WriteByte(',')
		}
		writeString(&h, e.name)
		h.WriteString(`:{"dtype":"` + string(e.dtype) + `","shape":[`)
		for j, d := range e.shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+e.size)
		off += e.size
	}
	h.WriteString("}")
	// Pad with spaces so the data section starts 8-byte aligned.
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, 8, 8+h.Len())
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	return entries, append(out, h.Bytes()...), nil
}

func checkName(name string) error {
	if name == "__metadata__" {
		return fmt.Errorf("tensor name %q is reserved for the header's metadata", name)
	}
	return nil
}

// writeString writes s as a JSON string without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // cannot fail for a string
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// writeAll writes the header and every entry's data.
func writeAll(w io.Writer, entries []entry, hdr []byte) error {
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	le := binary.LittleEndian
	for _, e := range entries {
		switch {
		case e.dtype == F32 && nativeLittleEndian && len(e.f32) > 0:
			if err := flush(); err != nil {
				return err
			}
			if _, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(&e.f32[0])), 4*len(e.f32))); err != nil {
				return err
			}
			continue
		case e.f32 != nil:
			for _, v := range e.f32 {
				switch e.dtype {
				case F32:
					buf = le.AppendUint32(buf, math.Float32bits(v))
				case F16:
					buf = le.AppendUint16(buf, Float32ToF16(v))
				case BF16:
					buf = le.AppendUint16(buf, Float32ToBF16(v))
				}
				if len(buf) >= cap(buf)-8 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		default:
			for _, v := range e.ints {
				if e.dtype == I64 {
					buf = le.AppendUint64(buf, uint64(v))
				} else {
					buf = le.AppendUint32(buf, uint32(int32(v)))
				}
				if len(buf) >= cap(buf)-8 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
	}
	return flush()
}
