// Package imagefile turns image tensors into PNG files and back. Tensors are
// [C, H, W] with C = 1 (gray) or 3 (RGB) and values in [-1, 1], the range
// diffusion models work in; values outside are clipped. Files are written
// atomically, so a reader never sees a half-written PNG.
package imagefile

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"

	"tessera/internal/atomicfile"
	"tessera/tensor"
)

// ToImage converts a [C, H, W] tensor (C = 1 or 3) in [-1, 1] to an
// *image.Gray or *image.RGBA.
func ToImage(t *tensor.Tensor) (image.Image, error) {
	c, h, w, err := dims(t)
	if err != nil {
		return nil, err
	}
	d := t.Contiguous().Data()
	plane := h * w
	r := image.Rect(0, 0, w, h)
	if c == 1 {
		img := image.NewGray(r)
		for i := 0; i < plane; i++ {
			img.Pix[(i/w)*img.Stride+i%w] = toByte(d[i])
		}
		return img, nil
	}
	img := image.NewRGBA(r)
	for i := 0; i < plane; i++ {
		o := (i/w)*img.Stride + 4*(i%w)
		img.Pix[o] = toByte(d[i])
		img.Pix[o+1] = toByte(d[plane+i])
		img.Pix[o+2] = toByte(d[2*plane+i])
		img.Pix[o+3] = 255
	}
	return img, nil
}

func dims(t *tensor.Tensor) (c, h, w int, err error) {
	if t == nil || t.Rank() != 3 {
		var shape []int
		if t != nil {
			shape = t.Shape()
		}
		return 0, 0, 0, fmt.Errorf("image tensor: want [C, H, W], got shape %v", shape)
	}
	c, h, w = t.Dim(0), t.Dim(1), t.Dim(2)
	if c != 1 && c != 3 {
		return 0, 0, 0, fmt.Errorf("image tensor: want 1 or 3 channels, got shape %v", t.Shape())
	}
	if h < 1 || w < 1 {
		return 0, 0, 0, fmt.Errorf("image tensor: empty image of shape %v", t.Shape())
	}
	return c, h, w, nil
}

// toByte maps [-1, 1] to 0..255 with rounding; NaN becomes 0.
func toByte(v float32) uint8 {
	f := (float64(v) + 1) * 127.5
	if !(f > 0) {
		return 0
	}
	if f >= 255 {
		return 255
	}
	return uint8(math.Round(f))
}

// Grid lays out [C, H, W] images (all the same shape) in rows of cols
// images, with pad pixels of background (a value in [-1, 1]) around and
// between them, and returns the grid as one [C, H', W'] tensor.
func Grid(images []*tensor.Tensor, cols, pad int, background float32) (*tensor.Tensor, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("image grid: no images")
	}
	if cols < 1 || pad < 0 {
		return nil, fmt.Errorf("image grid: need cols >= 1 and pad >= 0, got %d and %d", cols, pad)
	}
	c, h, w, err := dims(images[0])
	if err != nil {
		return nil, fmt.Errorf("image grid: image 0: %w", err)
	}
	cols = min(cols, len(images))
	rows := (len(images) + cols - 1) / cols
	gh, gw := rows*(h+pad)+pad, cols*(w+pad)+pad
	out := tensor.Full(background, c, gh, gw)
	od := out.Data()
	for n, img := range images {
		if !tensor.SameShape(img, images[0]) {
			return nil, fmt.Errorf("image grid: image %d has shape %v, image 0 %v", n, img.Shape(), images[0].Shape())
		}
		d := img.Contiguous().Data()
		y0, x0 := pad+(n/cols)*(h+pad), pad+(n%cols)*(w+pad)
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				copy(od[ch*gh*gw+(y0+y)*gw+x0:], d[ch*h*w+y*w:ch*h*w+(y+1)*w])
			}
		}
	}
	return out, nil
}

// Encode writes t as a PNG to w.
func Encode(w io.Writer, t *tensor.Tensor) error {
	img, err := ToImage(t)
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// WritePNG writes t ([C, H, W] in [-1, 1]) to path as a PNG, atomically.
func WritePNG(path string, t *tensor.Tensor) error {
	img, err := ToImage(t)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// WriteGrid writes images as one grid PNG (see Grid) to path.
func WriteGrid(path string, images []*tensor.Tensor, cols, pad int) error {
	g, err := Grid(images, cols, pad, 1)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WritePNG(path, g)
}

// FromImage converts an image to a [C, H, W] tensor in [-1, 1]: C = 1 for
// gray images, else C = 3 (alpha is dropped).
func FromImage(img image.Image) *tensor.Tensor {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	if g, ok := img.(*image.Gray); ok {
		t := tensor.New(1, h, w)
		d := t.Data()
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				d[y*w+x] = fromByte(g.GrayAt(b.Min.X+x, b.Min.Y+y).Y)
			}
		}
		return t
	}
	t := tensor.New(3, h, w)
	d := t.Data()
	plane := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			d[y*w+x] = fromByte(c.R)
			d[plane+y*w+x] = fromByte(c.G)
			d[2*plane+y*w+x] = fromByte(c.B)
		}
	}
	return t
}

func fromByte(v uint8) float32 { return float32(v)/127.5 - 1 }

// Decode reads a PNG from r as a [C, H, W] tensor in [-1, 1].
func Decode(r io.Reader) (*tensor.Tensor, error) {
	img, err := png.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("decode png: %w", err)
	}
	return FromImage(img), nil
}

// ReadPNG reads the PNG at path as a [C, H, W] tensor in [-1, 1].
func ReadPNG(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	defer f.Close()
	t, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}
