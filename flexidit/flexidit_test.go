package flexidit

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/models"
	"tessera/nn"
	"tessera/tensor"
)

func tinyBase(t *testing.T) *dit.Model {
	t.Helper()
	cfg := dit.Config{InputSize: 16, PatchSize: 2, InChannels: 1, HiddenSize: 16, Depth: 2, NumHeads: 2, MLPRatio: 2, NumClasses: 3, Prediction: dit.Velocity}
	m, err := dit.NewRandom(cfg, tensor.NewRNG(5), 0.2)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// upsamplePatches builds an image whose weak patches (pw×pw) are the
// bilinear resize of the base patches (p×p) of a smaller image: weak
// patch (i, j) of the result is B·(patch (i, j) of small).
func upsamplePatches(small *tensor.Tensor, p, pw int) *tensor.Tensor {
	n := small.Dim(2) / p
	r := Resize(pw, p)
	out := tensor.New(small.Dim(0), 1, n*pw, n*pw)
	s, o := small.Data(), out.Data()
	side, wide := n*p, n*pw
	for b := 0; b < small.Dim(0); b++ {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for u := 0; u < pw; u++ {
					for v := 0; v < pw; v++ {
						sum := 0.0
						for a := 0; a < p; a++ {
							for c := 0; c < p; c++ {
								sum += r[u][a] * r[v][c] * float64(s[b*side*side+(i*p+a)*side+j*p+c])
							}
						}
						o[b*wide*wide+(i*pw+u)*wide+j*pw+v] = float32(sum)
					}
				}
			}
		}
	}
	return out
}

