// Package safetensors reads and writes the safetensors checkpoint format: an
// unsigned 64-bit little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets} (plus an optional "__metadata__"
// object of strings), then the raw little-endian tensor data, with offsets
// relative to the start of that data section.
//
// Reading validates the whole header before anything is returned and
// reports malformed files with errors that name the file, the tensor and the
// numbers involved; it never panics on bad input. Open memory-maps the file
// so that a large checkpoint is not held twice in memory: only the float32
// tensors that Tensor returns are allocated.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"tessera/tensor"
)

// MaxHeaderSize is the largest JSON header accepted, in bytes.
const MaxHeaderSize = 100_000_000

// ErrInvalid is wrapped by every error that reports a malformed file.
var ErrInvalid = errors.New("invalid safetensors")

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Offsets are the [begin, end) byte offsets of the tensor's data,
	// relative to the start of the data section.
	Offsets [2]int64
}

// Numel is the number of elements (1 for a scalar of shape []).
func (i Info) Numel() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// File is a parsed safetensors file. Its methods are safe for concurrent
// use, except Close, which must not run concurrently with any other method.
type File struct {
	path  string // for error messages
	data  []byte // the data section
	infos map[string]Info
	names []string
	meta  map[string]string

	mu     sync.RWMutex
	closed bool
	unmap  func() error
}

// Open reads and validates the safetensors file at path. On unix the file
// is memory-mapped (read-only) and Close unmaps it; elsewhere it is read
// into memory.
func Open(path string) (*File, error) {
	b, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(path, b)
	if err != nil {
		if unmap != nil {
			unmap()
		}
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// Parse validates b as a safetensors file. The File refers to b, which must
// not be modified while the File is in use; tensors returned by its methods
// are copies.
func Parse(b []byte) (*File, error) { return parse("", b) }

// Path returns the path given to Open, or "" for a File from Parse.
func (f *File) Path() string { return f.path }

func (f *File) label() string {
	if f.path == "" {
		return "safetensors data"
	}
	return f.path
}

// Close releases the file's memory mapping. Tensors already returned stay
// valid; the File itself may not be used afterwards.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.data = nil
	if f.unmap != nil {
		if err := f.unmap(); err != nil {
			return fmt.Errorf("safetensors: close %s: %w", f.path, err)
		}
	}
	return nil
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.names) }

// Info describes the named tensor.
func (f *File) Info(name string) (Info, bool) {
	i, ok := f.infos[name]
	if ok {
		i.Shape = slices.Clone(i.Shape)
	}
	return i, ok
}

// Metadata returns a copy of the header's "__metadata__" object (empty when
// the file has none).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// raw returns the named tensor's info and bytes, holding the read lock;
// the caller must call f.mu.RUnlock when done with the bytes.
func (f *File) raw(name string) (Info, []byte, error) {
	f.mu.RLock()
	if f.closed {
		f.mu.RUnlock()
		return Info{}, nil, fmt.Errorf("safetensors: %s: file is closed", f.label())
	}
	info, ok := f.infos[name]
	if !ok {
		f.mu.RUnlock()
		return Info{}, nil, fmt.Errorf("safetensors: %s: no tensor %q", f.label(), name)
	}
	return info, f.data[info.Offsets[0]:info.Offsets[1]], nil
}

// Tensor returns the named tensor as a new contiguous float32 tensor,
// converting F16, BF16 and F64 data (F64 rounds to nearest).
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	info, b, err := f.raw(name)
	if err != nil {
		return nil, err
	}
	defer f.mu.RUnlock()
	if !info.DType.IsFloat() {
		return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, not a float type (use Int64s or Int32s for integers)", f.label(), name, info.DType)
	}
	t := tensor.New(info.Shape...)
	decodeFloats(t.Data(), info.DType, b)
	return t, nil
}

// Int64s returns the named integer tensor's elements in row-major order
// (its shape is in Info). I64 and every narrower integer type are accepted;
// U64 values above math.MaxInt64 are an error.
func (f *File) Int64s(name string) ([]int64, error) {
	info, b, err := f.raw(name)
	if err != nil {
		return nil, err
	}
	defer f.mu.RUnlock()
	if !info.DType.IsInt() {
		return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, not an integer type", f.label(), name, info.DType)
	}
	out := make([]int64, info.Numel())
	for i := range out {
		v, ok := intAt(info.DType, b, i)
		if !ok {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: element %d (%d) does not fit in int64", f.label(), name, i, uint64(v))
		}
		out[i] = v
	}
	return out, nil
}

