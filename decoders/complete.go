package decoders

import (
	"fmt"
	"time"

	"tessera/llama"
	"tessera/specdec"
	"tessera/tokenizer"
)

// CompleteOptions configures Complete.
type CompleteOptions struct {
	MaxTokens int                  // tokens to generate at most (default 64)
	Context   int                  // prompt plus completion, in tokens (default 512)
	K         int                  // draft tokens per round (default 8), with a draft
	Fixed     bool                 // keep the draft length at K instead of adapting it
	Sampler   llama.SamplerOptions // greedy at temperature 0
	// Judge, with a draft, turns speculative decoding into Judge Decoding.
	Judge *specdec.Judge
}

// Completion is the result of Complete.
type Completion struct {
	Text         string        // the completion, up to <eos>
	Tokens       []int         // generated token ids (with the final <eos>, if any)
	PromptTokens int           // prompt length with <bos>
	StoppedAtEOS bool          // generation ended at <eos>, not at the budget
	Stats        specdec.Stats // target and draft calls, acceptance
	Wall         time.Duration // generation time
}

// Complete continues prompt (byte-tokenized, after <bos>) with target,
// speculatively with draft when it is not nil (and Judge Decoding when
// o.Judge is set). Generation stops at <eos> or after o.MaxTokens tokens or
// at the end of the context. The command line and the server both call it.
func Complete(target, draft *llama.Model, prompt string, o CompleteOptions) (*Completion, error) {
	if o.MaxTokens == 0 {
		o.MaxTokens = 64
	}
	if o.Context == 0 {
		o.Context = 512
	}
	if o.K == 0 {
		o.K = 8
	}
	switch {
	case o.MaxTokens < 1:
		return nil, fmt.Errorf("complete: max tokens must be at least 1 (have %d)", o.MaxTokens)
	case o.Context < 2:
		return nil, fmt.Errorf("complete: context must be at least 2 tokens (have %d)", o.Context)
	case o.K < 1:
		return nil, fmt.Errorf("complete: k must be positive (have %d)", o.K)
	case o.Judge != nil && draft == nil:
		return nil, fmt.Errorf("complete: a judge needs a draft model")
	}
	tok := tokenizer.New()
	if target.Config.VocabSize < tok.VocabSize() {
		return nil, fmt.Errorf("complete: the target has a vocabulary of %d tokens, the tokenizer needs %d", target.Config.VocabSize, tok.VocabSize())
	}
	if draft != nil && draft.Config.VocabSize != target.Config.VocabSize {
		return nil, fmt.Errorf("complete: the draft has a vocabulary of %d tokens, the target %d: they must share one",
			draft.Config.VocabSize, target.Config.VocabSize)
	}
	if j := o.Judge; j != nil {
		want := target.Config.HiddenSize
		if j.Margin {
			want = 2*want + 1
		}
		if len(j.W) != want {
			return nil, fmt.Errorf("complete: the judge has %d weights, a judge of this target's hidden states (width %d) needs %d",
				len(j.W), target.Config.HiddenSize, want)
		}
	}
	ids := append([]int{tokenizer.BOS}, tok.EncodeSpecial(prompt)...)
	if len(ids) >= o.Context {
		return nil, fmt.Errorf("complete: prompt of %d tokens (with <bos>) does not fit the context of %d tokens", len(ids), o.Context)
	}
	budget := min(o.MaxTokens, o.Context-len(ids))
	tc, err := target.NewCache(o.Context + 2*o.K + 2)
	if err != nil {
		return nil, fmt.Errorf("complete: %w", err)
	}
	began := time.Now()
	var out []int
	var st specdec.Stats
	if draft == nil {
		if out, err = specdec.Plain(tc, ids, budget, specdec.Options{Sampler: o.Sampler, EOS: tokenizer.EOS, StopAtEOS: true}); err != nil {
			return nil, fmt.Errorf("complete: %w", err)
		}
		st = specdec.Stats{Emitted: len(out), TargetCalls: max(len(out)-1, 0)}
	} else {
		dc, err := draft.NewCache(o.Context + 2*o.K + 2)
		if err != nil {
			return nil, fmt.Errorf("complete: %w", err)
		}
		dec, err := specdec.New(tc, dc, specdec.Options{K: o.K, Fixed: o.Fixed, Sampler: o.Sampler, EOS: tokenizer.EOS, StopAtEOS: true, Judge: o.Judge})
		if err != nil {
			return nil, fmt.Errorf("complete: %w", err)
		}
		if out, err = dec.Generate(ids, budget); err != nil {
			return nil, fmt.Errorf("complete: %w", err)
		}
		st = dec.Stats()
	}
	return &Completion{Text: AnswerText(tok, out), Tokens: out, PromptTokens: len(ids),
		StoppedAtEOS: len(out) > 0 && out[len(out)-1] == tokenizer.EOS, Stats: st, Wall: time.Since(began)}, nil
}
