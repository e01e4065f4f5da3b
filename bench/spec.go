package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"tessera/corpus"
	"tessera/decoders"
	"tessera/llama"
	"tessera/specdec"
	"tessera/tokenizer"
)

// SpecOptions configures Spec.
type SpecOptions struct {
	Target, Draft *llama.Model   // arithmetic target and draft
	Judge         *specdec.Judge // judge head on Target's hidden states
	Prompts       int            // problems per split (default 100)
	K             int            // initial draft length (default 8)
	MaxK          int            // bound of the adaptive draft length (default 2K)
	Fixed         bool           // keep the draft length at K
	MaxNew        int            // answer token budget (default decoders.MaxAnswer)
	Seed          uint64         // problem seed (the same prompts for every method)
	JudgeProblems int            // held-out problems for the judge's AUROC (default 200)
	// JudgeThreshold, when in (0, 1), replaces the judge's own threshold.
	JudgeThreshold float32

	// TextTarget and TextDraft, when set, are compared on TextPrompts
	// windows of Text (plain speculative decoding on general text).
	TextTarget, TextDraft *llama.Model
	Text                  []int
	TextPrompts           int // default 8
	TextPromptLen         int // default 64
	TextNew               int // default 128

	Threads int // worker threads (default: as set)
}

// SpecMethod is one decoding method on one split.
type SpecMethod struct {
	Name        string  `json:"name"`
	Tokens      int     `json:"tokens"`
	Seconds     float64 `json:"seconds"`
	TokensPerS  float64 `json:"tokens_per_s"`
	TargetCalls int     `json:"target_calls"`
	DraftCalls  int     `json:"draft_calls"`
	// Accuracy is the exact-answer accuracy (arithmetic splits only).
	Accuracy *float64 `json:"accuracy,omitempty"`
	// Speculative statistics: accepted/drafted, accepted draft tokens per
	// verification round, generated tokens per target forward pass, and
	// Histogram[a] = rounds that kept a draft tokens.
	AcceptanceRate       float64 `json:"acceptance_rate"`
	MeanAcceptedPerRound float64 `json:"mean_accepted_per_round"`
	TokensPerTargetCall  float64 `json:"tokens_per_target_call"`
	Histogram            []int   `json:"histogram,omitempty"`
	Rounds               int     `json:"rounds"`
	JudgeSaves           int     `json:"judge_saves,omitempty"`
	SpeedupVsTarget      float64 `json:"speedup_vs_target_only"`
	SpeedupVsStandard    float64 `json:"speedup_vs_standard,omitempty"`
	// MsPerAnswer is the mean wall time per prompt; the answer speed-ups
	// compare it with target-only and standard speculative decoding (the
	// tokens/s ratios can differ when methods write answers of different
	// lengths, as Judge Decoding keeps the draft's phrasing).
	MsPerAnswer             float64 `json:"ms_per_answer"`
	AnswerSpeedupVsTarget   float64 `json:"answer_speedup_vs_target_only"`
	AnswerSpeedupVsStandard float64 `json:"answer_speedup_vs_standard,omitempty"`
	// AnswerSpeedupVsAdaptive compares Judge Decoding with standard
	// speculative decoding whose draft length adapts (run beside the
	// fixed-length one when the benchmark fixes it).
	AnswerSpeedupVsAdaptive float64 `json:"answer_speedup_vs_adaptive,omitempty"`
}

// SpecSplit is the comparison on one set of prompts.
type SpecSplit struct {
	Split   string       `json:"split"`
	Prompts int          `json:"prompts"`
	Methods []SpecMethod `json:"methods"`
	// AcceptedRatio is the judge's mean accepted draft tokens per round over
	// standard verification's; TokensPerCallRatio the same for tokens per
	// target call.
	AcceptedRatio      float64               `json:"judge_over_standard_accepted_per_round,omitempty"`
	TokensPerCallRatio float64               `json:"judge_over_standard_tokens_per_target_call,omitempty"`
	Judge              *decoders.JudgeReport `json:"judge_heldout_labels,omitempty"`
	// Oracle is how the target's standard (greedy) test and the judge
	// treat correct answers written in the draft's preferred phrasing.
	Oracle *SpecOracle `json:"oracle_draft_phrasing,omitempty"`
	// Samples shows a few answers of each method.
	Samples map[string][]string `json:"samples,omitempty"`
}

