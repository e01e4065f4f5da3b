package bench

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"tessera/classifier"
	"tessera/dit"
	"tessera/eval"
	"tessera/flexidit"
	"tessera/imagegen"
	"tessera/models"
	"tessera/plot"
)

func TestPlotAccel(t *testing.T) {
	r := &AccelResult{Points: []AccelPoint{
		{Kind: "baseline", Speedup: 1, FLOPsFraction: 1, FID: 10},
		{Kind: "fewer-steps", Speedup: 2, FLOPsFraction: 0.5, FID: 14},
		{Kind: "cache", Speedup: 1.8, FLOPsFraction: 0.45, FID: 10.5, Cache: &imagegen.CacheReport{Mode: "ss"}},
		{Kind: "cache", Speedup: 2.5, FLOPsFraction: 0.3, FID: 12, Cache: &imagegen.CacheReport{Mode: "ss"}},
	}}
	path := filepath.Join(t.TempDir(), "accel.png")
	if err := PlotAccel(path, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 2*plot.Width || b.Dy() != plot.Height {
		t.Fatalf("plot is %v, want two %d×%d panels", b, plot.Width, plot.Height)
	}
	// The scale-shift series is drawn in green somewhere.
	green := 0
	for y := 0; y < plot.Height; y++ {
		for x := 0; x < 2*plot.Width; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r>>8 == 20 && g>>8 == 160 && b>>8 == 60 {
				green++
			}
		}
	}
	if green < 20 {
		t.Errorf("%d green pixels: the scale-shift series is missing", green)
	}
}

// Timing rounds time every run again, interleaved, and report the best.
func TestAccelTimingRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("loads MNIST")
	}
	fsys, err := models.Open("mnist")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dit.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	cfsys, err := models.Open("mnist-classifier")
	if err != nil {
		t.Fatal(err)
	}
	net, err := classifier.Load(cfsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := eval.NewMNISTEvaluator(net, "", 200)
	if err != nil {
		t.Fatal(err)
	}
	f, err := flexidit.Open(m, "mnist-flex")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Accel(AccelOptions{Model: m, Evaluator: ev, N: 12, Steps: 4, FewerSteps: []int{2}, Flex: []string{"2"}, Flexi: f,
		Batch: 6, TimeRounds: 2, TimeN: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.TimedN != 3 || r.TimeRounds != 2 || len(r.Points) != 3 {
		t.Fatalf("timed n %d, rounds %d, %d points; want 3, 2, 3", r.TimedN, r.TimeRounds, len(r.Points))
	}
	for _, p := range r.Points {
		if len(p.RoundSeconds) != 2 || p.WallSeconds != min(p.RoundSeconds[0], p.RoundSeconds[1]) || !(p.WallSeconds > 0) {
			t.Errorf("%s: wall %g from rounds %v", p.Name, p.WallSeconds, p.RoundSeconds)
		}
		if want := r.Points[0].WallSeconds / p.WallSeconds; math.Abs(p.Speedup-want) > 1e-12 {
			t.Errorf("%s: speed-up %g, want %g", p.Name, p.Speedup, want)
		}
	}
	if r.Points[2].Flex == nil || r.Points[2].Flex.WeakSteps != 2 || !(r.Points[2].FLOPsFraction < 1) {
		t.Errorf("flex point %+v", r.Points[2])
	}
}
