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
	"tessera/internal/progress"
)

// trainers are the "tessera train <what>" subcommands.
var trainers = map[string]func(args []string, stdout, stderr io.Writer) error{
	"classifier": trainClassifier,
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
