package main

import (
	"encoding/json"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"tessera/dit"
	"tessera/flexidit"
	"tessera/imagefile"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/t2i"
	"tessera/tensor"
)

func init() {
	register(&command{name: "generate", summary: "generate images with a diffusion transformer", run: runGenerate})
}

const generateAbout = `Samples images from a DiT and writes DIR/0000.png, DIR/0001.png, … and
DIR/labels.json (the class of each image). The same seed and flags give the
same images. --model is an embedded model (see 'tessera models') or a folder
with config.json and model.safetensors. Class models (mnist) take --class;
text-to-image models (emoji) take --prompt, and labels.json then holds the
prompt of each image. The output folder must not exist or
be empty; nothing is left in it if generation fails.

Examples:
  tessera generate --model mnist --class 7 --n 16 --seed 1 --out out/sevens
  tessera generate --model emoji --prompt "red heart" --n 8 --out out/hearts`

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate", "--model NAME --out DIR [flags]", generateAbout, stderr)
	modelRef := fs.String("model", "mnist", "embedded model name or model folder")
	class := fs.Int("class", -1, "class of every image, for class models (default: cycle through the classes)")
	prompt := fs.String("prompt", "", "text prompt, for text-to-image models such as emoji")
	n := fs.Int("n", 8, "number of images")
	seed := fs.Uint64("seed", 0, "random seed")
	out := fs.String("out", "", "output folder (required)")
	steps := fs.Int("steps", 32, "sampling steps")
	sampler := fs.String("sampler", "euler", "sampler: euler, heun, dpm++2m, ddim (epsilon models)")
	schedule := fs.String("schedule", "uniform", "noise schedule: uniform, linear-quadratic, shifted")
	shift := fs.Float64("shift", 3, "shift factor for --schedule shifted")
	cfg := fs.Float64("cfg", 2, "classifier-free guidance weight (1 disables guidance)")
	batch := fs.Int("batch", 64, "images per network batch")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	grid := fs.Bool("grid", false, "also write DIR/grid.png with all images")
	cacheSpec := fs.String("cache", "off", "block caching: off, fc[:d] (forecast each skipped block's residual from its last two computations, with trained scale-shift; recommended, d defaults to 0.03), ss[:d] (reuse outputs with trained scale-shift, the paper's method; d defaults to 0.05), plan[:d], res[:d] / res-plan[:d] (reuse residuals), fc-plan[:d], dynamic[:threshold]")
	cacheDir := fs.String("cache-dir", "", "where block-cache profiles and plans are stored (default: $TESSERA_CACHE_DIR or the user cache folder)")
	flexSpec := fs.String("flex", "", "FlexiDiT: number of weak-patch steps T_weak, optionally ,reverse or ,weak-guidance (needs --flex-model)")
	flexModel := fs.String("flex-model", "", "flexified model for --flex: embedded name (mnist-flex) or folder written by tessera flexify")
	precision := fs.String("precision", "auto", "arithmetic of the network's products: auto (bf16 where the CPU has native bfloat16 dot products, else f32), f32, bf16")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if _, err := nn.ParsePrecision(*precision); err != nil {
		return usageError{"--precision: " + err.Error()}
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case *n < 1:
		return usagef("--n must be at least 1 (have %d)", *n)
	case *steps < 1:
		return usagef("--steps must be at least 1 (have %d)", *steps)
	case *batch < 1:
		return usagef("--batch must be at least 1 (have %d)", *batch)
	case *cfg < 0:
		return usagef("--cfg must not be negative (have %g)", *cfg)
	}
	cacheOpt, err := imagegen.ParseCache(*cacheSpec)
	if err != nil {
		return usageError{err.Error()}
	}
	var flexOpt *imagegen.FlexOptions
	if *flexSpec != "" {
		f, err := imagegen.ParseFlex(*flexSpec)
		if err != nil {
			return usageError{err.Error()}
		}
		if *flexModel == "" {
			return usagef("--flex needs --flex-model, the flexified model (e.g. mnist-flex)")
		}
		flexOpt = &f
	}
	if err := checkOutDir(*out); err != nil {
		return err
	}
	setThreads(*threads)
	fsys, raw, err := openWithConfig(*modelRef)
	if err != nil {
		return err
	}
	prog := progress.Options{Out: stderr, Label: "generate"}
	if *asJSON {
		prog.Mode = progress.Silent
	}
	if t2i.IsConfig(raw) {
		if *class >= 0 {
			return usagef("model %s takes --prompt, not --class", *modelRef)
		}
		cacheOpt.Log = func(msg string) { fmt.Fprintln(stderr, msg) }
		cacheOpt.Dir = *cacheDir
		return generateFromText(fsys, *modelRef, *prompt, *n, *out, *grid, *asJSON, stdout, *flexModel,
			t2i.GenerateOptions{Seed: *seed, Steps: *steps, Sampler: *sampler, Schedule: *schedule, Shift: *shift, CFG: *cfg, Batch: *batch, Precision: *precision, Progress: prog, Cache: cacheOpt, Flex: flexOpt})
	}
	if !dit.IsConfig(raw) {
		return fmt.Errorf("model %s is not an image model (its config.json describes neither a DiT nor a text-to-image DiT)", *modelRef)
	}
	if *prompt != "" {
		return usagef("model %s is class-conditional: use --class, not --prompt", *modelRef)
	}
	m, err := dit.LoadFS(fsys)
	if err != nil {
		return fmt.Errorf("model %s: %w", *modelRef, err)
	}
	if flexOpt != nil {
		if flexOpt.Model, err = flexidit.Open(m, *flexModel); err != nil {
			return fmt.Errorf("--flex-model %s: %w", *flexModel, err)
		}
	}
	var classes []int
	if *class >= 0 {
		if *class >= m.Config.NumClasses {
			return usagef("--class %d out of range: model %s has classes 0..%d", *class, *modelRef, m.Config.NumClasses-1)
		}
		classes = make([]int, *n)
		for i := range classes {
			classes[i] = *class
		}
	}
	cacheOpt.Log = func(msg string) { fmt.Fprintln(stderr, msg) }
	cacheOpt.Dir = *cacheDir
	imgs, ast, err := imagegen.GenerateAccel(m, imagegen.GenerateOptions{N: *n, Classes: classes, Seed: *seed, Steps: *steps,
		Sampler: *sampler, Schedule: *schedule, Shift: *shift, CFG: *cfg, Batch: *batch, Precision: *precision, Progress: prog},
		imagegen.AccelOptions{Cache: cacheOpt, Flex: flexOpt})
	if err != nil {
		return err
	}
	st := ast.Stats
	accel := map[string]any{}
	if ast.Cache != nil {
		accel["cache"] = ast.Cache
	}
	if ast.Flex != nil {
		accel["flex"] = ast.Flex
	}
	if classes == nil {
		classes = make([]int, *n)
		for i := range classes {
			classes[i] = i % m.Config.NumClasses
		}
	}
	labels := make([]any, len(classes))
	for i, c := range classes {
		labels[i] = c
	}
	return writeGenerated(*out, imgs, labels, *grid, *asJSON, st, accel, *modelRef, stdout)
}

