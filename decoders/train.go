// Package decoders is the training recipe of Tessera's shipped Llama-style
// decoders (a target and a cheaper draft on the arithmetic corpus, and a
// pair on tinyshakespeare) and of the judge head that Judge Decoding puts on
// the target: next-token cross-entropy through llama.Model.Loss, AdamW with
// a warmup-cosine schedule, gradient clipping, and the train loop's progress
// bar and resumable checkpoints.
package decoders

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"

	"tessera/autodiff"
	"tessera/corpus"
	"tessera/internal/atomicfile"
	"tessera/internal/progress"
	"tessera/llama"
	"tessera/nn"
	"tessera/optim"
	"tessera/safetensors"
	"tessera/tensor"
	"tessera/tokenizer"
	"tessera/train"
)

// Source yields training batches: rows token sequences of equal length,
// drawn deterministically from seed (the loop takes seeds from its
// checkpointed RNG, so a resumed run sees the same batches).
type Source interface {
	Batch(seed uint64, rows, n int) [][]int
}

// ArithSource is the arithmetic corpus in one phrasing mix.
type ArithSource struct{ Split corpus.Split }

// Batch implements Source.
func (s ArithSource) Batch(seed uint64, rows, n int) [][]int {
	return corpus.NewGenerator(s.Split, seed).Batch(tokenizer.New(), rows, n)
}

// TextSource is random windows of a tokenised text.
type TextSource struct{ IDs []int }

// Batch implements Source.
func (s TextSource) Batch(seed uint64, rows, n int) [][]int {
	return corpus.Windows(rand.New(rand.NewPCG(seed, 0x7e47)), s.IDs, rows, n)
}

// TargetConfig is the arithmetic and text target: 6 layers of width 192
// (about 2.3M parameters) over the 264-token byte vocabulary.
func TargetConfig() llama.Config {
	return llama.Config{VocabSize: tokenizer.New().VocabSize(), HiddenSize: 192, IntermediateSize: 512, NumHiddenLayers: 6,
		NumAttentionHeads: 6, NumKeyValueHeads: 3, RMSNormEps: 1e-5, RopeTheta: 10000}
}

// DraftConfig is the draft: 2 layers of width 96, about a tenth of the
// target's FLOPs per token.
func DraftConfig() llama.Config {
	return llama.Config{VocabSize: tokenizer.New().VocabSize(), HiddenSize: 96, IntermediateSize: 256, NumHiddenLayers: 2,
		NumAttentionHeads: 3, NumKeyValueHeads: 3, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}
}

// Options configures Train.
type Options struct {
	Config llama.Config
	Steps  int     // optimiser steps
	Batch  int     // sequences per step
	SeqLen int     // tokens per sequence
	LR     float32 // peak learning rate (warmup, then cosine to LR/10)
	Warmup int     // warmup steps (default Steps/20)
	Seed   uint64
	// CheckpointDir, when set, holds resumable checkpoints written every
	// CheckpointEvery steps (default 200); a run resumes from the newest.
	CheckpointDir   string
	CheckpointEvery int
	// Eval, when set, runs every EvalEvery steps (e.g. held-out loss) and
	// its result is shown in the progress line.
	Eval      func(m *llama.Model) (string, float64, error)
	EvalEvery int
	Progress  progress.Options
	// Init, when set, is a trained model of the same configuration whose
	// weights the run starts from (fine-tuning) instead of a random
	// initialisation; Init itself is not changed.
	Init *llama.Model
}

