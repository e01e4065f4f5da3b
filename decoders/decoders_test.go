package decoders

import (
	"context"
	"io/fs"
	"math"
	"os"
	"slices"
	"testing"

	"tessera/corpus"
	"tessera/internal/progress"
	"tessera/llama"
	"tessera/specdec"
	"tessera/tensor"
	"tessera/tokenizer"
)

func tinyConfig() llama.Config {
	return llama.Config{VocabSize: tokenizer.New().VocabSize(), HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 1,
		NumAttentionHeads: 2, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000}
}

// TestTrainLowersLoss trains a tiny decoder briefly: the held-out loss
// must fall well below the uniform loss ln(264), and a resumed run must
// reproduce an uninterrupted one.
func TestTrainLowersLoss(t *testing.T) {
	src := ArithSource{Split: corpus.TrainTarget}
	valid := [][][]int{src.Batch(99, 8, 65)}
	o := Options{Config: tinyConfig(), Steps: 40, Batch: 8, SeqLen: 64, LR: 1e-2, Seed: 1,
		Progress: progress.Options{Mode: progress.Silent}}
	m, res, err := Train(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Loss(m, valid)
	if err != nil {
		t.Fatal(err)
	}
	if uniform := math.Log(264); !(l < 0.6*uniform) || res.Steps != 40 {
		t.Fatalf("validation loss %.3f after %d steps, uniform %.3f", l, res.Steps, uniform)
	}

	// Resume: 20 steps, then 20 more from the checkpoint, equal 40 at once.
	dir := t.TempDir()
	o.CheckpointDir, o.CheckpointEvery = dir, 20
	ctx, cancel := context.WithCancel(context.Background())
	stopAt := 20
	o.Eval, o.EvalEvery = func(*llama.Model) (string, float64, error) {
		stopAt--
		if stopAt == 0 {
			cancel()
		}
		return "x", 0, nil
	}, 1
	if _, _, err := Train(ctx, src, o); err == nil {
		t.Fatal("cancelled run reported no error")
	}
	o.Eval = nil
	resumed, _, err := Train(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	o.CheckpointDir = ""
	whole, _, err := Train(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	a, b := resumed.Model.Norm.Weight.Value.Data(), whole.Model.Norm.Weight.Value.Data()
	if !slices.Equal(a, b) {
		t.Fatalf("resumed run differs from an uninterrupted one: %v vs %v", a[:4], b[:4])
	}
}

func TestShippedRoundTrip(t *testing.T) {
	m, err := llama.New(tinyConfig(), tensor.NewRNG(3))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := SaveShipped(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := llama.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	seq := corpus.Tokens(tokenizer.New(), "Q: 12+34=?\nA: ")
	want, err := mustCache(t, m).Extend(seq)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	got, err := mustCache(t, back).Extend(seq)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if d := math.Abs(float64(want[i] - got[i])); d > 2e-3 {
			t.Fatalf("logit %d: %g after float16 round trip, %g before", i, got[i], want[i])
		}
	}
}

func mustCache(t *testing.T, m *llama.Model) *llama.Cache {
	c, err := m.NewCache(64)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnswerError(t *testing.T) {
	tok := tokenizer.New()
	p := corpus.Problem{A: 37, B: 48}
	valid := p.Text(corpus.Phrasing{})
	enc := func(s string, eos bool) []int {
		ids := tok.Encode(s)
		if eos {
			ids = append(ids, tokenizer.EOS)
		}
		return ids
	}
	tests := []struct {
		name string
		ids  []int
		want int
	}{
		{"valid with eos", enc(valid, true), -1},
		{"valid prefix", enc(valid[:12], false), -1},
		{"early eos", enc(valid[:12], true), 12},
		{"no eos after answer", enc(valid+"Q", false), len(valid)},
		{"wrong digit", enc("30+40=71", true), 7},
		{"other special", append(enc("30+", false), tokenizer.Pad), 3},
		{"labelled steps", enc(p.Text(corpus.Phrasing{OnesFirst: true, Labelled: true, Final: 3}), true), -1},
		{"labelled wrong digit", enc("ones 7+8=16", true), 10},
	}
	for _, tc := range tests {
		if got := answerError(p, tc.ids); got != tc.want {
			t.Errorf("%s: first error %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestAnswersFitBudget checks that every valid answer, with <eos>, fits
// the generation budget MaxAnswer.
func TestAnswersFitBudget(t *testing.T) {
	for _, p := range []corpus.Problem{{A: 99, B: 99}, {A: 10, B: 10}, {A: 95, B: 97, Question: 1}} {
		for _, a := range p.Answers() {
			if len(a)+1 > MaxAnswer {
				t.Errorf("answer %q has %d bytes, budget %d tokens with <eos>", a, len(a), MaxAnswer)
			}
		}
	}
}

func TestJudgeSetLabelsAndRoundTrip(t *testing.T) {
	draft, err := llama.New(tinyConfig(), tensor.NewRNG(4))
	if err != nil {
		t.Fatal(err)
	}
	problems := corpus.NewGenerator(corpus.TrainTarget, 1).Problems(6)
	set, err := JudgeSet(draft, problems, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != PerProblem*len(problems) {
		t.Fatalf("%d labelled answers for %d problems", len(set), len(problems))
	}
	for i := 0; i < len(set); i += PerProblem {
		if set[i+1].FirstError != -1 {
			t.Fatalf("valid alternative labelled with an error at %d", set[i+1].FirstError)
		}
		for _, c := range set[i+2 : i+4] {
			if c.FirstError < c.Start {
				t.Fatalf("corrupted answer labelled without error (first error %d, start %d)", c.FirstError, c.Start)
			}
		}
	}
	ex, err := Examples(draft, set)
	if err != nil {
		t.Fatal(err)
	}
	for _, margin := range []bool{false, true} {
		j, _, err := specdec.TrainJudge(ex, specdec.TrainOptions{Steps: 50, Balance: true, Margin: margin})
		if err != nil {
			t.Fatal(err)
		}
		j.Threshold = 0.7
		dir := t.TempDir()
		if err := SaveJudge(dir, j, JudgeConfig{Target: "t"}); err != nil {
			t.Fatal(err)
		}
		back, cfg, err := LoadJudge(osDirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HiddenSize != 32 || cfg.Margin != margin || back.Margin != margin || back.Threshold != 0.7 || back.B != j.B ||
			!slices.Equal(back.W, j.W) || !IsJudge(osDirFS(dir)) {
			t.Fatalf("judge round trip (margin %v): %+v, config %+v", margin, back, cfg)
		}
		rep := Evaluate(back, ex)
		if rep.Positive+rep.Negative != len(ex) || rep.Negative < len(problems) {
			t.Fatalf("report %+v", rep)
		}
	}
}

func osDirFS(dir string) fs.FS { return os.DirFS(dir) }

// TestInitFineTunes checks that a run with Init starts from the given
// weights (a near-zero learning rate leaves them unchanged) and that a
// model of another shape is refused.
func TestInitFineTunes(t *testing.T) {
	src := ArithSource{Split: corpus.TrainTarget}
	base, err := llama.New(tinyConfig(), tensor.NewRNG(7))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Config: tinyConfig(), Steps: 2, Batch: 2, SeqLen: 16, LR: 1e-12, Seed: 1, Init: base,
		Progress: progress.Options{Mode: progress.Silent}}
	m, _, err := Train(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Model.EmbedTokens.Weight.Value.Data(), base.Model.EmbedTokens.Weight.Value.Data()
	for i := range a {
		if d := math.Abs(float64(a[i] - b[i])); d > 1e-6 {
			t.Fatalf("embedding %d moved from %g to %g", i, b[i], a[i])
		}
	}
	other := tinyConfig()
	other.IntermediateSize = 48
	o.Config = other
	if _, _, err := Train(context.Background(), src, o); err == nil {
		t.Fatal("init model of another shape: no error")
	}
}
