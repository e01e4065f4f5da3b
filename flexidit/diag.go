package flexidit

import (
	"fmt"

	"tessera/diffusion"
	"tessera/tensor"
)

// LevelError compares the weak and powerful patch sizes at one noise level
// s: mean squared differences per pixel over the same noisy images.
type LevelError struct {
	S              float64 `json:"s"`
	WeakPowerful   float64 `json:"weak_vs_powerful"`   // ‖v_weak − v_powerful‖²
	WeakTarget     float64 `json:"weak_vs_target"`     // ‖v_weak − (ε − x0)‖²
	PowerfulTarget float64 `json:"powerful_vs_target"` // ‖v_powerful − (ε − x0)‖²
	// WeakPowerfulFine is the part of WeakPowerful finer than the weak
	// model's coarse grid (the difference minus its means over
	// weak/base-sized pixel blocks).
	WeakPowerfulFine float64 `json:"weak_vs_powerful_fine"`
}

// DiagOptions configures VelocityErrors.
type DiagOptions struct {
	Levels        []float64 // noise levels s in [0, 1]
	N             int       // images per level (default 64)
	Batch         int       // images per network call (default 32)
	Seed          uint64
	Unconditional bool // use the "no class" label instead of the data's
}

// VelocityErrors measures, per noise level, how far the weak patch size's
// velocity is from the powerful one's and from the flow-matching target on
// the same images of ds noised as x_s = (1−s)·x0 + s·ε (the same images
// and noise at every level).
func VelocityErrors(f *Model, ds Dataset, o DiagOptions) ([]LevelError, error) {
	if o.N == 0 {
		o.N = 64
	}
	if o.Batch == 0 {
		o.Batch = 32
	}
	cfg := f.Base.Config
	sh := ds.Shape()
	if sh[0] != cfg.InChannels || sh[1] != cfg.InputSize || sh[2] != cfg.InputSize {
		return nil, fmt.Errorf("flexidit diagnostics: model takes %d×%d×%d images, data set has %v", cfg.InChannels, cfg.InputSize, cfg.InputSize, sh)
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("flexidit diagnostics: empty data set")
	}
	per := sh[0] * sh[1] * sh[2]
	rng := tensor.NewRNG(o.Seed)
	x0 := tensor.New(o.N, sh[0], sh[1], sh[2])
	labels := make([]int, o.N)
	for i := range labels {
		labels[i] = ds.Example(rng.Intn(ds.Len()), x0.Data()[i*per:(i+1)*per])
		if o.Unconditional {
			labels[i] = f.conditioning().Null()
		}
	}
	eps := diffusion.Noise(rng, x0.Shape()...)
	block := f.Config.WeakPatch / cfg.PatchSize
	out := make([]LevelError, len(o.Levels))
	for li, s := range o.Levels {
		if !(s >= 0 && s <= 1) {
			return nil, fmt.Errorf("flexidit diagnostics: noise level %g outside [0, 1]", s)
		}
		e := LevelError{S: s}
		for lo := 0; lo < o.N; lo += o.Batch {
			hi := min(lo+o.Batch, o.N)
			b := hi - lo
			xb := tensor.FromData(x0.Data()[lo*per:hi*per], b, sh[0], sh[1], sh[2])
			nb := tensor.FromData(eps.Data()[lo*per:hi*per], b, sh[0], sh[1], sh[2])
			lv := make([]float32, b)
			t := make([]float32, b)
			for i := range lv {
				lv[i], t[i] = float32(s), float32(1000*s)
			}
			xs, target := diffusion.Interpolate(xb, nb, lv)
			vp, err := f.conditioning().Predict(xs, t, labels[lo:hi])
			if err != nil {
				return nil, fmt.Errorf("flexidit diagnostics: %w", err)
			}
			vw, err := f.PredictWeak(xs, t, labels[lo:hi])
			if err != nil {
				return nil, err
			}
			w, p, v := vw.Contiguous().Data(), vp.Contiguous().Data(), target.Data()
			for i := range w {
				e.WeakPowerful += sq(w[i] - p[i])
				e.WeakTarget += sq(w[i] - v[i])
				e.PowerfulTarget += sq(p[i] - v[i])
			}
			diff := make([]float32, len(w))
			for i := range w {
				diff[i] = w[i] - p[i]
			}
			e.WeakPowerfulFine += fineEnergy(diff, b*sh[0], sh[1], block)
		}
		m := float64(o.N * per)
		e.WeakPowerful /= m
		e.WeakTarget /= m
		e.PowerfulTarget /= m
		e.WeakPowerfulFine /= m
		out[li] = e
	}
	return out, nil
}

func sq(x float32) float64 { return float64(x) * float64(x) }

// fineEnergy is the squared sum of d [planes, side, side] minus its means
// over block×block pixel blocks.
func fineEnergy(d []float32, planes, side, block int) float64 {
	if block < 1 || side%block != 0 {
		return 0
	}
	sum := 0.0
	for pl := 0; pl < planes; pl++ {
		img := d[pl*side*side : (pl+1)*side*side]
		for bi := 0; bi < side; bi += block {
			for bj := 0; bj < side; bj += block {
				mean := 0.0
				for i := bi; i < bi+block; i++ {
					for j := bj; j < bj+block; j++ {
						mean += float64(img[i*side+j])
					}
				}
				mean /= float64(block * block)
				for i := bi; i < bi+block; i++ {
					for j := bj; j < bj+block; j++ {
						r := float64(img[i*side+j]) - mean
						sum += r * r
					}
				}
			}
		}
	}
	return sum
}
