// Package specdec runs speculative decoding: a cheap draft model proposes a
// few tokens, the target model checks them all in one batched pass, and
// exact rejection sampling keeps the output distributed as the target's own
// (token-identical to target-only decoding when greedy). The draft length
// adapts to the measured acceptance and falls back to plain decoding when
// drafting does not pay. Judge decoding (Bachmann et al., ICLR 2025) adds a
// linear head on the target's hidden states that can accept draft tokens
// the standard test rejects; it is faster and no longer exact.
package specdec

import (
	"errors"
	"fmt"
	"math"
	"time"

	"tessera/llama"
)

// Cache is a decoder with a key/value cache, as *llama.Cache provides.
type Cache interface {
	// Len is the number of tokens in the cache.
	Len() int
	// Truncate keeps the first n tokens.
	Truncate(n int) error
	// Prefill appends tokens and returns the logits of the last one.
	Prefill(tokens []int) ([]float32, error)
	// Extend appends tokens and returns the logits of all of them,
	// [len(tokens), vocab] row-major.
	Extend(tokens []int) ([]float32, error)
}

// HiddenCache is a Cache that also exposes the hidden states [T, hidden]
// of its last call's tokens before the final norm (what a judge reads).
type HiddenCache interface {
	Cache
	Hidden() []float32
}

// Options configures a Decoder. The zero value drafts 4 tokens greedily
// with adaptive length.
type Options struct {
	// K is the initial number of draft tokens per round (default 4).
	K int
	// MaxK bounds the adaptive draft length (default 2K, at least K).
	MaxK int
	// Fixed keeps the draft length at K instead of adapting it.
	Fixed bool
	// DraftCost is the cost of one draft step relative to one target
	// verification pass, a verification pass then counting as one target
	// step; 0 measures the times of draft steps, verification passes and
	// plain target steps as decoding runs.
	DraftCost float64
	// Sampler chooses greedy decoding (the default) or sampling; both
	// models use the same transforms.
	Sampler llama.SamplerOptions
	// Judge, when set, also accepts draft tokens the judge head approves
	// (judge decoding); the target must then be a HiddenCache.
	Judge *Judge
	// EOS stops generation after this token when StopAtEOS is set.
	EOS       int
	StopAtEOS bool
}

// Stats summarises a decoder's work.
type Stats struct {
	Rounds      int   `json:"rounds"`       // draft-and-verify rounds
	PlainSteps  int   `json:"plain_steps"`  // target-only steps (fallback)
	Drafted     int   `json:"drafted"`      // draft tokens proposed
	Accepted    int   `json:"accepted"`     // draft tokens kept
	JudgeSaves  int   `json:"judge_saves"`  // kept only because the judge approved
	Emitted     int   `json:"emitted"`      // tokens generated
	TargetCalls int   `json:"target_calls"` // target forward passes after the prompt
	DraftCalls  int   `json:"draft_calls"`  // draft forward passes after the prompt
	Histogram   []int `json:"histogram"`    // Histogram[a]: rounds that kept a draft tokens
}

// AcceptanceRate is accepted / drafted.
func (s Stats) AcceptanceRate() float64 {
	if s.Drafted == 0 {
		return 0
	}
	return float64(s.Accepted) / float64(s.Drafted)
}

// TokensPerTargetCall is the mean number of tokens generated per target
// forward pass (1 for plain decoding).
func (s Stats) TokensPerTargetCall() float64 {
	if s.TargetCalls == 0 {
		return 0
	}
	return float64(s.Emitted) / float64(s.TargetCalls)
}

// Decoder generates with a target and a draft model.
type Decoder struct {
	target, draft Cache
	opt           Options
	sampler       *llama.Sampler
	stats         Stats

	k        int     // current draft length; 0 means plain decoding
	alpha    float64 // running estimate of the per-token acceptance
	cost     float64 // draft step cost relative to a target pass (DraftCost set)
	sincePro int     // plain steps since the last probe round
	probeGap int     // plain steps between probe rounds: doubles while probes fail
	probing  bool    // the current round is a probe

	// Measured costs (DraftCost unset), running averages in seconds: a
	// draft step, a verification pass of vTokens tokens, and a plain
	// target step. Until a plain step is timed, step is the verification's
	// time per token, which underrates a plain step of a model whose
	// decoding is bound by memory: speculation then has to prove itself,
	// and the plain steps it falls back to measure the real cost.
	draftStep, verifyPass, step float64
	vTokens                     int

	q        []float32 // [MaxK, V] draft distributions
	p, resid []float32 // [V] scratch
	draftBuf []int     // [MaxK] the round's drafts
	verifyIn []int     // [MaxK+1] the round's verification input
	outBuf   []int     // [MaxK+1] the round's kept tokens
}

