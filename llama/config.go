// Package llama is a Llama-style decoder (Hugging Face LlamaForCausalLM
// names and semantics): token embedding, pre-norm blocks of grouped-query
// attention with rotary position embeddings and a SwiGLU MLP, a final
// RMSNorm and the LM head. One definition serves training (Forward on an
// autodiff graph) and inference; a KV cache runs batched prefill and a
// GEMV-bound incremental decode that gives the same logits.
package llama

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Config holds the hyper-parameters, under the keys of Hugging Face's
// config.json for LlamaForCausalLM. Unknown keys are ignored.
type Config struct {
	VocabSize         int     `json:"vocab_size"`
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumKeyValueHeads  int     `json:"num_key_value_heads"`
	RMSNormEps        float64 `json:"rms_norm_eps"`
	RopeTheta         float64 `json:"rope_theta"`
	TieWordEmbeddings bool    `json:"tie_word_embeddings"`
}

// DefaultConfig is the reference peer's default model (about 4.4M
// parameters): vocabulary 256, hidden 256, 6 layers, 8 heads, 4 KV heads.
func DefaultConfig() Config {
	return Config{VocabSize: 256, HiddenSize: 256, IntermediateSize: 688, NumHiddenLayers: 6,
		NumAttentionHeads: 8, NumKeyValueHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000}
}

// Config27M is a 27M-parameter model: vocabulary 4096, hidden 512,
// intermediate 1376, 8 layers, 8 heads, 4 KV heads.
func Config27M() Config {
	return Config{VocabSize: 4096, HiddenSize: 512, IntermediateSize: 1376, NumHiddenLayers: 8,
		NumAttentionHeads: 8, NumKeyValueHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000}
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// KVHeads is the number of key/value heads (num_key_value_heads, or the
// number of attention heads when it is 0 as in older configs).
func (c Config) KVHeads() int {
	if c.NumKeyValueHeads == 0 {
		return c.NumAttentionHeads
	}
	return c.NumKeyValueHeads
}

// Validate reports the first inconsistency in c.
func (c Config) Validate() error {
	switch {
	case c.VocabSize <= 0:
		return fmt.Errorf("llama config: vocab_size %d must be positive", c.VocabSize)
	case c.HiddenSize <= 0 || c.IntermediateSize <= 0 || c.NumHiddenLayers <= 0:
		return fmt.Errorf("llama config: hidden_size %d, intermediate_size %d and num_hidden_layers %d must be positive",
			c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers)
	case c.NumAttentionHeads <= 0 || c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("llama config: hidden_size %d is not a positive multiple of num_attention_heads %d",
			c.HiddenSize, c.NumAttentionHeads)
	case c.HeadDim()%2 != 0:
		return fmt.Errorf("llama config: head dimension %d must be even for rotary embeddings", c.HeadDim())
	case c.NumKeyValueHeads < 0 || c.NumAttentionHeads%c.KVHeads() != 0:
		return fmt.Errorf("llama config: num_attention_heads %d is not a multiple of num_key_value_heads %d",
			c.NumAttentionHeads, c.NumKeyValueHeads)
	case !(c.RMSNormEps > 0):
		return fmt.Errorf("llama config: rms_norm_eps %g must be positive", c.RMSNormEps)
	case !(c.RopeTheta > 0):
		return fmt.Errorf("llama config: rope_theta %g must be positive", c.RopeTheta)
	}
	return nil
}

// Params is the number of parameters (the tied LM head counted once).
func (c Config) Params() int {
	d, hd := c.HiddenSize, c.HeadDim()
	attn := d*c.NumAttentionHeads*hd*2 + d*c.KVHeads()*hd*2
	mlp := 3 * d * c.IntermediateSize
	n := c.VocabSize*d + c.NumHiddenLayers*(attn+mlp+2*d) + d
	if !c.TieWordEmbeddings {
		n += c.VocabSize * d
	}
	return n
}

// DecodeWeightBytes is how many bytes of float32 weights one decoded token
// reads: every weight once, except that only one row of an untied
// embedding table is read. Batch-1 decoding is bound by streaming them.
func (c Config) DecodeWeightBytes() int {
	n := c.Params()
	if !c.TieWordEmbeddings {
		n -= (c.VocabSize - 1) * c.HiddenSize
	}
	return 4 * n
}

// ParseConfig reads a config.json. Missing keys keep the values of
// DefaultConfig (rms_norm_eps 1e-5, rope_theta 10000, …) except that an
// absent num_key_value_heads means one KV head per attention head; the
// result is validated.
func ParseConfig(r io.Reader) (Config, error) {
	c := DefaultConfig()
	c.NumKeyValueHeads = 0
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return Config{}, fmt.Errorf("llama config: %w", err)
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and validates the config.json at path.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("llama config: %w", err)
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// MarshalConfig returns c as an indented config.json document, with the
// architecture keys Hugging Face tools look for.
func MarshalConfig(c Config) ([]byte, error) {
	type hf struct {
		Config
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(hf{c, []string{"LlamaForCausalLM"}, "llama"}, "", " ")
	if err != nil {
		return nil, fmt.Errorf("llama config: %w", err)
	}
	return append(b, '\n'), nil
}
