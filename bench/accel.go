package bench

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
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
// relative wall time (left) and relative FLOPs (right), both x axes from
// 0 to 1.1 of the baseline. Baseline: black; fewer steps: red; plan
// caches: blue (residual reuse: light blue); scale-shift caches: green
// (residual reuse: light green; forecast: dark green, plan dark violet);
// dynamic caches: orange;
// FlexiDiT: purple; reversed FlexiDiT: pink; FlexiDiT with a cache: teal. Points
// of a kind are joined in order of x.
func PlotAccel(path string, r *AccelResult) error {
	colors := map[string]color.RGBA{"baseline": {0, 0, 0, 255}, "fewer-steps": {220, 30, 30, 255},
		"plan": {40, 80, 230, 255}, "ss": {20, 160, 60, 255}, "dynamic": {240, 140, 0, 255},
		"res-plan": {120, 170, 255, 255}, "res": {130, 210, 40, 255}, "fc-plan": {90, 60, 140, 255}, "fc": {0, 110, 60, 255},
		"flex": {150, 40, 200, 255}, "flex-reverse": {250, 110, 190, 255}, "flex+cache": {0, 170, 190, 255}}
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
	var series [2][]Series
	for panel := range series {
		byKind := map[string]*Series{}
		var order []string
		for _, p := range r.Points {
			k := kind(p)
			s, ok := byKind[k]
			if !ok {
				s = &Series{Color: colors[k]}
				byKind[k] = s
				order = append(order, k)
			}
			x := 1 / p.Speedup
			if panel == 1 {
				x = p.FLOPsFraction
			}
			s.X, s.Y = append(s.X, x), append(s.Y, p.FID)
		}
		for _, k := range order {
			s := byKind[k]
			idx := make([]int, len(s.X))
			for i := range idx {
				idx[i] = i
			}
			sort.Slice(idx, func(a, b int) bool { return s.X[idx[a]] < s.X[idx[b]] })
			sorted := Series{Color: s.Color}
			for _, i := range idx {
				sorted.X, sorted.Y = append(sorted.X, s.X[i]), append(sorted.Y, s.Y[i])
			}
			series[panel] = append(series[panel], sorted)
		}
	}
	return WritePlot(path, series[:]...)
}

// Series is one line of a plot.
type Series struct {
	X, Y  []float64
	Color color.RGBA
}

// WritePlot draws panels side by side (each 480×360 pixels, white, with a
// frame and ten grid divisions; axes span the data with 5% margins) and
// writes a PNG. Lines join a series' points in the order given, points
// are drawn as small squares. Axis values are in the JSON beside the
// plot; the PNG has no text.
func WritePlot(path string, panels ...[]Series) error {
	const w, h, pad = 480, 360, 30
	img := image.NewRGBA(image.Rect(0, 0, w*len(panels), h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	grid := color.RGBA{225, 225, 225, 255}
	for k, series := range panels {
		x0 := k * w
		minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, s := range series {
			for i := range s.X {
				if isFinite(s.X[i]) && isFinite(s.Y[i]) {
					minX, maxX = math.Min(minX, s.X[i]), math.Max(maxX, s.X[i])
					minY, maxY = math.Min(minY, s.Y[i]), math.Max(maxY, s.Y[i])
				}
			}
		}
		if minX > maxX {
			continue
		}
		if maxX == minX {
			maxX, minX = maxX+1, minX-1
		}
		if maxY == minY {
			maxY, minY = maxY+1, minY-1
		}
		dx, dy := (maxX-minX)*0.05, (maxY-minY)*0.05
		minX, maxX, minY, maxY = minX-dx, maxX+dx, minY-dy, maxY+dy
		px := func(x float64) int { return x0 + pad + int((x-minX)/(maxX-minX)*float64(w-2*pad)) }
		py := func(y float64) int { return h - pad - int((y-minY)/(maxY-minY)*float64(h-2*pad)) }
		for g := 0; g <= 10; g++ {
			gx := x0 + pad + g*(w-2*pad)/10
			gy := pad + g*(h-2*pad)/10
			line(img, gx, pad, gx, h-pad, grid)
			line(img, x0+pad, gy, x0+w-pad, gy, grid)
		}
		black := color.RGBA{0, 0, 0, 255}
		line(img, x0+pad, h-pad, x0+w-pad, h-pad, black)
		line(img, x0+pad, pad, x0+pad, h-pad, black)
		for _, s := range series {
			for i := range s.X {
				if !isFinite(s.X[i]) || !isFinite(s.Y[i]) {
					continue
				}
				x, y := px(s.X[i]), py(s.Y[i])
				if i > 0 && isFinite(s.X[i-1]) && isFinite(s.Y[i-1]) {
					line(img, px(s.X[i-1]), py(s.Y[i-1]), x, y, s.Color)
				}
				for a := -2; a <= 2; a++ {
					for b := -2; b <= 2; b++ {
						img.SetRGBA(x+a, y+b, s.Color)
					}
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

// writeJSONFile writes v as indented JSON.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// line draws a straight line with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
