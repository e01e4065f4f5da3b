package main

import (
	"fmt"
	"io"

	"tessera/dit"
	"tessera/flexidit"
	"tessera/t2i"
)

func init() {
	register(&command{name: "flex-errors", summary: "FlexiDiT: weak against powerful predictions along guided sampling", run: runFlexErrors})
}

const flexErrorsAbout = `Runs guided Euler trajectories with the powerful (base) model of a
class-conditional DiT and, at every step, compares the weak patch size's
predictions with the powerful ones on the states visited: the conditional
branch, the guided combination u + w(c − u), and the guidance direction
c − u, which guidance amplifies (its energy, and how well the weak
direction agrees: projection 1 and norm ratio 1 when it matches). Squared
differences are means per pixel. Shows where in the trajectory the weak
size can stand in for the powerful one.

Example:
  tessera flex-errors --model mnist --flex-model mnist-flex --n 64 --cfg 2`

func runFlexErrors(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("flex-errors", "--model NAME --flex-model NAME [flags]", flexErrorsAbout, stderr)
	modelRef := fs.String("model", "mnist", "embedded model name or model folder (a class-conditional DiT)")
	flexModel := fs.String("flex-model", "mnist-flex", "flexified model: embedded name or folder written by tessera flexify")
	n := fs.Int("n", 64, "trajectories (labels cycle over the classes)")
	steps := fs.Int("steps", 32, "Euler steps (uniform schedule)")
	cfg := fs.Float64("cfg", 2, "guidance weight")
	seed := fs.Uint64("seed", 0, "random seed of the starting noise")
	followWeak := fs.Bool("follow-weak", false, "step with the weak model's guided prediction (the states a weak-first schedule visits) instead of the powerful one's")
	asJSON := fs.Bool("json", false, "print JSON")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *n < 1 || *steps < 1 {
		return usagef("--n and --steps must be positive")
	}
	setThreads(*threads)
	fsys, raw, err := openWithConfig(*modelRef)
	if err != nil {
		return err
	}
	if t2i.IsConfig(raw) || !dit.IsConfig(raw) {
		return fmt.Errorf("model %s is not a class-conditional DiT", *modelRef)
	}
	m, err := dit.LoadFS(fsys)
	if err != nil {
		return fmt.Errorf("model %s: %w", *modelRef, err)
	}
	f, err := flexidit.Open(m, *flexModel)
	if err != nil {
		return err
	}
	res, err := flexidit.GuidedErrors(f, flexidit.TrajectoryOptions{N: *n, Steps: *steps, Scale: *cfg, Seed: *seed, FollowWeak: *followWeak})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	who := "powerful"
	if *followWeak {
		who = "weak"
	}
	fmt.Fprintf(stdout, "%d guided Euler trajectories of the %s model, %d steps, guidance %g; mean squared difference per pixel, weak against powerful\n", *n, who, *steps, *cfg)
	fmt.Fprintf(stdout, "%4s %6s %11s %9s %9s %10s %10s\n", "step", "s", "conditional", "guided", "‖c−u‖²", "projection", "norm ratio")
	for _, e := range res {
		fmt.Fprintf(stdout, "%4d %6.3f %11.4f %9.4f %9.4f %10.3f %10.3f\n", e.Step, e.S, e.Conditional, e.Guided, e.Direction, e.Alignment, e.NormRatio)
	}
	return nil
}
