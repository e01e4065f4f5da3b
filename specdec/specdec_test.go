package specdec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"tessera/llama"
)

// toy is a cached "model" whose next-token logits depend on the last two
// tokens through a fixed random table; noise > 0 perturbs the table (a
// draft that agrees with the target only partly).
type toy struct {
	vocab  int
	table  []float32 // [vocab*vocab, vocab]
	tokens []int
	logits []float32
	hidden []float32
}

func newToy(vocab int, seed uint64, sharp float32, base *toy, noise float32) *toy {
	r := rand.New(rand.NewPCG(seed, 3))
	m := &toy{vocab: vocab, table: make([]float32, vocab*vocab*vocab)}
	for i := range m.table {
		if base != nil {
			m.table[i] = base.table[i] + noise*float32(r.NormFloat64())
		} else {
			m.table[i] = sharp * float32(r.NormFloat64())
		}
	}
	return m
}

func (m *toy) Len() int { return len(m.tokens) }

func (m *toy) Truncate(n int) error {
	m.tokens = m.tokens[:n]
	return nil
}

func (m *toy) row(pos int) []float32 {
	a, b := 0, 0
	if pos >= 1 {
		a = m.tokens[pos-1]
	}
	if pos >= 0 {
		b = m.tokens[pos]
	}
	c := a*m.vocab + b
	return m.table[c*m.vocab : (c+1)*m.vocab]
}

func (m *toy) Extend(tokens []int) ([]float32, error) {
	m.logits, m.hidden = m.logits[:0], m.hidden[:0]
	for _, t := range tokens {
		m.tokens = append(m.tokens, t)
		m.logits = append(m.logits, m.row(len(m.tokens)-1)...)
		// Hidden state: the token itself and its logit rank features.
		m.hidden = append(m.hidden, float32(t), m.row(len(m.tokens) - 2)[t])
	}
	return m.logits, nil
}

func (m *toy) Prefill(tokens []int) ([]float32, error) {
	all, _ := m.Extend(tokens)
	return all[len(all)-m.vocab:], nil
}

func (m *toy) Hidden() []float32 { return m.hidden }

func TestGreedyMatchesTargetOnly(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	tests := []struct {
		name  string
		noise float32
		opt   Options
	}{
		{"same model K4", 0, Options{K: 4, Fixed: true}},
		{"close draft K4", 0.5, Options{K: 4, Fixed: true}},
		{"close draft K1", 0.5, Options{K: 1, Fixed: true}},
		{"far draft K8", 3, Options{K: 8, Fixed: true}},
		{"adaptive", 1, Options{K: 3, DraftCost: 0.1}},
		{"adaptive, useless draft", 30, Options{K: 3, DraftCost: 0.3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for p := 0; p < 5; p++ {
				prompt := []int{p, (3 * p) % vocab, 7}
				tgt := &toy{vocab: vocab, table: target.table}
				want, err := Plain(tgt, prompt, 80, Options{})
				if err != nil {
					t.Fatal(err)
				}
				draft := newToy(vocab, 9, 0, target, tc.noise)
				dec, err := New(&toy{vocab: vocab, table: target.table}, draft, tc.opt)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dec.Generate(prompt, 80)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("prompt %v:\n got %v\nwant %v", prompt, got, want)
				}
				s := dec.Stats()
				if s.Emitted != len(got) {
					t.Fatalf("stats: emitted %d, generated %d", s.Emitted, len(got))
				}
				var rounds int
				for _, h := range s.Histogram {
					rounds += h
				}
				if rounds != s.Rounds || s.Accepted > s.Drafted {
					t.Fatalf("inconsistent stats %+v", s)
				}
				if tc.noise == 0 && s.AcceptanceRate() != 1 {
					t.Fatalf("identical draft: acceptance %.3f, want 1", s.AcceptanceRate())
				}
			}
		})
	}
}

