package decoders

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"tessera/corpus"
	"tessera/internal/atomicfile"
	"tessera/llama"
	"tessera/safetensors"
	"tessera/specdec"
	"tessera/tensor"
	"tessera/tokenizer"
)

// JudgeConfig is the config.json of a judge folder: the head reads the
// hidden states (width HiddenSize) of the target it was trained on.
type JudgeConfig struct {
	ModelType  string  `json:"model_type"` // "judge"
	HiddenSize int     `json:"hidden_size"`
	Threshold  float32 `json:"threshold"`
	Margin     bool    `json:"margin,omitempty"` // the head also reads the logit margin (2·hidden+1 weights)
	Target     string  `json:"target,omitempty"` // model the judge belongs to
	Draft      string  `json:"draft,omitempty"`  // draft it was trained with
}

// Tensor names of a judge's model.safetensors.
const (
	judgeWeight = "judge.weight" // [hidden]
	judgeBias   = "judge.bias"   // [1]
)

// SaveJudge writes a judge folder: config.json and model.safetensors
// (float32; the head is a few hundred numbers).
func SaveJudge(dir string, j *specdec.Judge, cfg JudgeConfig) error {
	cfg.ModelType, cfg.HiddenSize, cfg.Threshold, cfg.Margin = "judge", len(j.W), j.Threshold, j.Margin
	if j.Margin {
		if len(j.W)%2 != 1 {
			return fmt.Errorf("decoders: save judge: a margin judge needs 2d+1 weights, has %d", len(j.W))
		}
		cfg.HiddenSize = (len(j.W) - 1) / 2
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("decoders: save judge: %w", err)
	}
	tensors := map[string]*tensor.Tensor{
		judgeWeight: tensor.FromData(slices.Clone(j.W), len(j.W)),
		judgeBias:   tensor.FromData([]float32{j.B}, 1),
	}
	if err := safetensors.Save(filepath.Join(dir, "model.safetensors"), tensors, nil); err != nil {
		return fmt.Errorf("decoders: save judge %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("decoders: save judge: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("decoders: save judge %s: %w", dir, err)
	}
	return nil
}

// IsJudge reports whether the model folder fsys holds a judge head.
func IsJudge(fsys fs.FS) bool {
	b, err := fs.ReadFile(fsys, "config.json")
	if err != nil {
		return false
	}
	var c JudgeConfig
	return json.Unmarshal(b, &c) == nil && c.ModelType == "judge"
}

// LoadJudge reads a judge folder (config.json and model.safetensors) from
// fsys, validating the tensors against the config.
func LoadJudge(fsys fs.FS) (*specdec.Judge, JudgeConfig, error) {
	b, err := fs.ReadFile(fsys, "config.json")
	if err != nil {
		return nil, JudgeConfig{}, fmt.Errorf("decoders: judge: %w", err)
	}
	var cfg JudgeConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, cfg, fmt.Errorf("decoders: judge config.json: %w", err)
	}
	if cfg.ModelType != "judge" || cfg.HiddenSize <= 0 || !(cfg.Threshold > 0 && cfg.Threshold < 1) {
		return nil, cfg, fmt.Errorf("decoders: config.json is not a judge (model_type %q, hidden_size %d, threshold %g)",
			cfg.ModelType, cfg.HiddenSize, cfg.Threshold)
	}
	raw, err := fs.ReadFile(fsys, "model.safetensors")
	if err != nil {
		return nil, cfg, fmt.Errorf("decoders: judge: %w", err)
	}
	f, err := safetensors.Parse(raw)
	if err != nil {
		return nil, cfg, fmt.Errorf("decoders: judge: %w", err)
	}
	w, err := f.Tensor(judgeWeight)
	if err != nil {
		return nil, cfg, fmt.Errorf("decoders: judge: %w", err)
	}
	bias, err := f.Tensor(judgeBias)
	if err != nil {
		return nil, cfg, fmt.Errorf("decoders: judge: %w", err)
	}
	if w.Numel() != specdec.Features(cfg.HiddenSize, cfg.Margin) || w.Rank() != 1 || bias.Numel() != 1 {
		return nil, cfg, fmt.Errorf("decoders: judge: weight %v and bias %v do not fit hidden_size %d (margin %v)", w.Shape(), bias.Shape(), cfg.HiddenSize, cfg.Margin)
	}
	return &specdec.Judge{W: slices.Clone(w.Data()), B: bias.Data()[0], Threshold: cfg.Threshold, Margin: cfg.Margin}, cfg, nil
}