// generateFromText runs a text-to-image model on one prompt repeated n
// times (each image with its own noise), with block caching when o.Cache
// is on (calibrated on the prompt; --json then reports the cache's hits
// per block as for class models).
func generateFromText(fsys iofs.FS, ref, prompt string, n int, out string, grid, asJSON bool, stdout io.Writer, flexModel string, o t2i.GenerateOptions) error {
	if strings.TrimSpace(prompt) == "" {
		return usagef("model %s needs a non-empty --prompt", ref)
	}
	m, err := t2i.LoadFS(fsys)
	if err != nil {
		return fmt.Errorf("model %s: %w", ref, err)
	}
	if o.Flex != nil {
		if o.Flex.Model, err = flexidit.Open(m.DiT, flexModel); err != nil {
			return fmt.Errorf("--flex-model %s: %w", flexModel, err)
		}
	}
	if err := m.Config.Text.CheckPrompt(prompt); err != nil {
		return usagef("--prompt: %v", err)
	}
	prompts := make([]string, n)
	labels := make([]any, n)
	for i := range prompts {
		prompts[i], labels[i] = prompt, prompt
	}
	imgs, st, err := t2i.GenerateAccel(m, prompts, o)
	if err != nil {
		return err
	}
	accel := map[string]any{}
	if st.Cache != nil {
		accel["cache"] = st.Cache
	}
	if st.Flex != nil {
		accel["flex"] = st.Flex
	}
	return writeGenerated(out, imgs, labels, grid, asJSON, st.Stats, accel, ref, stdout)
}

// writeGenerated writes DIR/NNNN.png, labels.json and optionally grid.png
// atomically, then the summary.
func writeGenerated(out string, imgs []*tensor.Tensor, labels []any, grid, asJSON bool, st imagegen.Stats, accel map[string]any, ref string, stdout io.Writer) error {
	byName := map[string]any{}
	err := writeOutDir(out, func(dir string) error {
		for i, img := range imgs {
			name := fmt.Sprintf("%04d.png", i)
			if err := imagefile.WritePNG(filepath.Join(dir, name), img); err != nil {
				return err
			}
			byName[name] = labels[i]
		}
		if grid {
			if err := imagefile.WriteGrid(filepath.Join(dir, "grid.png"), imgs, min(len(imgs), 16), 2); err != nil {
				return err
			}
		}
		b, err := json.MarshalIndent(byName, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "labels.json"), append(b, '\n'), 0o644)
	})
	if err != nil {
		return err
	}
	if asJSON {
		sum := map[string]any{"n": st.N, "wall_seconds": st.WallSeconds, "network_evals": st.NetworkEvals,
			"block_evals": st.BlockEvals, "flops": st.FLOPs, "steps": st.Steps, "sampler": st.Sampler, "schedule": st.Schedule,
			"cfg": st.CFG, "precision": st.Precision, "model": ref, "out": out, "images_per_second": float64(st.N) / st.WallSeconds}
		for k, v := range accel {
			sum[k] = v
		}
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "wrote %d images to %s in %.2fs (%d network evaluations)\n", st.N, out, st.WallSeconds, st.NetworkEvals)
	return nil
}

// checkOutDir accepts a folder that does not exist or is empty.
func checkOutDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		parent := filepath.Dir(filepath.Clean(dir))
		if st, perr := os.Stat(parent); perr != nil || !st.IsDir() {
			if mkErr := os.MkdirAll(parent, 0o755); mkErr != nil {
				return fmt.Errorf("output folder %s: cannot create its parent: %w", dir, mkErr)
			}
		}
		return probeWritable(parent, dir)
	}
	if err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	if len(ents) > 0 {
		names := make([]string, 0, 3)
		for _, e := range ents[:min(3, len(ents))] {
			names = append(names, e.Name())
		}
		return fmt.Errorf("output folder %s is not empty (holds %s…); choose a new folder", dir, strings.Join(names, ", "))
	}
	return probeWritable(dir, dir)
}

func probeWritable(dir, out string) error {
	f, err := os.CreateTemp(dir, ".tessera-probe-*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", out, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// writeOutDir fills a temporary sibling folder with fill, then renames it
// to dir, so that a failure leaves no partial output behind.
func writeOutDir(dir string, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// An existing empty folder is replaced.
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		os.RemoveAll(tmp)
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	return nil
}