func TestAdaptiveFallsBackToPlain(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	draft := newToy(vocab, 5, 3, nil, 0) // unrelated: almost never right
	dec, err := New(&toy{vocab: vocab, table: target.table}, draft, Options{K: 4, DraftCost: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Generate([]int{1, 2, 3}, 600); err != nil {
		t.Fatal(err)
	}
	s := dec.Stats()
	if s.PlainSteps < 500 {
		t.Fatalf("useless draft: %d plain steps of 600 tokens (stats %+v), want most", s.PlainSteps, s)
	}
	// Failed probes space out: 16, 32, 64, 128, 256 plain steps apart
	// (a probe every 16 would take 37 rounds).
	if s.Rounds > 12 {
		t.Fatalf("useless draft: %d rounds in 600 tokens, want failed probes spaced out", s.Rounds)
	}
	good, err := New(&toy{vocab: vocab, table: target.table}, newToy(vocab, 9, 0, target, 0), Options{K: 2, DraftCost: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.Generate([]int{1, 2, 3}, 200); err != nil {
		t.Fatal(err)
	}
	if gs := good.Stats(); gs.PlainSteps > 1 || good.DraftLength() <= 2 || gs.TokensPerTargetCall() < 3 {
		t.Fatalf("perfect cheap draft: plain steps %d, draft length %d, %.2f tokens per target call; want longer drafts",
			gs.PlainSteps, good.DraftLength(), gs.TokensPerTargetCall())
	}
}

// TestSamplingIsExact checks that tokens 2 and 3 (produced by one draft
// round of K=2) follow the target's joint distribution.
func TestSamplingIsExact(t *testing.T) {
	const vocab = 4
	target := newToy(vocab, 11, 1, nil, 0)
	draft := newToy(vocab, 12, 0, target, 1.5)
	prompt := []int{1, 2}
	opt := llama.SamplerOptions{Temperature: 1}
	// Exact joint of the three generated tokens under the target (the
	// first is drafted too, so rounds of every length are covered).
	probs := func(ctx []int) []float32 {
		m := &toy{vocab: vocab, table: target.table}
		l, _ := m.Prefill(ctx)
		return llama.NewSampler(opt).Distribution(nil, l)
	}
	want := make(map[[3]int]float64)
	for a := 0; a < vocab; a++ {
		pa := probs(prompt)[a]
		for b := 0; b < vocab; b++ {
			pb := probs(append(slices.Clone(prompt), a))[b]
			for c := 0; c < vocab; c++ {
				pc := probs(append(slices.Clone(prompt), a, b))[c]
				want[[3]int{a, b, c}] = float64(pa * pb * pc)
			}
		}
	}
	const runs = 30000
	got := make(map[[3]int]float64)
	for seed := 0; seed < runs; seed++ {
		o := opt
		o.Seed = uint64(seed)
		dec, err := New(&toy{vocab: vocab, table: target.table}, &toy{vocab: vocab, table: draft.table},
			Options{K: 2, Fixed: true, Sampler: o})
		if err != nil {
			t.Fatal(err)
		}
		out, err := dec.Generate(prompt, 3)
		if err != nil {
			t.Fatal(err)
		}
		if st := dec.Stats(); st.Rounds < 1 || st.Emitted != 3 {
			t.Fatalf("want at least one round and 3 tokens, stats %+v", st)
		}
		got[[3]int(out)] += 1.0 / runs
	}
	var tv float64
	for k, p := range want {
		tv += math.Abs(p-got[k]) / 2
	}
	if tv > 0.025 {
		t.Fatalf("total variation between sampled and target joint distributions: %.4f", tv)
	}
}

func TestJudgeAcceptsMore(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	run := func(j *Judge) Stats {
		dec, err := New(&toy{vocab: vocab, table: target.table}, newToy(vocab, 9, 0, target, 2),
			Options{K: 4, Fixed: true, Judge: j})
		if err != nil {
			t.Fatal(err)
		}
		out, err := dec.Generate([]int{1, 2, 3}, 100)
		if err != nil || len(out) != 100 {
			t.Fatalf("generate: %d tokens, %v", len(out), err)
		}
		return dec.Stats()
	}
	std := run(nil)
	never := run(&Judge{W: []float32{0, 0}, B: -20})
	always := run(&Judge{W: []float32{0, 0}, B: 20})
	if never.Accepted != std.Accepted || never.JudgeSaves != 0 {
		t.Fatalf("rejecting judge changed acceptance: %d vs %d", never.Accepted, std.Accepted)
	}
	if always.Accepted != always.Drafted || always.JudgeSaves == 0 {
		t.Fatalf("accepting judge: accepted %d of %d", always.Accepted, always.Drafted)
	}
	if std.AcceptanceRate() >= 1 {
		t.Fatalf("draft too good for the test: acceptance %.2f", std.AcceptanceRate())
	}
	if _, err := New(&plainOnly{}, &toy{}, Options{Judge: &Judge{}}); err == nil {
		t.Fatal("judge with a target without hidden states: want an error")
	}
}

// TestJudgeKeepsDrafting checks that adaptive Judge Decoding does not fall
// back to target-only steps (but for the last token of the budget, which
// leaves no room for a draft), while standard verification with the same
// useless draft does.
func TestJudgeKeepsDrafting(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	tests := []struct {
		name  string
		judge *Judge
		plain bool // plain steps expected
	}{
		{"standard", nil, true},
		{"judge that rejects everything", &Judge{W: []float32{0, 0}, B: -20}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := New(&toy{vocab: vocab, table: target.table}, newToy(vocab, 9, 0, target, 30),
				Options{K: 3, DraftCost: 0.3, Judge: tc.judge})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.Generate([]int{1, 2, 3}, 120); err != nil {
				t.Fatal(err)
			}
			st := dec.Stats()
			if (st.PlainSteps > 1) != tc.plain {
				t.Fatalf("plain steps %d (want some: %v), stats %+v", st.PlainSteps, tc.plain, st)
			}
		})
	}
}

// plainOnly is a Cache without hidden states.
type plainOnly struct{ toy }

func (p *plainOnly) Hidden() {}

func TestTrainJudge(t *testing.T) {
	// separable: the label shows in one hidden feature.
	separable := func(r *rand.Rand) Example {
		ok := r.IntN(4) != 0
		h := make([]float32, 6)
		for k := range h {
			h[k] = float32(r.NormFloat64()) * 1.5
		}
		if ok {
			h[2] += 4
		} else {
			h[2] -= 4
		}
		h[5] += 100 // a large offset the standardisation must absorb
		return Example{Hidden: h, Margin: -float32(r.IntN(5)), OK: ok}
	}
	// kinds: tokens of one kind (h[0] = +1) are always fine, tokens of the
	// other kind are fine only when the target prefers them (margin near
	// 0); no linear function of the hidden state alone separates them.
	kinds := func(r *rand.Rand) Example {
		h := make([]float32, 4)
		for k := range h {
			h[k] = float32(r.NormFloat64()) * 0.3
		}
		word := r.IntN(2) == 0
		if word {
			h[0] += 1
		} else {
			h[0] -= 1
		}
		m := -float32(r.ExpFloat64() * 4)
		return Example{Hidden: h, Margin: m, OK: word || m > -1}
	}
	tests := []struct {
		name      string
		gen       func(*rand.Rand) Example
		margin    bool
		minAUROC  float64
		maxAUROC  float64
		minAccept float64
	}{
		{"separable", separable, false, 0.98, 1, 0.95},
		{"separable with margin", separable, true, 0.98, 1, 0.95},
		{"kinds without margin", kinds, false, 0, 0.95, 0},
		{"kinds with margin", kinds, true, 0.97, 1, 0.9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(4, 4))
			var ex []Example
			for range 600 {
				ex = append(ex, tc.gen(r))
			}
			j, rep, err := TrainJudge(ex, TrainOptions{Balance: true, Margin: tc.margin})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Accuracy < tc.minAccept || rep.AUROC < tc.minAUROC || rep.AUROC > tc.maxAUROC || rep.Positive+rep.Negative != len(ex) {
				t.Fatalf("report %+v: want accuracy >= %g, AUROC in [%g, %g]", rep, tc.minAccept, tc.minAUROC, tc.maxAUROC)
			}
			if want := Features(len(ex[0].Hidden), tc.margin); len(j.W) != want || j.Margin != tc.margin {
				t.Fatalf("%d weights (margin %v), want %d", len(j.W), j.Margin, want)
			}
			var agree int
			for _, e := range ex {
				if j.Accept(e.Hidden, e.Margin) == e.OK {
					agree++
				}
			}
			if float64(agree)/float64(len(ex)) != rep.Accuracy {
				t.Fatalf("folded judge accuracy %.3f differs from the report %.3f", float64(agree)/float64(len(ex)), rep.Accuracy)
			}
		})
	}
	if _, _, err := TrainJudge(nil, TrainOptions{}); err == nil {
		t.Fatal("no examples: want an error")
	}
}

func TestLogitMargin(t *testing.T) {
	logits := []float32{1, 3, -2, 2.5}
	for _, tc := range []struct {
		x    int
		want float32
	}{{1, 0}, {3, -0.5}, {2, -5}} {
		if got := LogitMargin(logits, tc.x); got != tc.want {
			t.Errorf("LogitMargin(%v, %d) = %g, want %g", logits, tc.x, got, tc.want)
		}
	}
	if got := LogitMargin([]float32{0, 100}, 0); got != MinMargin {
		t.Errorf("margin not bounded: %g", got)
	}
}

func TestAUROC(t *testing.T) {
	tests := []struct {
		scores []float64
		labels []bool
		want   float64
	}{
		{[]float64{1, 2, 3, 4}, []bool{false, false, true, true}, 1},
		{[]float64{1, 2, 3, 4}, []bool{true, true, false, false}, 0},
		{[]float64{1, 1, 1, 1}, []bool{true, false, true, false}, 0.5},
		{[]float64{1, 3, 2, 4}, []bool{false, false, true, true}, 0.75},
	}
	for _, tc := range tests {
		if got := AUROC(tc.scores, tc.labels); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("AUROC(%v, %v) = %v, want %v", tc.scores, tc.labels, got, tc.want)
		}
	}
}

