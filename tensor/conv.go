package tensor

import (
	"fmt"

	"tessera/internal/gemm"
)

// convGeom is the geometry of a 2-d convolution of an image [C, H, W] with
// a kh×kw kernel: its column matrix is [C*kh*kw, Ho*Wo].
type convGeom struct {
	c, h, w, kh, kw, stride, pad, ho, wo int
}

func newConvGeom(op string, c, h, w, kh, kw, stride, pad int) convGeom {
	if stride < 1 || pad < 0 {
		panic(fmt.Sprintf("tensor.%s: stride %d, padding %d", op, stride, pad))
	}
	g := convGeom{c: c, h: h, w: w, kh: kh, kw: kw, stride: stride, pad: pad}
	g.ho = (h+2*pad-kh)/stride + 1
	g.wo = (w+2*pad-kw)/stride + 1
	if g.ho < 1 || g.wo < 1 {
		panic(fmt.Sprintf("tensor.%s: kernel %dx%d does not fit image %dx%d with padding %d", op, kh, kw, h, w, pad))
	}
	return g
}

func (g convGeom) rows() int { return g.c * g.kh * g.kw }
func (g convGeom) cols() int { return g.ho * g.wo }

// im2col writes the column matrix of img [C, H, W] into col.
func (g convGeom) im2col(col, img []float32) {
	n := g.cols()
	for c := 0; c < g.c; c++ {
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((c*g.kh+ky)*g.kw+kx)*n:][:n]
				for oy := 0; oy < g.ho; oy++ {
					y := oy*g.stride - g.pad + ky
					dst := row[oy*g.wo : (oy+1)*g.wo]
					if y < 0 || y >= g.h {
						clear(dst)
						continue
					}
					src := img[(c*g.h+y)*g.w:][:g.w]
					for ox := range dst {
						x := ox*g.stride - g.pad + kx
						if x < 0 || x >= g.w {
							dst[ox] = 0
						} else {
							dst[ox] = src[x]
						}
					}
				}
			}
		}
	}
}

// col2im adds the column matrix col back into img [C, H, W].
func (g convGeom) col2im(img, col []float32) {
	n := g.cols()
	for c := 0; c < g.c; c++ {
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				row := col[((c*g.kh+ky)*g.kw+kx)*n:][:n]
				for oy := 0; oy < g.ho; oy++ {
					y := oy*g.stride - g.pad + ky
					if y < 0 || y >= g.h {
						continue
					}
					dst := img[(c*g.h+y)*g.w:][:g.w]
					src := row[oy*g.wo : (oy+1)*g.wo]
					for ox, v := range src {
						x := ox*g.stride - g.pad + kx
						if x >= 0 && x < g.w {
							dst[x] += v
						}
					}
				}
			}
		}
	}
}

func biasData(op string, b *Tensor, n int) []float32 {
	if b == nil {
		return nil
	}
	if b.Numel() != n {
		panic(fmt.Sprintf("tensor.%s: bias of shape %v for %d channels", op, b.shape, n))
	}
	return b.Contiguous().Data()
}

func addChannelBias(out []float32, bias []float32, plane int) {
	if bias == nil {
		return
	}
	for i := 0; i < len(out); i += plane {
		v := bias[(i/plane)%len(bias)]
		p := out[i : i+plane]
		for j := range p {
			p[j] += v
		}
	}
}

// Conv2d convolves x [N, C, H, W] with w [O, C, kh, kw] (plus b [O] when
// non-nil) at the given stride and zero padding: [N, O, Ho, Wo]. It uses
// im2col and one GEMM per image.
func Conv2d(x, w, b *Tensor, stride, pad int) *Tensor {
	if x.Rank() != 4 || w.Rank() != 4 || w.shape[1] != x.shape[1] {
		panic(fmt.Sprintf("tensor.Conv2d: x %v and w %v do not fit", x.shape, w.shape))
	}
	n, o := x.shape[0], w.shape[0]
	g := newConvGeom("Conv2d", x.shape[1], x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, pad)
	xd, wd := x.Contiguous().Data(), w.Contiguous().Data()
	out := New(n, o, g.ho, g.wo)
	col := make([]float32, g.rows()*g.cols())
	img := g.c * g.h * g.w
	for i := 0; i < n; i++ {
		g.im2col(col, xd[i*img:(i+1)*img])
		gemm.Sgemm(false, false, o, g.cols(), g.rows(), 1, wd, g.rows(), col, g.cols(), 0, out.data[i*o*g.cols():], g.cols())
	}
	addChannelBias(out.data, biasData("Conv2d", b, o), g.cols())
	return out
}

// Conv2dBackward returns the gradients of Conv2d's x and w (each only when
// asked for, else nil) and of its bias, given the output gradient dy.
func Conv2dBackward(x, w, dy *Tensor, stride, pad int, needX, needW, needB bool) (dx, dw, db *Tensor) {
	n, o := x.shape[0], w.shape[0]
	g := newConvGeom("Conv2d", x.shape[1], x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, pad)
	xd, wd, gd := x.Contiguous().Data(), w.Contiguous().Data(), dy.Contiguous().Data()
	col := make([]float32, g.rows()*g.cols())
	img, plane := g.c*g.h*g.w, g.cols()
	if needX {
		dx = New(x.shape...)
	}
	if needW {
		dw = New(w.shape...)
	}
	for i := 0; i < n; i++ {
		gi := gd[i*o*plane:][:o*plane]
		if needW {
			g.im2col(col, xd[i*img:(i+1)*img])
			gemm.Sgemm(false, true, o, g.rows(), plane, 1, gi, plane, col, plane, 1, dw.data, g.rows())
		}
		if needX {
			gemm.Sgemm(true, false, g.rows(), plane, o, 1, wd, g.rows(), gi, plane, 0, col, plane)
			g.col2im(dx.data[i*img:(i+1)*img], col)
		}
	}
	if needB {
		db = channelSum(gd, n, o, plane)
	}
	return dx, dw, db
}

