package nn

import (
	"fmt"
	"strings"

	"tessera/tensor"
)

// Precision is the arithmetic of the Linear layers of a model at inference
// (under autodiff.NoGrad). Training and recorded graphs always use float32.
type Precision int

const (
	// F32 multiplies in float32.
	F32 Precision = iota
	// BF16 rounds activations and weights to bfloat16 and accumulates in
	// float32: on CPUs with AVX512_BF16 it runs the products at up to twice
	// the float32 rate. Weights are packed once by SetPrecision.
	BF16
)

func (p Precision) String() string {
	if p == BF16 {
		return "bf16"
	}
	return "f32"
}

// AutoPrecision is BF16 where the CPU multiplies bfloat16 natively, else F32.
func AutoPrecision() Precision {
	if tensor.BF16Native() {
		return BF16
	}
	return F32
}

// ParsePrecision reads "f32", "bf16" or "auto" (AutoPrecision).
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "f32", "fp32", "float32":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "auto", "":
		return AutoPrecision(), nil
	}
	return F32, fmt.Errorf("unknown precision %q (want f32, bf16 or auto)", s)
}

// SetPrecision sets the inference arithmetic of every Linear layer
// reachable from model and returns how many layers it set. BF16 packs a
// bfloat16 copy of each weight now: call SetPrecision again after changing
// the weights (training, loading), or set F32 to drop the copies.
func SetPrecision(model any, p Precision) int {
	ls := namedLinears(model)
	for _, nl := range ls {
		nl.l.bf16 = nil
		if p == BF16 {
			nl.l.bf16 = tensor.PackBF16(nl.l.Weight.Value)
		}
	}
	return len(ls)
}

// Precision is the inference arithmetic the layer was last set to.
func (l *Linear) Precision() Precision {
	if l.bf16 != nil {
		return BF16
	}
	return F32
}