// Train fits a new decoder to src and returns it with the loop's result.
func Train(ctx context.Context, src Source, o Options) (*llama.Model, train.Result, error) {
	if o.Steps < 1 || o.Batch < 1 || o.SeqLen < 2 || !(o.LR > 0) {
		return nil, train.Result{}, fmt.Errorf("decoders: steps %d, batch %d, seq-len %d and lr %g must be positive (seq-len at least 2)",
			o.Steps, o.Batch, o.SeqLen, o.LR)
	}
	if o.Warmup == 0 {
		o.Warmup = max(1, o.Steps/20)
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 200
	}
	rng := tensor.NewRNG(o.Seed)
	model, err := llama.New(o.Config, rng)
	if err != nil {
		return nil, train.Result{}, fmt.Errorf("decoders: %w", err)
	}
	if o.Init != nil {
		if err := copyWeights(model, o.Init); err != nil {
			return nil, train.Result{}, err
		}
	}
	params := nn.Trainable(model)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR, Beta2: 0.98, WeightDecay: 0.05, DecayMatricesOnly: true})
	step := func(int) (float32, error) {
		batch := src.Batch(rng.Uint64(), o.Batch, o.SeqLen+1)
		g := autodiff.NewGraph()
		defer g.Release()
		loss, err := model.Loss(g, batch)
		if err != nil {
			return 0, err
		}
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	bar := o.Progress
	loop := &train.Loop{
		Steps:     o.Steps,
		Step:      step,
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: o.LR, Final: o.LR / 10, Warmup: o.Warmup, Total: o.Steps},
		ClipNorm:  1,
		Params:    params,
		Progress:  bar,
	}
	if o.Eval != nil && o.EvalEvery > 0 {
		loop.Callbacks = append(loop.Callbacks, train.Callback{Name: "eval", Every: o.EvalEvery, AtEnd: true, Fn: func(done int) error {
			name, v, err := o.Eval(model)
			if err != nil {
				return err
			}
			w := bar.Out
			if w != nil && bar.Mode != progress.Silent {
				fmt.Fprintf(w, "step %d: %s %.4f\n", done, name, v)
			}
			return nil
		}})
	}
	if o.CheckpointDir != "" {
		loop.Checkpoint = &train.Checkpointer{Dir: o.CheckpointDir, KeepLast: 2, Model: model, Optimizer: opt, RNG: rng,
			User: map[string]string{"batch": strconv.Itoa(o.Batch), "steps": strconv.Itoa(o.Steps), "seq_len": strconv.Itoa(o.SeqLen)}}
		loop.CheckpointEvery = o.CheckpointEvery
	}
	res, err := loop.Run(ctx)
	if err != nil {
		return nil, res, fmt.Errorf("decoders: %w", err)
	}
	return model, res, nil
}

// copyWeights sets every parameter of dst to the value of the parameter
// of the same name in src; the two must have the same shapes.
func copyWeights(dst, src *llama.Model) error {
	from := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParams(src) {
		from[p.Name] = p.Var.Value
	}
	to := nn.NamedParams(dst)
	if len(to) != len(from) {
		return fmt.Errorf("decoders: init model has %d parameters, the configuration %d", len(from), len(to))
	}
	for _, p := range to {
		v, ok := from[p.Name]
		if !ok || !slices.Equal(v.Shape(), p.Var.Value.Shape()) {
			return fmt.Errorf("decoders: init model does not fit the configuration at %s", p.Name)
		}
		copy(p.Var.Value.Data(), v.Data())
	}
	return nil
}

// Loss is the mean next-token loss of m over batches of sequences (no
// gradient).
func Loss(m *llama.Model, batches [][][]int) (float64, error) {
	if len(batches) == 0 {
		return 0, errors.New("decoders: no batches")
	}
	var sum float64
	for _, b := range batches {
		loss, err := m.Loss(autodiff.NoGrad(), b)
		if err != nil {
			return 0, fmt.Errorf("decoders: loss: %w", err)
		}
		sum += float64(loss.Value.Data()[0])
	}
	return sum / float64(len(batches)), nil
}

// SaveShipped writes m as a model folder for shipping: config.json and
// float16 weights (the values the decoders use are well inside its range).
func SaveShipped(dir string, m *llama.Model) error {
	cfg, err := llama.MarshalConfig(m.Config)
	if err != nil {
		return fmt.Errorf("decoders: %w", err)
	}
	tensors := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParams(m) {
		tensors[p.Name] = p.Var.Value
	}
	if err := safetensors.Save(filepath.Join(dir, "model.safetensors"), tensors, &safetensors.SaveOptions{DType: safetensors.F16}); err != nil {
		return fmt.Errorf("decoders: save %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), cfg); err != nil {
		return fmt.Errorf("decoders: save %s: %w", dir, err)
	}
	return nil
}
