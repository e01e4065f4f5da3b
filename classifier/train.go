package classifier

import (
	"context"
	"fmt"

	"tessera/autodiff"
	"tessera/data"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
	"tessera/train"
)

// TrainOptions configures Train.
type TrainOptions struct {
	Steps    int     // optimiser steps (default 2500)
	Batch    int     // images per step (default 128)
	LR       float32 // peak learning rate (default 2e-3)
	Seed     uint64
	Shift    int // random translation of up to ±Shift pixels (default 2)
	Progress progress.Options
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Steps == 0 {
		o.Steps = 2500
	}
	if o.Batch == 0 {
		o.Batch = 128
	}
	if o.LR == 0 {
		o.LR = 2e-3
	}
	if o.Shift == 0 {
		o.Shift = 2
	}
	return o
}

// Train fits a fresh classifier to the MNIST training split.
func Train(ctx context.Context, trainSet *data.MNIST, o TrainOptions) (*Net, error) {
	o = o.withDefaults()
	rng := tensor.NewRNG(o.Seed)
	net, err := New(DefaultConfig(), rng)
	if err != nil {
		return nil, err
	}
	params := nn.Trainable(net)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: o.LR, WeightDecay: 1e-4, DecayMatricesOnly: true})
	img := make([]float32, 1024)
	step := func(int) (float32, error) {
		x := tensor.New(o.Batch, 1, 32, 32)
		xd := x.Data()
		labels := make([]int, o.Batch)
		for i := range labels {
			k := rng.Intn(len(trainSet.Images))
			labels[i] = trainSet.Labels[k]
			img = trainSet.Padded32(k, img)
			dx, dy := rng.Intn(2*o.Shift+1)-o.Shift, rng.Intn(2*o.Shift+1)-o.Shift
			shift(xd[i*1024:(i+1)*1024], img, dx, dy)
		}
		g := autodiff.NewGraph()
		defer g.Release()
		logits, _ := net.Forward(g, autodiff.Const(x))
		loss := g.CrossEntropy(logits, labels)
		if err := g.Backward(loss); err != nil {
			return 0, err
		}
		return loss.Value.Data()[0], nil
	}
	prog := o.Progress
	if prog.Label == "" {
		prog.Label = "classifier"
	}
	loop := &train.Loop{
		Steps:     o.Steps,
		Step:      step,
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: o.LR, Final: o.LR / 50, Warmup: o.Steps / 20, Total: o.Steps},
		Progress:  prog,
	}
	if _, err := loop.Run(ctx); err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	return net, nil
}

// shift copies a 32×32 image translated by (dx, dy), filling with the
// background value -1.
func shift(dst, src []float32, dx, dy int) {
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			sx, sy := x-dx, y-dy
			v := float32(-1)
			if sx >= 0 && sx < 32 && sy >= 0 && sy < 32 {
				v = src[sy*32+sx]
			}
			dst[y*32+x] = v
		}
	}
}

// Accuracy returns the fraction of set's images the network labels
// correctly.
func (n *Net) Accuracy(set *data.MNIST) (float64, error) {
	imgs := make([][]float32, len(set.Images))
	for i := range imgs {
		imgs[i] = set.Padded32(i, nil)
	}
	res, err := n.Classify(imgs, 500)
	if err != nil {
		return 0, err
	}
	correct := 0
	for i, p := range res.Pred {
		if p == set.Labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(len(imgs)), nil
}
