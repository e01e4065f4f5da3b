package checkpoint

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"tessera/internal/atomicfile"
	"tessera/safetensors"
)

// The files of a model directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// SaveDir writes a model directory: config (marshalled as indented JSON;
// skipped when nil) to dir/config.json and the model's weights (see
// Tensors) to dir/model.safetensors, creating dir if needed. Both files are
// written completely to temporary files before either is renamed into
// place, so a failure leaves the previous files untouched and no partial
// file behind.
func SaveDir(dir string, config any, model any, opt *safetensors.SaveOptions) error {
	tensors, err := Tensors(model)
	if err != nil {
		return err
	}
	var cfg []byte
	if config != nil {
		if cfg, err = json.MarshalIndent(config, "", "  "); err != nil {
			return fmt.Errorf("checkpoint: save %s: encode config: %w", dir, err)
		}
		cfg = append(cfg, '\n')
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: save: %w", err)
	}
	wp, err := atomicfile.Create(filepath.Join(dir, WeightsFile))
	if err != nil {
		return fmt.Errorf("checkpoint: save: %w", err)
	}
	defer wp.Abort()
	bw := bufio.NewWriterSize(wp, 1<<20)
	if err := safetensors.Encode(bw, tensors, opt); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", wp.Path(), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("checkpoint: save %s: %w", wp.Path(), err)
	}
	if err := wp.Sync(); err != nil {
		return fmt.Errorf("checkpoint: save: %w", err)
	}
	if cfg != nil {
		cp, err := atomicfile.Create(filepath.Join(dir, ConfigFile))
		if err != nil {
			return fmt.Errorf("checkpoint: save: %w", err)
		}
		defer cp.Abort()
		if _, err := cp.Write(cfg); err != nil {
			return fmt.Errorf("checkpoint: save %s: %w", cp.Path(), err)
		}
		if err := cp.Sync(); err != nil {
			return fmt.Errorf("checkpoint: save: %w", err)
		}
		if err := cp.Commit(); err != nil {
			return fmt.Errorf("checkpoint: save: %w", err)
		}
	}
	if err := wp.Commit(); err != nil {
		return fmt.Errorf("checkpoint: save: %w", err)
	}
	return nil
}

// Dir is an opened model directory.
type Dir struct {
	fsys    fs.FS
	dir     string // directory inside fsys
	display string // directory as shown in messages
	weights *safetensors.File
}

// Open opens the model directory dir on disk; its weights file is
// memory-mapped. Close releases it.
func Open(dir string) (*Dir, error) {
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Dir{fsys: os.DirFS(dir), dir: ".", display: dir, weights: f}, nil
}

// OpenFS opens the model directory dir inside fsys (for example an
// embed.FS holding models/<name>); the weights file is read into memory.
func OpenFS(fsys fs.FS, dir string) (*Dir, error) {
	name := path.Join(dir, WeightsFile)
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := safetensors.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", name, err)
	}
	return &Dir{fsys: fsys, dir: dir, display: dir, weights: f}, nil
}

// Config decodes the directory's config.json into v (see ReadConfigFS).
func (d *Dir) Config(v any) error {
	return readConfig(d.fsys, path.Join(d.dir, ConfigFile), filepath.Join(d.display, ConfigFile), v)
}

// HasConfig reports whether the directory has a config.json.
func (d *Dir) HasConfig() bool {
	_, err := fs.Stat(d.fsys, path.Join(d.dir, ConfigFile))
	return err == nil
}

// Weights returns the directory's safetensors file.
func (d *Dir) Weights() *safetensors.File { return d.weights }

// Bind loads the directory's weights into model (see Bind).
func (d *Dir) Bind(model any, opt *BindOptions) error {
	err := Bind(model, d.weights, opt)
	var be *BindError
	if errors.As(err, &be) && be.File == "" {
		be.File = filepath.Join(d.display, WeightsFile)
	}
	return err
}

// Close releases the weights file.
func (d *Dir) Close() error { return d.weights.Close() }

// ReadConfig decodes dir/config.json into v (see ReadConfigFS).
func ReadConfig(dir string, v any) error {
	return readConfig(os.DirFS(dir), ConfigFile, filepath.Join(dir, ConfigFile), v)
}

// ReadConfigFS decodes dir/config.json inside fsys into v, usually a
// pointer to a config struct holding its defaults: keys absent from the file
// keep them, and unknown keys are ignored (checkpoints from other tools
// carry extra keys). Errors name the file and, for a value of the wrong
// type, the key.
func ReadConfigFS(fsys fs.FS, dir string, v any) error {
	name := path.Join(dir, ConfigFile)
	return readConfig(fsys, name, name, v)
}

func readConfig(fsys fs.FS, name, display string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("checkpoint: read %s: %w", display, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return describeJSONError(display, b, err)
	}
	return nil
}

// describeJSONError wraps a decoding error as "file:line:col: …", naming
// the key for type errors.
func describeJSONError(file string, b []byte, err error) error {
	pos := func(off int64) string {
		line, col := 1, 1
		for _, c := range b[:min(int(off), len(b))] {
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("checkpoint: %s: invalid JSON: %w", pos(se.Offset), err)
	case errors.As(err, &te) && te.Field != "":
		return &configError{fmt.Sprintf("checkpoint: %s: key %q: a JSON %s cannot be stored in %s", pos(te.Offset), te.Field, te.Value, te.Type), err}
	case errors.As(err, &te):
		return &configError{fmt.Sprintf("checkpoint: %s: a JSON %s cannot be stored in %s", pos(te.Offset), te.Value, te.Type), err}
	}
	return fmt.Errorf("checkpoint: %s: %w", file, err)
}

// configError is a config decoding error with a rewritten message that
// still unwraps to the encoding/json error.
type configError struct {
	msg string
	err error
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.err }