func TestJudgeExamples(t *testing.T) {
	m := newToy(8, 1, 1, nil, 0)
	seqs := []Labeled{
		{Tokens: []int{1, 2, 3, 4, 5}, Start: 2, FirstError: -1},
		{Tokens: []int{1, 2, 3, 4, 5, 6}, Start: 2, FirstError: 4},
	}
	ex, err := JudgeExamples(m, seqs)
	if err != nil {
		t.Fatal(err)
	}
	var labels []bool
	for _, e := range ex {
		labels = append(labels, e.OK)
	}
	want := []bool{true, true, true, true, true, false}
	if !slices.Equal(labels, want) {
		t.Fatalf("labels %v, want %v", labels, want)
	}
	if ex[0].Hidden[0] != 3 || ex[5].Hidden[0] != 5 {
		t.Fatalf("hidden states taken at the wrong positions: %v, %v", ex[0].Hidden, ex[5].Hidden)
	}
	if m.Len() != 0 {
		t.Fatalf("cache left with %d tokens", m.Len())
	}
	if got := FirstMismatch([]int{1, 2, 9}, []int{1, 2, 3}); got != 2 {
		t.Fatalf("FirstMismatch = %d, want 2", got)
	}
	if got := FirstMismatch([]int{1, 2}, []int{1, 2}); got != -1 {
		t.Fatalf("FirstMismatch = %d, want -1", got)
	}
}