// answerError returns the index (into ids) of the first token of a
// generated answer that departs from every valid answer to p, counting a
// premature or missing <eos> and any other special token as an error, or
// -1 when ids is a valid answer ended by <eos>, or a prefix of one.
func answerError(p corpus.Problem, ids []int) int {
	text := make([]byte, 0, len(ids))
	for i, t := range ids {
		if t >= tokenizer.NumBytes {
			if fe := p.FirstError(string(text)); fe >= 0 {
				return fe
			}
			if t == tokenizer.EOS && p.Valid(string(text)) {
				return -1
			}
			return i
		}
		text = append(text, byte(t))
	}
	return p.FirstError(string(text))
}

// JudgeSet builds labelled answers for judge training or evaluation. For
// each problem it adds, in this order, the draft's greedy answer (labelled
// by the checker), one valid answer in a random phrasing, two valid answers
// with one digit changed (the first error at that digit, or later when the
// change still reads as a valid prefix), the first written in a phrasing of
// the draft's mix (the wording the judge sees during Judge Decoding), the
// second in any phrasing, and a mixed answer: a valid answer in a random
// phrasing cut at a random point and continued greedily by the draft (what
// the draft writes after the target has put in a token of its own wording
// during Judge Decoding). Labels come from the known answers: tokens before
// the first error are acceptable, the error is not.
func JudgeSet(draft *llama.Model, problems []corpus.Problem, seed uint64) ([]specdec.Labeled, error) {
	tok := tokenizer.New()
	r := rand.New(rand.NewPCG(seed, 0x1d6e))
	c, err := draft.NewCache(256)
	if err != nil {
		return nil, fmt.Errorf("decoders: %w", err)
	}
	phr := corpus.Phrasings()
	var out []specdec.Labeled
	add := func(prompt, answer []int, p corpus.Problem) {
		fe := answerError(p, answer)
		l := specdec.Labeled{Tokens: append(slices.Clone(prompt), answer...), Start: len(prompt), FirstError: -1}
		if fe >= 0 {
			l.FirstError = len(prompt) + fe
		}
		out = append(out, l)
	}
	for _, p := range problems {
		prompt := corpus.PromptTokens(tok, p)
		drafted, err := Greedy(c, prompt, MaxAnswer)
		if err != nil {
			return nil, err
		}
		add(prompt, drafted, p)
		good := p.Text(phr[r.IntN(len(phr))])
		add(prompt, append(tok.Encode(good), tokenizer.EOS), p)
		// Two corrupted answers: a digit replaced by a random one, and a
		// digit replaced by one of the question's digits (the confusion a
		// small model makes, such as a tens digit in the ones step).
		qd := []byte(fmt.Sprintf("%d%d", p.A, p.B))
		for c := range 2 {
			ph := phr[r.IntN(len(phr))]
			if c == 0 {
				ph = corpus.MixDraft.Draw(r)
			}
			bad := []byte(p.Text(ph))
			var digits []int
			for i, ch := range bad {
				if ch >= '0' && ch <= '9' {
					digits = append(digits, i)
				}
			}
			i := digits[r.IntN(len(digits))]
			repl := byte('0' + (int(bad[i]-'0')+1+r.IntN(9))%10)
			if c == 1 {
				for _, d := range qd {
					if d != bad[i] {
						repl = d
						if r.IntN(2) == 0 {
							break
						}
					}
				}
			}
			bad[i] = repl
			add(prompt, append(tok.Encode(string(bad)), tokenizer.EOS), p)
		}
		head := tok.Encode(p.Text(phr[r.IntN(len(phr))]))
		head = head[:1+r.IntN(len(head)-1)]
		tail, err := Greedy(c, append(slices.Clone(prompt), head...), MaxAnswer-len(head))
		if err != nil {
			return nil, err
		}
		add(prompt, append(head, tail...), p)
	}
	return out, nil
}

// JudgeReport describes a judge on one labelled set.
type JudgeReport struct {
	Examples      int     `json:"examples"`
	Positive      int     `json:"positive"`
	Negative      int     `json:"negative"`
	AUROC         float64 `json:"auroc"`
	Accuracy      float64 `json:"accuracy"`       // at the judge's threshold
	FalseAccept   float64 `json:"false_accept"`   // errors the judge approves
	FalseReject   float64 `json:"false_reject"`   // good tokens it turns down
	DraftAnswers  int     `json:"draft_answers"`  // draft answers in the set
	DraftAccuracy float64 `json:"draft_accuracy"` // draft answers without error
}

