package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"tessera/dit"
	"tessera/eval"
	"tessera/flexidit"
	"tessera/imagegen"
	"tessera/internal/atomicfile"
	"tessera/plot"
)

// AccelOptions configures Accel: sweeps of the block cache's threshold on
// the same seeds as the unaccelerated baseline, with baselines of fewer
// steps for equal-wall-time comparisons.
type AccelOptions struct {
	Model     *dit.Model
	ModelName string
	Evaluator *eval.MNISTEvaluator
	N         int     // images per run (same seeds in every run)
	Seed      uint64  // first seed
	Steps     int     // baseline steps (default 32)
	Sampler   string  // default euler
	CFG       float64 // default 2, generate's
	Batch     int     // default 64
	// Cache runs: each a --cache spec ("ss:0.1", "plan:0.1", "dynamic:0.2").
	Cache []string
	// Flex runs, when Flexi is set: "T_weak[,reverse][,weak-guidance]",
	// optionally followed by "+" and a cache spec to combine both.
	Flex  []string
	Flexi *flexidit.Model
	// FewerSteps are the step counts of the fewer-steps baselines.
	FewerSteps []int
	// CacheDir stores profiles and plans (default blockcache.DefaultDir()).
	CacheDir string
	// TimeRounds, when positive, times every run again on the first
	// TimeN images (default min(N, 256)) in that many interleaved rounds,
	// each round over all runs in a rotated order, and reports each run's
	// best time: the quality runs, one after another, time a shared
	// machine's drift as much as the method.
	TimeRounds, TimeN int
	// Out, when set, receives accel.json and accel.png.
	Out string
	Log func(msg string)
}

// AccelPoint is one run of the sweep.
type AccelPoint struct {
	Name          string  `json:"name"`
	Kind          string  `json:"kind"` // baseline, fewer-steps, cache
	Steps         int     `json:"steps"`
	WallSeconds   float64 `json:"wall_seconds"`
	Speedup       float64 `json:"speedup"` // baseline wall / this wall
	FLOPs         float64 `json:"flops"`
	FLOPsFraction float64 `json:"flops_fraction"` // of the baseline
	NetworkEvals  int     `json:"network_evals"`
	BlockEvals    int     `json:"block_evals"`
	FID           float64 `json:"fid"`
	FIDRatio      float64 `json:"fid_ratio"` // this FID / baseline FID
	KID           float64 `json:"kid"`
	KIDStd        float64 `json:"kid_std"`
	ClassAccuracy float64 `json:"class_accuracy"`
	// RoundSeconds are the timing rounds' wall times (TimeRounds), in
	// round order; WallSeconds is then their minimum.
	RoundSeconds []float64 `json:"round_seconds,omitempty"`
	// PSNR is the mean PSNR (dB) to the baseline's image of the same seed.
	PSNR  float64               `json:"psnr"`
	Cache *imagegen.CacheReport `json:"cache,omitempty"`
	Flex  *imagegen.FlexReport  `json:"flex,omitempty"`
}

// AccelResult is the whole sweep.
type AccelResult struct {
	Model    string  `json:"model"`
	N        int     `json:"n"`
	Sampler  string  `json:"sampler"`
	CFG      float64 `json:"cfg"`
	FloorFID float64 `json:"floor_fid"`
	// TimedN and TimeRounds describe the timing rounds (0: each run's
	// wall time is its quality run's, over N images).
	TimedN     int          `json:"timed_n,omitempty"`
	TimeRounds int          `json:"time_rounds,omitempty"`
	Points     []AccelPoint `json:"points"`
	Note       string       `json:"note"`
}