func channelSum(gd []float32, n, c, plane int) *Tensor {
	db := New(c)
	for i := 0; i < n*c; i++ {
		db.data[i%c] += sum64(gd[i*plane : (i+1)*plane])
	}
	return db
}

// ConvTranspose2d is the transpose (gradient) of Conv2d: x [N, Cin, H, W],
// w [Cin, Cout, kh, kw] (PyTorch layout), b [Cout] or nil, giving
// [N, Cout, (H-1)*stride - 2*pad + kh, (W-1)*stride - 2*pad + kw].
func ConvTranspose2d(x, w, b *Tensor, stride, pad int) *Tensor {
	if x.Rank() != 4 || w.Rank() != 4 || w.shape[0] != x.shape[1] {
		panic(fmt.Sprintf("tensor.ConvTranspose2d: x %v and w %v do not fit", x.shape, w.shape))
	}
	n, cin, co := x.shape[0], x.shape[1], w.shape[1]
	g := transGeom(x, w, stride, pad)
	xd, wd := x.Contiguous().Data(), w.Contiguous().Data()
	out := New(n, co, g.h, g.w)
	plane, img := g.cols(), co*g.h*g.w
	col := make([]float32, g.rows()*plane)
	for i := 0; i < n; i++ {
		gemm.Sgemm(true, false, g.rows(), plane, cin, 1, wd, g.rows(), xd[i*cin*plane:], plane, 0, col, plane)
		g.col2im(out.data[i*img:(i+1)*img], col)
	}
	addChannelBias(out.data, biasData("ConvTranspose2d", b, co), g.h*g.w)
	return out
}

// transGeom is the Conv2d geometry whose image is ConvTranspose2d's output
// and whose column grid is its input.
func transGeom(x, w *Tensor, stride, pad int) convGeom {
	kh, kw := w.shape[2], w.shape[3]
	ho := (x.shape[2]-1)*stride - 2*pad + kh
	wo := (x.shape[3]-1)*stride - 2*pad + kw
	if ho < 1 || wo < 1 {
		panic(fmt.Sprintf("tensor.ConvTranspose2d: empty output for x %v, w %v, stride %d, padding %d", x.shape, w.shape, stride, pad))
	}
	g := newConvGeom("ConvTranspose2d", w.shape[1], ho, wo, kh, kw, stride, pad)
	if g.ho != x.shape[2] || g.wo != x.shape[3] {
		panic(fmt.Sprintf("tensor.ConvTranspose2d: x %v, w %v, stride %d, padding %d are inconsistent", x.shape, w.shape, stride, pad))
	}
	return g
}

// ConvTranspose2dBackward returns the gradients of ConvTranspose2d's x, w
// and bias (each only when asked for, else nil) given the output gradient.
func ConvTranspose2dBackward(x, w, dy *Tensor, stride, pad int, needX, needW, needB bool) (dx, dw, db *Tensor) {
	n, cin, co := x.shape[0], x.shape[1], w.shape[1]
	g := transGeom(x, w, stride, pad)
	xd, wd, gd := x.Contiguous().Data(), w.Contiguous().Data(), dy.Contiguous().Data()
	plane, img := g.cols(), co*g.h*g.w
	col := make([]float32, g.rows()*plane)
	if needX {
		dx = New(x.shape...)
	}
	if needW {
		dw = New(w.shape...)
	}
	if needX || needW {
		for i := 0; i < n; i++ {
			g.im2col(col, gd[i*img:(i+1)*img])
			xi := xd[i*cin*plane:][:cin*plane]
			if needX {
				gemm.Sgemm(false, false, cin, plane, g.rows(), 1, wd, g.rows(), col, plane, 0, dx.data[i*cin*plane:], plane)
			}
			if needW {
				gemm.Sgemm(false, true, cin, g.rows(), plane, 1, xi, plane, col, plane, 1, dw.data, g.rows())
			}
		}
	}
	if needB {
		db = channelSum(gd, n, co, g.h*g.w)
	}
	return dx, dw, db
}

// Embedding gathers rows of table [V, D]: out[i] = table[ids[i]], [len(ids), D].
func Embedding(table *Tensor, ids []int) *Tensor {
	if table.Rank() != 2 {
		panic(fmt.Sprintf("tensor.Embedding: table of shape %v", table.shape))
	}
	v, d := table.shape[0], table.shape[1]
	out := New(len(ids), d)
	td := table.Contiguous().Data()
	for i, id := range ids {
		if id < 0 || id >= v {
			panic(fmt.Sprintf("tensor.Embedding: id %d out of range [0, %d)", id, v))
		}
		copy(out.data[i*d:(i+1)*d], td[id*d:(id+1)*d])
	}
	return out
}
