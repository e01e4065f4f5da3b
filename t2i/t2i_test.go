package t2i

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"tessera/diffusion"
	"tessera/dit"
	"tessera/internal/progress"
	"tessera/nn"
	"tessera/tensor"
	"tessera/textenc"
)

// colours is a toy captioned set: 8×8 images of a coloured square on
// white, one colour per subject, two "styles" (square sizes) each.
type colours struct{}

var colourNames = []string{"red", "green", "blue", "black"}
var colourRGB = [][3]float32{{1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}, {-1, -1, -1}}

func (colours) Len() int          { return 2 * len(colourNames) }
func (colours) Shape() [3]int     { return [3]int{3, 8, 8} }
func (colours) EmojiOf(i int) int { return i / 2 }
func (colours) Caption(i int, draw uint64) string {
	if draw%3 == 0 {
		return colourNames[i/2] + " square"
	}
	return colourNames[i/2]
}
func (colours) Example(i int, dst []float32) {
	lo, hi := 2, 6
	if i%2 == 1 {
		lo, hi = 1, 7
	}
	rgb := colourRGB[i/2]
	for c := 0; c < 3; c++ {
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				v := float32(1)
				if y >= lo && y < hi && x >= lo && x < hi {
					v = rgb[c]
				}
				dst[(c*8+y)*8+x] = v
			}
		}
	}
}

func tinyConfig() Config {
	return Config{
		Config: dit.Config{InputSize: 8, PatchSize: 2, InChannels: 3, HiddenSize: 32, Depth: 2, NumHeads: 2,
			MLPRatio: 2, Prediction: dit.Velocity},
		Conditioning: PooledAdaLN,
		Text:         textenc.Config{MaxLen: 16, Width: 16, Layers: 1, Heads: 2, OutDim: 32},
	}
}