// New returns a decoder. Both caches must be empty or hold the same
// tokens; they share the vocabulary.
func New(target, draft Cache, opt Options) (*Decoder, error) {
	if target == nil || draft == nil {
		return nil, errors.New("specdec: nil model")
	}
	if opt.K <= 0 {
		opt.K = 4
	}
	if opt.MaxK < opt.K {
		opt.MaxK = max(2*opt.K, opt.K)
	}
	if opt.Fixed {
		opt.MaxK = opt.K
	}
	if opt.Judge != nil {
		if _, ok := target.(HiddenCache); !ok {
			return nil, errors.New("specdec: judge decoding needs a target that exposes hidden states")
		}
	}
	d := &Decoder{target: target, draft: draft, opt: opt, sampler: llama.NewSampler(opt.Sampler),
		k: opt.K, alpha: 0.7, cost: opt.DraftCost, probeGap: minProbeGap}
	if d.cost <= 0 {
		d.cost = 0.1
	}
	d.stats.Histogram = make([]int, opt.MaxK+1)
	d.draftBuf = make([]int, 0, opt.MaxK)
	d.verifyIn = make([]int, 0, opt.MaxK+1)
	d.outBuf = make([]int, 0, opt.MaxK+1)
	return d, nil
}

// Stats returns the statistics accumulated so far.
func (d *Decoder) Stats() Stats {
	s := d.stats
	s.Histogram = append([]int(nil), s.Histogram...)
	return s
}

// DraftLength is the current draft length (0 while decoding plainly).
func (d *Decoder) DraftLength() int { return d.k }

// Generate appends prompt to both caches (which must be empty) and
// generates up to maxNew tokens, returned in order.
func (d *Decoder) Generate(prompt []int, maxNew int) ([]int, error) {
	if len(prompt) == 0 {
		return nil, errors.New("specdec: empty prompt")
	}
	if d.target.Len() != 0 || d.draft.Len() != 0 {
		return nil, errors.New("specdec: Generate needs empty caches")
	}
	seq := append(make([]int, 0, len(prompt)+max(maxNew, 0)+1), prompt...)
	if maxNew <= 0 {
		if _, err := d.target.Prefill(seq); err != nil {
			return nil, fmt.Errorf("specdec: target prefill: %w", err)
		}
		return nil, nil
	}
	// The target cache holds every token of seq but those a round or step
	// has yet to feed: the whole prompt at first (the first round's
	// verification prefills it), the last token after that.
	var err error
	for len(seq)-len(prompt) < maxNew {
		remaining := maxNew - (len(seq) - len(prompt))
		var out []int
		if k := min(d.k, remaining-1); k >= 1 {
			out, err = d.round(seq, k)
		} else {
			out, err = d.plain(seq)
		}
		if err != nil {
			return nil, err
		}
		for _, t := range out {
			seq = append(seq, t)
			d.stats.Emitted++
			if (d.opt.StopAtEOS && t == d.opt.EOS) || len(seq)-len(prompt) == maxNew {
				return seq[len(prompt):], nil
			}
		}
	}
	return seq[len(prompt):], nil
}

func (d *Decoder) ensure(v int) {
	if len(d.p) != v {
		d.p, d.resid = make([]float32, v), make([]float32, v)
		d.q = make([]float32, d.opt.MaxK*v)
	}
}

// plain runs one target-only step: feeds the tokens of seq the target
// has not seen and samples the next (returned in a buffer the next step
// reuses).
func (d *Decoder) plain(seq []int) ([]int, error) {
	in := seq[d.target.Len():]
	t0 := time.Now()
	logits, err := d.target.Prefill(in)
	if err != nil {
		return nil, fmt.Errorf("specdec: target step: %w", err)
	}
	if len(in) == 1 && d.opt.DraftCost <= 0 {
		if dt := time.Since(t0).Seconds(); d.stats.PlainSteps == 0 || d.step == 0 {
			d.step = dt
		} else {
			d.step = 0.8*d.step + 0.2*dt
		}
	}
	d.stats.TargetCalls++
	d.stats.PlainSteps++
	d.sincePro++
	if !d.opt.Fixed && d.sincePro >= d.probeGap {
		d.k, d.sincePro, d.probing = 1, 0, true // probe: is drafting worth it again?
	}
	return append(d.outBuf[:0], d.sampler.Sample(logits)), nil
}

// round drafts k tokens after seq, verifies them with one target pass
// (which first feeds the tokens of seq the target has not seen: the
// prompt, in the first round) and returns the tokens it keeps plus the
// target's next token (in a buffer the next round reuses).
func (d *Decoder) round(seq []int, k int) ([]int, error) {
	drafts, draftTime, err := d.propose(seq, k)
	if err != nil {
		return nil, err
	}
	return d.verify(seq, len(seq)-d.target.Len(), drafts, draftTime)
}

