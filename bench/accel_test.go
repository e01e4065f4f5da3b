package bench

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"tessera/imagegen"
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
	if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 360 {
		t.Fatalf("plot is %v, want two 480×360 panels", b)
	}
	// The scale-shift series is drawn in green somewhere.
	green := 0
	for y := 0; y < 360; y++ {
		for x := 0; x < 960; x++ {
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
