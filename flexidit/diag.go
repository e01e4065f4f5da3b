package flexidit

import (
	"fmt"
	"math"

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

// StepError compares the weak and powerful patch sizes at one step of a
// guided sampling trajectory, on the states the powerful sampler visits.
// Squared differences are means per pixel.
type StepError struct {
	Step int     `json:"step"`
	S    float64 `json:"s"`
	// Conditional is ‖v_weak(y) − v_powerful(y)‖²; Guided the same for
	// the guided combination v_∅ + w·(v_y − v_∅) of both branches.
	Conditional float64 `json:"conditional"`
	Guided      float64 `json:"guided"`
	// Direction is the powerful guidance direction's energy ‖v_y − v_∅‖²;
	// Alignment the weak direction's projection on it,
	// ⟨d_weak, d_powerful⟩ / ‖d_powerful‖² (1 when they agree), and
	// NormRatio ‖d_weak‖ / ‖d_powerful‖.
	Direction float64 `json:"direction"`
	Alignment float64 `json:"alignment"`
	NormRatio float64 `json:"norm_ratio"`
}

// TrajectoryOptions configures GuidedErrors.
type TrajectoryOptions struct {
	N     int     // trajectories (default 64), labels cycling over the classes
	Steps int     // Euler steps over the uniform schedule (default 32)
	Scale float64 // guidance weight (default 2)
	Seed  uint64
	// FollowWeak steps with the weak model's guided prediction instead of
	// the powerful one's: the states a weak-first schedule visits.
	FollowWeak bool
}

// GuidedErrors runs N guided Euler trajectories with the powerful model (or
// the weak one, FollowWeak) and compares, at every step, the weak patch
// size's predictions with the powerful ones on the states visited: the
// conditional branch, the guided combination and the guidance direction
// v_y − v_∅, which guidance amplifies.
func GuidedErrors(f *Model, o TrajectoryOptions) ([]StepError, error) {
	if o.N == 0 {
		o.N = 64
	}
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.Scale == 0 {
		o.Scale = 2
	}
	cond := f.conditioning()
	null := cond.Null()
	if null < 1 {
		return nil, fmt.Errorf("flexidit diagnostics: the model has no classes to guide with")
	}
	cfg := f.Base.Config
	rng := tensor.NewRNG(o.Seed)
	x := rng.Normal(o.N, cfg.InChannels, cfg.InputSize, cfg.InputSize)
	y := make([]int, 2*o.N)
	for i := range o.N {
		y[i], y[o.N+i] = i%null, null
	}
	sig, err := diffusion.Uniform(o.Steps)
	if err != nil {
		return nil, fmt.Errorf("flexidit diagnostics: %w", err)
	}
	per := x.Numel() / o.N
	w := float32(o.Scale)
	out := make([]StepError, 0, o.Steps)
	for k := 0; k+1 < len(sig); k++ {
		x2 := tensor.New(append([]int{2 * o.N}, x.Shape()[1:]...)...)
		copy(x2.Data(), x.Data())
		copy(x2.Data()[x.Numel():], x.Data())
		t := make([]float32, 2*o.N)
		for i := range t {
			t[i] = float32(1000 * sig[k])
		}
		vp, err := cond.Predict(x2, t, y)
		if err != nil {
			return nil, fmt.Errorf("flexidit diagnostics: %w", err)
		}
		vw, err := f.PredictWeak(x2, t, y)
		if err != nil {
			return nil, err
		}
		p, q := vp.Contiguous().Data(), vw.Contiguous().Data()
		e := StepError{Step: k, S: sig[k]}
		var dot, ww float64
		h := o.N * per
		xd := x.Data()
		ds := float32(sig[k+1] - sig[k])
		for j := range h {
			pc, pu, wc, wu := p[j], p[h+j], q[j], q[h+j]
			dp, dw := float64(pc-pu), float64(wc-wu)
			gp, gw := pu+w*(pc-pu), wu+w*(wc-wu) // guided velocities
			e.Conditional += sq(wc - pc)
			e.Guided += sq(gw - gp)
			e.Direction += dp * dp
			dot += dp * dw
			ww += dw * dw
			if o.FollowWeak {
				gp = gw
			}
			xd[j] += ds * gp // the Euler step
		}
		if e.Direction > 0 {
			e.Alignment = dot / e.Direction
			e.NormRatio = math.Sqrt(ww / e.Direction)
		}
		e.Conditional /= float64(h)
		e.Guided /= float64(h)
		e.Direction /= float64(h)
		out = append(out, e)
	}
	return out, nil
}
