package classifier

import (
	"testing"

	"tessera/data"
	"tessera/models"
	"tessera/tensor"
)

func TestShippedAccuracy(t *testing.T) {
	fsys, ok := models.Embedded("mnist-classifier")
	if !ok {
		t.Fatal("mnist-classifier is not embedded")
	}
	net, err := Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.LoadMNIST("", data.Test)
	if err != nil {
		t.Fatal(err)
	}
	// The first 2,000 test images keep the test fast; the card reports all
	// 10,000.
	test.Images, test.Labels = test.Images[:2000], test.Labels[:2000]
	acc, err := net.Accuracy(test)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.985 {
		t.Fatalf("accuracy %.4f on 2,000 test images, want >= 0.985", acc)
	}
}

func TestClassifyRejectsBadImages(t *testing.T) {
	net, err := New(DefaultConfig(), tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Classify([][]float32{make([]float32, 100)}, 8); err == nil {
		t.Fatal("want an error for an image of the wrong size")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := DefaultConfig()
	bad.Arch = "resnet"
	if _, err := New(bad, tensor.NewRNG(1)); err == nil {
		t.Fatal("want an error for an unknown architecture")
	}
}

func TestShift(t *testing.T) {
	src := make([]float32, 1024)
	src[5*32+7] = 1
	dst := make([]float32, 1024)
	shift(dst, src, 2, -1) // moves right by 2 and up by 1; uncovered pixels become -1
	if dst[4*32+9] != 1 || dst[5*32+7] == 1 || dst[0] != -1 {
		t.Fatal("shift did not move the pixel by (+2, -1)")
	}
}
