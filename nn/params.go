// Package nn holds the layers models are built from. One model definition
// serves training and inference: every layer's Forward takes the
// *autodiff.Graph to record on (autodiff.NewGraph to train, autodiff.NoGrad
// to run), and layers are plain structs whose *autodiff.Var fields carry
// their checkpoint names in struct tags, PyTorch style:
//
//	type Block struct {
//		Norm nn.LayerNorm `safetensors:"norm1"`
//		Attn nn.Attention `safetensors:"attn"`
//	}
//
// Params and NamedParams walk those tags; the checkpoint package binds
// weights by the same names.
package nn

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"tessera/autodiff"
)

// Tag is the struct tag key that names weights.
const Tag = "safetensors"

// NamedParam is a parameter with its checkpoint name.
type NamedParam struct {
	Name string
	Var  *autodiff.Var
}

var varType = reflect.TypeFor[*autodiff.Var]()

// NamedParams returns every non-nil *autodiff.Var reachable from model
// through tagged fields, named by joining the tags with dots, in natural
// name order ("blocks.2" before "blocks.10"). Nested structs, pointers to
// structs, slices and arrays are walked: a slice tagged "blocks" yields
// "blocks.0.…", "blocks.1.…". The rules are the checkpoint package's:
// untagged fields and the tag "-" are skipped, a struct tagged with an
// empty name (`safetensors:""`) contributes its fields without a prefix,
// and tag options after a comma (",optional") do not change the name. A Var
// reachable under two names (tied weights) is listed under both.
func NamedParams(model any) []NamedParam {
	var out []NamedParam
	walk(reflect.ValueOf(model), "", &out)
	slices.SortStableFunc(out, func(a, b NamedParam) int { return naturalCompare(a.Name, b.Name) })
	return out
}

// Params returns the distinct parameters of model in NamedParams order
// (a tied weight appears once, at its first name).
func Params(model any) []*autodiff.Var {
	seen := map[*autodiff.Var]bool{}
	var out []*autodiff.Var
	for _, p := range NamedParams(model) {
		if !seen[p.Var] {
			seen[p.Var] = true
			out = append(out, p.Var)
		}
	}
	return out
}

// Trainable returns the parameters of model that require a gradient (LoRA
// freezes the base weights).
func Trainable(model any) []*autodiff.Var {
	var out []*autodiff.Var
	for _, p := range Params(model) {
		if p.RequiresGrad() {
			out = append(out, p)
		}
	}
	return out
}

// NumParams returns the number of scalar values in model's distinct
// parameters.
func NumParams(model any) int {
	n := 0
	for _, p := range Params(model) {
		n += p.Value.Numel()
	}
	return n
}

func join(prefix, name string) string {
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	}
	return prefix + "." + name
}

// visit walks v depth-first along tagged fields, calling fn on every value
// with its dotted name; fn returns false to stop descending into a value.
func visit(v reflect.Value, prefix string, fn func(v reflect.Value, name string) bool) {
	if !v.IsValid() || !fn(v, prefix) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			visit(v.Elem(), prefix, fn)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			visit(v.Index(i), join(prefix, strconv.Itoa(i)), fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, ok := f.Tag.Lookup(Tag)
			tag, _, _ = strings.Cut(tag, ",")
			if !ok || tag == "-" {
				continue
			}
			visit(v.Field(i), join(prefix, tag), fn)
		}
	}
}

func walk(v reflect.Value, prefix string, out *[]NamedParam) {
	visit(v, prefix, func(v reflect.Value, name string) bool {
		if v.Type() != varType {
			return true
		}
		if !v.IsNil() {
			if name == "" {
				panic("nn: a parameter has no name (untagged top-level *autodiff.Var)")
			}
			*out = append(*out, NamedParam{name, v.Interface().(*autodiff.Var)})
		}
		return false
	})
}

// naturalCompare orders dotted names segment by segment, numeric segments
// by value.
func naturalCompare(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errX := strconv.Atoi(as[i])
		y, errY := strconv.Atoi(bs[i])
		var c int
		switch {
		case errX == nil && errY == nil:
			c = x - y
		case errX == nil:
			c = -1 // numbers before words
		case errY == nil:
			c = 1
		default:
			c = strings.Compare(as[i], bs[i])
		}
		if c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

// shapeErr formats a shape mismatch for panics inside Forward.
func shapeErr(layer string, want string, got []int) string {
	return fmt.Sprintf("nn.%s: input shape %v, want %s", layer, got, want)
}
