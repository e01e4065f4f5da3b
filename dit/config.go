package dit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Prediction is what the network's output means.
const (
	// Velocity: the network predicts v = ε − x0 of the flow
	// x_s = (1−s)·x0 + s·ε, fed t = 1000·s (Tessera's models).
	Velocity = "velocity"
	// Epsilon: the network predicts the noise ε of DiT's discrete
	// linear-beta process, fed the timestep 0..999 (the original DiT
	// checkpoints).
	Epsilon = "epsilon"
)

// Config holds a DiT's hyper-parameters under the keys of the reference
// config.json. Keys missing from a file take the values of DefaultConfig,
// which are those of the reference script, so plain DiT configs load.
type Config struct {
	InputSize  int     `json:"input_size"`  // image side in pixels (or latent cells)
	PatchSize  int     `json:"patch_size"`  // patch side; tokens = (InputSize/PatchSize)²
	InChannels int     `json:"in_channels"` // image channels
	HiddenSize int     `json:"hidden_size"` // token width
	Depth      int     `json:"depth"`       // number of DiT blocks
	NumHeads   int     `json:"num_heads"`   // attention heads
	MLPRatio   float64 `json:"mlp_ratio"`   // MLP width / HiddenSize
	NumClasses int     `json:"num_classes"` // class labels; label NumClasses means "no class"
	LearnSigma bool    `json:"learn_sigma"` // output 2·InChannels channels (noise and variance)
	// Prediction is Velocity (default) or Epsilon. Tessera's own key.
	Prediction string `json:"prediction,omitempty"`
}

// DefaultConfig is the reference script's default model: 32×32 single
// channel images, patch 4, width 256, 6 blocks of 4 heads, 10 classes.
func DefaultConfig() Config {
	return Config{InputSize: 32, PatchSize: 4, InChannels: 1, HiddenSize: 256, Depth: 6,
		NumHeads: 4, MLPRatio: 4, NumClasses: 10, Prediction: Velocity}
}

// IsConfig reports whether a config.json describes an image DiT: it names
// the patch size and input size, and has no text encoder (t2i) or
// vocabulary (decoders). ParseConfig alone fills missing fields from
// DefaultConfig, so it accepts other models' configs too.
func IsConfig(raw []byte) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return false
	}
	_, patch := keys["patch_size"]
	_, size := keys["input_size"]
	_, text := keys["text_encoder"]
	_, vocab := keys["vocab_size"]
	return patch && size && !text && !vocab
}

// ParseConfig reads a config.json over DefaultConfig and validates it.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("dit config: %w", err)
	}
	if cfg.Prediction == "" {
		cfg.Prediction = Velocity
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every inconsistency of c in one error.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range []struct {
		name string
		v    int
	}{{"input_size", c.InputSize}, {"patch_size", c.PatchSize}, {"in_channels", c.InChannels},
		{"hidden_size", c.HiddenSize}, {"depth", c.Depth}, {"num_heads", c.NumHeads}} {
		if f.v < 1 {
			bad("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.NumClasses < 0 {
		bad("num_classes must not be negative, got %d", c.NumClasses)
	}
	if c.PatchSize > 0 && c.InputSize%c.PatchSize != 0 {
		bad("input_size %d is not a multiple of patch_size %d", c.InputSize, c.PatchSize)
	}
	if c.NumHeads > 0 && c.HiddenSize%c.NumHeads != 0 {
		bad("hidden_size %d is not divisible by num_heads %d", c.HiddenSize, c.NumHeads)
	}
	if c.HiddenSize%4 != 0 {
		bad("hidden_size %d must be a multiple of 4 (2-d sin-cos position embedding)", c.HiddenSize)
	}
	if !(c.MLPRatio > 0) || c.MLPHidden() < 1 {
		bad("mlp_ratio must give a positive MLP width, got %v", c.MLPRatio)
	}
	if c.Prediction != "" && c.Prediction != Velocity && c.Prediction != Epsilon {
		bad("prediction must be %q or %q, got %q", Velocity, Epsilon, c.Prediction)
	}
	if len(errs) > 0 {
		return fmt.Errorf("dit config: %w", errors.Join(errs...))
	}
	return nil
}

// MLPHidden is the MLP's inner width, int(hidden·ratio) as in the reference.
func (c Config) MLPHidden() int { return int(float64(c.HiddenSize) * c.MLPRatio) }

// OutChannels is InChannels, doubled when LearnSigma.
func (c Config) OutChannels() int {
	if c.LearnSigma {
		return 2 * c.InChannels
	}
	return c.InChannels
}

// Grid is the number of patches along each side.
func (c Config) Grid() int { return c.InputSize / c.PatchSize }

// Tokens is the sequence length, Grid².
func (c Config) Tokens() int { return c.Grid() * c.Grid() }

// PredictsEpsilon reports whether the network predicts noise rather than
// velocity.
func (c Config) PredictsEpsilon() bool { return c.Prediction == Epsilon }