// Examples runs the target teacher-forced over the labelled answers and
// returns one hidden-state example per labelled token.
func Examples(target *llama.Model, set []specdec.Labeled) ([]specdec.Example, error) {
	longest := 0
	for _, s := range set {
		longest = max(longest, len(s.Tokens))
	}
	c, err := target.NewCache(max(longest, 1))
	if err != nil {
		return nil, fmt.Errorf("decoders: %w", err)
	}
	ex, err := specdec.JudgeExamples(c, set)
	if err != nil {
		return nil, fmt.Errorf("decoders: %w", err)
	}
	return ex, nil
}

// Evaluate scores a judge on labelled examples.
func Evaluate(j *specdec.Judge, ex []specdec.Example) JudgeReport {
	rep := JudgeReport{Examples: len(ex)}
	scores, labels := make([]float64, len(ex)), make([]bool, len(ex))
	var right, fa, fr int
	for i, e := range ex {
		scores[i], labels[i] = float64(j.Logit(e.Hidden, e.Margin)), e.OK
		acc := j.Accept(e.Hidden, e.Margin)
		if e.OK {
			rep.Positive++
			if !acc {
				fr++
			}
		} else {
			rep.Negative++
			if acc {
				fa++
			}
		}
		if acc == e.OK {
			right++
		}
	}
	rep.AUROC = specdec.AUROC(scores, labels)
	if len(ex) > 0 {
		rep.Accuracy = float64(right) / float64(len(ex))
	}
	if rep.Negative > 0 {
		rep.FalseAccept = float64(fa) / float64(rep.Negative)
	}
	if rep.Positive > 0 {
		rep.FalseReject = float64(fr) / float64(rep.Positive)
	}
	return rep
}

// JudgeOptions configures TrainJudge.
type JudgeOptions struct {
	Problems int    // training problems (PerProblem labelled answers each; default 500)
	Seed     uint64 // problem and corruption seed
	// MaxFalseAccept sets the threshold: the lowest one at which at most
	// this fraction of the training errors is approved (default 0.02).
	MaxFalseAccept float64
	// Margin makes the head read the target's logit margin of each token
	// as well as its hidden state (see specdec.Judge).
	Margin bool
}

// TrainJudge fits a judge head on target's hidden states for answers
// drafted by draft on training problems, and chooses its threshold.
func TrainJudge(target, draft *llama.Model, o JudgeOptions) (*specdec.Judge, JudgeReport, error) {
	if target.Config.VocabSize != draft.Config.VocabSize {
		return nil, JudgeReport{}, fmt.Errorf("decoders: target vocabulary %d and draft vocabulary %d differ",
			target.Config.VocabSize, draft.Config.VocabSize)
	}
	if o.Problems <= 0 {
		o.Problems = 500
	}
	if o.MaxFalseAccept <= 0 {
		o.MaxFalseAccept = 0.02
	}
	set, err := JudgeSet(draft, corpus.NewGenerator(corpus.TrainTarget, o.Seed).Problems(o.Problems), o.Seed)
	if err != nil {
		return nil, JudgeReport{}, err
	}
	ex, err := Examples(target, set)
	if err != nil {
		return nil, JudgeReport{}, err
	}
	j, _, err := specdec.TrainJudge(ex, specdec.TrainOptions{Steps: 400, Balance: true, Margin: o.Margin})
	if err != nil {
		return nil, JudgeReport{}, fmt.Errorf("decoders: %w", err)
	}
	var neg []float64
	for _, e := range ex {
		if !e.OK {
			neg = append(neg, float64(j.Prob(e.Hidden, e.Margin)))
		}
	}
	if len(neg) == 0 {
		return nil, JudgeReport{}, errors.New("decoders: judge training set has no errors")
	}
	slices.Sort(neg)
	q := neg[min(len(neg)-1, int(math.Ceil(float64(len(neg))*(1-o.MaxFalseAccept))))]
	j.Threshold = float32(math.Min(math.Max(q, 0.5), 0.999))
	rep := Evaluate(j, ex)
	rep.DraftAnswers, rep.DraftAccuracy = draftStats(set)
	return j, rep, nil
}

// PerProblem is the number of labelled answers JudgeSet makes per problem.
const PerProblem = 5

// draftStats counts the draft answers (the first of every PerProblem
// labelled answers) and the fraction without error.
func draftStats(set []specdec.Labeled) (int, float64) {
	var n, ok int
	for i := 0; i < len(set); i += PerProblem {
		n++
		if set[i].FirstError < 0 {
			ok++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return n, float64(ok) / float64(n)
}
