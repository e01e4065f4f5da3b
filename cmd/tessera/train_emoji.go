package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"tessera/data"
	"tessera/eval"
	"tessera/flexidit"
	"tessera/imagefile"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/models"
	"tessera/t2i"
	"tessera/tensor"
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
	fit := make([]string, len(prompts))
	for i, p := range prompts {
		fit[i] = m.Config.Text.Fit(p) // names longer than the encoder reads, cut as in training
	}
	imgs, _, err := t2i.Generate(m, fit, t2i.GenerateOptions{Seed: 1, Steps: 32, CFG: 4,
		Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		return err
	}
	return imagefile.WriteGrid(path, imgs, 8, 2)
}

func init() {
	trainers["emoji-scorer"] = trainEmojiScorer
	register(&command{name: "eval-emoji", summary: "FID and prompt alignment of a text-to-image emoji model", run: evalEmoji})
}

func trainEmojiScorer(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train emoji-scorer", "[flags]", `Trains the contrastive image-text scorer used to evaluate emoji models: a small
CNN image encoder and a byte-level text encoder, CLIP-style (symmetric InfoNCE,
distinct emoji per batch) on the training split only. Reports top-1 caption
retrieval among 31 distractors on real images (the ceiling for generated ones)
and writes config.json and model.safetensors to --out.`, stderr)
	dataDir := fs.String("data", "", "emoji data folder (default: $TESSERA_EMOJI or ../shared/data/emoji)")
	out := fs.String("out", "emoji-scorer", "output folder")
	steps := fs.Int("steps", 1500, "optimiser steps")
	batch := fs.Int("batch", 128, "distinct emoji per step")
	lr := fs.Float64("lr", 1e-3, "peak learning rate")
	seed := fs.Uint64("seed", 0, "random seed")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *steps < 1 || *batch < 2 || *lr <= 0 {
		return usagef("--steps and --lr must be positive and --batch at least 2")
	}
	setThreads(*threads)
	cfg := t2i.DefaultScorerConfig()
	trainSet, err := data.LoadEmoji(*dataDir, data.Train, cfg.InputSize)
	if err != nil {
		return err
	}
	heldSet, err := data.LoadEmoji(*dataDir, data.HeldOut, cfg.InputSize)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	s, res, err := t2i.TrainScorer(ctx, trainSet, t2i.ScorerOptions{Config: cfg, Steps: *steps, Batch: *batch, LR: float32(*lr), Seed: *seed,
		Progress: progress.Options{Out: stderr, Label: "train emoji-scorer"}})
	if err != nil {
		return err
	}
	if err := s.Save(*out); err != nil {
		return err
	}
	names, index := emojiNames(trainSet, heldSet)
	real := func(set *data.EmojiSet) (float64, error) {
		imgs, truth := emojiReal(set, index, len(set.Emoji))
		return s.Retrieval(imgs, truth, names, emojiDistractors, 7)
	}
	accTrain, err := real(trainSet)
	if err != nil {
		return err
	}
	accHeld, err := real(heldSet)
	if err != nil {
		return err
	}
	summary := map[string]any{"out": *out, "steps": res.Steps, "final_loss": res.MeanLoss,
		"retrieval_real_train": accTrain, "retrieval_real_heldout": accHeld, "distractors": emojiDistractors}
	if *asJSON {
		return writeJSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "caption retrieval among %d distractors: train images %.3f, held-out images %.3f; wrote %s\n",
		emojiDistractors, accTrain, accHeld, *out)
	return nil
}

// emojiDistractors is the number of wrong captions each image's caption
// competes with in the retrieval measure (chance 1/32).
const emojiDistractors = 31

// emojiNames lists every emoji name of both splits (the caption pool of
// the retrieval measure) and each name's index.
func emojiNames(sets ...*data.EmojiSet) ([]string, map[string]int) {
	var names []string
	index := map[string]int{}
	for _, s := range sets {
		for k := range s.Emoji {
			n := s.Prompt(k)
			if _, ok := index[n]; !ok {
				index[n] = len(names)
				names = append(names, n)
			}
		}
	}
	return names, index
}

// emojiReal returns the real images (both styles) of n emoji spread evenly
// over set, with each image's caption index.
func emojiReal(set *data.EmojiSet, index map[string]int, n int) ([]*tensor.Tensor, []int) {
	var imgs []*tensor.Tensor
	var truth []int
	pick := map[int]bool{}
	for i := 0; i < n; i++ {
		pick[i*len(set.Emoji)/n] = true
	}
	sz := set.Size
	for i := 0; i < set.Len(); i++ {
		if !pick[set.EmojiOf(i)] {
			continue
		}
		t := tensor.New(3, sz, sz)
		set.Example(i, t.Data())
		imgs = append(imgs, t)
		truth = append(truth, index[set.Prompt(set.EmojiOf(i))])
	}
	return imgs, truth
}

func evalEmoji(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval-emoji", "[flags]", `Evaluates a text-to-image emoji model with a scorer from 'tessera train
emoji-scorer'. For every held-out emoji and as many seen ones it generates one
image per style-count (2 per emoji, different seeds) from the emoji's name and
reports: FID on the scorer's image embeddings against the real images of the
same emoji, with the real-vs-real floor (seen real images against held-out
real images, same n); and top-1 caption retrieval among 31 distractors for
generated and real images. With --cache the images are generated with block
caching, with --flex with FlexiDiT's weak patch size on the first steps (the
held-out run's hits, schedule and FLOPs are in --json).`, stderr)
	dataDir := fs.String("data", "", "emoji data folder (default: $TESSERA_EMOJI or ../shared/data/emoji)")
	modelDir := fs.String("model", "emoji", "embedded model name or model folder (config.json, model.safetensors)")
	scorerDir := fs.String("scorer", "emoji-scorer", "embedded scorer name or scorer folder")
	steps := fs.Int("steps", 32, "sampling steps")
	sampler := fs.String("sampler", "euler", "sampler: euler, heun, dpm++2m")
	cfgScale := fs.Float64("cfg", 4, "guidance weight")
	seed := fs.Uint64("seed", 0, "random seed")
	grid := fs.String("grid", "", "write a grid of generated (left) and real (right) pairs, seen prompts first, to this PNG")
	cacheSpec := fs.String("cache", "off", "block caching, as for generate: off, ss[:d], plan[:d], res[:d], res-plan[:d], fc[:d], fc-plan[:d], dynamic[:threshold]; calibrated on 64 training-split emoji names")
	cacheDir := fs.String("cache-dir", "", "where block-cache profiles and plans are stored (default: $TESSERA_CACHE_DIR or the user cache folder)")
	flexSpec := fs.String("flex", "", "FlexiDiT: number of weak-patch steps T_weak, optionally ,reverse or ,weak-guidance (needs --flex-model)")
	flexModel := fs.String("flex-model", "", "flexified model for --flex: a folder written by 'tessera flexify --model emoji' (or an embedded name)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	var flexOpt *imagegen.FlexOptions
	if *flexSpec != "" {
		f, err := imagegen.ParseFlex(*flexSpec)
		if err != nil {
			return usagef("%v", err)
		}
		if *flexModel == "" {
			return usagef("--flex needs --flex-model, the flexified model")
		}
		flexOpt = &f
	}
	copts, err := imagegen.ParseCache(*cacheSpec)
	if err != nil {
		return usagef("%v", err)
	}
	copts.Dir = *cacheDir
	copts.Log = func(msg string) { fmt.Fprintln(stderr, msg) }
	setThreads(*threads)
	mfs, err := models.Open(*modelDir)
	if err != nil {
		return err
	}
	m, err := t2i.LoadFS(mfs)
	if err != nil {
		return fmt.Errorf("model %s: %w", *modelDir, err)
	}
	if flexOpt != nil {
		if flexOpt.Model, err = flexidit.Open(m.DiT, *flexModel); err != nil {
			return fmt.Errorf("--flex-model %s: %w", *flexModel, err)
		}
	}
	sfs, err := models.Open(*scorerDir)
	if err != nil {
		return err
	}
	s, err := t2i.LoadScorerFS(sfs)
	if err != nil {
		return fmt.Errorf("scorer %s: %w", *scorerDir, err)
	}
	size := m.Config.InputSize
	trainSet, err := data.LoadEmoji(*dataDir, data.Train, size)
	if err != nil {
		return err
	}
	heldSet, err := data.LoadEmoji(*dataDir, data.HeldOut, size)
	if err != nil {
		return err
	}
	names, index := emojiNames(trainSet, heldSet)
	nEmoji := len(heldSet.Emoji)
	realHeld, truthHeld := emojiReal(heldSet, index, nEmoji)
	realSeen, truthSeen := emojiReal(trainSet, index, nEmoji)
	// Calibration for a scheduled cache: 64 training-split names spread
	// over the set, none of them an evaluation prompt's emoji.
	calib := trainSet.SpreadPrompts(64)
	for i, p := range calib {
		calib[i] = m.Config.Text.Fit(p)
	}
	gen := func(truth []int, seed uint64) ([]*tensor.Tensor, imagegen.AccelStats, error) {
		prompts := make([]string, len(truth))
		for i, k := range truth {
			// A name longer than the text encoder reads is cut as in
			// training (the scorer's captions keep the whole name).
			prompts[i] = m.Config.Text.Fit(names[k])
		}
		return t2i.GenerateAccel(m, prompts, t2i.GenerateOptions{Seed: seed, Steps: *steps, Sampler: *sampler, CFG: *cfgScale,
			Cache: copts, CalibrationPrompts: calib, Flex: flexOpt, Progress: progress.Options{Out: stderr, Label: "generate"}})
	}
	genHeld, stHeld, err := gen(truthHeld, *seed)
	if err != nil {
		return err
	}
	genSeen, _, err := gen(truthSeen, *seed+1)
	if err != nil {
		return err
	}
	fid := func(a, b []*tensor.Tensor) (float64, error) {
		fa, err := eval.NewFeatures(s.ImageEmbeddings(a))
		if err != nil {
			return 0, err
		}
		fb, err := eval.NewFeatures(s.ImageEmbeddings(b))
		if err != nil {
			return 0, err
		}
		return eval.FID(fa, fb)
	}
	res := map[string]any{"n": len(genHeld), "heldout_emoji": nEmoji, "steps": *steps, "sampler": *sampler, "cfg": *cfgScale,
		"distractors": emojiDistractors, "generate_wall_seconds": stHeld.WallSeconds, "network_evals": stHeld.NetworkEvals, "flops": stHeld.FLOPs}
	if stHeld.Cache != nil {
		res["cache"] = stHeld.Cache
	}
	if stHeld.Flex != nil {
		res["flex"] = stHeld.Flex
	}
	for _, f := range []struct {
		key  string
		a, b []*tensor.Tensor
	}{{"fid_heldout", genHeld, realHeld}, {"fid_floor_heldout", realSeen, realHeld}, {"fid_seen", genSeen, realSeen}} {
		v, err := fid(f.a, f.b)
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		res[f.key] = v
	}
	for _, r := range []struct {
		key   string
		imgs  []*tensor.Tensor
		truth []int
	}{{"retrieval_generated_heldout", genHeld, truthHeld}, {"retrieval_generated_seen", genSeen, truthSeen},
		{"retrieval_real_heldout", realHeld, truthHeld}, {"retrieval_real_seen", realSeen, truthSeen}} {
		v, err := s.Retrieval(r.imgs, r.truth, names, emojiDistractors, 7)
		if err != nil {
			return fmt.Errorf("%s: %w", r.key, err)
		}
		res[r.key] = v
	}
	if *grid != "" {
		// 24 seen then 16 held-out emoji, generated image beside a real one.
		var tiles []*tensor.Tensor
		for i := 0; i < 24 && 2*i < len(genSeen); i++ {
			j := 2 * (i * (len(genSeen) / 2) / 24)
			tiles = append(tiles, genSeen[j], realSeen[j])
		}
		for i := 0; i < 16 && 2*i < len(genHeld); i++ {
			j := 2 * (i * (len(genHeld) / 2) / 16)
			tiles = append(tiles, genHeld[j], realHeld[j])
		}
		if err := imagefile.WriteGrid(*grid, tiles, 8, 2); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "FID held-out %.3f (floor %.3f, n=%d), seen %.3f; retrieval@%d generated held-out %.3f, seen %.3f; real held-out %.3f, seen %.3f\n",
		res["fid_heldout"], res["fid_floor_heldout"], len(genHeld), res["fid_seen"], emojiDistractors+1,
		res["retrieval_generated_heldout"], res["retrieval_generated_seen"], res["retrieval_real_heldout"], res["retrieval_real_seen"])
	return nil
}
