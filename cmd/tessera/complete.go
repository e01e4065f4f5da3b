package main

import (
	"fmt"
	"io"
	"strings"

	"tessera/decoders"
	"tessera/llama"
	"tessera/models"
	"tessera/specdec"
)

func init() {
	register(&command{name: "complete", summary: "continue a text prompt with a decoder (speculative or Judge Decoding with --draft/--judge)", run: runComplete})
}

const completeAbout = `Continues --prompt with a Llama-style decoder and prints the completion.
With --draft the draft model proposes --k tokens per round and the target
verifies them in one pass (speculative decoding: the output is the target's
own, token for token when greedy); with --judge as well, the judge head on
the target's hidden states may accept draft tokens the target would not
have chosen (Judge Decoding: faster, no longer exact). Generation stops at
<eos> or after --max-tokens. "\n" in the prompt is a newline; the prompt is
preceded by <bos>.

Example (the shipped arithmetic models):
  tessera complete --model target --draft draft --judge judge --prompt 'Q: 37+48=?\nA: '`

func runComplete(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("complete", "--model NAME --prompt TEXT [flags]", completeAbout, stderr)
	modelRef := fs.String("model", "", "target model: embedded name or folder (required)")
	prompt := fs.String("prompt", "", "text to continue (required)")
	draftRef := fs.String("draft", "", "draft model for speculative decoding")
	judgeRef := fs.String("judge", "", "judge head for Judge Decoding (needs --draft)")
	threshold := fs.Float64("judge-threshold", 0, "judge acceptance threshold in (0, 1) (default: the judge's own)")
	k := fs.Int("k", 8, "draft tokens per round (the initial length when adaptive)")
	fixed := fs.Bool("fixed", false, "keep the draft length at --k instead of adapting it")
	maxTokens := fs.Int("max-tokens", 64, "maximum tokens to generate")
	temperature := fs.Float64("temperature", 0, "sampling temperature (0: greedy)")
	topK := fs.Int("top-k", 0, "sample from the k most likely tokens (0: all)")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass (1: all)")
	seed := fs.Uint64("seed", 0, "sampling seed")
	context := fs.Int("context", 512, "context length: prompt plus completion, in tokens")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	switch {
	case *modelRef == "":
		return usagef("--model is required")
	case *prompt == "":
		return usagef("--prompt is required")
	case *k <= 0:
		return usagef("--k must be positive (have %d)", *k)
	case *maxTokens < 1:
		return usagef("--max-tokens must be at least 1 (have %d)", *maxTokens)
	case *temperature < 0:
		return usagef("--temperature must not be negative (have %g)", *temperature)
	case *topK < 0 || *topP <= 0 || *topP > 1:
		return usagef("--top-k must not be negative and --top-p must be in (0, 1]")
	case *context < 2:
		return usagef("--context must be at least 2 (have %d)", *context)
	case *threshold < 0 || *threshold >= 1:
		return usagef("--judge-threshold must be in (0, 1) (have %g)", *threshold)
	case *judgeRef != "" && *draftRef == "":
		return usagef("--judge needs --draft")
	}
	setThreads(*threads)
	target, err := loadDecoder(*modelRef)
	if err != nil {
		return err
	}
	var draft *llama.Model
	var judge *specdec.Judge
	if *draftRef != "" {
		if draft, err = loadDecoder(*draftRef); err != nil {
			return err
		}
		if draft.Config.VocabSize != target.Config.VocabSize {
			return fmt.Errorf("draft %s has a vocabulary of %d tokens, target %s has %d: they must share one",
				*draftRef, draft.Config.VocabSize, *modelRef, target.Config.VocabSize)
		}
	}
	if *judgeRef != "" {
		if judge, err = loadJudge(*judgeRef, target.Config.HiddenSize); err != nil {
			return err
		}
		if *threshold > 0 {
			judge.Threshold = float32(*threshold)
		}
	}
	text := strings.ReplaceAll(*prompt, `\n`, "\n")
	c, err := decoders.Complete(target, draft, text, decoders.CompleteOptions{MaxTokens: *maxTokens, Context: *context, K: *k, Fixed: *fixed,
		Sampler: llama.SamplerOptions{Temperature: float32(*temperature), TopK: *topK, TopP: float32(*topP), Seed: *seed}, Judge: judge})
	if err != nil {
		return err
	}
	out, st, draftName := c.Tokens, c.Stats, *draftRef
	wall := c.Wall.Seconds()
	if *asJSON {
		summary := map[string]any{"model": *modelRef, "prompt": *prompt, "completion": c.Text, "tokens": len(out),
			"prompt_tokens": c.PromptTokens, "wall_seconds": wall, "tokens_per_s": float64(len(out)) / wall,
			"target_calls": st.TargetCalls, "tokens_per_target_call": st.TokensPerTargetCall(),
			"stopped_at_eos": c.StoppedAtEOS}
		if draftName != "" {
			summary["draft"], summary["judge"] = draftName, *judgeRef
			summary["draft_calls"], summary["drafted"], summary["accepted"] = st.DraftCalls, st.Drafted, st.Accepted
			summary["acceptance_rate"], summary["rounds"], summary["histogram"] = st.AcceptanceRate(), st.Rounds, st.Histogram
			summary["judge_saves"], summary["plain_steps"] = st.JudgeSaves, st.PlainSteps
			if st.Rounds > 0 {
				summary["mean_accepted_per_round"] = float64(st.Accepted) / float64(st.Rounds)
			}
		}
		return writeJSON(stdout, summary)
	}
	fmt.Fprintln(stdout, c.Text)
	line := fmt.Sprintf("complete: %d tokens in %.3fs (%.1f tokens/s), %d target calls", len(out), wall, float64(len(out))/wall, st.TargetCalls)
	if draftName != "" {
		line += fmt.Sprintf(", acceptance %.2f (%d/%d drafted), %.2f tokens per target call", st.AcceptanceRate(), st.Accepted, st.Drafted, st.TokensPerTargetCall())
	}
	fmt.Fprintln(stderr, line)
	return nil
}

// loadDecoder opens a Llama model by embedded name or folder.
func loadDecoder(ref string) (*llama.Model, error) {
	fsys, err := models.Open(ref)
	if err != nil {
		return nil, err
	}
	if decoders.IsJudge(fsys) {
		return nil, fmt.Errorf("model %s is a judge head, not a decoder (use it with --judge)", ref)
	}
	m, err := llama.LoadFS(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", ref, err)
	}
	return m, nil
}

// loadJudge opens a judge head by embedded name or folder and checks that
// it reads hidden states of the target's width.
func loadJudge(ref string, hidden int) (*specdec.Judge, error) {
	fsys, err := models.Open(ref)
	if err != nil {
		return nil, err
	}
	j, cfg, err := decoders.LoadJudge(fsys)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", ref, err)
	}
	if cfg.HiddenSize != hidden {
		return nil, fmt.Errorf("judge %s reads hidden states of width %d, the target's are %d", ref, cfg.HiddenSize, hidden)
	}
	return j, nil
}
