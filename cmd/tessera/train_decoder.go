package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"tessera/corpus"
	"tessera/decoders"
	"tessera/internal/progress"
	"tessera/llama"
)

func init() {
	trainers["decoder"] = trainDecoder
	trainers["judge"] = trainJudge
}

func trainDecoder(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train decoder", "--corpus C --out DIR [flags]", `Trains a Llama-style decoder with next-token cross-entropy (AdamW,
warmup-cosine, gradient clipping) on one of the built-in corpora and writes
config.json and float16 model.safetensors to --out.

Corpora:
  arith-target  arithmetic problems in the target's phrasing mix
  arith-draft   the same problems in the draft's phrasing mix
  shakespeare   tinyshakespeare (read from --data)

--config is a config.json, or "target" / "draft" for the built-in sizes
(6 layers of 192 / 2 layers of 96). With --checkpoints the run saves
resumable state every --checkpoint-every steps and resumes from the newest
checkpoint there; Ctrl-C saves before stopping. --init fine-tunes a trained
model instead of starting from random weights.`, stderr)
	corpusName := fs.String("corpus", "", "training corpus: arith-target, arith-draft or shakespeare (required)")
	configRef := fs.String("config", "target", `model config: "target", "draft" or a config.json path`)
	out := fs.String("out", "", "output folder for the trained model (required)")
	ckpt := fs.String("checkpoints", "", "folder for resumable checkpoints (default: none)")
	ckptEvery := fs.Int("checkpoint-every", 200, "steps between checkpoints")
	steps := fs.Int("steps", 2000, "optimiser steps")
	batch := fs.Int("batch", 32, "sequences per step")
	seqLen := fs.Int("seq-len", 128, "tokens per sequence")
	lr := fs.Float64("lr", 2e-3, "peak learning rate")
	seed := fs.Uint64("seed", 0, "random seed")
	dataDir := fs.String("data", "", "folder holding tinyshakespeare.txt (default: ../shared/data/text)")
	evalN := fs.Int("eval", 200, "held-out problems (arith) for the final accuracy")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	initRef := fs.String("init", "", "start from this trained model (embedded name or folder) instead of random weights; its config is used")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case *steps < 1 || *batch < 1 || *lr <= 0 || *ckptEvery < 1 || *evalN < 0:
		return usagef("--steps, --batch, --lr and --checkpoint-every must be positive")
	case *seqLen < 8:
		return usagef("--seq-len must be at least 8 (have %d)", *seqLen)
	}
	var cfg llama.Config
	switch *configRef {
	case "target":
		cfg = decoders.TargetConfig()
	case "draft":
		cfg = decoders.DraftConfig()
	default:
		c, err := llama.LoadConfig(*configRef)
		if err != nil {
			return err
		}
		cfg = c
	}
	var init *llama.Model
	if *initRef != "" {
		m, err := loadDecoder(*initRef)
		if err != nil {
			return err
		}
		init, cfg = m, m.Config
	}
	var src decoders.Source
	var valid [][][]int
	switch *corpusName {
	case "arith-target", "arith-draft":
		split, _ := corpus.ParseSplit(*corpusName)
		src = decoders.ArithSource{Split: split}
	case "shakespeare":
		text, err := corpus.LoadShakespeare(*dataDir)
		if err != nil {
			return err
		}
		src = decoders.TextSource{IDs: text.Train}
		vs := decoders.TextSource{IDs: text.Valid}
		for i := range 4 {
			valid = append(valid, vs.Batch(uint64(i), 16, *seqLen+1))
		}
	case "":
		return usagef("--corpus is required")
	default:
		return usagef("unknown --corpus %q (want arith-target, arith-draft or shakespeare)", *corpusName)
	}
	if cfg.VocabSize < 264 {
		return usagef("config vocab_size %d is smaller than the tokenizer's 264", cfg.VocabSize)
	}
	setThreads(*threads)
	ctx, stop := signalContext()
	defer stop()
	opts := decoders.Options{Config: cfg, Steps: *steps, Batch: *batch, SeqLen: *seqLen, LR: float32(*lr), Seed: *seed,
		CheckpointDir: *ckpt, CheckpointEvery: *ckptEvery, Progress: progress.Options{Out: stderr, Label: "train decoder"}, Init: init}
	if valid != nil {
		opts.EvalEvery = max(*steps/5, 1)
		opts.Eval = func(m *llama.Model) (string, float64, error) {
			l, err := decoders.Loss(m, valid)
			return "validation loss", l, err
		}
	}
	began := time.Now()
	m, res, err := decoders.Train(ctx, src, opts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := decoders.SaveShipped(*out, m); err != nil {
		return err
	}
	summary := map[string]any{"out": *out, "corpus": *corpusName, "steps": res.Steps, "batch": *batch, "seq_len": *seqLen,
		"params": cfg.Params(), "flops_per_token": cfg.FLOPsPerToken(64),
		"wall_seconds": time.Since(began).Seconds()}
	if !math.IsNaN(res.MeanLoss) { // NaN when a resumed run had no steps left
		summary["final_loss"] = res.MeanLoss
	}
	if valid != nil {
		l, err := decoders.Loss(m, valid)
		if err != nil {
			return err
		}
		summary["validation_loss"] = l
	} else if *evalN > 0 {
		split, _ := corpus.ParseSplit(*corpusName)
		heldAcc, _, err := decoders.Accuracy(m, corpus.NewGenerator(corpus.HeldOut, 1).Problems(*evalN))
		if err != nil {
			return err
		}
		oodAcc, _, err := decoders.Accuracy(m, corpus.NewGenerator(corpus.OutOfDomain, 1).Problems(*evalN))
		if err != nil {
			return err
		}
		summary["heldout_accuracy"], summary["ood_accuracy"], summary["mix"] = heldAcc, oodAcc, split.String()
	}
	if *asJSON {
		return writeJSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "trained %d steps (loss %.4f) in %s; wrote %s\n", res.Steps, res.MeanLoss, time.Since(began).Round(time.Second), *out)
	for _, k := range []string{"validation_loss", "heldout_accuracy", "ood_accuracy"} {
		if v, ok := summary[k]; ok {
			fmt.Fprintf(stdout, "%s %.4f\n", k, v)
		}
	}
	return nil
}

func trainJudge(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train judge", "--target T --draft D --out DIR [flags]", `Trains the Judge Decoding head of a target: the draft answers training
problems, each answer is labelled automatically (tokens before its first
departure from every valid answer are acceptable, the departing token is
not), together with a valid answer in a random phrasing, two with a digit
changed and one cut at a random point and finished by the draft; a
logistic regression on the target's last hidden states (before the final
norm) and, with --margin, the target's logit margin of each token learns
the labels. The threshold is the lowest that
approves at most --max-false-accept of the training errors. Reports the
AUROC on held-out problems, and writes config.json and model.safetensors to
--out.`, stderr)
	targetRef := fs.String("target", "target", "target model (embedded name or folder)")
	draftRef := fs.String("draft", "draft", "draft model (embedded name or folder)")
	out := fs.String("out", "", "output folder for the judge (required)")
	problems := fs.Int("problems", 500, "training problems (five labelled answers each)")
	heldOut := fs.Int("heldout", 200, "held-out problems for the reported AUROC")
	maxFA := fs.Float64("max-false-accept", 0.02, "fraction of training errors the threshold may approve")
	margin := fs.Bool("margin", true, "the head also reads the target's logit margin of each token")
	seed := fs.Uint64("seed", 0, "problem seed")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case *problems < 1 || *heldOut < 1:
		return usagef("--problems and --heldout must be positive")
	case !(*maxFA > 0 && *maxFA < 1):
		return usagef("--max-false-accept must be in (0, 1) (have %g)", *maxFA)
	}
	setThreads(*threads)
	target, err := loadDecoder(*targetRef)
	if err != nil {
		return err
	}
	draft, err := loadDecoder(*draftRef)
	if err != nil {
		return err
	}
	began := time.Now()
	j, trainRep, err := decoders.TrainJudge(target, draft, decoders.JudgeOptions{Problems: *problems, Seed: *seed, MaxFalseAccept: *maxFA, Margin: *margin})
	if err != nil {
		return err
	}
	set, err := decoders.JudgeSet(draft, corpus.NewGenerator(corpus.HeldOut, *seed+1).Problems(*heldOut), *seed+1)
	if err != nil {
		return err
	}
	ex, err := decoders.Examples(target, set)
	if err != nil {
		return err
	}
	heldRep := decoders.Evaluate(j, ex)
	if err := decoders.SaveJudge(*out, j, decoders.JudgeConfig{Target: *targetRef, Draft: *draftRef}); err != nil {
		return err
	}
	summary := map[string]any{"out": *out, "threshold": j.Threshold, "train": trainRep, "heldout": heldRep,
		"wall_seconds": time.Since(began).Seconds()}
	if *asJSON {
		return writeJSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "judge: threshold %.3f; train AUROC %.4f (%d examples, draft answers %.1f%% right); held-out AUROC %.4f, false accept %.3f, false reject %.3f; wrote %s\n",
		j.Threshold, trainRep.AUROC, trainRep.Examples, 100*trainRep.DraftAccuracy, heldRep.AUROC, heldRep.FalseAccept, heldRep.FalseReject, *out)
	return nil
}
