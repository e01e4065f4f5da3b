package llama

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"tessera/autodiff"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
)

func TestGoldenForward(t *testing.T) {
	m, err := Load("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	tokens, want := goldenIO(t)
	g := autodiff.NoGrad()
	logits, err := m.Forward(g, [][]int{tokens})
	if err != nil {
		t.Fatal(err)
	}
	if s := logits.Shape(); len(s) != 3 || s[0] != 1 || s[1] != len(tokens) || s[2] != m.Config.VocabSize {
		t.Fatalf("logits shape %v", s)
	}
	if r := maxRelErr(logits.Value.Data(), want); r > 1e-4 {
		t.Fatalf("graph forward differs from the reference: max relative error %.3g", r)
	}
	c, err := m.NewCache(len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Extend(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if r := maxRelErr(got, want); r > 1e-4 {
		t.Fatalf("cache forward differs from the reference: max relative error %.3g", r)
	}
}

// TestDecodeEqualsForward checks incremental decoding against the full
// forward of the graph on a random model with tied embeddings (so the
// tied head and odd shapes are covered too).
func TestDecodeEqualsForward(t *testing.T) {
	cfg := Config{VocabSize: 50, HiddenSize: 48, IntermediateSize: 100, NumHiddenLayers: 3,
		NumAttentionHeads: 6, NumKeyValueHeads: 2, RMSNormEps: 1e-6, RopeTheta: 500, TieWordEmbeddings: true}
	m, err := New(cfg, tensor.NewRNG(3))
	if err != nil {
		t.Fatal(err)
	}
	scaleUp(m, 10)
	rng := tensor.NewRNG(5)
	tokens := make([]int, 30)
	for i := range tokens {
		tokens[i] = rng.Intn(cfg.VocabSize)
	}
	full, err := m.Forward(autodiff.NoGrad(), [][]int{tokens})
	if err != nil {
		t.Fatal(err)
	}
	want := full.Value.Data()
	V := cfg.VocabSize
	c, err := m.NewCache(40)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prefill(tokens[:7]); err != nil {
		t.Fatal(err)
	}
	for i := 7; i < len(tokens); i++ {
		got, err := c.Decode(tokens[i])
		if err != nil {
			t.Fatal(err)
		}
		if r := maxRelErr(got, want[i*V:(i+1)*V]); r > 1e-4 {
			t.Fatalf("token %d: decode differs from the full forward by %.3g", i, r)
		}
	}
	// Roll back and replay: the same logits again.
	if err := c.Truncate(20); err != nil {
		t.Fatal(err)
	}
	got, err := c.Extend(tokens[20:25])
	if err != nil {
		t.Fatal(err)
	}
	if r := maxRelErr(got, want[20*V:25*V]); r > 1e-4 {
		t.Fatalf("extend after truncate differs by %.3g", r)
	}
	hidden, err := m.ForwardHidden(autodiff.NoGrad(), [][]int{tokens[:25]})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.HiddenSize
	if r := maxRelErr(c.Hidden(), hidden.Value.Data()[20*d:25*d]); r > 1e-4 {
		t.Fatalf("cache hidden states differ from ForwardHidden by %.3g", r)
	}
	// Errors, not panics, for bad input.
	for _, bad := range [][]int{{-1}, {V}, nil} {
		if _, err := c.Extend(bad); err == nil {
			t.Errorf("Extend(%v): want an error", bad)
		}
	}
	if _, err := m.Forward(autodiff.NoGrad(), [][]int{{1, 2}, {3}}); err == nil {
		t.Error("ragged batch: want an error")
	}
}

// scaleUp multiplies the weight matrices so that activations are far from
// zero and the comparison is meaningful.
func scaleUp(m *Model, s float32) {
	for _, p := range nn.Params(m) {
		if p.Value.Rank() == 2 {
			d := p.Value.Data()
			for i := range d {
				d[i] *= s
			}
		}
	}
}

// TestWeightUpdatesReachCache checks that the cache sees in-place updates
// of the fused weights and replaced tensors.
func TestWeightUpdatesReachCache(t *testing.T) {
	m, err := Load("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := goldenIO(t)
	run := func() []float32 {
		c, err := m.NewCache(len(tokens))
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.Extend(tokens)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), l...)
	}
	graph := func() []float32 {
		l, err := m.Forward(autodiff.NoGrad(), [][]int{tokens})
		if err != nil {
			t.Fatal(err)
		}
		return l.Value.Data()
	}
	run()
	q := m.Model.Layers[1].SelfAttn.Q.Weight
	d := q.Value.Data()
	for i := range d {
		d[i] *= 1.5
	}
	if r := maxRelErr(run(), graph()); r > 1e-4 {
		t.Fatalf("after an in-place update: cache and graph differ by %.3g", r)
	}
	up := m.Model.Layers[0].MLP.Up.Weight
	up.SetTensor(tensor.Scale(up.Value, -0.5))
	if r := maxRelErr(run(), graph()); r > 1e-4 {
		t.Fatalf("after replacing a tensor: cache and graph differ by %.3g", r)
	}
	// A replaced tensor reaches a cache made before it, batched passes
	// included.
	c, err := m.NewCache(len(tokens))
	if err != nil {
		t.Fatal(err)
	}
	down := m.Model.Layers[1].MLP.Down.Weight
	down.SetTensor(tensor.Scale(down.Value, 2))
	l, err := c.Extend(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if r := maxRelErr(l, graph()); r > 1e-4 {
		t.Fatalf("a cache made before a tensor was replaced: cache and graph differ by %.3g", r)
	}
}

// TestOverfitOneSequence trains the golden model on one sequence: the loss
// must fall close to zero, so the gradient flows through every op.
func TestOverfitOneSequence(t *testing.T) {
	m, err := Load("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := goldenIO(t)
	params := nn.Params(m)
	opt := optim.NewAdamW(params, optim.AdamWConfig{LR: 3e-3})
	var first, last float32
	for step := 0; step < 60; step++ {
		g := autodiff.NewGraph()
		loss, err := m.Loss(g, [][]int{seq})
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = loss.Value.Data()[0]
		}
		last = loss.Value.Data()[0]
		opt.ZeroGrad()
		if err := g.Backward(loss); err != nil {
			t.Fatal(err)
		}
		g.Release()
		opt.Step()
	}
	for _, p := range params {
		if p.Grad == nil {
			t.Fatal("a parameter got no gradient")
		}
	}
	if !(last < 0.1*first) || math.IsNaN(float64(last)) {
		t.Fatalf("loss %.4f -> %.4f: want a tenfold drop", first, last)
	}
	// The trained weights decode consistently with the graph.
	c, err := m.NewCache(len(seq))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Extend(seq)
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.Forward(autodiff.NoGrad(), [][]int{seq})
	if err != nil {
		t.Fatal(err)
	}
	if r := maxRelErr(got, l.Value.Data()); r > 1e-4 {
		t.Fatalf("after training: cache and graph differ by %.3g", r)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := Config{VocabSize: 40, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2,
			NumAttentionHeads: 4, NumKeyValueHeads: 1, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: tied}
		m, err := New(cfg, tensor.NewRNG(1))
		if err != nil {
			t.Fatal(err)
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
			t.Fatalf("config %+v, want %+v", back.Config, cfg)
		}
		if tied != (back.LMHead == nil) {
			t.Fatalf("tied=%v: lm_head present=%v", tied, back.LMHead != nil)
		}
		a, _ := m.Forward(autodiff.NoGrad(), [][]int{{1, 2, 3}})
		b, _ := back.Forward(autodiff.NoGrad(), [][]int{{1, 2, 3}})
		if r := maxRelErr(b.Value.Data(), a.Value.Data()); r != 0 {
			t.Fatalf("tied=%v: reloaded model differs by %.3g", tied, r)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		json string
		ok   bool
	}{
		{`{"vocab_size":256,"hidden_size":64,"intermediate_size":172,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2}`, true},
		{`{"hidden_size":64,"num_attention_heads":4}`, true},
		{`{"hidden_size":60,"num_attention_heads":8}`, false},
		{`{"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":3}`, false},
		{`{"hidden_size":64,"num_attention_heads":64}`, false},
		{`{"vocab_size":0}`, false},
		{`{"rms_norm_eps":0}`, false},
		{`{"vocab_size":"x"}`, false},
	}
	for _, tc := range tests {
		c, err := ParseConfig(strings.NewReader(tc.json))
		if (err == nil) != tc.ok {
			t.Errorf("ParseConfig(%s): err = %v, want ok=%v", tc.json, err, tc.ok)
		}
		if err == nil && c.KVHeads() == 0 {
			t.Errorf("ParseConfig(%s): no KV heads", tc.json)
		}
	}
	c, err := ParseConfig(strings.NewReader(`{"hidden_size":64,"num_attention_heads":4}`))
	if err != nil || c.NumKeyValueHeads != 4 || c.RopeTheta != 10000 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	b, err := MarshalConfig(Config27M())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(bytes.NewReader(b))
	if err != nil || back != Config27M() {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if n := Config27M().Params(); n < 27e6 || n > 28e6 {
		t.Fatalf("27M config has %d parameters", n)
	}
	m, _ := New(DefaultConfig(), tensor.NewRNG(0))
	var n int
	for _, p := range nn.Params(m) {
		n += p.Value.Numel()
	}
	if n != DefaultConfig().Params() {
		t.Fatalf("Params() = %d, model has %d", DefaultConfig().Params(), n)
	}
}
