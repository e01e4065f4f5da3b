package imagefile

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"tessera/tensor"
)

func TestPNGRoundTrip(t *testing.T) {
	rng := tensor.NewRNG(7)
	cases := []struct {
		name    string
		c, h, w int
	}{{"gray", 1, 5, 7}, {"rgb", 3, 4, 9}, {"one pixel", 3, 1, 1}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := rng.Uniform(-1, 1, c.c, c.h, c.w)
			path := filepath.Join(t.TempDir(), "x.png")
			if err := WritePNG(path, img); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPNG(path)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(got, img) {
				t.Fatalf("shape %v, want %v", got.Shape(), img.Shape())
			}
			for i, v := range img.Data() {
				// One 8-bit level is 2/255; rounding keeps within half of it.
				if d := math.Abs(float64(got.Data()[i] - v)); d > 1.0/255+1e-6 {
					t.Fatalf("pixel %d: %g after round trip, want %g", i, got.Data()[i], v)
				}
			}
		})
	}
}

func TestValuesClipAndMapEnds(t *testing.T) {
	img := tensor.FromData([]float32{-5, -1, 0, 1, 7, float32(math.NaN())}, 1, 1, 6)
	im, err := ToImage(img)
	if err != nil {
		t.Fatal(err)
	}
	back := FromImage(im).Data()
	want := []float32{-1, -1, fromByte(128), 1, 1, -1}
	for i := range want {
		if back[i] != want[i] {
			t.Errorf("value %g -> %g, want %g", img.Data()[i], back[i], want[i])
		}
	}
}

func TestGridLayout(t *testing.T) {
	var imgs []*tensor.Tensor
	for i := 0; i < 5; i++ {
		imgs = append(imgs, tensor.Full(float32(i)/5-0.5, 1, 2, 3))
	}
	g, err := Grid(imgs, 3, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 2 rows of 3 columns: height 2·(2+1)+1, width 3·(3+1)+1.
	if got := g.Shape(); got[0] != 1 || got[1] != 7 || got[2] != 13 {
		t.Fatalf("grid shape %v, want [1 7 13]", got)
	}
	for n := range imgs {
		y, x := 1+(n/3)*3, 1+(n%3)*4
		if v := g.At(0, y+1, x+2); v != imgs[n].At(0, 1, 2) {
			t.Errorf("image %d corner: %g, want %g", n, v, imgs[n].At(0, 1, 2))
		}
	}
	if g.At(0, 0, 0) != 1 || g.At(0, 4, 12) != 1 || g.At(0, 5, 10) != 1 {
		t.Error("padding and the empty sixth cell should hold the background")
	}
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := WriteGrid(path, imgs, 3, 1); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPNG(path)
	if err != nil || !tensor.SameShape(back, g) {
		t.Fatalf("grid PNG read back: %v, %v", err, back)
	}
}

func TestErrorsLeaveNothingBehind(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.png")
	for _, bad := range []*tensor.Tensor{tensor.New(2, 4, 4), tensor.New(4, 4), nil} {
		if err := WritePNG(path, bad); err == nil {
			t.Errorf("shape %v accepted", bad)
		}
	}
	if _, err := Grid([]*tensor.Tensor{tensor.New(1, 2, 2), tensor.New(1, 3, 2)}, 2, 0, 0); err == nil {
		t.Error("grid of mixed shapes accepted")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left after failed writes: %v", entries)
	}
	if _, err := ReadPNG(filepath.Join(dir, "missing.png")); err == nil {
		t.Error("missing file read without error")
	}
}