// TestPlainStopsAtEOS checks that target-only decoding stops after the
// end token like speculative decoding does, and runs to the budget when
// StopAtEOS is off.
func TestPlainStopsAtEOS(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	tests := []struct {
		name   string
		prompt []int
		at     int // the token generated at this index serves as <eos>
		stop   bool
	}{
		{"first token", []int{1, 2, 3}, 0, true},
		{"mid answer", []int{4, 5}, 6, true},
		{"late", []int{7, 7, 9}, 30, true},
		{"not asked to stop", []int{4, 5}, 6, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full, err := Plain(&toy{vocab: vocab, table: target.table}, tc.prompt, 60, Options{})
			if err != nil {
				t.Fatal(err)
			}
			eos := full[tc.at]
			want := full
			if tc.stop {
				want = full[:slices.Index(full, eos)+1]
			}
			opt := Options{K: 4, Fixed: true, EOS: eos, StopAtEOS: tc.stop}
			got, err := Plain(&toy{vocab: vocab, table: target.table}, tc.prompt, 60, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Plain with <eos> %d:\n got %v\nwant %v", eos, got, want)
			}
			dec, err := New(&toy{vocab: vocab, table: target.table}, newToy(vocab, 9, 0, target, 1), opt)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := dec.Generate(tc.prompt, 60)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec, want) {
				t.Fatalf("speculative decoding with <eos> %d:\n got %v\nwant %v", eos, spec, want)
			}
		})
	}
	if _, err := Plain(&toy{vocab: vocab, table: target.table}, nil, 5, Options{}); err == nil {
		t.Error("Plain accepted an empty prompt")
	}
}