func TestPseudoInverseEmbedding(t *testing.T) {
	m := tinyBase(t)
	f, err := Flexify(m, Config{WeakPatch: 4}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	small := tensor.NewRNG(2).Normal(2, 1, 8, 8) // base grid 4×4
	big := upsamplePatches(small, 2, 4)          // weak grid 4×4
	g := autodiff.NoGrad()
	want := m.XEmbedder.Forward(g, autodiff.Const(small)).Value.Contiguous().Data()
	got := f.WeakEmbed.Forward(g, autodiff.Const(big)).Value.Contiguous().Data()
	if d := maxDiff(got, want); d > 1e-4 {
		t.Errorf("weak tokens of the upsampled image differ from base tokens by %g", d)
	}
	// De-embedding: each weak patch is the bilinear upsampling of the base
	// projection's patch for the same token.
	h := autodiff.Const(tensor.NewRNG(3).Normal(2, 16, 16))
	basePatches := m.FinalLayer.Linear.Forward(g, h).Value // [2, 16, 4]
	weakPatches := f.WeakFinal.Forward(g, h).Value         // [2, 16, 16]
	r := Resize(4, 2)
	bp, wp := basePatches.Contiguous().Data(), weakPatches.Contiguous().Data()
	for tok := 0; tok < 32; tok++ {
		for u := 0; u < 4; u++ {
			for v := 0; v < 4; v++ {
				want := 0.0
				for a := 0; a < 2; a++ {
					for c := 0; c < 2; c++ {
						want += r[u][a] * r[v][c] * float64(bp[tok*4+a*2+c])
					}
				}
				if got := float64(wp[tok*16+u*4+v]); math.Abs(got-want) > 1e-4 {
					t.Fatalf("token %d pixel (%d,%d): %g, want %g", tok, u, v, got, want)
				}
			}
		}
	}
}

func TestCentrePositions(t *testing.T) {
	tests := []struct{ dim, input, base int }{{16, 16, 2}, {128, 32, 4}}
	for _, tc := range tests {
		got := CentrePosEmbed(tc.dim, tc.input, tc.base, tc.base).Data()
		want := dit.PosEmbed(tc.dim, tc.input/tc.base).Data()
		if d := maxDiff(got, want); d > 1e-6 {
			t.Errorf("%+v: centre positions at the base patch size differ from the base embedding by %g", tc, d)
		}
	}
	// A weak patch twice as wide sits between the two base patches it
	// covers: its embedding at column 0 is that of position 0.5.
	w := CentrePosEmbed(16, 16, 2, 4).Data()
	if want := float32(math.Sin(0.5)); math.Abs(float64(w[0]-want)) > 1e-6 {
		t.Errorf("first weak column's sin(x·ω₀) = %g, want sin(0.5) = %g", w[0], want)
	}
}

func TestPowerfulUnchangedAndSchedule(t *testing.T) {
	m := tinyBase(t)
	x := tensor.NewRNG(4).Normal(2, 1, 16, 16)
	ts, y := []float32{700, 700}, []int{1, 3}
	before, err := m.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Flexify(m, Config{LoRARank: 2}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.LoRA { // make the adapters matter
		nn.Normal(tensor.NewRNG(6), a.B.Value, 0.5)
	}
	if _, err := f.PredictWeak(x, ts, y); err != nil {
		t.Fatal(err)
	}
	after, err := m.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(after.Data(), before.Data()); d != 0 {
		t.Errorf("the powerful model changed by %g after flexifying", d)
	}
	tests := []struct {
		name    string
		s       Sampler
		weakSeq []bool
	}{
		{"weak first", Sampler{WeakEvals: 2, Total: 4}, []bool{true, true, false, false}},
		{"reversed", Sampler{WeakEvals: 1, Total: 4, Reverse: true}, []bool{false, false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			s.Flex = f
			weak, _ := f.PredictWeak(x, ts, y)
			for e, w := range tc.weakSeq {
				out, err := s.Predict(x, ts, y)
				if err != nil {
					t.Fatal(err)
				}
				ref := before
				if w {
					ref = weak
				}
				if d := maxDiff(out.Data(), ref.Data()); d > 1e-6 {
					t.Errorf("evaluation %d (weak=%v) differs from its reference by %g", e, w, d)
				}
			}
			if s.WeakRows != 2*tc.s.WeakEvals {
				t.Errorf("weak rows %d, want %d", s.WeakRows, 2*tc.s.WeakEvals)
			}
		})
	}
	// Weak-model guidance: conditional rows powerful, unconditional weak.
	s := Sampler{Flex: f, WeakEvals: 0, Total: 1, WeakGuidance: true, Null: 3}
	out, err := s.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	weak, _ := f.PredictWeak(x, ts, y)
	half := len(out.Data()) / 2
	if maxDiff(out.Data()[:half], before.Data()[:half]) > 1e-5 || maxDiff(out.Data()[half:], weak.Data()[half:]) > 1e-5 {
		t.Error("weak guidance does not run the unconditional row weak and the conditional row powerful")
	}
}

type toyData struct{}

func (toyData) Len() int { return 8 }
func (toyData) Example(i int, dst []float32) int {
	for j := range dst {
		dst[j] = float32(math.Sin(float64(i+j) * 0.3))
	}
	return i % 3
}
func (toyData) Shape() [3]int { return [3]int{1, 16, 16} }

func TestTrainAndRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rank       int
		modulation bool
		shared     bool
		adapters   int // per block, plus one on the final layer's modulation
	}{{"lora", 2, false, false, 4}, {"lora with modulation", 2, true, false, 5}, {"shared weights", 0, false, true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			m := tinyBase(t)
			f, err := Flexify(m, Config{LoRARank: tc.rank, LoRAModulation: tc.modulation}, tensor.NewRNG(1))
			if err != nil {
				t.Fatal(err)
			}
			if f.Config.Shared != tc.shared {
				t.Fatalf("shared %v, want %v", f.Config.Shared, tc.shared)
			}
			want := tc.adapters * len(m.Blocks)
			if tc.modulation {
				want++
			}
			if len(f.LoRA) != want {
				t.Fatalf("%d adapters, want %d", len(f.LoRA), want)
			}
			x := tensor.NewRNG(8).Normal(1, 1, 16, 16)
			powBefore, _ := m.Predict(x, []float32{400}, []int{2})
			res, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 30, Batch: 8, LR: 3e-3, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			if !(res.LastLoss > 0) {
				t.Errorf("last loss %g", res.LastLoss)
			}
			powAfter, _ := m.Predict(x, []float32{400}, []int{2})
			if d := maxDiff(powAfter.Data(), powBefore.Data()); (d != 0) != tc.shared {
				t.Errorf("training changed the powerful prediction by %g (shared weights: %v)", d, tc.shared)
			}
			dir := t.TempDir()
			if err := f.Save(dir); err != nil {
				t.Fatal(err)
			}
			// Load onto a fresh copy of the original base: the shared
			// variant brings its fine-tuned base weights along.
			fresh := tinyBase(t)
			back, err := LoadFS(fresh, os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := f.PredictWeak(x, []float32{400}, []int{2})
			b, err := back.PredictWeak(x, []float32{400}, []int{2})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(a.Data(), b.Data()); d > 2e-2 { // float16 weights
				t.Errorf("weak prediction changed by %g after save and load", d)
			}
			pb, _ := fresh.Predict(x, []float32{400}, []int{2})
			if d := maxDiff(pb.Data(), powAfter.Data()); d > 2e-2 {
				t.Errorf("powerful prediction after load differs by %g from the fine-tuned one", d)
			}
			// The scheduler runs under a sampler with guidance.
			s := &Sampler{Flex: f, WeakEvals: 2, Total: 4}
			if _, _, err := diffusion.Sample(diffusion.Guided{Model: s, Scale: 2, Null: 3}, x, []int{1}, diffusion.Options{Steps: 4}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// With an EMA the trained weights are replaced by their average: after one
// step (whose warm-up decay is 1/10), 0.1·initial + 0.9·stepped.
func TestTrainEMA(t *testing.T) {
	run := func(ema float32) []*autodiff.Var {
		f, err := Flexify(tinyBase(t), Config{LoRARank: 2}, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 1, Batch: 4, LR: 1e-2, Seed: 3, EMA: ema}); err != nil {
			t.Fatal(err)
		}
		return f.Trainable()
	}
	f0, err := Flexify(tinyBase(t), Config{LoRARank: 2}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	init, stepped, avg := f0.Trainable(), run(0), run(0.999)
	moved := 0.0
	for i := range init {
		for j, v0 := range init[i].Value.Data() {
			v1, va := stepped[i].Value.Data()[j], avg[i].Value.Data()[j]
			moved = math.Max(moved, math.Abs(float64(v1-v0)))
			if want := 0.1*v0 + 0.9*v1; math.Abs(float64(va-want)) > 1e-6 {
				t.Fatalf("parameter %d[%d]: %g after EMA, want %g", i, j, va, want)
			}
		}
	}
	if moved == 0 {
		t.Fatal("the training step changed nothing")
	}
	f, _ := Flexify(tinyBase(t), Config{LoRARank: 2}, tensor.NewRNG(1))
	for _, d := range []float32{-0.1, 1} {
		if _, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 1, Batch: 2, EMA: d}); err == nil {
			t.Errorf("EMA decay %g accepted", d)
		}
	}
}

func TestTrainRejectsBadLevels(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{0.5, 0.4}, {-0.1, 1}, {0, 1.5}} {
		f, err := Flexify(tinyBase(t), Config{LoRARank: 2}, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 1, Batch: 2, MinLevel: tc.lo, MaxLevel: tc.hi}); err == nil {
			t.Errorf("levels [%g, %g] accepted", tc.lo, tc.hi)
		}
	}
}

func TestOpenUnknownModel(t *testing.T) {
	if _, err := Open(tinyBase(t), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Open of a missing folder succeeded")
	}
}

func TestVelocityErrors(t *testing.T) {
	m := tinyBase(t)
	f, err := Flexify(m, Config{LoRARank: 2}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := VelocityErrors(f, toyData{}, DiagOptions{Levels: []float64{0, 0.5, 1}, N: 5, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d levels, want 3", len(res))
	}
	for _, e := range res {
		if !(e.WeakPowerful > 0) || !(e.WeakTarget > 0) || !(e.PowerfulTarget > 0) {
			t.Errorf("s=%g: errors %+v should be positive", e.S, e)
		}
		if e.WeakPowerfulFine < 0 || e.WeakPowerfulFine > e.WeakPowerful*(1+1e-9) {
			t.Errorf("s=%g: fine part %g outside [0, %g]", e.S, e.WeakPowerfulFine, e.WeakPowerful)
		}
	}
	if _, err := VelocityErrors(f, toyData{}, DiagOptions{Levels: []float64{1.5}}); err == nil {
		t.Error("noise level 1.5 accepted")
	}
}

func TestGuidedErrors(t *testing.T) {
	m := tinyBase(t)
	f, err := Flexify(m, Config{LoRARank: 2}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scale float64
		steps int
	}{{1, 4}, {2, 3}, {4, 5}} {
		res, err := GuidedErrors(f, TrajectoryOptions{N: 3, Steps: tc.steps, Scale: tc.scale, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != tc.steps {
			t.Fatalf("scale %g: %d steps, want %d", tc.scale, len(res), tc.steps)
		}
		for k, e := range res {
			if want := 1 - float64(k)/float64(tc.steps); math.Abs(e.S-want) > 1e-12 || e.Step != k {
				t.Errorf("scale %g step %d: s = %g, want %g", tc.scale, k, e.S, want)
			}
			if !(e.Conditional > 0) || !(e.Direction > 0) || !(e.NormRatio > 0) || math.IsNaN(e.Alignment) {
				t.Errorf("scale %g step %d: %+v", tc.scale, k, e)
			}
			// Guidance weight 1 is the conditional prediction itself.
			if tc.scale == 1 && math.Abs(e.Guided-e.Conditional) > 1e-6*e.Conditional {
				t.Errorf("step %d: guided error %g at weight 1, conditional %g", k, e.Guided, e.Conditional)
			}
			if tc.scale != 1 && e.Guided == e.Conditional {
				t.Errorf("scale %g step %d: guided error equals the conditional one", tc.scale, k)
			}
		}
	}
	// Following the weak model visits other states after the first step.
	pow, _ := GuidedErrors(f, TrajectoryOptions{N: 3, Steps: 3, Seed: 2})
	weak, err := GuidedErrors(f, TrajectoryOptions{N: 3, Steps: 3, Seed: 2, FollowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	if pow[0] != weak[0] || pow[2].Guided == weak[2].Guided {
		t.Errorf("powerful trajectory %+v, weak %+v: want the same first step and different later ones", pow, weak)
	}
	if _, err := GuidedErrors(f, TrajectoryOptions{Steps: -1}); err == nil {
		t.Error("negative step count accepted")
	}
}

func TestFineEnergy(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    []float32
		want float64
	}{
		{"constant blocks", []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0},
		{"checkerboard", []float32{1, -1, 1, -1, -1, 1, -1, 1, 1, -1, 1, -1, -1, 1, -1, 1}, 16},
	} {
		if got := fineEnergy(tc.d, 1, 4, 2); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %g, want %g", tc.name, got, tc.want)
		}
	}
}

func TestFineSkip(t *testing.T) {
	m := tinyBase(t)
	f, err := Flexify(m, Config{LoRARank: 2, FineVar: 0.5}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	noise := tensor.NewRNG(4).Normal(64, 1, 16, 16)
	coarse := upsamplePatches(tensor.NewRNG(5).Normal(2, 1, 8, 8), 2, 4)
	for _, tc := range []struct {
		name string
		x    *tensor.Tensor
		s    float32
		want func(x, got []float32) bool
	}{
		{"coarse input has no residual", coarse, 1, func(_, got []float32) bool { return maxAbs(got) < 1e-5 }},
		{"s = 1 passes the residual", noise, 1, func(x, got []float32) bool { return maxAbs(got) > 0.1 }},
		{"s = 0 negates the residual", coarse, 0, func(_, got []float32) bool { return maxAbs(got) < 1e-5 }},
	} {
		ts := make([]float32, tc.x.Dim(0))
		for i := range ts {
			ts[i] = 1000 * tc.s
		}
		if got := f.fineSkip(tc.x, ts).Data(); !tc.want(tc.x.Data(), got) {
			t.Errorf("%s: max |skip| %g", tc.name, maxAbs(got))
		}
	}
	// Against the patch projection written out: each weak patch minus its
	// projection B·(B(BᵀB)⁻¹)ᵀ·patch onto upsampled base-sized patches.
	r := Resize(4, 2)
	up, down := kron(r, r), kron(pinvTranspose(r), pinvTranspose(r))
	ts := []float32{1000, 700, 300, 0}
	x4 := noise.Slice(0, 0, 4).Contiguous()
	got := f.fineSkip(x4, ts).Data()
	for i, tv := range ts {
		s := float64(tv) / 1000
		k := (s - (1-s)*0.5) / (s*s + (1-s)*(1-s)*0.5)
		img := x4.Data()[i*256 : (i+1)*256]
		for pi := 0; pi < 16; pi += 4 {
			for pj := 0; pj < 16; pj += 4 {
				for q := 0; q < 16; q++ {
					res := float64(img[(pi+q/4)*16+pj+q%4])
					for a := 0; a < 4; a++ {
						c := 0.0
						for q2 := 0; q2 < 16; q2++ {
							c += down[q2*4+a] * float64(img[(pi+q2/4)*16+pj+q2%4])
						}
						res -= up[q*4+a] * c
					}
					if g := got[i*256+(pi+q/4)*16+pj+q%4]; math.Abs(float64(g)-k*res) > 1e-4 {
						t.Fatalf("skip of image %d at (%d, %d): %g, want %g", i, pi+q/4, pj+q%4, g, k*res)
					}
				}
			}
		}
	}
	// k(1) = 1 and k(0) = −1: the skips at the two ends are opposite.
	one, zero := make([]float32, 64), make([]float32, 64)
	for i := range one {
		one[i] = 1000
	}
	a, b := f.fineSkip(noise, one).Data(), f.fineSkip(noise, zero).Data()
	for i := range a {
		if math.Abs(float64(a[i]+b[i])) > 1e-5 {
			t.Fatalf("skip at s = 1 and s = 0 not opposite at %d: %g, %g", i, a[i], b[i])
		}
	}
	// White noise keeps 1 − (2/4)² = 3/4 of its energy outside the coarse subspace.
	if e := f.FineEnergy(noise); math.Abs(e-0.75) > 0.03 {
		t.Errorf("fine energy of white noise %g, want 0.75", e)
	}
	// The weak prediction carries the skip unless it is turned off.
	x, ts, y := noise.Slice(0, 0, 2).Contiguous(), []float32{900, 900}, []int{0, 1}
	with, _ := f.PredictWeak(x, ts, y)
	f.Config.NoFineSkip = true
	without, _ := f.PredictWeak(x, ts, y)
	skip := f.fineSkip(x, ts).Data()
	for i, v := range with.Data() {
		if math.Abs(float64(v-without.Data()[i]-skip[i])) > 1e-4 {
			t.Fatalf("weak prediction minus skip differs from the prediction without it at %d", i)
		}
	}
}

func maxAbs(a []float32) float64 {
	m := 0.0
	for _, v := range a {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func TestOpenEmbedded(t *testing.T) {
	fsys, err := models.Open("mnist")
	if err != nil {
		t.Skip("no embedded mnist:", err)
	}
	m, err := dit.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(m, "mnist-flex")
	if err != nil {
		t.Fatal(err)
	}
	if f.Config.WeakPatch != 8 || len(f.LoRA) == 0 || f.Config.Shared {
		t.Errorf("mnist-flex config %+v with %d adapters, want the LoRA variant at patch 8", f.Config, len(f.LoRA))
	}
	x := tensor.NewRNG(1).Normal(1, 1, 32, 32)
	v, err := f.PredictWeak(x, []float32{1000}, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	if v.Numel() != 32*32 {
		t.Errorf("prediction of %d values", v.Numel())
	}
}

// PredictWeak folds the LoRA adapters into the weights; it computes what
// the adapters added one by one compute, in float32 and in bfloat16, and
// leaves the base's layers as they were.
func TestPredictWeakMergesAdapters(t *testing.T) {
	for _, prec := range []nn.Precision{nn.F32, nn.BF16} {
		t.Run(prec.String(), func(t *testing.T) {
			m := tinyBase(t)
			f, err := Flexify(m, Config{WeakPatch: 4, LoRARank: 3}, tensor.NewRNG(2))
			if err != nil {
				t.Fatal(err)
			}
			rng := tensor.NewRNG(8)
			for _, a := range f.LoRA {
				a.B.Value.CopyFrom(rng.Normal(a.B.Value.Shape()...))
			}
			nn.SetPrecision(m, prec)
			x := rng.Normal(2, 1, 16, 16)
			ts, y := []float32{700, 300}, []int{1, 3}
			got, err := f.PredictWeak(x, ts, y)
			if err != nil {
				t.Fatal(err)
			}
			g := autodiff.NewGraph() // recording: adapters applied as separate products
			want := m.Channels(f.ForwardWeak(g, autodiff.Const(x), ts, y).Value)
			g.Release()
			tol := 1e-4
			if prec == nn.BF16 {
				tol = 0.05 // bfloat16 products against float32 ones
			}
			if d := maxDiff(got.Data(), want.Contiguous().Data()); d > tol || d == 0 && prec == nn.BF16 {
				t.Errorf("merged weak prediction differs from the adapters' by %g (tolerance %g)", d, tol)
			}
			for _, a := range f.LoRA {
				if a.target.LoraA != nil || a.target.Precision() != prec {
					t.Fatal("a base layer was left changed")
				}
			}
			// The folded layers are kept between calls and made again
			// after ResetFolded.
			again, _ := f.PredictWeak(x, ts, y)
			if maxDiff(again.Data(), got.Data()) != 0 {
				t.Error("a second weak prediction differs from the first")
			}
			f.LoRA[0].B.Value.Data()[0] += 1
			f.ResetFolded()
			changed, _ := f.PredictWeak(x, ts, y)
			if maxDiff(changed.Data(), got.Data()) == 0 {
				t.Error("changing an adapter and ResetFolded left the weak prediction unchanged")
			}
			base1, _ := m.Predict(x, ts, y)
			nn.SetPrecision(m, nn.F32)
			base2, _ := m.Predict(x, ts, y)
			if prec == nn.F32 && maxDiff(base1.Data(), base2.Data()) != 0 {
				t.Error("the base model's predictions changed")
			}
		})
	}
}

// Distilling the guidance direction (TrainOptions.Guidance) brings the
// weak model's v_y − v_∅ closer to the powerful one's than training each
// branch alone with the same budget.
func TestTrainGuidanceDirection(t *testing.T) {
	dirErr := func(f *Model) float64 {
		res, err := GuidedErrors(f, TrajectoryOptions{N: 6, Steps: 4, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, e := range res {
			// ‖d_w − d_p‖² / ‖d_p‖² from the projection and norm ratio.
			sum += 1 - 2*e.Alignment + e.NormRatio*e.NormRatio
		}
		return sum / float64(len(res))
	}
	var got [2]float64
	for k, g := range []float32{0, 200} {
		f, err := Flexify(tinyBase(t), Config{LoRARank: 4}, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 100, Batch: 8, LR: 3e-3, Distill: 5, Guidance: g, MinLevel: 0.5, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		got[k] = dirErr(f)
	}
	t.Logf("relative guidance-direction error: %.3f without, %.3f with", got[0], got[1])
	if !(got[1] < 0.85*got[0]) {
		t.Errorf("relative guidance-direction error %.3f with the direction distilled, %.3f without: want clearly lower", got[1], got[0])
	}
}

// Matching the guided combination at the sampling scale lowers the guided
// error below matching the guidance direction alone.
func TestTrainGuidanceScale(t *testing.T) {
	var got [2]float64
	for k, w := range []float32{0, 2} {
		f, err := Flexify(tinyBase(t), Config{LoRARank: 4}, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(context.Background(), f, toyData{}, TrainOptions{Steps: 400, Batch: 8, LR: 3e-3, Distill: 5, Guidance: 200, GuidanceScale: w, MinLevel: 0.5, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		res, err := GuidedErrors(f, TrajectoryOptions{N: 6, Steps: 4, Seed: 9, Scale: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res {
			got[k] += e.Guided / float64(len(res))
		}
	}
	t.Logf("guided error: %.4g matching the direction, %.4g matching the guided prediction", got[0], got[1])
	if !(got[1] < 0.9*got[0]) {
		t.Errorf("guided error %.4g matching the guided prediction, %.4g matching the direction: want clearly lower", got[1], got[0])
	}
}
