package dit

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"tessera/internal/atomicfile"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
)

// Checkpoint file names inside a model folder.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Load reads a model folder holding config.json and model.safetensors.
func Load(dir string) (*Model, error) {
	m, err := LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, nil
}

// LoadFS reads config.json and model.safetensors from the root of fsys (an
// embedded model, for instance). Every tensor of the model must be present
// with its shape; extra tensors are an error too, since they mean the
// checkpoint is of another architecture.
func LoadFS(fsys fs.FS) (*Model, error) {
	raw, err := fs.ReadFile(fsys, ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("dit: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	data, err := fs.ReadFile(fsys, WeightsFile)
	if err != nil {
		return nil, fmt.Errorf("dit: %w", err)
	}
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("dit: %s: %w", WeightsFile, err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, p := range nn.NamedParams(m) {
		want[p.Name] = true
		info, ok := f.Info(p.Name)
		if !ok {
			return nil, fmt.Errorf("dit: %s has no tensor %q (config %+v)", WeightsFile, p.Name, cfg)
		}
		if !slices.Equal(info.Shape, p.Var.Value.Shape()) {
			return nil, fmt.Errorf("dit: %s: tensor %q has shape %v, the config needs %v", WeightsFile, p.Name, info.Shape, p.Var.Value.Shape())
		}
		t, err := f.Tensor(p.Name)
		if err != nil {
			return nil, fmt.Errorf("dit: %w", err)
		}
		p.Var.Value.CopyFrom(t)
	}
	for _, name := range f.Names() {
		if !want[name] {
			return nil, fmt.Errorf("dit: %s: unexpected tensor %q (not part of a DiT with config %+v)", WeightsFile, name, cfg)
		}
	}
	return m, nil
}

// Save writes the model to dir as config.json and model.safetensors (F32),
// creating dir if needed. Each file is replaced atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save dit: %w", err)
	}
	ts := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParams(m) {
		ts[p.Name] = p.Var.Value
	}
	if err := safetensors.Save(filepath.Join(dir, WeightsFile), ts, nil); err != nil {
		return fmt.Errorf("save dit: %w", err)
	}
	cfg, err := json.MarshalIndent(m.Config, "", " ")
	if err != nil {
		return fmt.Errorf("save dit: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(cfg, '\n')); err != nil {
		return fmt.Errorf("save dit: %w", err)
	}
	return nil
}