func randomized(t *testing.T) *Model {
	t.Helper()
	m, err := New(tinyConfig(), tensor.NewRNG(5))
	if err != nil {
		t.Fatal(err)
	}
	// Zero-initialised adaLN and output layers would make every test
	// trivially pass; give every parameter some weight.
	rng := tensor.NewRNG(9)
	for _, p := range nn.Params(m) {
		d := p.Value.Data()
		for i := range d {
			d[i] += 0.05 * float32(rng.NormFloat64())
		}
	}
	return m
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := randomized(t)
	x := tensor.NewRNG(1).Normal(3, 3, 8, 8)
	tt := []float32{100, 500, 900}
	p := NewPrompted(m, []string{"red", "blue square"})
	want, err := p.Predict(x, tt, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "m")
		if err := m.Save(dir, full); err != nil {
			t.Fatal(err)
		}
		back, err := LoadFS(os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		got, err := NewPrompted(back, []string{"red", "blue square"}).Predict(x, tt, []int{0, 1, 2})
		if err != nil {
			t.Fatal(err)
		}
		tol := 1e-6
		if !full {
			tol = 2e-2 // float16 weights
		}
		if d := maxAbsDiff(want.Data(), got.Data()); d > tol {
			t.Errorf("full=%v: reloaded model differs by %g (tolerance %g)", full, d, tol)
		}
		if back.Config.Text != m.Config.Text || back.Config.Config != m.Config.Config {
			t.Errorf("config after reload %+v, want %+v", back.Config, m.Config)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	m := randomized(t)
	dir := t.TempDir()
	if err := m.Save(dir, true); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]string{
		"unknown conditioning": `{"input_size": 8, "patch_size": 2, "in_channels": 3, "hidden_size": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2, "num_classes": 0, "conditioning": "cross", "text_encoder": {"max_len": 16, "width": 16, "layers": 1, "heads": 2, "out_dim": 32}}`,
		"wrong depth":          `{"input_size": 8, "patch_size": 2, "in_channels": 3, "hidden_size": 32, "depth": 3, "num_heads": 2, "mlp_ratio": 2, "num_classes": 0, "conditioning": "pooled-adaln", "text_encoder": {"max_len": 16, "width": 16, "layers": 1, "heads": 2, "out_dim": 32}}`,
		"text width mismatch":  `{"input_size": 8, "patch_size": 2, "in_channels": 3, "hidden_size": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2, "num_classes": 0, "conditioning": "pooled-adaln", "text_encoder": {"max_len": 16, "width": 16, "layers": 1, "heads": 2, "out_dim": 16}}`,
		"not json":             `{`,
	} {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFS(os.DirFS(dir)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

// TestGuidedBatching checks that guidance through Prompted's labels equals
// u + w·(c − u) from separate conditional and unconditional calls.
func TestGuidedBatching(t *testing.T) {
	m := randomized(t)
	p := NewPrompted(m, []string{"red", "green"})
	x := tensor.NewRNG(2).Normal(2, 3, 8, 8)
	tt := []float32{300, 700}
	cond, err := p.Predict(x, tt, []int{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	unc, err := p.Predict(x, tt, []int{p.Null(), p.Null()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := diffusion.Guided{Model: p, Scale: 3, Null: p.Null()}.Predict(x, tt, []int{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	c, u, g := cond.Data(), unc.Data(), got.Data()
	for i := range g {
		if want := u[i] + 3*(c[i]-u[i]); math.Abs(float64(g[i]-want)) > 1e-4 {
			t.Fatalf("guided value %d = %g, want %g", i, g[i], want)
		}
	}
	if maxAbsDiff(c, u) < 1e-4 {
		t.Error("the prompt does not change the prediction")
	}
	if _, err := p.Predict(x, tt, []int{0, 3}); err == nil {
		t.Error("label beyond the empty prompt accepted")
	}
	if _, err := p.Predict(tensor.New(2, 1, 8, 8), tt, []int{0, 0}); err == nil {
		t.Error("wrong channel count accepted")
	}
}

func TestGenerateDeterministicAndCounted(t *testing.T) {
	m := randomized(t)
	prompts := []string{"red", "blue", "red", ""}
	a, st, err := Generate(m, prompts, GenerateOptions{Seed: 4, Steps: 5, CFG: 2, Batch: 4, Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		t.Fatal(err)
	}
	b, st2, err := Generate(m, prompts, GenerateOptions{Seed: 4, Steps: 5, CFG: 2, Batch: 3, Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if d := maxAbsDiff(a[i].Data(), b[i].Data()); d > 1e-5 {
			t.Errorf("image %d depends on the batch size (%g)", i, d)
		}
	}
	if st.N != 4 || st.NetworkEvals != 5 || st.BlockEvals != 10 || st.FLOPs <= 0 {
		t.Errorf("stats %+v: want n 4, 5 network evals, 10 block evals, positive flops", st)
	}
	if st2.NetworkEvals != 10 {
		t.Errorf("two batches of 5 steps counted %d network evals, want 10", st2.NetworkEvals)
	}
	if _, _, err := Generate(m, nil, GenerateOptions{}); err == nil {
		t.Error("no prompts accepted")
	}
}

// TestTrainFollowsPrompt trains a tiny model on coloured squares and
// checks that each colour's prompt gives its colour in the square.
func TestTrainFollowsPrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("training run")
	}
	res, err := Train(context.Background(), colours{}, TrainOptions{Config: tinyConfig(), Steps: 300, Batch: 16, LR: 3e-3,
		EMADecay: 0.98, Seed: 1, Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		t.Fatal(err)
	}
	imgs, _, err := Generate(res.Model, colourNames, GenerateOptions{Seed: 1, Steps: 16, CFG: 3, Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		t.Fatal(err)
	}
	for k, img := range imgs {
		d := img.Data()
		for c := 0; c < 3; c++ {
			// Mean over the 4×4 centre, always inside the square.
			var s float64
			for y := 2; y < 6; y++ {
				for x := 2; x < 6; x++ {
					s += float64(d[(c*8+y)*8+x])
				}
			}
			s /= 16
			if want := float64(colourRGB[k][c]); math.Abs(s-want) > 0.6 {
				t.Errorf("%q: channel %d centre mean %.2f, want near %g", colourNames[k], c, s, want)
			}
		}
	}
}

func TestScorerRetrieval(t *testing.T) {
	if testing.Short() {
		t.Skip("training run")
	}
	cfg := ScorerConfig{InputSize: 8, Channels: []int{8, 16, 16, 16}, EmbedDim: 16,
		Text: textenc.Config{MaxLen: 16, Width: 16, Layers: 1, Heads: 2, OutDim: 16}}
	s, _, err := TrainScorer(context.Background(), colours{}, ScorerOptions{Config: cfg, Steps: 150, Batch: 4, LR: 3e-3, Seed: 2,
		Progress: progress.Options{Mode: progress.Silent}})
	if err != nil {
		t.Fatal(err)
	}
	var imgs []*tensor.Tensor
	var truth []int
	var ds colours
	for i := 0; i < ds.Len(); i++ {
		img := tensor.New(3, 8, 8)
		ds.Example(i, img.Data())
		imgs = append(imgs, img)
		truth = append(truth, i/2)
	}
	acc, err := s.Retrieval(imgs, truth, colourNames, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 1 {
		t.Errorf("retrieval accuracy %.2f on the training colours, want 1", acc)
	}
	feats := s.ImageEmbeddings(imgs)
	if len(feats) != len(imgs) || len(feats[0]) != 16 {
		t.Fatalf("embeddings %d×%d", len(feats), len(feats[0]))
	}
	dir := t.TempDir()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadScorerFS(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(back.ImageEmbeddings(imgs)[3], feats[3]); d > 1e-6 {
		t.Errorf("reloaded scorer differs by %g", d)
	}
	if _, err := s.Retrieval(imgs, truth, colourNames, 4, 1); err == nil {
		t.Error("more distractors than captions accepted")
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
