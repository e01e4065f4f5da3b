// Package classifier is Tessera's MNIST classifier: a small CNN trained in Go
// whose penultimate layer gives the features for FID and KID, and whose
// predictions give the class accuracy of conditional samples.
//
//	input [B, 1, 32, 32] in [-1, 1] (MNIST padded by 2)
//	conv1 3×3, 1→32, SiLU            [B, 32, 32, 32]
//	conv2 4×4 stride 2, 32→64, SiLU  [B, 64, 16, 16]
//	conv3 4×4 stride 2, 64→64, SiLU  [B, 64, 8, 8]
//	fc    4096→128, SiLU             features [B, 128]
//	head  128→10                     logits [B, 10]
package classifier

import (
	"fmt"
	"io/fs"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
)

// Config is the classifier's config.json.
type Config struct {
	Arch       string `json:"arch"` // "mnist-cnn"
	ImageSize  int    `json:"image_size"`
	Features   int    `json:"features"`
	NumClasses int    `json:"num_classes"`
}

// DefaultConfig is the shipped architecture.
func DefaultConfig() Config {
	return Config{Arch: "mnist-cnn", ImageSize: 32, Features: 128, NumClasses: 10}
}

// Validate reports the first unsupported setting.
func (c Config) Validate() error {
	if c.Arch != "mnist-cnn" {
		return fmt.Errorf("classifier: arch %q is not supported (want mnist-cnn)", c.Arch)
	}
	if c.ImageSize != 32 || c.Features < 1 || c.NumClasses < 2 {
		return fmt.Errorf("classifier: need image_size 32, features >= 1, num_classes >= 2 (have %d, %d, %d)", c.ImageSize, c.Features, c.NumClasses)
	}
	return nil
}

// Net is the CNN.
type Net struct {
	Config Config
	Conv1  *nn.Conv2d `safetensors:"conv1"`
	Conv2  *nn.Conv2d `safetensors:"conv2"`
	Conv3  *nn.Conv2d `safetensors:"conv3"`
	FC     *nn.Linear `safetensors:"fc"`
	Head   *nn.Linear `safetensors:"head"`
}

// New returns a freshly initialised network.
func New(cfg Config, rng *tensor.RNG) (*Net, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Net{
		Config: cfg,
		Conv1:  nn.NewConv2d(rng, 1, 32, 3, 1, 1, true),
		Conv2:  nn.NewConv2d(rng, 32, 64, 4, 2, 1, true),
		Conv3:  nn.NewConv2d(rng, 64, 64, 4, 2, 1, true),
		FC:     nn.NewLinear(rng, 64*8*8, cfg.Features, true),
		Head:   nn.NewLinear(rng, cfg.Features, cfg.NumClasses, true),
	}, nil
}

// Forward maps images x [B, 1, 32, 32] to logits [B, classes] and the
// features [B, Features] they are computed from.
func (n *Net) Forward(g *autodiff.Graph, x *autodiff.Var) (logits, features *autodiff.Var) {
	h := g.SiLU(n.Conv1.Forward(g, x)) // [B, 32, 32, 32]
	h = g.SiLU(n.Conv2.Forward(g, h))  // [B, 64, 16, 16]
	h = g.SiLU(n.Conv3.Forward(g, h))  // [B, 64, 8, 8]
	b := h.Shape()[0]
	h = g.Reshape(h, b, 64*8*8)           // [B, 4096]
	features = g.SiLU(n.FC.Forward(g, h)) // [B, 128]
	return n.Head.Forward(g, features), features
}

// Result is the classifier's output for a batch of images.
type Result struct {
	Pred     []int       // predicted class per image
	Features [][]float32 // feature vector per image
}

// Classify runs the network without gradients on images (each 1024 values
// in [-1, 1]) in batches of at most batch.
func (n *Net) Classify(images [][]float32, batch int) (Result, error) {
	if batch < 1 {
		batch = 256
	}
	var res Result
	for lo := 0; lo < len(images); lo += batch {
		hi := min(lo+batch, len(images))
		x := tensor.New(hi-lo, 1, 32, 32)
		d := x.Data()
		for i, img := range images[lo:hi] {
			if len(img) != 1024 {
				return Result{}, fmt.Errorf("classifier: image %d has %d values, want 1024 (1×32×32)", lo+i, len(img))
			}
			copy(d[i*1024:], img)
		}
		g := autodiff.NoGrad()
		logits, feats := n.Forward(g, autodiff.Const(x))
		ld, fd := logits.Value.Data(), feats.Value.Data()
		c, f := n.Config.NumClasses, n.Config.Features
		for i := 0; i < hi-lo; i++ {
			best := 0
			for k := 1; k < c; k++ {
				if ld[i*c+k] > ld[i*c+best] {
					best = k
				}
			}
			res.Pred = append(res.Pred, best)
			res.Features = append(res.Features, append([]float32(nil), fd[i*f:(i+1)*f]...))
		}
		g.Release()
	}
	return res, nil
}

// Save writes config.json and model.safetensors (float16 weights) to dir.
func (n *Net) Save(dir string) error {
	return checkpoint.SaveDir(dir, n.Config, n, &safetensors.SaveOptions{DType: safetensors.F16})
}

// Load reads a classifier from dir in fsys (use os.DirFS for a folder on
// disk).
func Load(fsys fs.FS, dir string) (*Net, error) {
	var cfg Config
	if err := checkpoint.ReadConfigFS(fsys, dir, &cfg); err != nil {
		return nil, err
	}
	n, err := New(cfg, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	d, err := checkpoint.OpenFS(fsys, dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := d.Bind(n, nil); err != nil {
		return nil, fmt.Errorf("classifier %s: %w", dir, err)
	}
	return n, nil
}