// Int32s returns the named integer tensor's elements in row-major order.
// Wider types (I64, U32, U64) are accepted when every value fits in int32.
func (f *File) Int32s(name string) ([]int32, error) {
	info, b, err := f.raw(name)
	if err != nil {
		return nil, err
	}
	defer f.mu.RUnlock()
	if !info.DType.IsInt() {
		return nil, fmt.Errorf("safetensors: %s: tensor %q has dtype %s, not an integer type", f.label(), name, info.DType)
	}
	out := make([]int32, info.Numel())
	for i := range out {
		v, ok := intAt(info.DType, b, i)
		if !ok || v < math.MinInt32 || v > math.MaxInt32 {
			s := strconv.FormatInt(v, 10)
			if !ok {
				s = strconv.FormatUint(uint64(v), 10)
			}
			return nil, fmt.Errorf("safetensors: %s: tensor %q (%s): element %d (%s) does not fit in int32", f.label(), name, info.DType, i, s)
		}
		out[i] = int32(v)
	}
	return out, nil
}

// intAt reads element i of integer data; ok is false for a U64 value above
// math.MaxInt64 (returned reinterpreted as int64).
func intAt(d DType, b []byte, i int) (v int64, ok bool) {
	le := binary.LittleEndian
	switch d {
	case I64:
		return int64(le.Uint64(b[8*i:])), true
	case U64:
		u := le.Uint64(b[8*i:])
		return int64(u), u <= math.MaxInt64
	case I32:
		return int64(int32(le.Uint32(b[4*i:]))), true
	case U32:
		return int64(le.Uint32(b[4*i:])), true
	case I16:
		return int64(int16(le.Uint16(b[2*i:]))), true
	case U16:
		return int64(le.Uint16(b[2*i:])), true
	case I8:
		return int64(int8(b[i])), true
	case U8:
		return int64(b[i]), true
	}
	panic("safetensors: intAt on " + string(d)) // callers check IsInt
}

// nativeLittleEndian reports whether float32 memory matches the file's
// byte order, so F32 data can be copied as bytes.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// decodeFloats converts little-endian data of dtype d into dst.
func decodeFloats(dst []float32, d DType, b []byte) {
	le := binary.LittleEndian
	switch d {
	case F32:
		if nativeLittleEndian && len(dst) > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), b)
			return
		}
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		tab := f16Values()[:1<<16]
		b = b[:2*len(dst)]
		for i := range dst {
			dst[i] = tab[uint16(b[2*i])|uint16(b[2*i+1])<<8]
		}
	case BF16:
		b = b[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(b[2*i])<<16 | uint32(b[2*i+1])<<24)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	default:
		panic("safetensors: decodeFloats on " + string(d)) // callers check IsFloat
	}
}

// invalid returns an error for a malformed file, naming it.
func invalid(path, format string, args ...any) error {
	where := ""
	if path != "" {
		where = path + ": "
	}
	return fmt.Errorf("safetensors: %s%w: %s", where, ErrInvalid, fmt.Sprintf(format, args...))
}

// parse validates the file bytes b and builds the File.
func parse(path string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, invalid(path, "file is %d bytes, too short for the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, invalid(path, "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, invalid(path, "header length %d exceeds the %d bytes that follow the length field", n, len(b)-8)
	}
	hdr := b[8 : 8+n]
	f := &File{path: path, data: b[8+n:], infos: map[string]Info{}, meta: map[string]string{}}
	if err := f.parseHeader(hdr); err != nil {
		return nil, err
	}
	if err := f.checkLayout(); err != nil {
		return nil, err
	}
	f.names = make([]string, 0, len(f.infos))
	for name := range f.infos {
		f.names = append(f.names, name)
	}
	slices.Sort(f.names)
	return f, nil
}

// jsonErr describes a JSON decoding error with the header offset.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at header byte %d)", se, se.Offset)
	}
	return err.Error()
}