// TestFirstTokenIsDrafted checks that the first generated token goes
// through drafting and verification, in the pass that prefills the
// prompt: with a draft equal to the target, a budget of K+1 tokens takes
// a single target pass, whatever the prompt's length.
func TestFirstTokenIsDrafted(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	tests := []struct {
		name   string
		prompt []int
		rounds int
		calls  int
	}{
		{"long prompt", []int{3, 4, 5}, 1, 1},
		{"one-token prompt", []int{3}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := New(&toy{vocab: vocab, table: target.table}, &toy{vocab: vocab, table: target.table}, Options{K: 8, Fixed: true})
			if err != nil {
				t.Fatal(err)
			}
			const budget = 9
			out, err := dec.Generate(tc.prompt, budget)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Plain(&toy{vocab: vocab, table: target.table}, tc.prompt, budget, Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := dec.Stats()
			if !slices.Equal(out, want) || st.Rounds != tc.rounds || st.TargetCalls != tc.calls || st.Accepted != 8 {
				t.Fatalf("got %v (want %v), stats %+v", out, want, st)
			}
		})
	}
}

// eosWatch is a draft that records whether a token was fed to it after
// an end of sequence it had been fed, with no rollback in between.
type eosWatch struct {
	*toy
	eos             int
	sawEOS, fedPast bool
}

func (w *eosWatch) Prefill(tokens []int) ([]float32, error) {
	for _, t := range tokens {
		if w.sawEOS {
			w.fedPast = true
		}
		w.sawEOS = w.sawEOS || t == w.eos
	}
	return w.toy.Prefill(tokens)
}

func (w *eosWatch) Truncate(n int) error {
	w.sawEOS = slices.Contains(w.tokens[:n], w.eos)
	return w.toy.Truncate(n)
}

// TestDraftStopsAtEOS checks that with StopAtEOS the draft does not draft
// past an end of sequence it proposes, and that greedy output still equals
// the target's own.
func TestDraftStopsAtEOS(t *testing.T) {
	const vocab = 16
	target := newToy(vocab, 1, 3, nil, 0)
	for eos := 0; eos < vocab; eos++ {
		prompt := []int{(eos + 1) % vocab, (eos + 2) % vocab, (eos + 5) % vocab}
		opt := Options{K: 8, Fixed: true, EOS: eos, StopAtEOS: true}
		want, err := Plain(&toy{vocab: vocab, table: target.table}, prompt, 60, opt)
		if err != nil {
			t.Fatal(err)
		}
		draft := &eosWatch{toy: newToy(vocab, 9, 0, target, 0.5), eos: eos}
		dec, err := New(&toy{vocab: vocab, table: target.table}, draft, opt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Generate(prompt, 60)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("eos %d:\n got %v\nwant %v", eos, got, want)
		}
		if draft.fedPast {
			t.Fatalf("eos %d: the draft drafted past an end of sequence", eos)
		}
	}
}
