package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tessera/autodiff"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
)

// tinyMLP is a 2-layer perceptron: fc2(tanh(fc1(x))).
type tinyMLP struct {
	FC1 *nn.Linear `safetensors:"fc1"`
	FC2 *nn.Linear `safetensors:"fc2"`
}

func newTinyMLP(seed uint64, in, hidden, out int) *tinyMLP {
	rng := tensor.NewRNG(seed)
	return &tinyMLP{FC1: nn.NewLinear(rng, in, hidden, true), FC2: nn.NewLinear(rng, hidden, out, true)}
}

func (m *tinyMLP) Forward(g *autodiff.Graph, x *autodiff.Var) *autodiff.Var {
	return m.FC2.Forward(g, g.Tanh(m.FC1.Forward(g, x)))
}

// toyBatch draws n inputs in [-2, 2)² and targets sin(x0)·x1 + 0.5·x0.
func toyBatch(rng *tensor.RNG, n int) (x, y *tensor.Tensor) {
	x = rng.Uniform(-2, 2, n, 2)
	y = tensor.New(n, 1)
	xd, yd := x.Data(), y.Data()
	for i := 0; i < n; i++ {
		a, b := float64(xd[2*i]), float64(xd[2*i+1])
		yd[i] = float32(math.Sin(a)*b + 0.5*a)
	}
	return x, y
}

// run is one training run's moving parts.
type run struct {
	model *tinyMLP
	opt   *optim.AdamW
	ema   *optim.EMA
	rng   *tensor.RNG
	loop  *Loop
}

func newRun(modelSeed, dataSeed uint64, dir string, steps int) *run {
	r := &run{model: newTinyMLP(modelSeed, 2, 16, 1), rng: tensor.NewRNG(dataSeed)}
	params := nn.Params(r.model)
	r.opt = optim.NewAdamW(params, optim.AdamWConfig{LR: 1e-2, WeightDecay: 0.01})
	r.ema = optim.NewEMA(params, 0.9)
	r.loop = &Loop{
		Steps: steps,
		Step: func(step int) (float32, error) {
			x, y := toyBatch(r.rng, 32)
			g := autodiff.NewGraph()
			defer g.Release()
			loss := g.MSE(r.model.Forward(g, autodiff.Const(x)), autodiff.Const(y))
			if err := g.Backward(loss); err != nil {
				return 0, err
			}
			return loss.Value.Data()[0], nil
		},
		Optimizer: r.opt,
		Schedule:  optim.WarmupCosine{Peak: 1e-2, Final: 1e-3, Warmup: 3, Total: steps},
		ClipNorm:  1,
		Params:    params,
		EMA:       r.ema,
		Progress:  progress.Options{Mode: progress.Silent},
	}
	if dir != "" {
		r.loop.Checkpoint = &Checkpointer{Dir: dir, KeepLast: 2, Model: r.model, Optimizer: r.opt, EMA: r.ema, RNG: r.rng}
		r.loop.CheckpointEvery = 5
	}
	return r
}

func values(m any) [][]float32 {
	var out [][]float32
	for _, p := range nn.Params(m) {
		out = append(out, slices.Clone(p.Value.Data()))
	}
	return out
}

// Training 20 steps straight must give bit-identical weights, EMA and RNG
// stream to training 10, saving, loading into fresh objects (different
// initial weights and seed) and training 10 more.
func TestResumeIsExact(t *testing.T) {
	straight := newRun(1, 2, "", 20)
	if _, err := straight.loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	first := newRun(1, 2, dir, 20)
	first.loop.Steps = 10
	if _, err := first.loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := newRun(99, 77, dir, 20) // everything is overwritten by the checkpoint
	res, err := second.loop.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Start != 10 || res.Steps != 20 {
		t.Fatalf("resumed run went from %d to %d, want 10 to 20", res.Start, res.Steps)
	}

	want, got := values(straight.model), values(second.model)
	for i := range want {
		if !slices.Equal(want[i], got[i]) {
			t.Fatalf("parameter %d differs after resume:\n got %v\nwant %v", i, got[i][:4], want[i][:4])
		}
	}
	second.ema.Swap()
	straight.ema.Swap()
	want, got = values(straight.model), values(second.model)
	for i := range want {
		if !slices.Equal(want[i], got[i]) {
			t.Fatalf("EMA of parameter %d differs after resume", i)
		}
	}
	if straight.rng.Uint64() != second.rng.Uint64() {
		t.Error("RNG streams differ after resume")
	}
}

func TestKeepLastAndList(t *testing.T) {
	dir := t.TempDir()
	r := newRun(1, 2, dir, 12)
	r.loop.CheckpointEvery = 3
	r.loop.Checkpoint.KeepLast = 2
	r.loop.Checkpoint.User = map[string]string{"config": `{"hidden":16}`}
	res, err := r.loop.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	steps, err := r.loop.Checkpoint.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(steps, []int{9, 12}) {
		t.Errorf("kept checkpoints %v, want [9 12]", steps)
	}
	if res.LastSaved != filepath.Join(dir, "ckpt-00000012.safetensors") {
		t.Errorf("last saved %q", res.LastSaved)
	}
	meta, err := r.loop.Checkpoint.Load(res.LastSaved)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Step != 12 || meta.User["config"] != `{"hidden":16}` || !(meta.Loss > 0) {
		t.Errorf("metadata %+v", meta)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d files in the checkpoint directory, want 2 (no temporaries)", len(ents))
	}
}

