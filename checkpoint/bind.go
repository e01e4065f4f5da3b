// Package checkpoint connects models to their files: it binds the tensors
// of a safetensors file to a model's weight fields by struct tags, and
// saves and opens model directories (config.json + model.safetensors), from
// disk or from an fs.FS such as an embed.FS.
//
// A model is a struct of layers. A field tagged `safetensors:"name"` is a
// weight slot when its type is *tensor.Tensor or implements Slot; a tagged
// struct, or pointer to struct, adds "name." to the names of its own
// tagged fields; a tagged slice or array adds "name.0.", "name.1.", … (its
// elements may be structs, pointers to structs or slots). The tag option
// ",optional" lets a slot be absent from the file, `safetensors:"-"` and
// untagged fields are ignored, and a struct tagged with an empty name
// (`safetensors:""`) contributes its fields without a prefix. Nil pointers
// to structs and nil slots (a nil *tensor.Tensor, a nil Slot, or a Slot
// whose Tensor is nil) are parts the model does not have, such as a bias of
// a layer built without one: they are not saved, and Bind expects the file
// not to have them either.
//
//	type Linear struct {
//		Weight *tensor.Tensor `safetensors:"weight"`
//		Bias   *tensor.Tensor `safetensors:"bias,optional"`
//	}
//	type Model struct {
//		Blocks []Block `safetensors:"blocks"` // blocks.0.attn.qkv.weight, …
//	}
package checkpoint

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"tessera/safetensors"
	"tessera/tensor"
)

// Slot is a weight holder other than a bare *tensor.Tensor, such as an
// autodiff variable: Bind reads the current tensor for its shape and stores
// the loaded one with SetTensor.
type Slot interface {
	Tensor() *tensor.Tensor
	SetTensor(*tensor.Tensor)
}

// slot is one weight slot found in a model.
type slot struct {
	name     string
	optional bool
	field    string // Go path of the field, for messages
	get      func() *tensor.Tensor
	set      func(*tensor.Tensor)
}

var (
	tensorType = reflect.TypeFor[*tensor.Tensor]()
	slotType   = reflect.TypeFor[Slot]()
)

// slotsOf lists the weight slots of model (a struct or a pointer to one)
// in field order. Names must be unique.
func slotsOf(model any) ([]slot, error) {
	v := reflect.ValueOf(model)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		v = v.Elem()
	} else if v.Kind() == reflect.Struct {
		// Copy into an addressable value so pointer-receiver slots work.
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		v = c
	} else {
		return nil, fmt.Errorf("model must be a struct or a non-nil pointer to one, got %T", model)
	}
	w := walker{onPath: map[uintptr]bool{}}
	if err := w.walkStruct(v, "", v.Type().Name()); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, s := range w.slots {
		if prev, dup := seen[s.name]; dup {
			return nil, fmt.Errorf("tensor name %q is used by two slots: %s and %s", s.name, prev, s.field)
		}
		seen[s.name] = s.field
	}
	return w.slots, nil
}

type walker struct {
	slots  []slot
	onPath map[uintptr]bool // struct pointers being walked, to refuse cycles
}

// walkStruct visits the tagged fields of the struct v; prefix is the name
// prefix ("" or ending in "."), field the Go path for messages.
func (w *walker) walkStruct(v reflect.Value, prefix, field string) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("safetensors")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		optional := false
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "optional":
				optional = true
			default:
				return fmt.Errorf("field %s.%s: unknown safetensors tag option %q", field, sf.Name, o)
			}
		}
		fpath := field + "." + sf.Name
		if !sf.IsExported() {
			return fmt.Errorf("field %s has a safetensors tag but is unexported", fpath)
		}
		if err := w.walkValue(v.Field(i), prefix, name, optional, fpath); err != nil {
			return err
		}
	}
	return nil
}

