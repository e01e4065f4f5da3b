package main

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"

	"tessera/bench"
	"tessera/blockcache"
	"tessera/dit"
	"tessera/imagegen"
	"tessera/models"
)

func init() {
	register(&command{name: "cache", summary: "block caching: profile a model's per-block change, show or train a cache plan", run: runCache})
}

const cacheAbout = `Block caching reuses a transformer block's output while it changes little
between sampling steps. Subcommands:

  profile  sample calibration images uncached and write each block's mean
           relative L1 output change per network evaluation (profile.json)
           and its curves (profile.png: one panel per guidance branch,
           conditional left; block 0 darkest blue to the last block red;
           x = evaluation, y = change)
  plan     print the automatic schedule for a threshold d (--threshold),
           training scale-shift with --ss; the plan is stored where
           'generate --cache' finds it

Profiles and plans are made per (model, sampler, schedule, steps, cfg) and
stored in --cache-dir (default $TESSERA_CACHE_DIR or the user cache folder).

Example:
  tessera cache profile --model mnist --steps 32 --cfg 4 --out runs/profile
  tessera cache plan --model mnist --steps 32 --cfg 4 --threshold 0.1 --ss`

func runCache(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "profile" && args[0] != "plan") {
		fs := newFlags("cache", "profile|plan [flags]", cacheAbout, stderr)
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return nil
		}
		return usagef("want a subcommand: profile or plan")
	}
	sub := args[0]
	fs := newFlags("cache "+sub, "[flags]", cacheAbout, stderr)
	modelRef := fs.String("model", "mnist", "embedded model name or model folder")
	steps := fs.Int("steps", 32, "sampling steps")
	sampler := fs.String("sampler", "euler", "sampler: euler, heun, dpm++2m, ddim (epsilon models)")
	schedule := fs.String("schedule", "uniform", "noise schedule: uniform, linear-quadratic, shifted")
	shift := fs.Float64("shift", 3, "shift factor for --schedule shifted")
	cfg := fs.Float64("cfg", 4, "classifier-free guidance weight (1 disables guidance)")
	samples := fs.Int("samples", imagegen.DefaultCalibration, "calibration images")
	cacheDir := fs.String("cache-dir", "", "where profiles and plans are stored (default: $TESSERA_CACHE_DIR or the user cache folder)")
	out := fs.String("out", "", "profile: output folder for profile.json and profile.png (required)")
	threshold := fs.Float64("threshold", imagegen.DefaultCacheThreshold, "plan: accumulated-change threshold d")
	ss := fs.Bool("ss", false, "plan: train the scale-shift scalars")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "plan: print the plan as JSON")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	switch {
	case *steps < 1:
		return usagef("--steps must be at least 1 (have %d)", *steps)
	case *samples < 1:
		return usagef("--samples must be at least 1 (have %d)", *samples)
	case !(*threshold > 0):
		return usagef("--threshold must be positive (have %g)", *threshold)
	case sub == "profile" && *out == "":
		return usagef("--out is required")
	}
	setThreads(*threads)
	fsys, err := models.Open(*modelRef)
	if err != nil {
		return err
	}
	m, err := dit.LoadFS(fsys)
	if err != nil {
		return fmt.Errorf("model %s: %w", *modelRef, err)
	}
	gen := imagegen.GenerateOptions{Steps: *steps, Sampler: *sampler, Schedule: *schedule, Shift: *shift, CFG: *cfg}
	copts := imagegen.CacheOptions{Mode: "plan", Threshold: *threshold, Dir: *cacheDir, Calibration: *samples,
		Log: func(msg string) { fmt.Fprintln(stderr, msg) }}
	if sub == "profile" {
		prof, stored, err := imagegen.CacheProfile(m, gen, copts)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return fmt.Errorf("output folder %s: %w", *out, err)
		}
		if err := blockcache.SaveJSON(filepath.Join(*out, "profile.json"), prof); err != nil {
			return err
		}
		if err := plotProfile(filepath.Join(*out, "profile.png"), prof); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/profile.json and profile.png (stored as %s)\n", *out, stored)
		return nil
	}
	if *ss {
		copts.Mode = "ss"
	}
	plan, stored, err := imagegen.CachePlan(m, gen, copts)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, plan)
	}
	fmt.Fprintf(stdout, "plan d=%g for %s (stored as %s); computed fraction: cond %.3f, uncond %.3f\n", *threshold, *modelRef, stored,
		plan.ComputeFraction(blockcache.Cond), plan.ComputeFraction(blockcache.Uncond))
	names := []string{"cond", "uncond"}
	for b := range plan.Compute {
		for i, row := range plan.Compute[b] {
			line := make([]byte, len(row))
			for e, c := range row {
				line[e] = '.'
				if c {
					line[e] = '#'
				}
			}
			fmt.Fprintf(stdout, "%-6s block %2d  %s\n", names[b], i, line)
		}
	}
	fmt.Fprintln(stdout, "(# computed, . reused; one column per network evaluation)")
	return nil
}

// plotProfile draws each block's change curve, one panel per branch.
func plotProfile(path string, p *blockcache.Profile) error {
	var panels [][]bench.Series
	for b := range p.Delta {
		var series []bench.Series
		n := len(p.Delta[b])
		for i, row := range p.Delta[b] {
			s := bench.Series{Color: color.RGBA{uint8(220 * i / max(n-1, 1)), 40, uint8(220 - 220*i/max(n-1, 1)), 255}}
			for e := 1; e < len(row); e++ {
				s.X, s.Y = append(s.X, float64(e)), append(s.Y, row[e])
			}
			series = append(series, s)
		}
		if series != nil {
			panels = append(panels, series)
		}
	}
	return bench.WritePlot(path, panels...)
}