func TestLoadRejectsMismatch(t *testing.T) {
	dir := t.TempDir()
	r := newRun(1, 2, dir, 2)
	if _, err := r.loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := r.loop.Checkpoint.Path(2)
	tests := []struct {
		name string
		c    *Checkpointer
		want string
	}{
		{"wider model", &Checkpointer{Model: newTinyMLP(1, 2, 8, 1)}, "shape"},
		{"extra weight", &Checkpointer{Model: &struct {
			M     *tinyMLP   `safetensors:""`
			Extra *nn.Linear `safetensors:"extra"`
		}{newTinyMLP(1, 2, 16, 1), nn.NewLinear(tensor.NewRNG(1), 1, 1, false)}}, "extra.weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Load(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	bad := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	if _, err := (&Checkpointer{Model: r.model}).Load(bad); err == nil {
		t.Error("Load accepted a corrupt file")
	}
}

func TestCallbacksAndErrors(t *testing.T) {
	var calls []int
	var ends []int
	loop := &Loop{
		Steps: 10,
		Step:  func(step int) (float32, error) { return 1, nil },
		Callbacks: []Callback{
			{Name: "eval", Every: 3, AtEnd: true, Fn: func(done int) error { calls = append(calls, done); return nil }},
			{Name: "end", AtEnd: true, Fn: func(done int) error { ends = append(ends, done); return nil }},
		},
		Progress: progress.Options{Mode: progress.Silent},
	}
	res, err := loop.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []int{3, 6, 9, 10}) || !slices.Equal(ends, []int{10}) {
		t.Errorf("callbacks at %v and %v, want [3 6 9 10] and [10]", calls, ends)
	}
	if res.Steps != 10 || res.LastLoss != 1 || res.MeanLoss != 1 {
		t.Errorf("result %+v", res)
	}

	tests := []struct {
		name string
		step StepFunc
		want string
	}{
		{"nan loss", func(step int) (float32, error) {
			if step == 4 {
				return float32(math.NaN()), nil
			}
			return 1, nil
		}, "step 4: loss is NaN"},
		{"step error", func(step int) (float32, error) { return 0, errors.New("out of data") }, "step 0: out of data"},
	}
	for _, tc := range tests {
		_, err := (&Loop{Steps: 10, Step: tc.step, Progress: progress.Options{Mode: progress.Silent}}).Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCancelSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	r := newRun(1, 2, dir, 20)
	r.loop.CheckpointEvery = 0
	ctx, cancel := context.WithCancel(context.Background())
	r.loop.Callbacks = []Callback{{Name: "stop", Every: 7, Fn: func(int) error { cancel(); return nil }}}
	_, err := r.loop.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if steps, _ := r.loop.Checkpoint.List(); !slices.Equal(steps, []int{7}) {
		t.Errorf("checkpoints %v after cancel at step 7, want [7]", steps)
	}
}

// A 2-layer MLP fitted with AdamW to a smooth 2-d function: the loss must
// fall at least tenfold.
func TestFitToyRegression(t *testing.T) {
	m := newTinyMLP(3, 2, 32, 1)
	rng := tensor.NewRNG(4)
	evalX, evalY := toyBatch(rng, 256)
	evalLoss := func() float32 {
		g := autodiff.NoGrad()
		return g.MSE(m.Forward(g, autodiff.Const(evalX)), autodiff.Const(evalY)).Value.Data()[0]
	}
	before := evalLoss()
	opt := optim.NewAdamW(nn.Params(m), optim.AdamWConfig{LR: 1e-2})
	loop := &Loop{
		Steps: 600,
		Step: func(int) (float32, error) {
			x, y := toyBatch(rng, 64)
			g := autodiff.NewGraph()
			defer g.Release()
			loss := g.MSE(m.Forward(g, autodiff.Const(x)), autodiff.Const(y))
			return loss.Value.Data()[0], g.Backward(loss)
		},
		Optimizer: opt,
		Schedule:  optim.WarmupCosine{Peak: 1e-2, Final: 1e-4, Warmup: 20, Total: 600},
		Progress:  progress.Options{Mode: progress.Silent},
	}
	if _, err := loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := evalLoss()
	t.Logf("held-out MSE %.4g -> %.4g (%.0fx)", before, after, before/after)
	if !(after*10 < before) {
		t.Errorf("held-out MSE fell from %v to %v, less than 10x", before, after)
	}
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	r := newRun(1, 2, "", 6)
	r.loop.Progress = progress.Options{Out: &buf, Mode: progress.Plain, Label: "toy", Every: time.Hour}
	if _, err := r.loop.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// The first step draws (the bar has never drawn) and the last one;
	// nothing in between with Every = 1h, and Finish does not repeat it.
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, out)
	}
	for _, want := range []string{"toy 1/6 loss ", "toy 6/6 loss ", " lr ", " gnorm ", " it/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%s", want, out)
		}
	}
}
