package eval

import (
	"fmt"

	"tessera/classifier"
	"tessera/data"
)

// MNISTReport is the quality of a set of generated 32×32 digits measured
// with Tessera's MNIST classifier.
type MNISTReport struct {
	N int `json:"n"` // generated images
	// FID and KID of the generated images against the 10,000 MNIST test
	// images, on the classifier's 128-d features.
	FID    float64 `json:"fid"`
	KID    float64 `json:"kid"`
	KIDStd float64 `json:"kid_std"`
	// FloorFID and FloorKID are the same measures for N real training
	// images against the test images: the best a generator can score at N.
	FloorFID float64 `json:"floor_fid"`
	FloorKID float64 `json:"floor_kid"`
	// ClassAccuracy is the fraction of images the classifier assigns to the
	// class they were generated for (when labels are given).
	ClassAccuracy float64 `json:"class_accuracy,omitempty"`
	Note          string  `json:"note"`
}

// MNISTEvaluator holds the classifier and the test set's features, so that
// many sets of samples can be scored against the same reference.
type MNISTEvaluator struct {
	Net   *classifier.Net
	test  *Features
	train *data.MNIST
}

// NewMNISTEvaluator extracts the features of the MNIST test split with net.
// dataDir is passed to data.LoadMNIST ("" finds the GoMNIST module).
// reference limits the test images used (0 means all 10,000, the setting
// every reported number uses).
func NewMNISTEvaluator(net *classifier.Net, dataDir string, reference int) (*MNISTEvaluator, error) {
	test, err := data.LoadMNIST(dataDir, data.Test)
	if err != nil {
		return nil, err
	}
	train, err := data.LoadMNIST(dataDir, data.Train)
	if err != nil {
		return nil, err
	}
	var idx []int
	if reference > 0 && reference < len(test.Images) {
		idx = make([]int, reference)
		for i := range idx {
			idx[i] = i
		}
	}
	feats, err := features(net, test, idx)
	if err != nil {
		return nil, err
	}
	return &MNISTEvaluator{Net: net, test: feats, train: train}, nil
}

func features(net *classifier.Net, set *data.MNIST, idx []int) (*Features, error) {
	if idx == nil {
		idx = make([]int, len(set.Images))
		for i := range idx {
			idx[i] = i
		}
	}
	imgs := make([][]float32, len(idx))
	for i, k := range idx {
		imgs[i] = set.Padded32(k, nil)
	}
	res, err := net.Classify(imgs, 500)
	if err != nil {
		return nil, err
	}
	return NewFeatures(res.Features)
}

// Evaluate scores images (each 1024 values in [-1, 1]); labels, when
// non-nil, are the classes the images were generated for.
func (e *MNISTEvaluator) Evaluate(images [][]float32, labels []int) (*MNISTReport, error) {
	if len(images) < 2 {
		return nil, fmt.Errorf("evaluate: need at least 2 images (have %d)", len(images))
	}
	if labels != nil && len(labels) != len(images) {
		return nil, fmt.Errorf("evaluate: %d labels for %d images", len(labels), len(images))
	}
	res, err := e.Net.Classify(images, 500)
	if err != nil {
		return nil, err
	}
	gen, err := NewFeatures(res.Features)
	if err != nil {
		return nil, err
	}
	n := len(images)
	r := &MNISTReport{N: n, Note: "FID/KID on Tessera's MNIST classifier features (128-d), against the 10,000 test images; not comparable with Inception FID"}
	if r.FID, err = FID(gen, e.test); err != nil {
		return nil, err
	}
	kid, err := KID(gen, e.test, 20, min(1000, n), 1)
	if err != nil {
		return nil, err
	}
	r.KID, r.KIDStd = kid.Mean, kid.Std
	// The floor: n training images (a fixed, evenly spread subset).
	idx := make([]int, min(n, len(e.train.Images)))
	for i := range idx {
		idx[i] = i * len(e.train.Images) / len(idx)
	}
	real, err := features(e.Net, e.train, idx)
	if err != nil {
		return nil, err
	}
	if r.FloorFID, err = FID(real, e.test); err != nil {
		return nil, err
	}
	fk, err := KID(real, e.test, 20, min(1000, n), 1)
	if err != nil {
		return nil, err
	}
	r.FloorKID = fk.Mean
	if labels != nil {
		ok := 0
		for i, p := range res.Pred {
			if p == labels[i] {
				ok++
			}
		}
		r.ClassAccuracy = float64(ok) / float64(n)
	}
	return r, nil
}
