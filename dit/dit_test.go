package dit

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tessera/autodiff"
	"tessera/checkpoint"
	"tessera/diffusion"
	"tessera/internal/simd"
	"tessera/nn"
	"tessera/safetensors"
	"tessera/tensor"
)

const golden = "testdata/golden"

// goldenIO returns the reference inputs and output written by dit.py golden.
func goldenIO(t *testing.T) (x *tensor.Tensor, ts []float32, y []int, want *tensor.Tensor) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(golden, "io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if x, err = f.Tensor("x"); err != nil {
		t.Fatal(err)
	}
	tt, err := f.Tensor("t")
	if err != nil {
		t.Fatal(err)
	}
	ts = tt.Data()
	yy, err := f.Int64s("y")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range yy {
		y = append(y, int(v))
	}
	if want, err = f.Tensor("out"); err != nil {
		t.Fatal(err)
	}
	return x, ts, y, want
}

func TestGoldenMatchesPyTorch(t *testing.T) {
	m, err := Load(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Config.LearnSigma || m.Config.InChannels != 2 || m.Config.Prediction != Velocity {
		t.Fatalf("golden config loaded as %+v", m.Config)
	}
	x, ts, y, want := goldenIO(t)
	prev := simd.Current()
	defer simd.Set(prev)
	for _, level := range simd.Levels() {
		// NoGrad runs the fused inference path; NewGraph the op-by-op
		// training path. Both must match the reference.
		for _, mode := range []string{"inference", "training"} {
			t.Run(level.String()+"/"+mode, func(t *testing.T) {
				simd.Set(level)
				g := autodiff.NoGrad()
				if mode == "training" {
					g = autodiff.NewGraph()
				}
				got := m.Forward(g, autodiff.Const(x), ts, y).Value
				if !tensor.SameShape(got, want) {
					t.Fatalf("output shape %v, want %v", got.Shape(), want.Shape())
				}
				scale, errMax := 0.0, 0.0
				gd := got.Contiguous().Data()
				for i, w := range want.Data() {
					scale = math.Max(scale, math.Abs(float64(w)))
					errMax = math.Max(errMax, math.Abs(float64(gd[i]-w)))
				}
				if tol := 1e-4 * math.Max(1, scale); !(errMax <= tol) {
					t.Errorf("max |got − want| = %g, tolerance %g (max |want| %g)", errMax, tol, scale)
				}
			})
		}
	}
}

// TestGradientsMatchFiniteDifferences checks the training path end to end:
// the gradient of L = Σ out·r with respect to weights of every kind of layer
// against central differences.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cfg := Config{InputSize: 4, PatchSize: 2, InChannels: 1, HiddenSize: 8, Depth: 1, NumHeads: 2,
		MLPRatio: 2, NumClasses: 2, Prediction: Velocity}
	m, err := New(cfg, tensor.NewRNG(4))
	if err != nil {
		t.Fatal(err)
	}
	rng := tensor.NewRNG(5)
	for _, p := range nn.NamedParams(m) {
		if p.Var.RequiresGrad() {
			p.Var.Value.CopyFrom(rng.Uniform(-0.5, 0.5, p.Var.Value.Shape()...))
		}
	}
	x := rng.Normal(2, 1, 4, 4)
	ts, y := []float32{100, 700}, []int{0, 2}
	r := rng.Normal(2, 1, 4, 4)
	loss := func() float64 {
		out := m.Forward(autodiff.NoGrad(), autodiff.Const(x), ts, y).Value.Data()
		s := 0.0
		for i, v := range out {
			s += float64(v) * float64(r.Data()[i])
		}
		return s
	}
	g := autodiff.NewGraph()
	out := m.Forward(g, autodiff.Const(x), ts, y)
	l := g.SumAll(g.Mul(out, autodiff.Const(r)))
	if err := g.Backward(l); err != nil {
		t.Fatal(err)
	}
	names := []string{"x_embedder.proj.weight", "t_embedder.mlp.0.weight", "y_embedder.embedding_table.weight",
		"blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.0.mlp.fc1.weight",
		"blocks.0.adaLN_modulation.1.weight", "blocks.0.adaLN_modulation.1.bias",
		"final_layer.adaLN_modulation.1.weight", "final_layer.linear.weight"}
	params := map[string]*autodiff.Var{}
	for _, p := range nn.NamedParams(m) {
		params[p.Name] = p.Var
	}
	for _, name := range names {
		p := params[name]
		if p == nil || p.Grad == nil {
			t.Fatalf("%s: no parameter or no gradient", name)
		}
		d := p.Value.Data()
		for _, i := range []int{0, len(d) / 2, len(d) - 1} {
			old := d[i]
			const h = 1e-2
			d[i] = old + h
			up := loss()
			d[i] = old - h
			down := loss()
			d[i] = old
			want := (up - down) / (2 * h)
			got := float64(p.Grad.Data()[i])
			if math.Abs(got-want) > 2e-2*math.Max(1, math.Abs(want)) {
				t.Errorf("%s[%d]: gradient %g, finite difference %g", name, i, got, want)
			}
		}
	}
}

func TestPosEmbedMatchesCheckpoint(t *testing.T) {
	m, err := Load(golden)
	if err != nil {
		t.Fatal(err)
	}
	fresh := PosEmbed(m.Config.HiddenSize, m.Config.Grid())
	for i, v := range m.PosEmbed.Value.Data() {
		if math.Abs(float64(v-fresh.Data()[i])) > 1e-6 {
			t.Fatalf("pos_embed[%d] = %g in the checkpoint, %g computed", i, v, fresh.Data()[i])
		}
	}
}

