package textenc

import (
	"math"
	"slices"
	"testing"

	"tessera/autodiff"
	"tessera/tensor"
	"tessera/tokenizer"
)

func small(t *testing.T, layers int) *Encoder {
	t.Helper()
	e, err := New(Config{MaxLen: 8, Width: 16, Layers: layers, Heads: 2, OutDim: 12}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTokenize(t *testing.T) {
	e := small(t, 1)
	tests := []struct {
		prompt string
		want   []int
		n      int
	}{
		{"Cat", []int{'c', 'a', 't'}, 3},
		{"  red   Heart ", []int{'r', 'e', 'd', ' ', 'h', 'e', 'a', 'r'}, 8}, // normalised, then truncated to 8
		{"", nil, 0},
	}
	for _, tc := range tests {
		ids, lens := e.Tokenize([]string{tc.prompt})
		if lens[0] != tc.n || len(ids) != 8 {
			t.Errorf("%q: %d ids, length %d; want 8 ids, length %d", tc.prompt, len(ids), lens[0], tc.n)
			continue
		}
		for j := 0; j < 8; j++ {
			want := tokenizer.Pad
			if j < len(tc.want) {
				want = tc.want[j]
			}
			if ids[j] != want {
				t.Errorf("%q: id %d = %d, want %d", tc.prompt, j, ids[j], want)
			}
		}
	}
}

func TestEncodeInvariances(t *testing.T) {
	for _, layers := range []int{0, 2} {
		e := small(t, layers)
		out := e.Encode([]string{"Grinning Face", "grinning  face", "", "", "red heart"})
		if s := out.Shape(); len(s) != 2 || s[0] != 5 || s[1] != 12 {
			t.Fatalf("layers %d: shape %v, want [5 12]", layers, s)
		}
		d := out.Data()
		row := func(i int) []float32 { return d[i*12 : (i+1)*12] }
		if diff := maxDiff(row(0), row(1)); diff > 1e-6 {
			t.Errorf("layers %d: case and spacing change the embedding by %g", layers, diff)
		}
		if diff := maxDiff(row(2), row(3)); diff != 0 {
			t.Errorf("layers %d: two empty prompts differ by %g", layers, diff)
		}
		if diff := maxDiff(row(0), row(4)); diff < 1e-4 {
			t.Errorf("layers %d: different prompts give the same embedding", layers)
		}
		// A prompt's embedding does not depend on the rest of the batch.
		alone := e.Encode([]string{"red heart"}).Data()
		if diff := maxDiff(alone, row(4)); diff > 1e-5 {
			t.Errorf("layers %d: batching changes an embedding by %g", layers, diff)
		}
	}
}

func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestGradients compares backpropagated gradients with central finite
// differences of a fixed projection of the pooled output.
func TestGradients(t *testing.T) {
	e := small(t, 1)
	prompts := []string{"cat face", "ok", ""}
	wts := tensor.NewRNG(3).Normal(3, 12)
	objective := func(g *autodiff.Graph) *autodiff.Var {
		return g.SumAll(g.Mul(e.Forward(g, prompts), autodiff.Const(wts)))
	}
	g := autodiff.NewGraph()
	loss := objective(g)
	if err := g.Backward(loss); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		v    *autodiff.Var
		idx  []int
	}{
		{"token embedding 'c'", e.Tokens.Weight, []int{'c'*16 + 3, 'a'*16 + 7}},
		{"position embedding", e.Pos, []int{0, 16 + 5}},
		{"qkv weight", e.Layers[0].Attn.QKV.Weight, []int{5, 300}},
		{"mlp fc2 weight", e.Layers[0].MLP.FC2.Weight, []int{17}},
		{"proj bias", e.Proj.Bias, []int{4}},
	}
	for _, c := range checks {
		for _, i := range c.idx {
			analytic := float64(c.v.Grad.Contiguous().Data()[i])
			p := c.v.Value.Data()
			old := p[i]
			const h = 2e-3
			p[i] = old + h
			up := eval(objective)
			p[i] = old - h
			down := eval(objective)
			p[i] = old
			numeric := (up - down) / (2 * h)
			if math.Abs(numeric-analytic) > 3e-2*math.Max(1, math.Abs(numeric)) {
				t.Errorf("%s[%d]: gradient %g, finite difference %g", c.name, i, analytic, numeric)
			}
		}
	}
	g.Release()
}

func eval(f func(*autodiff.Graph) *autodiff.Var) float64 {
	g := autodiff.NoGrad()
	defer g.Release()
	return float64(f(g).Value.Data()[0])
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{MaxLen: 0, Width: 16, Layers: 1, Heads: 2, OutDim: 8},
		{MaxLen: 8, Width: 15, Layers: 1, Heads: 2, OutDim: 8},
		{MaxLen: 8, Width: 16, Layers: -1, Heads: 2, OutDim: 8},
	} {
		if _, err := New(c, tensor.NewRNG(0)); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func TestCheckPrompt(t *testing.T) {
	c := Config{MaxLen: 8}
	tests := []struct {
		prompt string
		ok     bool
	}{
		{"cat", true},
		{"  Red   HEART ", false}, // normalised to "red heart", 9 bytes
		{"  Red   CAT ", true},    // "red cat", 7 bytes
		{"abcdefgh", true},
		{"abcdefghi", false},
		{"", false},
		{"   ", false},
	}
	for _, tc := range tests {
		if err := c.CheckPrompt(tc.prompt); (err == nil) != tc.ok {
			t.Errorf("CheckPrompt(%q) = %v, want ok=%v", tc.prompt, err, tc.ok)
		}
	}
}

// Fit gives what the encoder reads of a prompt: the same tokens, and a
// prompt that passes CheckPrompt.
func TestFit(t *testing.T) {
	c := Config{MaxLen: 8}
	e := &Encoder{Config: c}
	for _, tc := range []struct{ prompt, want string }{
		{"cat", "cat"}, {"  Red   HEART ", "red hear"}, {"abcdefghi", "abcdefgh"}, {"", ""},
	} {
		got := c.Fit(tc.prompt)
		if got != tc.want {
			t.Errorf("Fit(%q) = %q, want %q", tc.prompt, got, tc.want)
		}
		if tc.want != "" {
			if err := c.CheckPrompt(got); err != nil {
				t.Errorf("Fit(%q) = %q fails CheckPrompt: %v", tc.prompt, got, err)
			}
			a, _ := e.Tokenize([]string{tc.prompt})
			b, _ := e.Tokenize([]string{got})
			if !slices.Equal(a, b) {
				t.Errorf("Fit(%q) tokenizes as %v, the prompt as %v", tc.prompt, b, a)
			}
		}
	}
}
