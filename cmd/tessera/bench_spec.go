package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"tessera/bench"
	"tessera/corpus"
)

func init() {
	var target, draft, judge, textTarget, textDraft, dataDir *string
	var prompts, k, maxK, textPrompts *int
	var fixed *bool
	var threshold *float64
	var seed *uint64
	benchSuites["spec"] = &benchSuite{
		about: "target-only vs speculative vs Judge Decoding on held-out and out-of-domain arithmetic, and on tinyshakespeare",
		flags: func(fs *flag.FlagSet) {
			target = fs.String("target", "target", "arithmetic target model")
			draft = fs.String("draft", "draft", "arithmetic draft model")
			judge = fs.String("judge", "judge", `judge head on the target ("" skips Judge Decoding)`)
			textTarget = fs.String("text-target", "shakespeare", `text target model ("" skips the text comparison)`)
			textDraft = fs.String("text-draft", "shakespeare-draft", "text draft model")
			dataDir = fs.String("data", "", "folder holding tinyshakespeare.txt (default: ../shared/data/text)")
			prompts = fs.Int("prompts", 100, "problems per arithmetic split")
			textPrompts = fs.Int("text-prompts", 8, "text windows")
			k = fs.Int("k", 8, "initial draft length")
			maxK = fs.Int("max-k", 0, "bound of the adaptive draft length (default 2k)")
			fixed = fs.Bool("fixed", false, "keep the draft length at k")
			seed = fs.Uint64("seed", 0, "problem seed")
			threshold = fs.Float64("judge-threshold", 0, "judge acceptance threshold in (0, 1) (default: the judge's own)")
		},
		run: func(env benchEnv) (any, error) {
			if *threshold < 0 || *threshold >= 1 {
				return nil, usagef("--judge-threshold must be in (0, 1) (have %g)", *threshold)
			}
			if *k <= 0 || *prompts <= 0 || *textPrompts <= 0 || *maxK < 0 {
				return nil, usagef("--k, --prompts and --text-prompts must be positive (have %d, %d, %d)", *k, *prompts, *textPrompts)
			}
			o := bench.SpecOptions{Prompts: *prompts, K: *k, MaxK: *maxK, Fixed: *fixed, Seed: *seed,
				TextPrompts: *textPrompts, Threads: env.Threads, JudgeThreshold: float32(*threshold)}
			var err error
			if o.Target, err = loadDecoder(*target); err != nil {
				return nil, err
			}
			if o.Draft, err = loadDecoder(*draft); err != nil {
				return nil, err
			}
			if *judge != "" {
				if o.Judge, err = loadJudge(*judge, o.Target.Config.HiddenSize); err != nil {
					return nil, err
				}
			}
			if *textTarget != "" {
				text, err := corpus.LoadShakespeare(*dataDir)
				switch {
				case errors.Is(err, corpus.ErrNoData):
					fmt.Fprintf(os.Stderr, "tessera bench spec: %v; skipping the text comparison\n", err)
				case err != nil:
					return nil, err
				default:
					o.Text = text.Valid
					if o.TextTarget, err = loadDecoder(*textTarget); err != nil {
						return nil, err
					}
					if o.TextDraft, err = loadDecoder(*textDraft); err != nil {
						return nil, err
					}
				}
			}
			return bench.Spec(o)
		},
	}
}