// SpecOracle measures acceptance of correct answers in the draft's
// preferred phrasing (corpus.MixDraft.Mode()), teacher-forced.
type SpecOracle struct {
	Tokens             int     `json:"tokens"`
	StandardAcceptance float64 `json:"standard_acceptance"` // tokens equal to the target's argmax
	JudgeAcceptance    float64 `json:"judge_acceptance"`    // tokens standard or judge accepts
	StandardPrefix     float64 `json:"standard_mean_prefix"`
	JudgePrefix        float64 `json:"judge_mean_prefix"` // mean accepted prefix length
}

// SpecResult is the whole comparison.
type SpecResult struct {
	TargetParams int         `json:"target_params"`
	DraftParams  int         `json:"draft_params"`
	FLOPsRatio   float64     `json:"target_over_draft_flops_per_token"`
	K            int         `json:"k"`
	Threshold    float32     `json:"judge_threshold,omitempty"`
	MaxK         int         `json:"max_k"`
	Fixed        bool        `json:"fixed_k"`
	Splits       []SpecSplit `json:"splits"`
	Text         *SpecSplit  `json:"text,omitempty"`
}

// Spec compares target-only decoding, standard speculative decoding and
// Judge Decoding on the same held-out arithmetic problems and on the
// out-of-domain split (greedy, stopping at <eos>), and plain speculative
// decoding on general text. The methods run interleaved prompt by prompt.
func Spec(o SpecOptions) (*SpecResult, error) {
	if o.Target == nil || o.Draft == nil {
		return nil, errors.New("bench spec: a target and a draft are needed")
	}
	if o.Target.Config.VocabSize != o.Draft.Config.VocabSize {
		return nil, fmt.Errorf("bench spec: target vocabulary %d and draft vocabulary %d differ", o.Target.Config.VocabSize, o.Draft.Config.VocabSize)
	}
	o.Prompts, o.K, o.MaxNew = cmpOr(o.Prompts, 100), cmpOr(o.K, 8), cmpOr(o.MaxNew, decoders.MaxAnswer)
	o.MaxK = max(cmpOr(o.MaxK, 2*o.K), o.K)
	if o.Fixed {
		o.MaxK = o.K
	}
	o.JudgeProblems = cmpOr(o.JudgeProblems, 200)
	if o.Judge != nil && o.JudgeThreshold > 0 && o.JudgeThreshold < 1 {
		j := *o.Judge
		j.Threshold = o.JudgeThreshold
		o.Judge = &j
	}
	o.TextPrompts, o.TextPromptLen, o.TextNew = cmpOr(o.TextPrompts, 8), cmpOr(o.TextPromptLen, 64), cmpOr(o.TextNew, 128)
	res := &SpecResult{TargetParams: o.Target.Config.Params(), DraftParams: o.Draft.Config.Params(),
		FLOPsRatio: o.Target.Config.FLOPsPerToken(64) / o.Draft.Config.FLOPsPerToken(64), K: o.K, MaxK: o.MaxK, Fixed: o.Fixed}
	if o.Judge != nil {
		res.Threshold = o.Judge.Threshold
	}
	var err error
	withThreads(o.Threads, func() {
		for _, split := range []corpus.Split{corpus.HeldOut, corpus.OutOfDomain} {
			var s *SpecSplit
			if s, err = specArith(o, split); err != nil {
				return
			}
			res.Splits = append(res.Splits, *s)
		}
		if o.TextTarget != nil && o.TextDraft != nil && len(o.Text) > o.TextPromptLen+1 {
			res.Text, err = specText(o)
		}
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// methodRun accumulates one method's work over the prompts.
type methodRun struct {
	name    string
	tokens  int
	elapsed time.Duration
	right   int
	stats   specdec.Stats
	samples []string
}

func (m *methodRun) add(st specdec.Stats) {
	s := &m.stats
	s.Rounds += st.Rounds
	s.PlainSteps += st.PlainSteps
	s.Drafted += st.Drafted
	s.Accepted += st.Accepted
	s.JudgeSaves += st.JudgeSaves
	s.Emitted += st.Emitted
	s.TargetCalls += st.TargetCalls
	s.DraftCalls += st.DraftCalls
	if len(s.Histogram) < len(st.Histogram) {
		s.Histogram = append(s.Histogram, make([]int, len(st.Histogram)-len(s.Histogram))...)
	}
	for i, v := range st.Histogram {
		s.Histogram[i] += v
	}
}

func (m *methodRun) result(prompts int, arith bool) SpecMethod {
	r := SpecMethod{Name: m.name, Tokens: m.tokens, Seconds: m.elapsed.Seconds(), TargetCalls: m.stats.TargetCalls,
		DraftCalls: m.stats.DraftCalls, AcceptanceRate: m.stats.AcceptanceRate(), TokensPerTargetCall: m.stats.TokensPerTargetCall(),
		Histogram: m.stats.Histogram, Rounds: m.stats.Rounds, JudgeSaves: m.stats.JudgeSaves}
	if m.elapsed > 0 {
		r.TokensPerS = float64(m.tokens) / m.elapsed.Seconds()
	}
	if prompts > 0 {
		r.MsPerAnswer = 1000 * m.elapsed.Seconds() / float64(prompts)
	}
	if m.stats.Rounds > 0 {
		r.MeanAcceptedPerRound = float64(m.stats.Accepted) / float64(m.stats.Rounds)
	}
	if arith {
		acc := float64(m.right) / float64(prompts)
		r.Accuracy = &acc
	}
	return r
}

// decode runs one method from an empty pair of caches and returns the
// generated tokens.
type decodeFunc func(prompt []int) ([]int, specdec.Stats, error)

func specArith(o SpecOptions, split corpus.Split) (*SpecSplit, error) {
	tok := tokenizer.New()
	problems := corpus.NewGenerator(split, o.Seed).Problems(o.Prompts)
	capacity := 160 + o.MaxNew + max(o.MaxK, 2*o.K)
	tc, err := o.Target.NewCache(capacity)
	if err != nil {
		return nil, err
	}
	dc, err := o.Draft.NewCache(capacity)
	if err != nil {
		return nil, err
	}
	methods := []*methodRun{{name: "target-only"}, {name: "speculative"}}
	decs := []decodeFunc{
		func(prompt []int) ([]int, specdec.Stats, error) {
			tc.Reset()
			out, err := decoders.Greedy(tc, prompt, o.MaxNew)
			return out, specdec.Stats{Emitted: len(out), TargetCalls: len(out) - 1}, err
		},
		speculative(o, tc, dc, nil),
	}
	methods, decs = withAdaptive(o, methods, decs, tc, dc, o.MaxNew, true)
	if o.Judge != nil {
		methods = append(methods, &methodRun{name: "judge"})
		decs = append(decs, speculative(o, tc, dc, o.Judge))
	}
	for i, p := range problems {
		prompt := corpus.PromptTokens(tok, p)
		for j := range methods {
			m := (i + j) % len(methods) // rotate the order to spread noise
			t0 := time.Now()
			out, st, err := decs[m](prompt)
			el := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("bench spec: %s: %w", methods[m].name, err)
			}
			methods[m].elapsed += el
			methods[m].tokens += len(out)
			methods[m].add(st)
			text := decoders.AnswerText(tok, out)
			if p.Correct(text) {
				methods[m].right++
			}
			if len(methods[m].samples) < 3 {
				methods[m].samples = append(methods[m].samples, p.Prompt()+text)
			}
		}
	}
	s := &SpecSplit{Split: split.String(), Prompts: len(problems), Samples: map[string][]string{}}
	fillMethods(s, methods, len(problems), true)
	if o.Judge != nil {
		set, err := decoders.JudgeSet(o.Draft, corpus.NewGenerator(split, o.Seed+1).Problems(o.JudgeProblems), o.Seed+1)
		if err != nil {
			return nil, err
		}
		ex, err := decoders.Examples(o.Target, set)
		if err != nil {
			return nil, err
		}
		rep := decoders.Evaluate(o.Judge, ex)
		s.Judge = &rep
		if s.Oracle, err = oracle(o, problems); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// speculative returns a decodeFunc running specdec on the two caches, with
// judge decoding when j is set.
func speculative(o SpecOptions, tc, dc *llama.Cache, j *specdec.Judge) decodeFunc {
	return speculativeRun(o, tc, dc, j, o.MaxNew, true)
}

// speculativeRun is speculative generating up to maxNew tokens, stopping
// at <eos> when eos is set.
func speculativeRun(o SpecOptions, tc, dc *llama.Cache, j *specdec.Judge, maxNew int, eos bool) decodeFunc {
	return func(prompt []int) ([]int, specdec.Stats, error) {
		tc.Reset()
		dc.Reset()
		d, err := specdec.New(tc, dc, specdec.Options{K: o.K, MaxK: o.MaxK, Fixed: o.Fixed, Judge: j,
			EOS: tokenizer.EOS, StopAtEOS: eos})
		if err != nil {
			return nil, specdec.Stats{}, err
		}
		out, err := d.Generate(prompt, maxNew)
		return out, d.Stats(), err
	}
}

// withAdaptive adds, when o fixes the draft length, standard speculative
// decoding whose draft length adapts to the acceptance, down to plain
// decoding: the standard method at its best.
func withAdaptive(o SpecOptions, methods []*methodRun, decs []decodeFunc, tc, dc *llama.Cache, maxNew int, eos bool) ([]*methodRun, []decodeFunc) {
	if !o.Fixed {
		return methods, decs
	}
	adaptive := o
	adaptive.Fixed, adaptive.MaxK = false, 2*o.K
	return append(methods, &methodRun{name: "speculative-adaptive"}), append(decs, speculativeRun(adaptive, tc, dc, nil, maxNew, eos))
}

func fillMethods(s *SpecSplit, methods []*methodRun, prompts int, arith bool) {
	for _, m := range methods {
		s.Methods = append(s.Methods, m.result(prompts, arith))
		s.Samples[m.name] = m.samples
	}
	base, baseMs := s.Methods[0].TokensPerS, s.Methods[0].MsPerAnswer
	var std, adaptive *SpecMethod
	for i := range s.Methods {
		r := &s.Methods[i]
		if r.Name == "speculative-adaptive" {
			adaptive = r
		}
		if base > 0 {
			r.SpeedupVsTarget = r.TokensPerS / base
		}
		if r.MsPerAnswer > 0 {
			r.AnswerSpeedupVsTarget = baseMs / r.MsPerAnswer
		}
		if r.Name == "speculative" {
			std = r
		}
	}
	if std == nil {
		return
	}
	for i := range s.Methods {
		r := &s.Methods[i]
		if r.Name != "judge" {
			continue
		}
		if std.TokensPerS > 0 {
			r.SpeedupVsStandard = r.TokensPerS / std.TokensPerS
		}
		if r.MsPerAnswer > 0 {
			r.AnswerSpeedupVsStandard = std.MsPerAnswer / r.MsPerAnswer
			if adaptive != nil {
				r.AnswerSpeedupVsAdaptive = adaptive.MsPerAnswer / r.MsPerAnswer
			}
		}
		if std.MeanAcceptedPerRound > 0 {
			s.AcceptedRatio = r.MeanAcceptedPerRound / std.MeanAcceptedPerRound
		}
		if std.TokensPerTargetCall > 0 {
			s.TokensPerCallRatio = r.TokensPerTargetCall / std.TokensPerTargetCall
		}
	}
}

// oracle teacher-forces correct answers in the draft's preferred phrasing
// through the target and counts the tokens the standard greedy test (the
// target's argmax) and the judge would accept.
func oracle(o SpecOptions, problems []corpus.Problem) (*SpecOracle, error) {
	tok := tokenizer.New()
	c, err := o.Target.NewCache(256)
	if err != nil {
		return nil, err
	}
	V, d := o.Target.Config.VocabSize, o.Target.Config.HiddenSize
	var r SpecOracle
	var stdPrefix, judgePrefix int
	for _, p := range problems {
		prompt := corpus.PromptTokens(tok, p)
		ans := append(tok.Encode(p.Text(corpus.MixDraft.Mode())), tokenizer.EOS)
		seq := append(prompt, ans...)
		c.Reset()
		logits, err := c.Extend(seq)
		if err != nil {
			return nil, err
		}
		hidden := c.Hidden()
		stdRun, judgeRun := true, true
		for i, t := range ans {
			pos := len(prompt) + i // position of token t
			std := llama.Argmax(logits[(pos-1)*V:pos*V]) == t
			ok := std || o.Judge.Accept(hidden[pos*d:(pos+1)*d], specdec.LogitMargin(logits[(pos-1)*V:pos*V], t))
			r.Tokens++
			if std {
				r.StandardAcceptance++
			}
			if ok {
				r.JudgeAcceptance++
			}
			stdRun = stdRun && std
			judgeRun = judgeRun && ok
			if stdRun {
				stdPrefix++
			}
			if judgeRun {
				judgePrefix++
			}
		}
	}
	c.Reset()
	if r.Tokens > 0 {
		r.StandardAcceptance /= float64(r.Tokens)
		r.JudgeAcceptance /= float64(r.Tokens)
		r.StandardPrefix = float64(stdPrefix) / float64(len(problems))
		r.JudgePrefix = float64(judgePrefix) / float64(len(problems))
	}
	return &r, nil
}

// specText compares target-only and speculative decoding on windows of
// general text (greedy, a fixed number of new tokens).
func specText(o SpecOptions) (*SpecSplit, error) {
	if o.TextTarget.Config.VocabSize != o.TextDraft.Config.VocabSize {
		return nil, fmt.Errorf("bench spec: text target vocabulary %d and draft vocabulary %d differ",
			o.TextTarget.Config.VocabSize, o.TextDraft.Config.VocabSize)
	}
	capacity := o.TextPromptLen + o.TextNew + 2*max(o.MaxK, 2*o.K) + 1
	tc, err := o.TextTarget.NewCache(capacity)
	if err != nil {
		return nil, err
	}
	dc, err := o.TextDraft.NewCache(capacity)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x7e47))
	methods := []*methodRun{{name: "target-only"}, {name: "speculative"}}
	decs := []decodeFunc{
		func(prompt []int) ([]int, specdec.Stats, error) {
			tc.Reset()
			out, err := specdec.Plain(tc, prompt, o.TextNew, specdec.Options{})
			return out, specdec.Stats{Emitted: len(out), TargetCalls: len(out) - 1}, err
		},
		speculativeRun(o, tc, dc, nil, o.TextNew, false),
	}
	methods, decs = withAdaptive(o, methods, decs, tc, dc, o.TextNew, false)
	tok := tokenizer.New()
	for i := range o.TextPrompts {
		s := r.IntN(len(o.Text) - o.TextPromptLen)
		prompt := o.Text[s : s+o.TextPromptLen]
		for j := range methods {
			m := (i + j) % len(methods)
			t0 := time.Now()
			out, st, err := decs[m](prompt)
			el := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("bench spec: text %s: %w", methods[m].name, err)
			}
			methods[m].elapsed += el
			methods[m].tokens += len(out)
			methods[m].add(st)
			if len(methods[m].samples) < 2 {
				text, _ := tok.Decode(out)
				methods[m].samples = append(methods[m].samples, text)
			}
		}
	}
	sp := &SpecSplit{Split: "tinyshakespeare", Prompts: o.TextPrompts, Samples: map[string][]string{}}
	fillMethods(sp, methods, o.TextPrompts, false)
	return sp, nil
}