// walkValue visits v, a tagged field or an element of one, named prefix+name.
func (w *walker) walkValue(v reflect.Value, prefix, name string, optional bool, field string) error {
	full := prefix + name
	sub := prefix
	if name != "" {
		sub = full + "."
	}
	if s, ok := asSlot(v); ok {
		if name == "" {
			return fmt.Errorf("field %s is a weight slot with an empty tensor name", field)
		}
		s.name, s.optional, s.field = full, optional, field
		w.slots = append(w.slots, s)
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return w.walkStruct(v, sub, field)
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			break
		}
		if v.IsNil() {
			return nil
		}
		p := v.Pointer()
		if w.onPath[p] {
			return fmt.Errorf("field %s points back to a struct that contains it", field)
		}
		w.onPath[p] = true
		defer delete(w.onPath, p)
		return w.walkStruct(v.Elem(), sub, field)
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		// Only what the interface points to can be written.
		if e := v.Elem(); e.Kind() == reflect.Pointer && e.Type().Elem().Kind() == reflect.Struct {
			return w.walkValue(e, prefix, name, optional, field)
		}
	case reflect.Slice, reflect.Array:
		if name == "" {
			return fmt.Errorf("field %s is a list with an empty tensor name", field)
		}
		for i := range v.Len() {
			idx := strconv.Itoa(i)
			if err := w.walkValue(v.Index(i), sub, idx, optional, field+"["+idx+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("field %s (%s) has a safetensors tag but is neither a weight slot (*tensor.Tensor or checkpoint.Slot) nor a struct or list of them", field, v.Type())
}

// asSlot recognises weight slots: *tensor.Tensor fields and Slot
// implementations (directly or through the field's address).
func asSlot(v reflect.Value) (slot, bool) {
	t := v.Type()
	switch {
	case t == tensorType:
		return slot{
			get: func() *tensor.Tensor { return v.Interface().(*tensor.Tensor) },
			set: func(x *tensor.Tensor) { v.Set(reflect.ValueOf(x)) },
		}, true
	case t.Implements(slotType):
		nilable := t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface
		return slot{
			get: func() *tensor.Tensor {
				if nilable && v.IsNil() {
					return nil
				}
				return v.Interface().(Slot).Tensor()
			},
			set: func(x *tensor.Tensor) { v.Interface().(Slot).SetTensor(x) },
		}, true
	case t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(slotType) && v.CanAddr():
		p := v.Addr()
		return slot{
			get: func() *tensor.Tensor { return p.Interface().(Slot).Tensor() },
			set: func(x *tensor.Tensor) { p.Interface().(Slot).SetTensor(x) },
		}, true
	}
	return slot{}, false
}

// Tensors collects the model's weights by name, for saving. Nil slots are
// left out.
func Tensors(model any) (map[string]*tensor.Tensor, error) {
	slots, err := slotsOf(model)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	out := make(map[string]*tensor.Tensor, len(slots))
	for _, s := range slots {
		if t := s.get(); t != nil {
			out[s.name] = t
		}
	}
	return out, nil
}

// Names lists the tensor names of the model's slots in field order, for
// documentation and diagnostics.
func Names(model any) ([]string, error) {
	slots, err := slotsOf(model)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	names := make([]string, len(slots))
	for i, s := range slots {
		names[i] = s.name
	}
	return names, nil
}

// BindOptions controls Bind. A nil *BindOptions is the strict default.
type BindOptions struct {
	// AllowUnused accepts files with tensors that no slot takes.
	AllowUnused bool
}

// Mismatch is a tensor whose shape in the file differs from its slot's.
type Mismatch struct {
	Name              string
	File, Model       []int
	FileDType         safetensors.DType
	IncompatibleDType bool // the file's dtype is not a float type
}

// BindError lists everything that keeps a file from binding to a model.
type BindError struct {
	File       string     // the file's path, "" for in-memory data
	Missing    []string   // required slots the file lacks
	Mismatched []Mismatch // tensors whose shape or dtype does not fit
	NilSlots   []string   // nil slots (parts the model lacks) the file has tensors for
	Unused     []string   // tensors no slot takes (unless AllowUnused)
}

// Error reports every problem, one per line, mismatches first.
func (e *BindError) Error() string {
	var b strings.Builder
	if e.File == "" {
		b.WriteString("checkpoint: the tensors do not fit the model")
	} else {
		fmt.Fprintf(&b, "checkpoint: %s does not fit the model", e.File)
	}
	for _, m := range e.Mismatched {
		if m.IncompatibleDType {
			fmt.Fprintf(&b, "\n  %s: checkpoint has dtype %s, model expects a float tensor", m.Name, m.FileDType)
		} else {
			fmt.Fprintf(&b, "\n  %s: checkpoint has shape %v, model expects %v", m.Name, m.File, m.Model)
		}
	}
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		const show = 20
		fmt.Fprintf(&b, "\n  %d %s: %s", len(names), what, strings.Join(names[:min(len(names), show)], ", "))
		if len(names) > show {
			fmt.Fprintf(&b, ", … (%d more)", len(names)-show)
		}
	}
	list("tensors missing from the checkpoint", e.Missing)
	list("tensors in the checkpoint are for parts the model does not have (nil slots)", e.NilSlots)
	list("tensors in the checkpoint are not used by the model", e.Unused)
	return b.String()
}

// Bind loads the tensors of f into the slots of model, which must be a
// non-nil pointer to a struct whose slots already hold tensors of the
// expected shapes (as built from the model's config). Every non-nil slot
// must find a tensor of exactly its shape unless it is optional and absent;
// nil slots must find none; tensors that no slot takes are an error unless
// opt.AllowUnused. F16 and BF16
// data are converted to float32. Slots receive new tensors (a
// *tensor.Tensor field is replaced, a Slot gets SetTensor).
//
// Bind checks everything before changing anything: on error the model is
// unchanged, and a *BindError lists every problem found.
func Bind(model any, f *safetensors.File, opt *BindOptions) error {
	if opt == nil {
		opt = &BindOptions{}
	}
	if v := reflect.ValueOf(model); v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("checkpoint: Bind needs a non-nil pointer to a model struct, got %T", model)
	}
	slots, err := slotsOf(model)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	berr := &BindError{File: f.Path()}
	taken := map[string]bool{}
	var bound []slot
	for _, s := range slots {
		info, ok := f.Info(s.name)
		cur := s.get()
		if !ok {
			if !s.optional && cur != nil {
				berr.Missing = append(berr.Missing, s.name)
			}
			continue
		}
		taken[s.name] = true
		switch {
		case cur == nil:
			berr.NilSlots = append(berr.NilSlots, s.name)
		case !info.DType.IsFloat():
			berr.Mismatched = append(berr.Mismatched, Mismatch{Name: s.name, File: info.Shape, Model: cur.Shape(), FileDType: info.DType, IncompatibleDType: true})
		case !slices.Equal(info.Shape, cur.Shape()):
			berr.Mismatched = append(berr.Mismatched, Mismatch{Name: s.name, File: info.Shape, Model: cur.Shape(), FileDType: info.DType})
		default:
			bound = append(bound, s)
		}
	}
	if !opt.AllowUnused {
		for _, name := range f.Names() {
			if !taken[name] {
				berr.Unused = append(berr.Unused, name)
			}
		}
	}
	if len(berr.Missing)+len(berr.Mismatched)+len(berr.NilSlots)+len(berr.Unused) > 0 {
		return berr
	}
	loaded := make([]*tensor.Tensor, len(bound))
	for i, s := range bound {
		if loaded[i], err = f.Tensor(s.name); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	for i, s := range bound {
		s.set(loaded[i])
	}
	return nil
}