func TestConfigs(t *testing.T) {
	cases := []struct {
		name, json string
		wantErr    string
		check      func(Config) bool
	}{
		{"empty gives defaults", `{}`, "", func(c Config) bool { return c == DefaultConfig() }},
		{"plain DiT is velocity", `{"input_size": 16, "learn_sigma": true}`, "", func(c Config) bool { return c.Prediction == Velocity && c.OutChannels() == 2 }},
		{"epsilon", `{"prediction": "epsilon", "learn_sigma": true, "in_channels": 4}`, "", func(c Config) bool { return c.PredictsEpsilon() && c.OutChannels() == 8 }},
		{"bad prediction", `{"prediction": "x0"}`, "prediction", nil},
		{"patch", `{"input_size": 30, "patch_size": 4}`, "multiple of patch_size", nil},
		{"heads", `{"hidden_size": 100, "num_heads": 3}`, "num_heads", nil},
		{"negative", `{"depth": -1}`, "depth must be positive", nil},
		{"ratio", `{"mlp_ratio": 0}`, "mlp_ratio", nil},
		{"syntax", `{"depth": }`, "dit config", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.json))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("parsed %+v", cfg)
			}
		})
	}
}

func TestEpsilonLearnSigmaCheckpointLoadsAndRoundTrips(t *testing.T) {
	cfg := Config{InputSize: 8, PatchSize: 2, InChannels: 3, HiddenSize: 32, Depth: 2, NumHeads: 2,
		MLPRatio: 4, NumClasses: 5, LearnSigma: true, Prediction: Epsilon}
	m, err := New(cfg, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero adaLN and output weights so the round trip is not trivial.
	rng := tensor.NewRNG(2)
	for _, p := range nn.NamedParams(m) {
		if p.Var.RequiresGrad() {
			p.Var.Value.CopyFrom(rng.Uniform(-0.1, 0.1, p.Var.Value.Shape()...))
		}
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config != cfg {
		t.Fatalf("config %+v after round trip, want %+v", back.Config, cfg)
	}
	x := tensor.NewRNG(3).Normal(2, 3, 8, 8)
	ts, y := []float32{10, 900}, []int{1, 5}
	a, err := m.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	b, err := back.Predict(x, ts, y)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Shape(); len(got) != 4 || got[1] != 3 {
		t.Fatalf("prediction shape %v, want the 3 epsilon channels", got)
	}
	for i, v := range a.Data() {
		if v != b.Data()[i] {
			t.Fatalf("output %d differs after save/load: %g vs %g", i, v, b.Data()[i])
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), checkpoint.WeightsFile) {
		t.Errorf("empty folder: %v", err)
	}
	// A golden config with a different width does not fit the weights.
	os.WriteFile(filepath.Join(dir, checkpoint.ConfigFile), []byte(`{"input_size": 16, "in_channels": 2, "hidden_size": 64, "depth": 2, "learn_sigma": true}`), 0o644)
	data, _ := os.ReadFile(filepath.Join(golden, checkpoint.WeightsFile))
	os.WriteFile(filepath.Join(dir, checkpoint.WeightsFile), data, 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("mismatched width: %v", err)
	}
	os.WriteFile(filepath.Join(dir, checkpoint.WeightsFile), []byte("not a safetensors file"), 0o644)
	if _, err := Load(dir); err == nil {
		t.Error("garbage weights loaded")
	}
	// A checkpoint with a tensor the model lacks is of another architecture.
	m, err := New(DefaultConfig(), tensor.NewRNG(0))
	if err != nil {
		t.Fatal(err)
	}
	m.Blocks[0].AdaLN.Bias = nil // drops blocks.0.adaLN_modulation.1.bias from the saved file
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "adaLN_modulation.1.bias") {
		t.Errorf("checkpoint missing a tensor: %v", err)
	}
}

func TestPredictValidatesInput(t *testing.T) {
	m, err := New(Config{InputSize: 8, PatchSize: 4, InChannels: 1, HiddenSize: 16, Depth: 1, NumHeads: 2, MLPRatio: 2, NumClasses: 3}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(2, 1, 8, 8)
	for _, c := range []struct {
		name string
		x    *tensor.Tensor
		t    []float32
		y    []int
	}{
		{"label", x, []float32{1, 2}, []int{0, 4}},
		{"negative label", x, []float32{1, 2}, []int{-1, 0}},
		{"batch", x, []float32{1}, []int{0, 1}},
		{"shape", tensor.New(2, 2, 8, 8), []float32{1, 2}, []int{0, 1}},
		{"nan", x, []float32{float32(math.NaN()), 2}, []int{0, 1}},
	} {
		if _, err := m.Predict(c.x, c.t, c.y); err == nil {
			t.Errorf("%s: invalid input accepted", c.name)
		}
	}
	out, err := m.Predict(x, []float32{1, 2}, []int{0, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Data() {
		if v != 0 {
			t.Fatal("a freshly initialised DiT (adaLN-Zero) must output zero")
		}
	}
}

// The model plugs into the samplers and the training loss as is.
var (
	_ diffusion.Model   = (*Model)(nil)
	_ diffusion.Network = (*Model)(nil)
)

func TestIsConfig(t *testing.T) {
	tests := map[string]bool{
		`{"input_size": 32, "patch_size": 4, "hidden_size": 128}`:                   true,
		`{"input_size": 32, "patch_size": 4, "text_encoder": {"max_len": 48}}`:      false,
		`{"vocab_size": 264, "hidden_size": 192, "input_size": 1, "patch_size": 1}`: false,
		`{"hidden_size": 192, "num_hidden_layers": 6}`:                              false,
		`not json`: false,
	}
	for raw, want := range tests {
		if got := IsConfig([]byte(raw)); got != want {
			t.Errorf("IsConfig(%s) = %v, want %v", raw, got, want)
		}
	}
}
