package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"tessera/nn"
	"tessera/optim"
	"tessera/safetensors"
	"tessera/tensor"
)

// Checkpoints are single safetensors files named ckpt-<step>.safetensors
// (step zero-padded to 8 digits so that names sort by step). Tensor names
// are prefixed by their owner:
//
//	model.<name>    every weight of the model, by its nn.NamedParams name
//	optim.<key>     the optimiser's State
//	ema.<key>       the EMA's State
//	rng.state       the RNG's four state words (I64, bits reinterpreted)
//
// and the header metadata holds "tessera.train", a JSON Meta.

// Meta is the JSON metadata of a checkpoint.
type Meta struct {
	Step int       `json:"step"`
	Loss float64   `json:"loss,omitempty"` // smoothed training loss at Step
	Time time.Time `json:"time"`
	// User holds caller-supplied values (configuration, data set name).
	User map[string]string `json:"user,omitempty"`
}

const (
	metaKey    = "tessera.train"
	filePrefix = "ckpt-"
	fileSuffix = ".safetensors"
)

// Checkpointer saves and restores a training run's full state so that a
// resumed run continues exactly as an uninterrupted one would.
type Checkpointer struct {
	Dir       string          // directory of the checkpoint files, created on Save
	KeepLast  int             // how many checkpoints to keep; 0 keeps all
	Model     any             // struct of tagged parameters (see nn.NamedParams)
	Optimizer optim.Optimizer // optional
	EMA       *optim.EMA      // optional
	RNG       *tensor.RNG     // optional: the run's data and noise generator
	// User is copied into every checkpoint's Meta.User.
	User map[string]string
}

// Path returns the file name of the checkpoint at step.
func (c *Checkpointer) Path(step int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("%s%08d%s", filePrefix, step, fileSuffix))
}

// Save writes the state after step completed updates atomically (a reader
// sees the old set of files or the new one, never a partial file), then
// deletes checkpoints beyond the last KeepLast.
func (c *Checkpointer) Save(step int, loss float64) (string, error) {
	tensors := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParams(c.Model) {
		tensors["model."+p.Name] = p.Var.Value
	}
	if c.Optimizer != nil {
		for k, t := range c.Optimizer.State() {
			tensors["optim."+k] = t
		}
	}
	if c.EMA != nil {
		for k, t := range c.EMA.State() {
			tensors["ema."+k] = t
		}
	}
	opt := &safetensors.SaveOptions{Metadata: map[string]string{}}
	if c.RNG != nil {
		s := c.RNG.State()
		words := make([]int64, len(s))
		for i, w := range s {
			words[i] = int64(w)
		}
		opt.Ints = map[string]safetensors.IntTensor{"rng.state": safetensors.Int64Tensor(words, len(words))}
	}
	meta := Meta{Step: step, Time: time.Now().UTC(), User: c.User}
	if !isNaN(loss) {
		meta.Loss = loss
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return "", fmt.Errorf("checkpoint metadata: %w", err)
	}
	opt.Metadata[metaKey] = string(mj)

	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	path := c.Path(step)
	if err := safetensors.Save(path, tensors, opt); err != nil {
		return "", fmt.Errorf("checkpoint at step %d: %w", step, err)
	}
	if err := c.prune(); err != nil {
		return path, err
	}
	return path, nil
}

func isNaN(f float64) bool { return f != f }

// List returns the steps of the checkpoints in Dir, oldest first.
func (c *Checkpointer) List() ([]int, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var steps []int
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix))
		if err != nil || n < 0 {
			continue
		}
		steps = append(steps, n)
	}
	slices.Sort(steps)
	return steps, nil
}

func (c *Checkpointer) prune() error {
	if c.KeepLast <= 0 {
		return nil
	}
	steps, err := c.List()
	if err != nil {
		return err
	}
	for len(steps) > c.KeepLast {
		if err := os.Remove(c.Path(steps[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
		steps = steps[1:]
	}
	return nil
}

// Resume loads the newest checkpoint in Dir and returns its metadata, or a
// zero Meta and no error when there is none.
func (c *Checkpointer) Resume() (Meta, error) {
	steps, err := c.List()
	if err != nil || len(steps) == 0 {
		return Meta{}, err
	}
	return c.Load(c.Path(steps[len(steps)-1]))
}

// Load restores model weights, optimiser, EMA and RNG from the checkpoint
// at path. Every tensor the Checkpointer's parts need must be present with
// the right shape; on error the state may be partly restored.
func (c *Checkpointer) Load(path string) (Meta, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return Meta{}, fmt.Errorf("load checkpoint: %w", err)
	}
	defer f.Close()

	var meta Meta
	raw, ok := f.Metadata()[metaKey]
	if !ok {
		return Meta{}, fmt.Errorf("load checkpoint %s: no %q metadata (not a training checkpoint)", path, metaKey)
	}
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return Meta{}, fmt.Errorf("load checkpoint %s: metadata: %w", path, err)
	}

	for _, p := range nn.NamedParams(c.Model) {
		t, err := f.Tensor("model." + p.Name)
		if err != nil {
			return Meta{}, fmt.Errorf("load checkpoint: %w", err)
		}
		if !tensor.SameShape(t, p.Var.Value) {
			return Meta{}, fmt.Errorf("load checkpoint %s: %s has shape %v, model has %v", path, p.Name, t.Shape(), p.Var.Value.Shape())
		}
		p.Var.Value.CopyFrom(t)
	}
	group := func(prefix string) (map[string]*tensor.Tensor, error) {
		st := map[string]*tensor.Tensor{}
		for _, name := range f.Names() {
			if k, ok := strings.CutPrefix(name, prefix); ok {
				t, err := f.Tensor(name)
				if err != nil {
					return nil, err
				}
				st[k] = t
			}
		}
		return st, nil
	}
	if c.Optimizer != nil {
		st, err := group("optim.")
		if err == nil {
			err = c.Optimizer.Load(st)
		}
		if err != nil {
			return Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	}
	if c.EMA != nil {
		st, err := group("ema.")
		if err == nil {
			err = c.EMA.Load(st)
		}
		if err != nil {
			return Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	}
	if c.RNG != nil {
		words, err := f.Int64s("rng.state")
		if err != nil {
			return Meta{}, fmt.Errorf("load checkpoint: %w", err)
		}
		var s [4]uint64
		if len(words) != len(s) {
			return Meta{}, fmt.Errorf("load checkpoint %s: rng.state has %d words, want %d", path, len(words), len(s))
		}
		for i, w := range words {
			s[i] = uint64(w)
		}
		if err := c.RNG.SetState(s); err != nil {
			return Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	}
	return meta, nil
}