// propose catches the draft cache up with seq and drafts k tokens after
// it (fewer when it drafts the end of sequence and generation stops
// there), returning them and the time taken. It touches neither the target
// nor the target's side of the decoder, so it can run while the target
// prefills the prompt.
func (d *Decoder) propose(seq []int, k int) ([]int, time.Duration, error) {
	base := len(seq) - 1 // target tokens before this round
	t0 := time.Now()
	if d.draft.Len() > base {
		if err := d.draft.Truncate(base); err != nil {
			return nil, 0, fmt.Errorf("specdec: draft: %w", err)
		}
	}
	logits, err := d.draft.Prefill(seq[d.draft.Len():])
	if err != nil {
		return nil, 0, fmt.Errorf("specdec: draft: %w", err)
	}
	d.ensure(len(logits))
	V := len(d.p)
	d.stats.DraftCalls++
	drafts := d.draftBuf[:0]
	for i := 0; i < k; i++ {
		q := d.q[i*V : (i+1)*V]
		d.sampler.Distribution(q, logits)
		var t int
		if d.sampler.Greedy() {
			t = llama.Argmax(logits)
		} else {
			t = d.sampler.Draw(q)
		}
		drafts = append(drafts, t)
		if d.opt.StopAtEOS && t == d.opt.EOS {
			// Nothing after an end of sequence is kept: drafting and
			// verifying beyond it would be wasted.
			break
		}
		if i+1 < k {
			if logits, err = d.draft.Prefill(drafts[i : i+1]); err != nil {
				return nil, 0, fmt.Errorf("specdec: draft: %w", err)
			}
			d.stats.DraftCalls++
		}
	}
	d.draftBuf = drafts
	return drafts, time.Since(t0), nil
}

// verify checks the drafts proposed after seq with one target pass and
// returns the tokens it keeps plus the target's next token. The target
// cache holds all of seq but its last pending tokens, which the pass feeds
// before the drafts (1 in every round but the first, which prefills the
// prompt).
func (d *Decoder) verify(seq []int, pending int, drafts []int, draftTime time.Duration) ([]int, error) {
	V, k := len(d.p), len(drafts)
	base := len(seq) - 1 // target tokens before this round's verified positions
	// Verify: the pending tokens of seq and the k drafts in one pass.
	t1 := time.Now()
	in := append(append(d.verifyIn[:0], seq[len(seq)-pending:]...), drafts...)
	d.verifyIn = in[:0]
	all, err := d.target.Extend(in)
	if err != nil {
		return nil, fmt.Errorf("specdec: target verify: %w", err)
	}
	if len(all) != len(in)*V {
		return nil, fmt.Errorf("specdec: target verify: %d logits for %d tokens of a vocabulary of %d (the draft's)", len(all), len(in), V)
	}
	all = all[(pending-1)*V:]
	d.stats.TargetCalls++
	var hidden []float32
	if d.opt.Judge != nil {
		h := d.target.(HiddenCache).Hidden()
		hidden = h[(pending-1)*(len(h)/len(in)):]
	}
	targetTime := time.Since(t1)
	if pending > 1 {
		targetTime = 0 // a prefill, not a verification: no cost estimate
	}

	accepted := 0
	var next int
	for i := 0; i <= k; i++ {
		p := d.sampler.Distribution(d.p, all[i*V:(i+1)*V])
		if i == k { // every draft kept: a bonus token from the target
			next = d.pick(p, all[i*V:(i+1)*V])
			break
		}
		x := drafts[i]
		q := d.q[i*V : (i+1)*V]
		ok := d.sampler.Uniform()*float64(q[x]) < float64(p[x]) // u < p/q
		if !ok && d.opt.Judge != nil {
			hd := len(hidden) / (k + 1)
			if d.opt.Judge.Accept(hidden[(i+1)*hd:(i+2)*hd], LogitMargin(all[i*V:(i+1)*V], x)) {
				ok = true
				d.stats.JudgeSaves++
			}
		}
		if ok {
			accepted++
			continue
		}
		// Rejected: draw from the residual max(0, p-q), normalised.
		var mass float64
		for j := range p {
			r := p[j] - q[j]
			if r < 0 {
				r = 0
			}
			d.resid[j] = r
			mass += float64(r)
		}
		if mass > 0 {
			next = d.sampler.Draw(d.resid)
		} else {
			next = d.pick(p, all[i*V:(i+1)*V])
		}
		break
	}
	if err := d.target.Truncate(base + 1 + accepted); err != nil {
		return nil, fmt.Errorf("specdec: target rollback: %w", err)
	}
	if d.draft.Len() > base+1+accepted {
		if err := d.draft.Truncate(base + 1 + accepted); err != nil {
			return nil, fmt.Errorf("specdec: draft rollback: %w", err)
		}
	}
	d.stats.Rounds++
	d.stats.Drafted += k
	d.stats.Accepted += accepted
	d.stats.Histogram[accepted]++
	d.adapt(k, accepted, draftTime, targetTime)
	return append(append(d.outBuf[:0], drafts[:accepted]...), next), nil
}

