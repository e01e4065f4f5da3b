package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"tessera/classifier"
	"tessera/data"
	"tessera/dit"
	"tessera/imagefile"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/models"
)

// trainers are the "tessera train <what>" subcommands.
var trainers = map[string]func(args []string, stdout, stderr io.Writer) error{
	"classifier": trainClassifier,
	"dit":        trainDiT,
}

func init() {
	register(&command{name: "train", summary: "train a model (classifier, dit, judge, …)", run: runTrain})
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stderr, "Usage: tessera train <model> [flags]\n\nModels:")
		for name := range trainers {
			fmt.Fprintf(stderr, "  %s\n", name)
		}
		fmt.Fprintln(stderr, "\nRun 'tessera train <model> --help' for its flags.")
		if len(args) == 0 {
			return usagef("missing model to train")
		}
		return flag.ErrHelp
	}
	t, ok := trainers[args[0]]
	if !ok {
		return usagef("unknown model %q", args[0])
	}
	return t(args[1:], stdout, stderr)
}

// signalContext is cancelled on Ctrl-C, so training loops save and stop.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

func trainClassifier(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train classifier", "[flags]", `Trains the MNIST classifier whose features Tessera's FID and KID use, and
reports its test accuracy. Writes config.json and model.safetensors to --out.`, stderr)
	out := fs.String("out", "models/mnist-classifier", "output folder")
	steps := fs.Int("steps", 2500, "optimiser steps")
	batch := fs.Int("batch", 128, "images per step")
	lr := fs.Float64("lr", 2e-3, "peak learning rate")
	seed := fs.Uint64("seed", 0, "random seed")
	dataDir := fs.String("data", "", "folder with MNIST's *-ubyte.gz files (default: the GoMNIST module)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *steps < 1 || *batch < 1 || *lr <= 0 {
		return usagef("--steps, --batch and --lr must be positive")
	}
	setThreads(*threads)
	trainSet, err := data.LoadMNIST(*dataDir, data.Train)
	if err != nil {
		return err
	}
	testSet, err := data.LoadMNIST(*dataDir, data.Test)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	net, err := classifier.Train(ctx, trainSet, classifier.TrainOptions{Steps: *steps, Batch: *batch, LR: float32(*lr), Seed: *seed,
		Progress: progress.Options{Out: stderr}})
	if err != nil {
		return err
	}
	acc, err := net.Accuracy(testSet)
	if err != nil {
		return err
	}
	if err := net.Save(*out); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"out": *out, "test_accuracy": acc, "steps": *steps, "batch": *batch})
	}
	fmt.Fprintf(stdout, "test accuracy %.4f (10,000 images); wrote %s\n", acc, *out)
	return nil
}

func trainDiT(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train dit", "[flags]", `Trains a class-conditional DiT with flow matching (logit-normal noise levels,
10% label dropout for guidance, AdamW, EMA of weights) and writes the EMA
model (config.json, float16 model.safetensors) to --out. With --checkpoints
the run saves resumable state every --checkpoint-every steps and resumes from
the newest checkpoint there; Ctrl-C saves before stopping.`, stderr)
	dataset := fs.String("dataset", "mnist", "training data: mnist")
	dataDir := fs.String("data", "", "folder of the data set (default: the GoMNIST module for mnist)")
	configPath := fs.String("config", "", "DiT config.json (default: the reference 32x32 config: patch 4, hidden 256, depth 6, 4 heads)")
	initRef := fs.String("init", "", "start from this model (embedded name or folder) instead of a fresh one; its config is used")
	out := fs.String("out", "models/mnist", "output folder for the trained model")
	ckpt := fs.String("checkpoints", "", "folder for resumable checkpoints (default: none)")
	ckptEvery := fs.Int("checkpoint-every", 500, "steps between checkpoints")
	steps := fs.Int("steps", 10000, "optimiser steps")
	batch := fs.Int("batch", 64, "images per step")
	lr := fs.Float64("lr", 5e-4, "peak learning rate")
	seed := fs.Uint64("seed", 0, "random seed")
	sampleEvery := fs.Int("sample-every", 0, "write a sample grid to --out/progress-STEP.png every N steps (0: never)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *steps < 1 || *batch < 1 || *lr <= 0 || *ckptEvery < 1 {
		return usagef("--steps, --batch, --lr and --checkpoint-every must be positive")
	}
	if *dataset != "mnist" {
		return usagef("unknown --dataset %q (want mnist)", *dataset)
	}
	setThreads(*threads)
	cfg := dit.DefaultConfig()
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return err
		}
		if cfg, err = dit.ParseConfig(raw); err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	var init *dit.Model
	if *initRef != "" {
		fsys, err := models.Open(*initRef)
		if err != nil {
			return err
		}
		if init, err = dit.LoadFS(fsys); err != nil {
			return fmt.Errorf("--init %s: %w", *initRef, err)
		}
		cfg = init.Config
	}
	set, err := data.LoadMNIST(*dataDir, data.Train)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	opts := imagegen.TrainOptions{Config: cfg, Init: init, Steps: *steps, Batch: *batch, LR: float32(*lr), Seed: *seed,
		CheckpointDir: *ckpt, CheckpointEvery: *ckptEvery, Progress: progress.Options{Out: stderr, Label: "train dit"}}
	if *sampleEvery > 0 {
		opts.SnapshotEvery = *sampleEvery
		opts.Snapshot = func(m *dit.Model, done int) error {
			if err := os.MkdirAll(*out, 0o755); err != nil {
				return err
			}
			return sampleGrid(m, fmt.Sprintf("%s/progress-%06d.png", *out, done))
		}
	}
	res, err := imagegen.TrainDiT(ctx, imagegen.MNIST32{Set: set}, opts)
	if err != nil {
		return err
	}
	model := res.Model
	if err := imagegen.SaveShipped(*out, model); err != nil {
		return err
	}
	if err := sampleGrid(model, *out+"/samples.png"); err != nil {
		return err
	}
	summary := map[string]any{"out": *out, "steps": res.Result.Steps, "batch": *batch, "final_loss": res.Result.MeanLoss,
		"wall_seconds": res.Result.Duration.Seconds(), "params": model.NumParams()}
	if *asJSON {
		return writeJSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "trained %d steps (loss %.4f) in %s; wrote %s\n", res.Result.Steps, res.Result.MeanLoss, res.Result.Duration.Round(1e9), *out)
	return nil
}

// sampleGrid writes a 10×10 grid (one row per class) of 32-step Euler
// samples with guidance 4.
func sampleGrid(m *dit.Model, path string) error {
	n := 10 * max(m.Config.NumClasses, 1)
	classes := make([]int, n)
	for i := range classes {
		classes[i] = i / 10 % max(m.Config.NumClasses, 1)
	}
	imgs, _, err := imagegen.Generate(m, imagegen.GenerateOptions{N: n, Classes: classes, Seed: 1, Steps: 32, CFG: 4,
		Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		return err
	}
	return imagefile.WriteGrid(path, imgs, 10, 2)
}
