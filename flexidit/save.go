package flexidit

import (
	"fmt"

	"tessera/checkpoint"
	"tessera/dit"
	"tessera/tensor"
)

// Save writes the weak parts to dir as config.json (Config) and
// model.safetensors; the base model is saved apart (dit.Model.Save).
func (f *Model) Save(dir string) error {
	if err := checkpoint.SaveDir(dir, f.Config, f, nil); err != nil {
		return fmt.Errorf("flexidit: %w", err)
	}
	return nil
}

// Load reads the weak parts Save wrote and attaches them to base.
func Load(base *dit.Model, dir string) (*Model, error) {
	d, err := checkpoint.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("flexidit: load: %w", err)
	}
	defer d.Close()
	var cfg Config
	if err := d.Config(&cfg); err != nil {
		return nil, fmt.Errorf("flexidit: %w", err)
	}
	f, err := Flexify(base, cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	if err := d.Bind(f, nil); err != nil {
		return nil, fmt.Errorf("flexidit: %w", err)
	}
	return f, nil
}