// pick draws from p (argmax of logits when greedy).
func (d *Decoder) pick(p, logits []float32) int {
	if d.sampler.Greedy() {
		return llama.Argmax(logits)
	}
	return d.sampler.Draw(p)
}

// adapt updates the acceptance estimate and chooses the next draft length:
// the k that maximises expected tokens per unit of cost, where a round of
// length k yields (1-α^(k+1))/(1-α) tokens for k·cost + 1 target passes,
// or 0 (plain decoding) when no k beats one token per target pass. With a
// judge the draft always leads (k is at least 1): target-only steps would
// switch the answer to the target's wording mid-way, where the draft and
// the judge no longer fit it.
func (d *Decoder) adapt(k, accepted int, draftTime, targetTime time.Duration) {
	// Per-token acceptance from a truncated geometric observation:
	// accepted of k, blended into a running average.
	obs := float64(accepted) / float64(k)
	d.alpha = 0.8*d.alpha + 0.2*obs
	measured := d.opt.DraftCost <= 0
	if measured && targetTime > 0 {
		ds, vs := draftTime.Seconds()/float64(k), targetTime.Seconds()
		if d.verifyPass == 0 {
			d.draftStep, d.verifyPass = ds, vs
		} else {
			d.draftStep, d.verifyPass = 0.8*d.draftStep+0.2*ds, 0.8*d.verifyPass+0.2*vs
		}
		d.vTokens = k + 1
		if d.step == 0 {
			d.step = vs / float64(k+1)
		}
	}
	if d.opt.Fixed {
		return
	}
	// The cost of a round of kk drafts, in target steps: kk draft steps
	// and a verification pass, scaled from the measured one by its token
	// count (never below one step).
	roundCost := func(kk int) float64 { return float64(kk)*d.cost + 1 }
	if measured {
		if d.verifyPass == 0 {
			return // nothing timed yet (the first round prefilled the prompt)
		}
		roundCost = func(kk int) float64 {
			pass := max(d.step, d.verifyPass*float64(kk+1)/float64(d.vTokens))
			return (float64(kk)*d.draftStep + pass) / d.step
		}
	}
	a := math.Min(d.alpha, 0.99)
	best, bestK := 1.0, 0
	for kk := 1; kk <= d.opt.MaxK; kk++ {
		gain := (1 - math.Pow(a, float64(kk+1))) / (1 - a) / roundCost(kk)
		if gain > best*1.02 {
			best, bestK = gain, kk
		}
	}
	if d.opt.Judge != nil {
		bestK = max(bestK, 1)
	}
	switch {
	case bestK > 0:
		d.probeGap = minProbeGap
	case d.probing:
		d.probeGap = min(2*d.probeGap, maxProbeGap) // a failed probe: wait longer
	}
	d.k, d.sincePro, d.probing = bestK, 0, false
}

// Plain decoding probes speculation again after minProbeGap steps, and
// after twice as many each time a probe finds it still does not pay, up
// to maxProbeGap.
const (
	minProbeGap = 16
	maxProbeGap = 256
)

// Plain generates up to maxNew tokens with the target alone (the baseline
// speculative decoding is compared with), appending prompt to the empty
// cache first. It samples with opt.Sampler and, like Decoder.Generate,
// stops after opt.EOS when opt.StopAtEOS is set (the <eos> is returned);
// the draft settings of opt are unused.
func Plain(target Cache, prompt []int, maxNew int, opt Options) ([]int, error) {
	if target == nil {
		return nil, errors.New("specdec: nil model")
	}
	if len(prompt) == 0 {
		return nil, errors.New("specdec: empty prompt")
	}
	if target.Len() != 0 {
		return nil, errors.New("specdec: Plain needs an empty cache")
	}
	s := llama.NewSampler(opt.Sampler)
	logits, err := target.Prefill(prompt)
	if err != nil {
		return nil, fmt.Errorf("specdec: target prefill: %w", err)
	}
	out := make([]int, 0, max(maxNew, 0))
	var one [1]int
	for len(out) < maxNew {
		t := s.Sample(logits)
		out = append(out, t)
		if len(out) == maxNew || (opt.StopAtEOS && t == opt.EOS) {
			break
		}
		one[0] = t
		if logits, err = target.Prefill(one[:]); err != nil {
			return nil, fmt.Errorf("specdec: target step: %w", err)
		}
	}
	return out, nil
}
