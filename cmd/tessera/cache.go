package main

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tessera/blockcache"
	"tessera/data"
	"tessera/dit"
	"tessera/flexidit"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/plot"
	"tessera/t2i"
	"tessera/tensor"
)

func init() {
	register(&command{name: "cache", summary: "block caching: profile a model's per-block change, show or train a cache plan", run: runCache})
}

const cacheAbout = `Block caching reuses a transformer block's output while it changes little
between sampling steps. Subcommands:

  profile  sample calibration images uncached and write each block's mean
           relative L1 output change per network evaluation and the second
           differences of its residual (profile.json), and their curves
           (profile.png: the changes, one panel per guidance branch,
           conditional first, then the second differences the same way;
           block 0 darkest blue to the last block red; x = evaluation)
  plan     print the automatic schedule for a threshold d (--threshold),
           training scale-shift with --ss; the plan is stored where
           'generate --cache' finds it

Profiles and plans are made per (model, sampler, schedule, steps, cfg) and
stored in --cache-dir (default $TESSERA_CACHE_DIR or the user cache folder).
Class models calibrate on their classes; text-to-image models (emoji)
calibrate on the prompts of --prompt (repeatable) or --prompts FILE (one
per line), and their profiles and plans are stored per prompt list:
'generate --model emoji --prompt P --cache …' calibrates on P, so
'cache plan --model emoji --prompt P' shows the plan it uses.

Examples:
  tessera cache profile --model mnist --steps 32 --cfg 4 --out runs/profile
  tessera cache plan --model mnist --steps 32 --cfg 4 --threshold 0.1 --ss
  tessera cache plan --model emoji --cfg 4 --prompt "red heart" --ss`

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
	cfg := fs.Float64("cfg", 2, "classifier-free guidance weight (1 disables guidance)")
	samples := fs.Int("samples", imagegen.DefaultCalibration, "calibration images")
	cacheDir := fs.String("cache-dir", "", "where profiles and plans are stored (default: $TESSERA_CACHE_DIR or the user cache folder)")
	out := fs.String("out", "", "profile: output folder for profile.json and profile.png (required)")
	threshold := fs.Float64("threshold", 0, "plan: threshold d (default 0.05 for the accumulated-change schedule, 0.03 for the estimated forecast error with --forecast)")
	ss := fs.Bool("ss", false, "plan: train the scale-shift scalars")
	residual := fs.Bool("residual", false, "plan: reuse each skipped block's residual (output minus input) instead of its output")
	forecast := fs.Bool("forecast", false, "plan: extrapolate each skipped block's residual linearly from its last two computations (implies --residual)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "plan: print the plan as JSON")
	var prompts []string
	fs.Func("prompt", "calibration prompt of a text-to-image model (repeat for several)", func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("empty prompt")
		}
		prompts = append(prompts, v)
		return nil
	})
	promptFile := fs.String("prompts", "", "file of calibration prompts for a text-to-image model, one per line")
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	switch {
	case *steps < 1:
		return usagef("--steps must be at least 1 (have %d)", *steps)
	case *samples < 1:
		return usagef("--samples must be at least 1 (have %d)", *samples)
	case *threshold < 0 || math.IsNaN(*threshold):
		return usagef("--threshold must be 0 (the default) or positive (have %g)", *threshold)
	case sub == "profile" && *out == "":
		return usagef("--out is required")
	}
	if *promptFile != "" {
		raw, err := os.ReadFile(*promptFile)
		if err != nil {
			return fmt.Errorf("--prompts: %w", err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.TrimSpace(line) != "" {
				prompts = append(prompts, strings.TrimRight(line, "\r"))
			}
		}
	}
	setThreads(*threads)
	fsys, raw, err := openWithConfig(*modelRef)
	if err != nil {
		return err
	}
	copts := imagegen.CacheOptions{Mode: "plan", Threshold: *threshold, Dir: *cacheDir, Calibration: *samples,
		Log: func(msg string) { fmt.Fprintln(stderr, msg) }}
	// profileOf and planOf compute or load for the model's kind.
	var profileOf func() (*blockcache.Profile, string, error)
	var planOf func() (*blockcache.Plan, string, error)
	if t2i.IsConfig(raw) {
		if len(prompts) == 0 {
			return usagef("model %s is text-to-image: give calibration prompts with --prompt or --prompts", *modelRef)
		}
		m, err := t2i.LoadFS(fsys)
		if err != nil {
			return fmt.Errorf("model %s: %w", *modelRef, err)
		}
		gen := t2i.GenerateOptions{Steps: *steps, Sampler: *sampler, Schedule: *schedule, Shift: *shift, CFG: *cfg}
		profileOf = func() (*blockcache.Profile, string, error) { return t2i.CacheProfile(m, gen, copts, prompts) }
		planOf = func() (*blockcache.Plan, string, error) { return t2i.CachePlan(m, gen, copts, prompts) }
	} else {
		if len(prompts) > 0 {
			return usagef("model %s is class-conditional: it calibrates on its classes, not on --prompt", *modelRef)
		}
		m, err := dit.LoadFS(fsys)
		if err != nil {
			return fmt.Errorf("model %s: %w", *modelRef, err)
		}
		gen := imagegen.GenerateOptions{Steps: *steps, Sampler: *sampler, Schedule: *schedule, Shift: *shift, CFG: *cfg}
		profileOf = func() (*blockcache.Profile, string, error) { return imagegen.CacheProfile(m, gen, copts) }
		planOf = func() (*blockcache.Plan, string, error) { return imagegen.CachePlan(m, gen, copts) }
	}
	if sub == "profile" {
		prof, stored, err := profileOf()
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
	copts.Residual = *residual || *forecast
	copts.Forecast = *forecast
	copts = copts.WithDefaults()
	*threshold = copts.Threshold
	plan, stored, err := planOf()
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

// plotProfile draws each block's change curve, one panel per branch, then
// its residual second differences (what forecast reuse gets wrong), one
// panel per branch.
func plotProfile(path string, p *blockcache.Profile) error {
	var panels []plot.Panel
	titles := []string{"relative L1 change, conditional", "relative L1 change, unconditional",
		"residual 2nd difference, conditional", "residual 2nd difference, unconditional"}
	for k, curves := range [][][]float64{p.Delta[blockcache.Cond], p.Delta[blockcache.Uncond], p.Delta2[blockcache.Cond], p.Delta2[blockcache.Uncond]} {
		first := 1 + k/2 // Δ starts at evaluation 1, Δ2 at 2
		panel := plot.Panel{Title: titles[k], XLabel: "network evaluation", YLabel: "relative change"}
		n := len(curves)
		for i, row := range curves {
			s := plot.Series{Label: fmt.Sprintf("block %d", i), Color: color.RGBA{uint8(220 * i / max(n-1, 1)), 40, uint8(220 - 220*i/max(n-1, 1)), 255}}
			for e := first; e < len(row); e++ {
				s.X, s.Y = append(s.X, float64(e)), append(s.Y, row[e])
			}
			panel.Series = append(panel.Series, s)
		}
		if panel.Series != nil {
			panels = append(panels, panel)
		}
	}
	if len(panels) == 0 {
		return fmt.Errorf("cache profile: nothing to plot")
	}
	return plot.Write(path, panels...)
}

func init() {
	register(&command{name: "flexify", summary: "FlexiDiT: add a weak patch size to a DiT and fine-tune it", run: runFlexify})
}

const flexifyAbout = `Adds a weak (larger) patch size to a class-conditional MNIST DiT or to the
DiT of a text-to-image emoji model: patch embedding initialised by the
pseudo-inverse of bilinear resize, upsampled de-embedding, patch-centre
positions, a patch-size embedding and, with --lora R, weak-only LoRA
adapters on attention and MLP. Fine-tunes these on MNIST, or on the emoji
training split with each emoji's name as its prompt (flow matching plus
distillation to the powerful model): with --lora R the base stays frozen;
with --lora 0 (class models only) every weight trains, with a random patch
size per batch and distillation to a frozen copy of the original. Writes
the result to --out (config.json, model.safetensors). Use it with
'generate --flex T_weak --flex-model DIR' or 'eval-emoji --flex'.

Examples:
  tessera flexify --model mnist --steps 400 --out runs/mnist-flex
  tessera flexify --model mnist --lora 128 --lora-modulation --guidance-distill 40 \
      --guidance-distill-scale 2 --distill 20 --min-level 0.5 --out runs/mnist-flex   # as mnist-flex
  tessera flexify --model emoji --steps 450 --distill 20 --min-level 0.5 --out runs/emoji-flex`

func runFlexify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("flexify", "--model NAME --out DIR [flags]", flexifyAbout, stderr)
	modelRef := fs.String("model", "mnist", "embedded model name or model folder")
	out := fs.String("out", "", "output folder (required)")
	weak := fs.Int("weak-patch", 0, "weak patch size (default twice the model's)")
	lora := fs.Int("lora", 32, "rank of the weak-only LoRA adapters (0: none)")
	loraMod := fs.Bool("lora-modulation", false, "also put LoRA adapters on the adaLN modulations (the weak size's own class- and time-dependent scales, shifts and gates)")
	steps := fs.Int("steps", 400, "fine-tuning steps")
	batch := fs.Int("batch", 64, "images per step")
	lr := fs.Float64("lr", 3e-3, "peak learning rate")
	distill := fs.Float64("distill", 1, "weight of the distillation term")
	minLevel := fs.Float64("min-level", 0, "lowest noise level s of the weak batches (the scheduler runs the weak size on the noisy first steps only)")
	guidance := fs.Float64("guidance-distill", 0, "weight of distilling the guidance direction: each weak image runs with its label and with none, and their difference is matched to the powerful model's (0: off)")
	dropout := fs.Float64("label-dropout", 0.1, "probability that a training image gets the unconditional label (guided sampling runs the weak model unconditionally as often as conditionally)")
	guidedScale := fs.Float64("guidance-distill-scale", 0, "with --guidance-distill: match the guided prediction at this guidance scale instead of the difference alone (0: the difference)")
	ema := fs.Float64("ema", 0, "decay of an exponential moving average of the weak weights, saved instead of the last step's (0: off; e.g. 0.99)")
	seed := fs.Uint64("seed", 0, "random seed")
	dataDir := fs.String("data", "", "training images: MNIST folder (default: the GoMNIST module), or for a text-to-image model the emoji folder (default: $TESSERA_EMOJI or ../shared/data/emoji)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *steps < 1 || *batch < 1 || !(*lr > 0) {
		return usagef("--steps, --batch and --lr must be positive")
	}
	if !(*minLevel >= 0 && *minLevel < 1) {
		return usagef("--min-level must be in [0, 1) (have %g)", *minLevel)
	}
	if !(*guidance >= 0) {
		return usagef("--guidance-distill must be 0 or positive (have %g)", *guidance)
	}
	if !(*guidedScale >= 0) {
		return usagef("--guidance-distill-scale must be 0 or positive (have %g)", *guidedScale)
	}
	if *guidedScale > 0 && *guidance == 0 {
		return usagef("--guidance-distill-scale needs --guidance-distill > 0")
	}
	if !(*ema >= 0 && *ema < 1) {
		return usagef("--ema must be in [0, 1) (have %g)", *ema)
	}
	if *loraMod && *lora == 0 {
		return usagef("--lora-modulation needs LoRA adapters (--lora R > 0)")
	}
	setThreads(*threads)
	fsys, raw, err := openWithConfig(*modelRef)
	if err != nil {
		return err
	}
	var m *dit.Model
	var cond flexidit.Conditioning // nil: the DiT's classes
	var ds flexidit.Dataset
	if t2i.IsConfig(raw) {
		tm, err := t2i.LoadFS(fsys)
		if err != nil {
			return fmt.Errorf("model %s: %w", *modelRef, err)
		}
		set, err := data.LoadEmoji(*dataDir, data.Train, tm.Config.InputSize)
		if err != nil {
			return err
		}
		prompts := make([]string, len(set.Emoji))
		for k := range prompts {
			prompts[k] = tm.Config.Text.Fit(set.Prompt(k))
		}
		m, cond, ds = tm.DiT, t2i.NewPrompted(tm, prompts), emojiByName{set}
	} else {
		if m, err = dit.LoadFS(fsys); err != nil {
			return fmt.Errorf("model %s: %w", *modelRef, err)
		}
		set, err := data.LoadMNIST(*dataDir, data.Train)
		if err != nil {
			return err
		}
		ds = imagegen.MNIST32{Set: set}
	}
	f, err := flexidit.Flexify(m, flexidit.Config{WeakPatch: *weak, LoRARank: *lora, LoRAModulation: *loraMod}, tensor.NewRNG(*seed))
	if err != nil {
		return err
	}
	f.Cond = cond
	res, err := flexidit.Train(context.Background(), f, ds, flexidit.TrainOptions{Steps: *steps, Batch: *batch,
		LR: float32(*lr), Distill: float32(*distill), MinLevel: *minLevel, LabelDropout: *dropout, Guidance: float32(*guidance), EMA: float32(*ema), GuidanceScale: float32(*guidedScale), Seed: *seed, Progress: progress.Options{Out: stderr, Label: "flexify"}})
	if err != nil {
		return err
	}
	if err := f.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: weak patch %d, LoRA rank %d, %d steps in %s, final loss %.4f\n", *out, f.Config.WeakPatch, *lora, res.Steps, res.Duration.Round(time.Second), res.MeanLoss)
	return nil
}

// emojiByName is an emoji set as a flexidit.Dataset: each image labelled
// by its emoji, whose prompt is the emoji's name.
type emojiByName struct{ set *data.EmojiSet }

func (d emojiByName) Len() int      { return d.set.Len() }
func (d emojiByName) Shape() [3]int { return d.set.Shape() }
func (d emojiByName) Example(i int, dst []float32) int {
	d.set.Example(i, dst)
	return d.set.EmojiOf(i)
}
