package flexidit

import (
	"fmt"
	"io/fs"

	"tessera/checkpoint"
	"tessera/dit"
	"tessera/models"
	"tessera/safetensors"
	"tessera/tensor"
)

// Save writes the weak parts to dir as config.json (Config) and
// model.safetensors in float16; in the shared-parameters variant the
// fine-tuned base weights go with them (under "base."). The base model
// itself is saved apart (dit.Model.Save).
func (f *Model) Save(dir string) error {
	if err := checkpoint.SaveDir(dir, f.Config, f, &safetensors.SaveOptions{DType: safetensors.F16}); err != nil {
		return fmt.Errorf("flexidit: %w", err)
	}
	return nil
}

// Load reads the weak parts Save wrote to dir and attaches them to base.
// A shared-parameters model also replaces base's weights with its
// fine-tuned ones.
func Load(base *dit.Model, dir string) (*Model, error) {
	d, err := checkpoint.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("flexidit: load: %w", err)
	}
	defer d.Close()
	return bind(base, d)
}

// LoadFS is Load from the root of a file system (an embedded model, for
// instance).
func LoadFS(base *dit.Model, fsys fs.FS) (*Model, error) {
	d, err := checkpoint.OpenFS(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("flexidit: load: %w", err)
	}
	defer d.Close()
	return bind(base, d)
}

// Open is Load for a model reference as models.Open takes it: the name of
// an embedded flexified model (mnist-flex) or a folder.
func Open(base *dit.Model, ref string) (*Model, error) {
	fsys, err := models.Open(ref)
	if err != nil {
		return nil, fmt.Errorf("flexidit: %w", err)
	}
	f, err := LoadFS(base, fsys)
	if err != nil {
		return nil, fmt.Errorf("flexified model %s: %w", ref, err)
	}
	return f, nil
}

func bind(base *dit.Model, d *checkpoint.Dir) (*Model, error) {
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
