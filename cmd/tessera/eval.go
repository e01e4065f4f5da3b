package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"tessera/classifier"
	"tessera/eval"
	"tessera/imagefile"
	"tessera/models"
)

func init() {
	register(&command{name: "eval", summary: "score a folder of generated digits: FID, KID, floor, class accuracy", run: runEval})
}

const evalAbout = `Scores the PNG images of a folder (as written by 'tessera generate') with
Tessera's MNIST classifier: FID and KID of its 128-d features against the
10,000 MNIST test images, the real-vs-real floor for the same number of
images (training images against test images), and, when the folder has
labels.json, the fraction classified as the class they were generated for.
FID here is not comparable with Inception-based FID.`

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "--dir DIR [flags]", evalAbout, stderr)
	dir := fs.String("dir", "", "folder of PNG images (required)")
	classifierRef := fs.String("classifier", "mnist-classifier", "classifier model (embedded name or folder)")
	dataDir := fs.String("data", "", "folder with MNIST's *-ubyte.gz files (default: the GoMNIST module)")
	asJSON := fs.Bool("json", false, "print JSON")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir is required")
	}
	setThreads(*threads)
	images, labels, err := readImageDir(*dir)
	if err != nil {
		return err
	}
	fsys, err := models.Open(*classifierRef)
	if err != nil {
		return err
	}
	net, err := classifier.Load(fsys, ".")
	if err != nil {
		return err
	}
	ev, err := eval.NewMNISTEvaluator(net, *dataDir, 0)
	if err != nil {
		return err
	}
	rep, err := ev.Evaluate(images, labels)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "n %d  FID %.3f (floor %.3f)  KID %.5f ± %.5f (floor %.5f)", rep.N, rep.FID, rep.FloorFID, rep.KID, rep.KIDStd, rep.FloorKID)
	if labels != nil {
		fmt.Fprintf(stdout, "  class accuracy %.2f%%", 100*rep.ClassAccuracy)
	}
	fmt.Fprintln(stdout)
	return nil
}

// readImageDir loads every NNNN.png of dir as a 1×32×32 image, in name
// order, and the labels from labels.json when present.
func readImageDir(dir string) ([][]float32, []int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".png") && e.Name() != "grid.png" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) < 2 {
		return nil, nil, fmt.Errorf("%s holds %d PNG images; need at least 2", dir, len(names))
	}
	images := make([][]float32, len(names))
	for i, n := range names {
		t, err := imagefile.ReadPNG(filepath.Join(dir, n))
		if err != nil {
			return nil, nil, err
		}
		if s := t.Shape(); len(s) != 3 || s[1] != 32 || s[2] != 32 {
			return nil, nil, fmt.Errorf("%s: image of shape %v, want 32×32", n, s)
		}
		d := t.Data()
		if t.Dim(0) == 3 { // RGB: average to gray
			g := make([]float32, 1024)
			for j := range g {
				g[j] = (d[j] + d[1024+j] + d[2048+j]) / 3
			}
			d = g
		}
		images[i] = d[:1024]
	}
	raw, err := os.ReadFile(filepath.Join(dir, "labels.json"))
	if os.IsNotExist(err) {
		return images, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("%s/labels.json: %w", dir, err)
	}
	labels := make([]int, len(names))
	for i, n := range names {
		l, ok := m[n]
		if !ok {
			return nil, nil, fmt.Errorf("%s/labels.json has no label for %s", dir, n)
		}
		labels[i] = l
	}
	return images, labels, nil
}
