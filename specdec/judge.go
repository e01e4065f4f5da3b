package specdec

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Judge is a linear head on the target's hidden state (after the last
// layer, before the final norm) that scores whether a draft token is an
// acceptable continuation: accept when sigmoid(W·e + B) > Threshold.
type Judge struct {
	W         []float32 `json:"w"`
	B         float32   `json:"b"`
	Threshold float32   `json:"threshold"` // 0 means 0.5
}

// Logit is W·e + B.
func (j *Judge) Logit(e []float32) float32 {
	s := j.B
	for i, w := range j.W {
		s += w * e[i]
	}
	return s
}

// Prob is sigmoid(Logit(e)).
func (j *Judge) Prob(e []float32) float32 { return sigmoid(j.Logit(e)) }

// Accept reports whether the judge approves the token whose hidden state
// is e.
func (j *Judge) Accept(e []float32) bool {
	th := j.Threshold
	if th <= 0 {
		th = 0.5
	}
	return j.Prob(e) > th
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// Labeled is one teacher-forced sequence for judge training: Tokens holds
// the prompt and then an answer starting at Start. Answer tokens before
// FirstError are acceptable (label 1), the token at FirstError is the
// first error (label 0), and tokens after it are not used. FirstError < 0
// marks an answer without errors.
type Labeled struct {
	Tokens     []int
	Start      int
	FirstError int
}

// Example is one training example of the judge: a hidden state and
// whether its token is acceptable.
type Example struct {
	Hidden []float32
	OK     bool
}

// FirstMismatch returns the first index where answer departs from
// reference (a prefix of reference that is shorter counts as departing at
// its end), or -1 when answer equals reference. It labels answers
// automatically when the correct one is known.
func FirstMismatch(answer, reference []int) int {
	for i, t := range answer {
		if i >= len(reference) || t != reference[i] {
			return i
		}
	}
	if len(answer) < len(reference) {
		return len(answer)
	}
	return -1
}

// JudgeExamples runs the target teacher-forced over each sequence (the
// cache must be empty; it is left empty) and returns one example per
// labelled answer token, the hidden state taken at that token's position.
func JudgeExamples(target HiddenCache, seqs []Labeled) ([]Example, error) {
	if target.Len() != 0 {
		return nil, errors.New("specdec: JudgeExamples needs an empty cache")
	}
	var out []Example
	for n, s := range seqs {
		if s.Start < 0 || s.Start > len(s.Tokens) || s.FirstError >= len(s.Tokens) || (s.FirstError >= 0 && s.FirstError < s.Start) {
			return nil, fmt.Errorf("specdec: sequence %d: start %d, first error %d for %d tokens", n, s.Start, s.FirstError, len(s.Tokens))
		}
		if _, err := target.Extend(s.Tokens); err != nil {
			return nil, fmt.Errorf("specdec: sequence %d: %w", n, err)
		}
		h := target.Hidden()
		d := len(h) / len(s.Tokens)
		end := len(s.Tokens)
		if s.FirstError >= 0 {
			end = s.FirstError + 1
		}
		for t := s.Start; t < end; t++ {
			out = append(out, Example{Hidden: slices.Clone(h[t*d : (t+1)*d]), OK: t != s.FirstError})
		}
		if err := target.Truncate(0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TrainOptions configures TrainJudge.
type TrainOptions struct {
	Steps int     // full-batch Adam steps (default 500)
	LR    float64 // learning rate on standardised features (default 0.05)
	L2    float64 // weight decay (default 1e-3)
	// Balance weights the two classes equally in the loss (errors are
	// rare, and a missed error costs more than a rejected good token).
	Balance bool
}

// TrainReport describes the fitted judge on its training examples.
type TrainReport struct {
	Loss     float64 `json:"loss"` // mean binary cross-entropy
	Accuracy float64 `json:"accuracy"`
	AUROC    float64 `json:"auroc"`
	Positive int     `json:"positive"`
	Negative int     `json:"negative"`
}

// TrainJudge fits a judge by logistic regression (binary cross-entropy
// with logits, full-batch Adam) on standardised hidden states, then folds
// the standardisation into W and B.
func TrainJudge(ex []Example, opt TrainOptions) (*Judge, TrainReport, error) {
	if len(ex) == 0 {
		return nil, TrainReport{}, errors.New("specdec: no judge examples")
	}
	if opt.Steps <= 0 {
		opt.Steps = 500
	}
	if opt.LR <= 0 {
		opt.LR = 0.05
	}
	if opt.L2 < 0 {
		opt.L2 = 0
	} else if opt.L2 == 0 {
		opt.L2 = 1e-3
	}
	d := len(ex[0].Hidden)
	var pos, neg int
	for i, e := range ex {
		if len(e.Hidden) != d {
			return nil, TrainReport{}, fmt.Errorf("specdec: example %d has %d features, want %d", i, len(e.Hidden), d)
		}
		if e.OK {
			pos++
		} else {
			neg++
		}
	}
	mean, std := make([]float64, d), make([]float64, d)
	for _, e := range ex {
		for i, v := range e.Hidden {
			mean[i] += float64(v)
		}
	}
	for i := range mean {
		mean[i] /= float64(len(ex))
	}
	for _, e := range ex {
		for i, v := range e.Hidden {
			dv := float64(v) - mean[i]
			std[i] += dv * dv
		}
	}
	for i := range std {
		std[i] = math.Sqrt(std[i]/float64(len(ex))) + 1e-6
	}
	wPos, wNeg := 1.0, 1.0
	if opt.Balance && pos > 0 && neg > 0 {
		wPos, wNeg = float64(len(ex))/(2*float64(pos)), float64(len(ex))/(2*float64(neg))
	}
	// Adam on (w, b) over standardised z = (e - mean)/std.
	w := make([]float64, d+1) // w[d] is the bias
	g, m1, m2 := make([]float64, d+1), make([]float64, d+1), make([]float64, d+1)
	z := make([]float64, d)
	const b1, b2 = 0.9, 0.999
	for step := 1; step <= opt.Steps; step++ {
		clear(g)
		for _, e := range ex {
			s := w[d]
			for i, v := range e.Hidden {
				z[i] = (float64(v) - mean[i]) / std[i]
				s += w[i] * z[i]
			}
			y, cw := 0.0, wNeg
			if e.OK {
				y, cw = 1, wPos
			}
			r := cw * (1/(1+math.Exp(-s)) - y) / float64(len(ex))
			for i := range z {
				g[i] += r * z[i]
			}
			g[d] += r
		}
		for i := 0; i < d; i++ {
			g[i] += opt.L2 * w[i]
		}
		c1, c2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
		for i := range w {
			m1[i] = b1*m1[i] + (1-b1)*g[i]
			m2[i] = b2*m2[i] + (1-b2)*g[i]*g[i]
			w[i] -= opt.LR * (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + 1e-8)
		}
	}
	j := &Judge{W: make([]float32, d), B: float32(w[d]), Threshold: 0.5}
	bias := w[d]
	for i := 0; i < d; i++ {
		j.W[i] = float32(w[i] / std[i])
		bias -= w[i] * mean[i] / std[i]
	}
	j.B = float32(bias)
	rep := TrainReport{Positive: pos, Negative: neg}
	scores := make([]float64, len(ex))
	labels := make([]bool, len(ex))
	var correct int
	for i, e := range ex {
		s := float64(j.Logit(e.Hidden))
		scores[i], labels[i] = s, e.OK
		p := 1 / (1 + math.Exp(-s))
		if e.OK {
			rep.Loss -= math.Log(math.Max(p, 1e-12))
		} else {
			rep.Loss -= math.Log(math.Max(1-p, 1e-12))
		}
		if (p > 0.5) == e.OK {
			correct++
		}
	}
	rep.Loss /= float64(len(ex))
	rep.Accuracy = float64(correct) / float64(len(ex))
	rep.AUROC = AUROC(scores, labels)
	return j, rep, nil
}

// AUROC is the area under the ROC curve of scores for the positive labels:
// the probability that a random positive scores above a random negative
// (ties count half). It is NaN when either class is absent.
func AUROC(scores []float64, labels []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	// Mann–Whitney U with average ranks for ties.
	var rankSum float64
	var pos, neg int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		r := float64(i+j+1) / 2 // average of ranks i+1 … j
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				rankSum += r
				pos++
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg))
}
