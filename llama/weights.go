package llama

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"tessera/internal/atomicfile"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
)

// The model's weights are bound by nn.NamedParams names rather than
// through checkpoint.Bind: nn.Linear's bias and LoRA slots are nil in a
// Llama and are not tagged optional, so a strict bind would ask the file
// for them.

// bindWeights loads every parameter of m from f, checking names and
// shapes first: on error m is unchanged.
func bindWeights(m *Model, f *safetensors.File) error {
	params := nn.NamedParams(m)
	var problems []string
	used := map[string]bool{}
	for _, p := range params {
		info, ok := f.Info(p.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: missing", p.Name))
			continue
		}
		used[p.Name] = true
		if !info.DType.IsFloat() {
			problems = append(problems, fmt.Sprintf("%s: dtype %s is not a float type", p.Name, info.DType))
		} else if !slices.Equal(info.Shape, p.Var.Shape()) {
			problems = append(problems, fmt.Sprintf("%s: shape %v, model expects %v", p.Name, info.Shape, p.Var.Shape()))
		}
	}
	for _, n := range f.Names() {
		if !used[n] {
			problems = append(problems, fmt.Sprintf("%s: not a tensor of this model", n))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s does not fit the model:\n  %s", f.Path(), strings.Join(problems, "\n  "))
	}
	loaded := make([]*tensor.Tensor, len(params))
	for i, p := range params {
		t, err := f.Tensor(p.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path(), err)
		}
		loaded[i] = t
	}
	for i, p := range params {
		p.Var.SetTensor(loaded[i])
	}
	return nil
}

// saveDir writes config.json and model.safetensors into dir, each through
// a temporary file renamed into place.
func saveDir(dir string, config []byte, m *Model) error {
	tensors := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParams(m) {
		tensors[p.Name] = p.Var.Value
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := safetensors.Save(filepath.Join(dir, "model.safetensors"), tensors, nil); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), config)
}