// Accel runs the baseline, the fewer-steps baselines and every cache
// setting on the same seeds, and scores each with the evaluator. The
// baseline is timed before and after the sweep and the mean is the
// reference, so slow drift in the machine's load biases no side; with
// TimeRounds, every run's wall time (the baseline's too) is instead its
// best over the interleaved timing rounds. Plans and profiles are
// prepared before any timed run.
func Accel(o AccelOptions) (*AccelResult, error) {
	if o.Model == nil || o.Evaluator == nil || o.N < 2 {
		return nil, fmt.Errorf("bench accel: need a model, an evaluator and n >= 2")
	}
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.Sampler == "" {
		o.Sampler = "euler"
	}
	if o.CFG == 0 {
		o.CFG = 2
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(format, a...))
		}
	}
	gen := imagegen.GenerateOptions{N: o.N, Seed: o.Seed, Steps: o.Steps, Sampler: o.Sampler, CFG: o.CFG, Batch: o.Batch}
	labels := make([]int, o.N)
	for i := range labels {
		labels[i] = i % max(o.Model.Config.NumClasses, 1)
	}
	caches := make([]imagegen.CacheOptions, len(o.Cache))
	for i, spec := range o.Cache {
		c, err := imagegen.ParseCache(spec)
		if err != nil {
			return nil, err
		}
		c.Dir, c.Log = o.CacheDir, o.Log
		if c.Mode == "plan" || c.Mode == "ss" {
			if _, _, err := imagegen.CachePlan(o.Model, gen, c); err != nil {
				return nil, err
			}
		}
		caches[i] = c
	}
	res := &AccelResult{Model: o.ModelName, N: o.N, Sampler: o.Sampler, CFG: o.CFG,
		Note: "same seeds in every run; FID on Tessera's MNIST classifier features (not Inception FID); wall times from one sweep on a shared machine"}
	var base [][]float32
	var runAccel func(name, kind string, g imagegen.GenerateOptions, acc imagegen.AccelOptions) (AccelPoint, [][]float32, error)
	type flexRun struct {
		name string
		acc  imagegen.AccelOptions
	}
	var flexRuns []flexRun
	for _, spec := range o.Flex {
		if o.Flexi == nil {
			return nil, fmt.Errorf("bench accel: flex runs need a flexified model")
		}
		fs, cs, _ := strings.Cut(spec, "+")
		f, err := imagegen.ParseFlex(fs)
		if err != nil {
			return nil, err
		}
		f.Model = o.Flexi
		a := imagegen.AccelOptions{Flex: &f}
		if cs != "" {
			if a.Cache, err = imagegen.ParseCache(cs); err != nil {
				return nil, err
			}
			a.Cache.Dir, a.Cache.Log = o.CacheDir, o.Log
			if a.Cache.Mode == "plan" || a.Cache.Mode == "ss" {
				if _, _, err := imagegen.CachePlan(o.Model, gen, a.Cache); err != nil {
					return nil, err
				}
			}
		}
		flexRuns = append(flexRuns, flexRun{"flex-" + spec, a})
	}
	run := func(name, kind string, g imagegen.GenerateOptions, c imagegen.CacheOptions) (AccelPoint, [][]float32, error) {
		return runAccel(name, kind, g, imagegen.AccelOptions{Cache: c})
	}
	type job struct {
		g   imagegen.GenerateOptions
		acc imagegen.AccelOptions
	}
	var jobs []job // in the order of points, the baseline first
	runAccel = func(name, kind string, g imagegen.GenerateOptions, acc imagegen.AccelOptions) (AccelPoint, [][]float32, error) {
		logf("bench accel: %s", name)
		jobs = append(jobs, job{g, acc})
		imgs, st, err := imagegen.GenerateAccel(o.Model, g, acc)
		if err != nil {
			return AccelPoint{}, nil, fmt.Errorf("bench accel %s: %w", name, err)
		}
		flat := make([][]float32, len(imgs))
		for i, im := range imgs {
			flat[i] = im.Data()
		}
		rep, err := o.Evaluator.Evaluate(flat, labels)
		if err != nil {
			return AccelPoint{}, nil, fmt.Errorf("bench accel %s: %w", name, err)
		}
		res.FloorFID = rep.FloorFID
		p := AccelPoint{Name: name, Kind: kind, Steps: g.Steps, WallSeconds: st.WallSeconds, FLOPs: st.FLOPs,
			NetworkEvals: st.NetworkEvals, BlockEvals: st.BlockEvals, FID: rep.FID, KID: rep.KID, KIDStd: rep.KIDStd,
			ClassAccuracy: rep.ClassAccuracy, Cache: st.Cache, Flex: st.Flex}
		if base != nil {
			sum := 0.0
			for i := range flat {
				v, err := eval.PSNR(flat[i], base[i])
				if err != nil {
					return AccelPoint{}, nil, err
				}
				sum += math.Min(v, 100)
			}
			p.PSNR = sum / float64(len(flat))
		}
		return p, flat, nil
	}
	b0, flat, err := run(fmt.Sprintf("baseline-%d", o.Steps), "baseline", gen, imagegen.CacheOptions{})
	if err != nil {
		return nil, err
	}
	base = flat
	b0.PSNR = math.Inf(1)
	points := []AccelPoint{}
	for _, k := range o.FewerSteps {
		g := gen
		g.Steps = k
		p, _, err := run(fmt.Sprintf("steps-%d", k), "fewer-steps", g, imagegen.CacheOptions{})
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	for i, c := range caches {
		p, _, err := run("cache-"+o.Cache[i], "cache", gen, c)
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	for _, fr := range flexRuns {
		kind := "flex"
		if fr.acc.Cache.Mode != "" {
			kind = "flex+cache"
		}
		p, _, err := runAccel(fr.name, kind, gen, fr.acc)
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	b1, _, err := run(fmt.Sprintf("baseline-%d", o.Steps), "baseline", gen, imagegen.CacheOptions{})
	if err != nil {
		return nil, err
	}
	wall := (b0.WallSeconds + b1.WallSeconds) / 2
	b0.WallSeconds = wall
	b0.PSNR = 0
	points = append([]AccelPoint{b0}, points...)
	if o.TimeRounds > 0 {
		tn := o.TimeN
		if tn <= 0 {
			tn = min(o.N, 256)
		}
		jobs = jobs[:len(points)] // less the closing baseline run
		for r := range o.TimeRounds {
			for k := range jobs {
				i := (k + r) % len(jobs)
				g := jobs[i].g
				g.N = tn
				logf("bench accel: timing round %d/%d: %s", r+1, o.TimeRounds, points[i].Name)
				_, st, err := imagegen.GenerateAccel(o.Model, g, jobs[i].acc)
				if err != nil {
					return nil, fmt.Errorf("bench accel: timing %s: %w", points[i].Name, err)
				}
				points[i].RoundSeconds = append(points[i].RoundSeconds, st.WallSeconds)
			}
		}
		for i := range points {
			points[i].WallSeconds = slices.Min(points[i].RoundSeconds)
		}
		wall = points[0].WallSeconds
		res.TimedN, res.TimeRounds = tn, o.TimeRounds
	}
	for i := range points {
		p := &points[i]
		p.Speedup = wall / p.WallSeconds
		p.FLOPsFraction = p.FLOPs / b0.FLOPs
		p.FIDRatio = p.FID / b0.FID
	}
	res.Points = points
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, fmt.Errorf("bench accel: %w", err)
		}
		if err := writeJSONFile(filepath.Join(o.Out, "accel.json"), res); err != nil {
			return nil, err
		}
		if err := PlotAccel(filepath.Join(o.Out, "accel.png"), res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// PlotAccel draws the sweep: two panels side by side, FID (y) against
// wall time (left) and FLOPs (right), both relative to the baseline, one
// coloured series per kind of run (baseline, fewer steps, each cache mode,
// FlexiDiT, reversed FlexiDiT, FlexiDiT with a cache), its points joined
// in order of x, with a legend.
func PlotAccel(path string, r *AccelResult) error {
	type style struct {
		label string
		color color.RGBA
	}
	styles := map[string]style{
		"baseline":     {"baseline", color.RGBA{0, 0, 0, 255}},
		"fewer-steps":  {"fewer steps", color.RGBA{220, 30, 30, 255}},
		"plan":         {"cache plan", color.RGBA{40, 80, 230, 255}},
		"ss":           {"cache ss (scale-shift)", color.RGBA{20, 160, 60, 255}},
		"dynamic":      {"cache dynamic", color.RGBA{240, 140, 0, 255}},
		"res-plan":     {"cache res-plan", color.RGBA{120, 170, 255, 255}},
		"res":          {"cache res", color.RGBA{130, 210, 40, 255}},
		"fc-plan":      {"cache fc-plan", color.RGBA{90, 60, 140, 255}},
		"fc":           {"cache fc (forecast)", color.RGBA{0, 110, 60, 255}},
		"flex":         {"FlexiDiT", color.RGBA{150, 40, 200, 255}},
		"flex-reverse": {"FlexiDiT reversed", color.RGBA{250, 110, 190, 255}},
		"flex+cache":   {"FlexiDiT + cache", color.RGBA{0, 170, 190, 255}},
	}
	kind := func(p AccelPoint) string {
		if p.Flex != nil && p.Flex.Reverse {
			return "flex-reverse"
		}
		if p.Flex != nil {
			return p.Kind
		}
		if p.Cache != nil {
			return p.Cache.Mode
		}
		return p.Kind
	}
	panels := []plot.Panel{
		{Title: fmt.Sprintf("%s, n = %d: FID against wall time", r.Model, r.N), XLabel: "wall time / baseline", YLabel: "FID"},
		{Title: "FID against FLOPs", XLabel: "FLOPs / baseline", YLabel: "FID"},
	}
	for k := range panels {
		byKind := map[string]*plot.Series{}
		var order []string
		for _, p := range r.Points {
			kd := kind(p)
			s, ok := byKind[kd]
			if !ok {
				st, known := styles[kd]
				if !known {
					st = style{kd, color.RGBA{128, 128, 128, 255}}
				}
				s = &plot.Series{Label: st.label, Color: st.color}
				byKind[kd] = s
				order = append(order, kd)
			}
			x := 1 / p.Speedup
			if k == 1 {
				x = p.FLOPsFraction
			}
			s.X, s.Y = append(s.X, x), append(s.Y, p.FID)
		}
		for _, kd := range order {
			s := byKind[kd]
			idx := make([]int, len(s.X))
			for i := range idx {
				idx[i] = i
			}
			sort.Slice(idx, func(a, b int) bool { return s.X[idx[a]] < s.X[idx[b]] })
			sorted := plot.Series{Label: s.Label, Color: s.Color}
			for _, i := range idx {
				sorted.X, sorted.Y = append(sorted.X, s.X[i]), append(sorted.Y, s.Y[i])
			}
			panels[k].Series = append(panels[k].Series, sorted)
		}
	}
	return plot.Write(path, panels...)
}

// writeJSONFile writes v as indented JSON, atomically.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
