package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"tessera/internal/simd"
	"tessera/llama"
	"tessera/tensor"
)

// LlamaOptions configures Llama.
type LlamaOptions struct {
	// Configs are the models to measure, by name; empty means the peer's
	// default config ("default") and the 27M config ("27m").
	Configs []NamedLlamaConfig
	Prompt  int   // prompt tokens, prefilled in one pass (default 64)
	New     int   // greedily decoded tokens at batch 1 (default 128)
	Threads int   // worker threads, and the peer's torch threads (default 2)
	Rounds  int   // interleaved Tessera/peer rounds (default 2)
	Reps    int   // generations per round; the median is kept (default 3)
	Peer    *Peer // nil: Tessera only
}

// NamedLlamaConfig is a model configuration with a label.
type NamedLlamaConfig struct {
	Name   string
	Config llama.Config
}

// LlamaResult is one model's decoding speed against the peer. Each side
// reports the median over its repetitions in a round, and the best round.
type LlamaResult struct {
	Name    string       `json:"name"`
	Config  llama.Config `json:"config"`
	Params  int          `json:"params"`
	Threads int          `json:"threads"`
	Kernel  string       `json:"kernel"`
	Prompt  int          `json:"prompt"`
	New     int          `json:"new"`

	DecodeTokensPerS     float64 `json:"decode_tokens_per_s"`
	PeerDecodeTokensPerS float64 `json:"peer_decode_tokens_per_s,omitempty"`
	DecodeRatio          float64 `json:"decode_ratio,omitempty"`
	// DecodeWeightGBPerS is the rate at which Tessera's decoding streams
	// the weights (llama.Config.DecodeWeightBytes per token), to hold
	// against the machine's memory bandwidth.
	DecodeWeightGBPerS float64 `json:"decode_weight_gb_per_s"`

	PrefillTokensPerS     float64 `json:"prefill_tokens_per_s"`
	PeerPrefillTokensPerS float64 `json:"peer_prefill_tokens_per_s,omitempty"`
	PrefillRatio          float64 `json:"prefill_ratio,omitempty"`

	Rounds        int  `json:"rounds"`
	PeerAvailable bool `json:"peer_available"`
}

// DefaultLlamaConfigs are the models Llama measures by default.
func DefaultLlamaConfigs() []NamedLlamaConfig {
	return []NamedLlamaConfig{{"default", llama.DefaultConfig()}, {"27m", llama.Config27M()}}
}

// Llama measures batch-1 greedy decoding and prompt prefill of randomly
// initialised decoders, interleaved round by round with the PyTorch peer
// (llama.py bench) on the same config, prompt and token counts.
func Llama(o LlamaOptions) ([]LlamaResult, error) {
	if len(o.Configs) == 0 {
		o.Configs = DefaultLlamaConfigs()
	}
	o.Prompt, o.New = cmpOr(o.Prompt, 64), cmpOr(o.New, 128)
	o.Threads, o.Rounds, o.Reps = cmpOr(o.Threads, 2), cmpOr(o.Rounds, 2), cmpOr(o.Reps, 3)
	var out []LlamaResult
	for _, nc := range o.Configs {
		r, err := llamaOne(nc, o)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

func llamaOne(nc NamedLlamaConfig, o LlamaOptions) (*LlamaResult, error) {
	cfg := nc.Config
	m, err := llama.New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, fmt.Errorf("bench llama %s: %w", nc.Name, err)
	}
	cache, err := m.NewCache(o.Prompt + o.New)
	if err != nil {
		return nil, fmt.Errorf("bench llama %s: %w", nc.Name, err)
	}
	rng := tensor.NewRNG(1)
	prompt := make([]int, o.Prompt)
	for i := range prompt {
		prompt[i] = rng.Intn(cfg.VocabSize)
	}
	var cfgPath string
	if o.Peer != nil {
		dir, err := os.MkdirTemp("", "tessera-bench-llama")
		if err != nil {
			return nil, fmt.Errorf("bench llama: %w", err)
		}
		defer os.RemoveAll(dir)
		b, err := llama.MarshalConfig(cfg)
		if err != nil {
			return nil, err
		}
		cfgPath = filepath.Join(dir, "config.json")
		if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
			return nil, fmt.Errorf("bench llama: %w", err)
		}
	}
	res := &LlamaResult{Name: nc.Name, Config: cfg, Params: cfg.Params(), Threads: o.Threads,
		Kernel: simd.Current().String(), Prompt: o.Prompt, New: o.New, Rounds: o.Rounds}
	var genErr error
	generate := func() (prefill, decode time.Duration) {
		cache.Reset()
		t0 := time.Now()
		logits, err := cache.Prefill(prompt)
		t1 := time.Now()
		for i := 0; i < o.New && err == nil; i++ {
			logits, err = cache.Decode(llama.Argmax(logits))
		}
		if err != nil {
			genErr = err
		}
		return t1.Sub(t0), time.Since(t1)
	}
	for round := 0; round < o.Rounds; round++ {
		withThreads(o.Threads, func() {
			generate() // warm-up
			pre, dec := make([]float64, o.Reps), make([]float64, o.Reps)
			for i := range o.Reps {
				p, d := generate()
				pre[i], dec[i] = p.Seconds(), d.Seconds()
			}
			res.PrefillTokensPerS = max(res.PrefillTokensPerS, float64(o.Prompt)/median(pre))
			res.DecodeTokensPerS = max(res.DecodeTokensPerS, float64(o.New)/median(dec))
		})
		if genErr != nil {
			return nil, fmt.Errorf("bench llama %s: %w", nc.Name, genErr)
		}
		if o.Peer != nil {
			p, err := o.Peer.llamaBench(cfgPath, o.Prompt, o.New, o.Threads, o.Reps)
			if err != nil {
				return nil, err
			}
			res.PeerAvailable = true
			res.PeerPrefillTokensPerS = max(res.PeerPrefillTokensPerS, p.Prefill)
			res.PeerDecodeTokensPerS = max(res.PeerDecodeTokensPerS, p.Decode)
		}
	}
	res.DecodeWeightGBPerS = res.DecodeTokensPerS * float64(cfg.DecodeWeightBytes()) / 1e9
	if res.PeerDecodeTokensPerS > 0 {
		res.DecodeRatio = res.DecodeTokensPerS / res.PeerDecodeTokensPerS
	}
	if res.PeerPrefillTokensPerS > 0 {
		res.PrefillRatio = res.PrefillTokensPerS / res.PeerPrefillTokensPerS
	}
	return res, nil
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

type peerLlama struct {
	Prefill float64 `json:"prefill_tokens_per_s"`
	Decode  float64 `json:"decode_tokens_per_s"`
}

func (p *Peer) llamaBench(cfgPath string, prompt, newTokens, threads, reps int) (*peerLlama, error) {
	out, err := p.Run("llama.py", "bench", "--config", cfgPath, "--prompt", strconv.Itoa(prompt),
		"--new", strconv.Itoa(newTokens), "--threads", strconv.Itoa(threads), "--reps", strconv.Itoa(reps))
	if err != nil {
		return nil, err
	}
	var r peerLlama
	if err := json.Unmarshal(lastLine(out), &r); err != nil || r.Decode <= 0 {
		return nil, fmt.Errorf("peer llama.py bench: no result in its output %q", out)
	}
	return &r, nil
}
