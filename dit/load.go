package dit

import (
	"fmt"
	"io/fs"

	"tessera/checkpoint"
	"tessera/tensor"
)

// Load reads a model folder holding config.json and model.safetensors (the
// weights are memory-mapped while they are copied in).
func Load(dir string) (*Model, error) {
	d, err := checkpoint.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("dit: load: %w", err)
	}
	defer d.Close()
	return build(d)
}

// LoadFS reads config.json and model.safetensors from the root of fsys (an
// embedded model, for instance; use fs.Sub for a subfolder).
func LoadFS(fsys fs.FS) (*Model, error) {
	d, err := checkpoint.OpenFS(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("dit: load: %w", err)
	}
	defer d.Close()
	return build(d)
}

// build makes the model its config describes and binds the weights: every
// tensor must be present with its shape, and extra tensors are an error
// too, since they mean the checkpoint is of another architecture.
func build(d *checkpoint.Dir) (*Model, error) {
	cfg := DefaultConfig()
	if err := d.Config(&cfg); err != nil {
		return nil, fmt.Errorf("dit: %w", err)
	}
	if cfg.Prediction == "" {
		cfg.Prediction = Velocity
	}
	m, err := New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	if err := d.Bind(m, nil); err != nil {
		return nil, fmt.Errorf("dit: config %+v: %w", cfg, err)
	}
	return m, nil
}

// Save writes the model to dir as config.json and model.safetensors (F32),
// creating dir if needed; a failure leaves the previous files in place.
func (m *Model) Save(dir string) error {
	if err := checkpoint.SaveDir(dir, m.Config, m, nil); err != nil {
		return fmt.Errorf("dit: %w", err)
	}
	return nil
}
