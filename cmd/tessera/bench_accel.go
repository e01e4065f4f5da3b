package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"tessera/bench"
	"tessera/classifier"
	"tessera/dit"
	"tessera/eval"
	"tessera/flexidit"
	"tessera/models"
)

func init() {
	var modelRef, cache, fewer, out, cacheDir, sampler, flex, flexModel *string
	var n, steps, timeRounds, timeN *int
	var seed *uint64
	var cfg *float64
	benchSuites["accel"] = &benchSuite{
		about: "diffusion accelerators: block-cache sweeps vs the baseline and fewer steps, FID and wall time (JSON + PNG)",
		flags: func(fs *flag.FlagSet) {
			modelRef = fs.String("model", "mnist", "embedded model name or model folder (class-conditional MNIST DiT)")
			n = fs.Int("n", 2000, "images per run, the same seeds in every run")
			seed = fs.Uint64("seed", 0, "seed")
			steps = fs.Int("steps", 32, "baseline sampling steps")
			sampler = fs.String("sampler", "euler", "sampler")
			cfg = fs.Float64("cfg", 2, "guidance weight (generate's default)")
			cache = fs.String("cache", "ss:0.05,res:0.1,fc:0.03,fc:0.05,fc:0.1,dynamic:0.3", "cache settings to sweep (--cache specs, comma-separated)")
			flex = fs.String("flex", "8,16,16;reverse,8+fc:0.1", "FlexiDiT runs (--flex specs, ';' for ',' inside a spec, '+' adds a cache), with --flex-model")
			flexModel = fs.String("flex-model", "", "flexified model: embedded name (mnist-flex) or folder written by 'tessera flexify' (no FlexiDiT runs without it)")
			fewer = fs.String("fewer-steps", "12,16,20", "step counts of the fewer-steps baselines")
			cacheDir = fs.String("cache-dir", "", "where profiles and plans are stored")
			timeRounds = fs.Int("time-rounds", 0, "after the quality runs, time every run again in this many interleaved rounds on --time-n images and report each run's best (0: each quality run's own wall time)")
			timeN = fs.Int("time-n", 256, "images per timing round (with --time-rounds)")
			out = fs.String("out", "", "folder for accel.json and accel.png")
		},
		run: func(env benchEnv) (any, error) {
			var few []int
			for _, f := range strings.Split(*fewer, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				k, err := strconv.Atoi(f)
				if err != nil || k < 1 {
					return nil, usagef("--fewer-steps: %q is not a positive integer", f)
				}
				few = append(few, k)
			}
			if *timeRounds < 0 || *timeN < 1 {
				return nil, usagef("--time-rounds must be 0 or positive and --time-n positive")
			}
			setThreads(env.Threads)
			fsys, err := models.Open(*modelRef)
			if err != nil {
				return nil, err
			}
			m, err := dit.LoadFS(fsys)
			if err != nil {
				return nil, fmt.Errorf("model %s: %w", *modelRef, err)
			}
			cfsys, err := models.Open("mnist-classifier")
			if err != nil {
				return nil, err
			}
			net, err := classifier.Load(cfsys, ".")
			if err != nil {
				return nil, err
			}
			ev, err := eval.NewMNISTEvaluator(net, "", 0)
			if err != nil {
				return nil, err
			}
			var specs []string
			for _, s := range strings.Split(*cache, ",") {
				if s = strings.TrimSpace(s); s != "" {
					specs = append(specs, s)
				}
			}
			var flexi *flexidit.Model
			var flexSpecs []string
			if *flexModel != "" {
				if flexi, err = flexidit.Open(m, *flexModel); err != nil {
					return nil, err
				}
				for _, s := range strings.Split(*flex, ",") {
					if s = strings.TrimSpace(s); s != "" {
						flexSpecs = append(flexSpecs, strings.ReplaceAll(s, ";", ","))
					}
				}
			}
			return bench.Accel(bench.AccelOptions{Flexi: flexi, Flex: flexSpecs, Model: m, ModelName: *modelRef, Evaluator: ev, N: *n, Seed: *seed, Steps: *steps,
				Sampler: *sampler, CFG: *cfg, Cache: specs, FewerSteps: few, CacheDir: *cacheDir, Out: *out,
				TimeRounds: *timeRounds, TimeN: *timeN,
				Log: func(msg string) { fmt.Fprintln(os.Stderr, msg) }})
		},
	}
}
