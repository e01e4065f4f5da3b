package eval

import (
	"testing"

	"tessera/classifier"
	"tessera/data"
	"tessera/models"
)

func TestMNISTEvaluator(t *testing.T) {
	fsys, ok := models.Embedded("mnist-classifier")
	if !ok {
		t.Fatal("mnist-classifier is not embedded")
	}
	net, err := classifier.Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewMNISTEvaluator(net, "", 2000)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := data.LoadMNIST("", data.Train)
	const n = 300
	// Real digits score like the floor; noise scores far worse.
	real := make([][]float32, n)
	noise := make([][]float32, n)
	labels := make([]int, n)
	for i := range real {
		k := 59999 - i*7
		real[i] = train.Padded32(k, nil)
		labels[i] = train.Labels[k]
		noise[i] = make([]float32, 1024)
		for j := range noise[i] {
			noise[i][j] = float32((i*31+j*17)%200)/100 - 1
		}
	}
	good, err := e.Evaluate(real, labels)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := e.Evaluate(noise, labels)
	if err != nil {
		t.Fatal(err)
	}
	if good.ClassAccuracy < 0.97 {
		t.Errorf("class accuracy of real digits %.3f, want >= 0.97", good.ClassAccuracy)
	}
	if good.FID > 2*good.FloorFID+1 {
		t.Errorf("real digits FID %.3f, floor %.3f: want near the floor", good.FID, good.FloorFID)
	}
	if bad.FID < 10*good.FID {
		t.Errorf("noise FID %.3f not far above real digits' %.3f", bad.FID, good.FID)
	}
	if _, err := e.Evaluate(real[:1], nil); err == nil {
		t.Error("want an error for a single image")
	}
}
