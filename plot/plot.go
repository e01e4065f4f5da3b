// Package plot draws line-and-point charts as PNG images: panels side by
// side, each with a title, axes with tick values, axis labels and a legend,
// in a small bitmap font, so that a sweep or a profile can be looked at
// rather than read from its JSON.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"tessera/internal/atomicfile"
)

// Series is one line of a panel: its points joined in the order given,
// each drawn as a small square.
type Series struct {
	Label string // legend entry; unlabelled series stay out of the legend
	X, Y  []float64
	Color color.RGBA
}

// Panel is one chart.
type Panel struct {
	Title, XLabel, YLabel string
	Series                []Series
}

// Panel geometry in pixels.
const (
	Width, Height = 520, 400
	left, right   = 62, 14
	top, bottom   = 40, 44
)

var (
	face  = basicfont.Face7x13
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{90, 90, 90, 255}
	grid  = color.RGBA{228, 228, 228, 255}
)

// Write draws the panels side by side (Width × Height pixels each) and
// writes them to path as a PNG, atomically: on error nothing is left
// behind.
func Write(path string, panels ...Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("plot %s: no panels", path)
	}
	img := Draw(panels...)
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// Draw renders the panels side by side on a white image.
func Draw(panels ...Panel) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, Width*max(len(panels), 1), Height))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for k, p := range panels {
		drawPanel(img, k*Width, p)
	}
	return img
}

func drawPanel(img *image.RGBA, x0 int, p Panel) {
	text(img, x0+Width/2, 16, p.Title, black, center)
	text(img, x0+left, top-8, p.YLabel, grey, leftAlign)
	text(img, x0+left+(Width-left-right)/2, Height-8, p.XLabel, grey, center)
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for i := range min(len(s.X), len(s.Y)) {
			if finite(s.X[i]) && finite(s.Y[i]) {
				minX, maxX = math.Min(minX, s.X[i]), math.Max(maxX, s.X[i])
				minY, maxY = math.Min(minY, s.Y[i]), math.Max(maxY, s.Y[i])
			}
		}
	}
	ax0, ax1, ay0, ay1 := x0+left, x0+Width-right, top, Height-bottom
	if minX > maxX { // nothing to draw
		frame(img, ax0, ay0, ax1, ay1)
		return
	}
	xs, minX, maxX := Ticks(minX, maxX)
	ys, minY, maxY := Ticks(minY, maxY)
	px := func(x float64) int { return ax0 + int(math.Round((x-minX)/(maxX-minX)*float64(ax1-ax0))) }
	py := func(y float64) int { return ay1 - int(math.Round((y-minY)/(maxY-minY)*float64(ay1-ay0))) }
	for _, v := range xs {
		x := px(v)
		line(img, x, ay0, x, ay1, grid)
		line(img, x, ay1, x, ay1+3, black)
		text(img, x, ay1+16, tickLabel(v, xs), black, center)
	}
	for _, v := range ys {
		y := py(v)
		line(img, ax0, y, ax1, y, grid)
		line(img, ax0-3, y, ax0, y, black)
		text(img, ax0-6, y+4, tickLabel(v, ys), black, rightAlign)
	}
	frame(img, ax0, ay0, ax1, ay1)
	for _, s := range p.Series {
		prev := false
		var lx, ly int
		for i := range min(len(s.X), len(s.Y)) {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				prev = false
				continue
			}
			x, y := px(s.X[i]), py(s.Y[i])
			if prev {
				line(img, lx, ly, x, y, s.Color)
			}
			square(img, x, y, 2, s.Color)
			lx, ly, prev = x, y, true
		}
	}
	legend(img, ax1-6, ay0+6, p.Series)
}

// legend lists the labelled series in a white box whose top-right corner
// is (x1, y0).
func legend(img *image.RGBA, x1, y0 int, series []Series) {
	const lineH, swatch = 14, 14
	var labels []Series
	wide := 0
	for _, s := range series {
		if s.Label != "" {
			labels = append(labels, s)
			wide = max(wide, font.MeasureString(face, s.Label).Ceil())
		}
	}
	if len(labels) == 0 {
		return
	}
	x0 := x1 - wide - swatch - 14
	y1 := y0 + len(labels)*lineH + 6
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
		}
	}
	frame(img, x0, y0, x1, y1)
	for i, s := range labels {
		cy := y0 + 4 + i*lineH + lineH/2
		line(img, x0+4, cy, x0+4+swatch, cy, s.Color)
		square(img, x0+4+swatch/2, cy, 2, s.Color)
		text(img, x0+swatch+9, cy+4, s.Label, black, leftAlign)
	}
}

// Ticks returns about five round tick values covering [lo, hi] (steps of
// 1, 2 or 5 times a power of ten) and the axis range they span, which
// includes lo and hi with a little margin.
func Ticks(lo, hi float64) (ticks []float64, axisLo, axisHi float64) {
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-d, hi+d
	}
	margin := (hi - lo) * 0.04
	lo, hi = lo-margin, hi+margin
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{2, 5, 10} {
		if raw/mag > m*0.75 {
			step = m * mag
		}
	}
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return ticks, lo, hi
}

// tickLabel formats v with as many decimals as the tick spacing needs.
func tickLabel(v float64, ticks []float64) string {
	dec := 0
	if len(ticks) > 1 {
		dec = max(0, -int(math.Floor(math.Log10(ticks[1]-ticks[0])+1e-9)))
	}
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

type align int

const (
	leftAlign align = iota
	center
	rightAlign
)

// text draws s with its baseline at y, aligned on x.
func text(img *image.RGBA, x, y int, s string, c color.RGBA, a align) {
	if s == "" {
		return
	}
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face}
	w := d.MeasureString(s).Ceil()
	switch a {
	case center:
		x -= w / 2
	case rightAlign:
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

func frame(img *image.RGBA, x0, y0, x1, y1 int) {
	line(img, x0, y0, x1, y0, black)
	line(img, x0, y1, x1, y1, black)
	line(img, x0, y0, x0, y1, black)
	line(img, x1, y0, x1, y1, black)
}

func square(img *image.RGBA, x, y, r int, c color.RGBA) {
	for a := -r; a <= r; a++ {
		for b := -r; b <= r; b++ {
			img.SetRGBA(x+a, y+b, c)
		}
	}
}

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

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