func (f *File) parseHeader(hdr []byte) error {
	if !utf8.Valid(hdr) {
		return invalid(f.path, "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return invalid(f.path, "header is not valid JSON: %s", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalid(f.path, "header is not a JSON object (starts with %v)", tok)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid(f.path, "header is not valid JSON: %s", jsonErr(err))
		}
		name, _ := tok.(string) // object keys are always strings
		if seen[name] {
			return invalid(f.path, "duplicate entry %q in header", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return invalid(f.path, "header is not valid JSON: entry %q: %s", name, jsonErr(err))
		}
		if name == "__metadata__" {
			if err := f.parseMetadata(raw); err != nil {
				return err
			}
			continue
		}
		info, err := f.parseEntry(name, raw)
		if err != nil {
			return err
		}
		f.infos[name] = info
	}
	if _, err := dec.Token(); err != nil {
		return invalid(f.path, "header is not valid JSON: %s", jsonErr(err))
	}
	rest := hdr[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return invalid(f.path, "header has %d bytes after the JSON object that are not padding spaces", len(rest))
	}
	return nil
}

func (f *File) parseMetadata(raw json.RawMessage) error {
	if string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return invalid(f.path, "__metadata__ is not a JSON object of strings")
	}
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return invalid(f.path, "__metadata__ key %q: value %s is not a string", k, truncate(v))
		}
		f.meta[k] = s
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// parseEntry decodes one tensor entry and checks it on its own: known
// dtype, sane shape, offsets inside the data section and matching the size.
func (f *File) parseEntry(name string, raw json.RawMessage) (Info, error) {
	fail := func(format string, args ...any) (Info, error) {
		return Info{}, invalid(f.path, "tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fail("entry %s is not a JSON object", truncate(raw))
	}
	for _, key := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := fields[key]; !ok {
			return fail("missing %q", key)
		}
	}
	info := Info{Name: name}
	var dt string
	if err := json.Unmarshal(fields["dtype"], &dt); err != nil {
		return fail("dtype %s is not a string", truncate(fields["dtype"]))
	}
	info.DType = DType(dt)
	if !info.DType.Valid() {
		return fail("unknown dtype %q", dt)
	}
	var shape, offs []json.RawMessage
	if err := json.Unmarshal(fields["shape"], &shape); err != nil || shape == nil {
		return fail("shape %s is not a list of integers", truncate(fields["shape"]))
	}
	numel := uint64(1)
	overflow := false
	for i, r := range shape {
		d, err := strconv.ParseInt(string(r), 10, 64)
		switch {
		case err != nil:
			return fail("shape dimension %d is %s, not an integer in int64 range", i, truncate(r))
		case d < 0:
			return fail("shape %s has negative dimension %d", truncate(fields["shape"]), d)
		case uint64(d) > math.MaxInt:
			return fail("shape dimension %d (%d) overflows int", i, d)
		}
		info.Shape = append(info.Shape, int(d))
		if d != 0 && numel > math.MaxInt/uint64(d) {
			overflow = true
		}
		numel *= uint64(d)
	}
	if info.Shape == nil {
		info.Shape = []int{}
	}
	if err := json.Unmarshal(fields["data_offsets"], &offs); err != nil || len(offs) != 2 {
		return fail("data_offsets %s is not a list of two integers", truncate(fields["data_offsets"]))
	}
	for i, r := range offs {
		v, err := strconv.ParseInt(string(r), 10, 64)
		if err != nil || v < 0 {
			return fail("data_offsets[%d] is %s, not a non-negative integer in int64 range", i, truncate(r))
		}
		info.Offsets[i] = v
	}
	begin, end := info.Offsets[0], info.Offsets[1]
	if end < begin {
		return fail("data_offsets [%d, %d] end before they begin", begin, end)
	}
	if end > int64(len(f.data)) {
		return fail("data_offsets [%d, %d] run past the end of the %d-byte data section", begin, end, len(f.data))
	}
	size := uint64(info.DType.Size())
	if overflow || (numel != 0 && numel > math.MaxInt64/size) {
		return fail("shape %v has more elements than fit in memory", info.Shape)
	}
	if want := numel * size; uint64(end-begin) != want {
		return fail("data_offsets [%d, %d] hold %d bytes, but dtype %s shape %v needs %d elements × %d bytes = %d",
			begin, end, end-begin, info.DType, info.Shape, numel, size, want)
	}
	return info, nil
}

// checkLayout requires the tensors to tile the data section exactly: the
// format forbids overlaps, gaps between tensors and trailing bytes.
func (f *File) checkLayout() error {
	list := make([]Info, 0, len(f.infos))
	for _, info := range f.infos {
		list = append(list, info)
	}
	slices.SortFunc(list, func(a, b Info) int {
		return cmp.Or(cmp.Compare(a.Offsets[0], b.Offsets[0]), cmp.Compare(a.Offsets[1], b.Offsets[1]), strings.Compare(a.Name, b.Name))
	})
	var pos int64
	prev := ""
	for _, info := range list {
		begin, end := info.Offsets[0], info.Offsets[1]
		switch {
		case begin > pos:
			after := "at the start of the data section"
			if prev != "" {
				after = fmt.Sprintf("after tensor %q", prev)
			}
			return invalid(f.path, "gap: bytes [%d, %d) of the data section %s belong to no tensor (tensor %q begins at %d); the format requires tensors to cover the data section without gaps",
				pos, begin, after, info.Name, begin)
		case begin < pos:
			p := f.infos[prev]
			return invalid(f.path, "tensor %q data_offsets [%d, %d] overlap tensor %q [%d, %d]",
				info.Name, begin, end, prev, p.Offsets[0], p.Offsets[1])
		}
		if end > pos || prev == "" {
			prev = info.Name
		}
		pos = end
	}
	if pos != int64(len(f.data)) {
		return invalid(f.path, "data section is %d bytes but tensors cover only [0, %d): %d trailing bytes belong to no tensor",
			len(f.data), pos, int64(len(f.data))-pos)
	}
	return nil
}

// readAll is the fallback for platforms without mmap.
func readAll(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, nil, nil
}
