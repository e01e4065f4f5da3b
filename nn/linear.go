package nn

import (
	"fmt"
	"reflect"
	"slices"

	"tessera/autodiff"
	"tessera/internal/gemm"
	"tessera/tensor"
)

// Linear is y = x·Wᵀ + b over the last dimension, with W [out, in] as in
// PyTorch, and an optional low-rank adapter (LoRA, Hu et al. 2021):
//
//	y = x·Wᵀ + b + (alpha/r)·(x·Aᵀ)·Bᵀ,  A [r, in], B [out, r]
//
// While the adapter is on, W and b are frozen and only A and B train; B
// starts at zero, so enabling the adapter does not change the output.
type Linear struct {
	Weight *autodiff.Var `safetensors:"weight"` // [out, in]
	Bias   *autodiff.Var `safetensors:"bias"`   // [out] or nil
	LoraA  *autodiff.Var `safetensors:"lora_A"` // [r, in] or nil
	LoraB  *autodiff.Var `safetensors:"lora_B"` // [out, r] or nil
	// LoraScale is alpha/r, the factor applied to the adapter's output.
	LoraScale float32

	// bf16 is a bfloat16 copy of Weight used under NoGrad (SetPrecision).
	bf16 *tensor.BF16Weight
}

// NewLinear returns a Linear layer with PyTorch's default initialisation.
func NewLinear(rng *tensor.RNG, in, out int, bias bool) *Linear {
	l := &Linear{Weight: autodiff.Param(tensor.New(out, in))}
	var b *tensor.Tensor
	if bias {
		b = tensor.New(out)
		l.Bias = autodiff.Param(b)
	}
	LinearDefault(rng, l.Weight.Value, b)
	return l
}

// In is the input width.
func (l *Linear) In() int { return l.Weight.Value.Dim(1) }

// Out is the output width.
func (l *Linear) Out() int { return l.Weight.Value.Dim(0) }

// Forward maps x [..., in] to [..., out].
func (l *Linear) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	if s := x.Shape(); len(s) == 0 || s[len(s)-1] != l.In() {
		panic(shapeErr("Linear", fmt.Sprintf("[..., %d]", l.In()), s))
	}
	if !g.Recording() {
		return autodiff.Const(l.Infer(x.Value, nil))
	}
	y := g.Linear(x, l.Weight, l.Bias)
	if l.LoraA != nil {
		low := g.Linear(g.Linear(x, l.LoraA, nil), l.LoraB, nil)
		y = g.Add(y, g.Scale(low, l.LoraScale))
	}
	return y
}

// EnableLoRA adds a rank-r adapter with scale alpha/r and freezes the base
// weight and bias. A is initialised like a Linear weight (PEFT's choice), B
// at zero.
func (l *Linear) EnableLoRA(rng *tensor.RNG, r int, alpha float32) {
	if r <= 0 {
		panic(fmt.Sprintf("nn.Linear.EnableLoRA: rank %d", r))
	}
	a := tensor.New(r, l.In())
	LinearDefault(rng, a, nil)
	l.LoraA = autodiff.Param(a)
	l.LoraB = autodiff.Param(tensor.New(l.Out(), r))
	l.LoraScale = alpha / float32(r)
	l.Weight.SetRequiresGrad(false)
	if l.Bias != nil {
		l.Bias.SetRequiresGrad(false)
	}
}

// Merge folds the adapter into the weight, W += (alpha/r)·B·A, removes it,
// and makes W and b trainable again: the layer computes the same function
// as a plain Linear, with no extra cost.
func (l *Linear) Merge() {
	if l.LoraA == nil {
		return
	}
	w := l.Weight.Value.Contiguous()
	fold(w, l.LoraA.Value, l.LoraB.Value, l.LoraScale)
	if w != l.Weight.Value {
		l.Weight.SetTensor(w)
	}
	l.LoraA, l.LoraB, l.LoraScale = nil, nil, 0
	l.Weight.SetRequiresGrad(true)
	if l.Bias != nil {
		l.Bias.SetRequiresGrad(true)
	}
}

// Folded returns a new layer computing l with the adapter A [r, in],
// B [out, r] of scale alpha/r added, W + scale·B·A, at l's inference
// precision, for inference; l is not changed.
func (l *Linear) Folded(a, b *tensor.Tensor, scale float32) *Linear {
	w := l.Weight.Value.Contiguous().Clone()
	fold(w, a, b, scale)
	f := &Linear{Weight: autodiff.Const(w), Bias: l.Bias}
	SetPrecision(f, l.Precision())
	return f
}

// fold adds scale·B·A to the contiguous weight w [out, in].
func fold(w, a, b *tensor.Tensor, scale float32) {
	out, in, r := w.Dim(0), w.Dim(1), a.Dim(0)
	gemm.Sgemm(false, false, out, in, r, scale,
		b.Contiguous().Data(), r,
		a.Contiguous().Data(), in,
		1, w.Data(), in)
}

// EnableLoRAAll enables an adapter on every Linear reachable from model
// whose checkpoint name satisfies match (nil matches all), e.g. only the
// attention projections, and returns how many it changed.
func EnableLoRAAll(model any, rng *tensor.RNG, r int, alpha float32, match func(name string) bool) int {
	n := 0
	for _, nl := range namedLinears(model) {
		if nl.l.LoraA == nil && (match == nil || match(nl.name)) {
			nl.l.EnableLoRA(rng, r, alpha)
			n++
		}
	}
	return n
}

// MergeAll merges every adapter reachable from model.
func MergeAll(model any) {
	for _, nl := range namedLinears(model) {
		nl.l.Merge()
	}
}

type namedLinear struct {
	name string
	l    *Linear
}

// namedLinears finds the Linear layers reachable from model through
// tagged fields, each once, named by its checkpoint prefix ("blocks.0.attn.qkv").
func namedLinears(model any) []namedLinear {
	var out []namedLinear
	seen := map[*Linear]bool{}
	linType := reflect.TypeFor[Linear]()
	ptrType := reflect.TypeFor[*Linear]()
	visit(reflect.ValueOf(model), "", func(v reflect.Value, name string) bool {
		var l *Linear
		switch {
		case v.Type() == ptrType && !v.IsNil():
			l = v.Interface().(*Linear)
		case v.Type() == linType && v.CanAddr():
			l = v.Addr().Interface().(*Linear)
		case v.Type() == linType:
			panic("nn: Linear layers must be reachable through a pointer to be changed")
		default:
			return true
		}
		if !seen[l] {
			seen[l] = true
			out = append(out, namedLinear{name, l})
		}
		return false
	})
	slices.SortStableFunc(out, func(a, b namedLinear) int { return naturalCompare(a.name, b.name) })
	return out
}

// Infer computes x·Wᵀ + b (and the adapter's term) on plain tensors, for
// inference code that manages its own buffers: the result goes into out, a
// contiguous tensor of shape [..., Out] (nil: a new one), and is returned.
// It uses the bfloat16 weights SetPrecision packed, when there are any.
func (l *Linear) Infer(x, out *tensor.Tensor) *tensor.Tensor {
	var b *tensor.Tensor
	if l.Bias != nil {
		b = l.Bias.Value
	}
	if l.bf16 != nil {
		out = tensor.LinearBF16Into(out, x, l.bf16, b)
	} else {
		out = tensor.LinearInto(out, x, l.Weight.Value, b)
	}
	if l.LoraA != nil {
		low := tensor.Linear(tensor.Linear(x, l.LoraA.Value, nil), l.LoraB.Value, nil)
		tensor.AddInPlace(out, tensor.Scale(low, l.LoraScale))
	}
	return out
}
