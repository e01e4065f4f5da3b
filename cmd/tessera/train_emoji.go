package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"tessera/data"
	"tessera/imagefile"
	"tessera/internal/progress"
	"tessera/t2i"
)

func init() {
	trainers["emoji"] = trainEmoji
}

func trainEmoji(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train emoji", "[flags]", `Trains the text-to-image emoji model: a DiT conditioned by pooled adaLN on a
small text encoder trained jointly from scratch, on the Twemoji and Noto emoji
of ../shared/data/emoji at 32x32 (5% of emoji held out), with flow matching,
10% caption dropout for guidance, AdamW and an EMA of weights. Writes the EMA
model (config.json, float16 model.safetensors) and samples.png to --out. With
--checkpoints the run saves resumable state every --checkpoint-every steps and
resumes from the newest checkpoint there; Ctrl-C saves before stopping.`, stderr)
	dataDir := fs.String("data", "", "emoji data folder (default: $TESSERA_EMOJI or ../shared/data/emoji)")
	configPath := fs.String("config", "", "t2i config.json (default: 32x32, patch 4, hidden 256, depth 6, 2-layer text encoder)")
	hidden := fs.Int("hidden", 0, "DiT width (overrides the config; the text encoder's output follows)")
	depth := fs.Int("depth", 0, "DiT blocks (overrides the config)")
	patch := fs.Int("patch", 0, "patch size (overrides the config)")
	out := fs.String("out", "models/emoji", "output folder for the trained model")
	ckpt := fs.String("checkpoints", "", "folder for resumable checkpoints (default: none)")
	ckptEvery := fs.Int("checkpoint-every", 500, "steps between checkpoints")
	steps := fs.Int("steps", 6000, "optimiser steps")
	batch := fs.Int("batch", 64, "images per step")
	lr := fs.Float64("lr", 5e-4, "peak learning rate")
	seed := fs.Uint64("seed", 0, "random seed")
	emaDecay := fs.Float64("ema", 0.999, "EMA decay of the weights (lower for short runs)")
	sampleEvery := fs.Int("sample-every", 0, "write a sample grid to --out/progress-STEP.png every N steps (0: never)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *steps < 1 || *batch < 1 || *lr <= 0 || *ckptEvery < 1 || !(*emaDecay > 0 && *emaDecay < 1) {
		return usagef("--steps, --batch, --lr and --checkpoint-every must be positive and --ema in (0, 1)")
	}
	setThreads(*threads)
	cfg := t2i.DefaultConfig()
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return err
		}
		if cfg, err = t2i.ParseConfig(raw); err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	if *hidden > 0 {
		cfg.HiddenSize, cfg.Text.OutDim = *hidden, *hidden
	}
	if *depth > 0 {
		cfg.Depth = *depth
	}
	if *patch > 0 {
		cfg.PatchSize = *patch
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	trainSet, err := data.LoadEmoji(*dataDir, data.Train, cfg.InputSize)
	if err != nil {
		return err
	}
	heldSet, err := data.LoadEmoji(*dataDir, data.HeldOut, cfg.InputSize)
	if err != nil {
		return err
	}
	prompts := emojiGridPrompts(trainSet, heldSet)
	ctx, stop := signalContext()
	defer stop()
	opts := t2i.TrainOptions{Config: cfg, Steps: *steps, Batch: *batch, LR: float32(*lr), Seed: *seed, EMADecay: float32(*emaDecay),
		CheckpointDir: *ckpt, CheckpointEvery: *ckptEvery, Progress: progress.Options{Out: stderr, Label: "train emoji"}}
	if *sampleEvery > 0 {
		opts.SnapshotEvery = *sampleEvery
		opts.Snapshot = func(m *t2i.Model, done int) error {
			if err := os.MkdirAll(*out, 0o755); err != nil {
				return err
			}
			return emojiGrid(m, prompts, filepath.Join(*out, fmt.Sprintf("progress-%06d.png", done)))
		}
	}
	res, err := t2i.Train(ctx, trainSet, opts)
	if err != nil {
		return err
	}
	model := res.Model
	if err := model.Save(*out, false); err != nil {
		return err
	}
	if err := emojiGrid(model, prompts, filepath.Join(*out, "samples.png")); err != nil {
		return err
	}
	summary := map[string]any{"out": *out, "steps": res.Result.Steps, "batch": *batch, "final_loss": res.Result.MeanLoss,
		"wall_seconds": res.Result.Duration.Seconds(), "params": model.NumParams(),
		"train_images": trainSet.Len(), "train_emoji": len(trainSet.Emoji), "heldout_emoji": len(heldSet.Emoji)}
	if *asJSON {
		return writeJSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "trained %d steps (loss %.4f) in %s; wrote %s\n", res.Result.Steps, res.Result.MeanLoss, res.Result.Duration.Round(1e9), *out)
	return nil
}

// emojiGridPrompts picks the sample grid's prompts: 24 seen emoji names
// spread over the training set, then 16 held-out ones.
func emojiGridPrompts(seen, held *data.EmojiSet) []string {
	var p []string
	for i := 0; i < 24; i++ {
		p = append(p, seen.Prompt(i*len(seen.Emoji)/24))
	}
	for i := 0; i < min(16, len(held.Emoji)); i++ {
		p = append(p, held.Prompt(i*len(held.Emoji)/min(16, len(held.Emoji))))
	}
	return p
}

// emojiGrid writes 8-column grid of 32-step Euler samples with guidance 4,
// one per prompt.
func emojiGrid(m *t2i.Model, prompts []string, path string) error {
	imgs, _, err := t2i.Generate(m, prompts, t2i.GenerateOptions{Seed: 1, Steps: 32, CFG: 4,
		Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		return err
	}
	return imagefile.WriteGrid(path, imgs, 8, 2)
}
