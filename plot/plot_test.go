package plot

import (
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{55.7, 123.6, []float64{60, 70, 80, 90, 100, 110, 120}},
		{0.25, 1.0, []float64{0.4, 0.6, 0.8, 1}},
		{3, 3, []float64{2, 2.5, 3, 3.5, 4}},
		{-0.01, 0.03, []float64{-0.01, 0, 0.01, 0.02, 0.03}},
	} {
		got, lo, hi := Ticks(tc.lo, tc.hi)
		if !(lo <= math.Min(tc.lo, tc.hi) && hi >= math.Max(tc.lo, tc.hi)) {
			t.Errorf("Ticks(%g, %g): axis [%g, %g] does not cover the data", tc.lo, tc.hi, lo, hi)
		}
		if len(got) != len(tc.want) {
			t.Errorf("Ticks(%g, %g) = %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 || got[i] < lo || got[i] > hi {
				t.Errorf("Ticks(%g, %g) = %v, want %v inside [%g, %g]", tc.lo, tc.hi, got, tc.want, lo, hi)
				break
			}
		}
	}
}

func TestTickLabel(t *testing.T) {
	for _, tc := range []struct {
		v     float64
		ticks []float64
		want  string
	}{
		{0.4, []float64{0.2, 0.4}, "0.4"},
		{60, []float64{60, 80}, "60"},
		{-0.01, []float64{-0.01, 0}, "-0.01"},
		{math.Copysign(0, -1), []float64{0, 5}, "0"},
	} {
		if got := tickLabel(tc.v, tc.ticks); got != tc.want {
			t.Errorf("tickLabel(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// The image has the panel's title, tick values and legend in dark text, the
// series in its colour, and nothing is left behind when writing fails.
func TestWrite(t *testing.T) {
	red := color.RGBA{220, 30, 30, 255}
	p := Panel{Title: "FID against FLOPs", XLabel: "FLOPs / baseline", YLabel: "FID",
		Series: []Series{{Label: "fewer steps", X: []float64{0.5, 0.625, 1}, Y: []float64{56.8, 56, 55.7}, Color: red}}}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.png")
	if err := Write(path, p, Panel{Title: "empty"}); err != nil {
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
	if b := img.Bounds(); b.Dx() != 2*Width || b.Dy() != Height {
		t.Fatalf("image %v, want two %d×%d panels", b, Width, Height)
	}
	count := func(x0, y0, x1, y1 int, match func(r, g, b uint32) bool) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if match(r>>8, g>>8, b>>8) {
					n++
				}
			}
		}
		return n
	}
	dark := func(r, g, b uint32) bool { return r < 60 && g < 60 && b < 60 }
	if n := count(0, 0, Width, 20, dark); n < 50 {
		t.Errorf("%d dark pixels in the title band: no title", n)
	}
	if n := count(0, top, left-6, Height-bottom, dark); n < 50 {
		t.Errorf("%d dark pixels left of the y axis: no tick values", n)
	}
	if n := count(left, Height-bottom+4, Width-right, Height-bottom+20, dark); n < 50 {
		t.Errorf("%d dark pixels under the x axis: no tick values", n)
	}
	if n := count(0, 0, Width, Height, func(r, g, b uint32) bool { return r == 220 && g == 30 && b == 30 }); n < 60 {
		t.Errorf("%d red pixels: the series or its legend swatch is missing", n)
	}
	// The second panel has no data: a title and an empty frame.
	if n := count(Width, 0, 2*Width, 20, dark); n < 10 {
		t.Errorf("%d dark pixels in the second title band", n)
	}

	bad := filepath.Join(dir, "missing", "p.png")
	if err := Write(bad, p); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
	if err := Write(filepath.Join(dir, "none.png")); err == nil {
		t.Error("a plot without panels was written")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after the failed writes, want only p.png", len(entries))
	}
}
