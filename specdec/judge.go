package specdec

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Judge is a linear head on the target's hidden state (after the last
// layer, before the final norm) that scores whether a draft token is an
// acceptable continuation: accept when sigmoid(W·f + B) > Threshold. The
// features f are the hidden state e, or, when Margin is set, e together
// with the target's logit margin m of the token (its logit minus the
// largest logit at that position: 0 when the target would have chosen the
// token) as [e, m·e, m], so that the head can weigh the target's own
// preference differently for different kinds of tokens.
type Judge struct {
	W         []float32 `json:"w"`
	B         float32   `json:"b"`
	Threshold float32   `json:"threshold"` // 0 means 0.5
	Margin    bool      `json:"margin"`    // W has 2d+1 weights for [e, m·e, m]
}

// MinMargin bounds the logit margin a judge reads from below.
const MinMargin = -20

// LogitMargin is the margin a judge reads for token x given the target's
// logits at the position before it: logits[x] - max(logits), at least
// MinMargin.
func LogitMargin(logits []float32, x int) float32 {
	m := logits[0]
	for _, v := range logits[1:] {
		m = max(m, v)
	}
	return max(logits[x]-m, MinMargin)
}

// Features is the number of weights of a judge on hidden states of width d.
func Features(d int, margin bool) int {
	if margin {
		return 2*d + 1
	}
	return d
}

// Logit is W·f + B for hidden state e and logit margin m (unused without
// Margin).
func (j *Judge) Logit(e []float32, m float32) float32 {
	s := j.B
	d := len(e)
	for i, v := range e[:min(d, len(j.W))] {
		s += j.W[i] * v
	}
	if j.Margin && len(j.W) == 2*d+1 {
		for i, v := range e {
			s += j.W[d+i] * m * v
		}
		s += j.W[2*d] * m
	}
	return s
}

// Prob is sigmoid(Logit(e, m)).
func (j *Judge) Prob(e []float32, m float32) float32 { return sigmoid(j.Logit(e, m)) }

// Accept reports whether the judge approves the token whose hidden state
// is e and whose logit margin is m.
func (j *Judge) Accept(e []float32, m float32) bool {
	th := j.Threshold
	if th <= 0 {
		th = 0.5
	}
	return j.Prob(e, m) > th
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

// Example is one training example of the judge: a hidden state, the
// target's logit margin of the token, and whether the token is acceptable.
type Example struct {
	Hidden []float32
	Margin float32
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
		logits, err := target.Extend(s.Tokens)
		if err != nil {
			return nil, fmt.Errorf("specdec: sequence %d: %w", n, err)
		}
		h := target.Hidden()
		d := len(h) / len(s.Tokens)
		V := len(logits) / len(s.Tokens)
		end := len(s.Tokens)
		if s.FirstError >= 0 {
			end = s.FirstError + 1
		}
		for t := s.Start; t < end; t++ {
			var m float32
			if t > 0 {
				m = LogitMargin(logits[(t-1)*V:t*V], s.Tokens[t])
			}
			out = append(out, Example{Hidden: slices.Clone(h[t*d : (t+1)*d]), Margin: m, OK: t != s.FirstError})
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
	// Margin makes the judge read the logit margin as well (see Judge).
	Margin bool
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
	hd := len(ex[0].Hidden)
	d := Features(hd, opt.Margin)
	var pos, neg int
	feats := make([]float32, len(ex)*d)
	for i, e := range ex {
		if len(e.Hidden) != hd {
			return nil, TrainReport{}, fmt.Errorf("specdec: example %d has %d features, want %d", i, len(e.Hidden), hd)
		}
		if e.OK {
			pos++
		} else {
			neg++
		}
		f := feats[i*d : (i+1)*d]
		copy(f, e.Hidden)
		if opt.Margin {
			for k, v := range e.Hidden {
				f[hd+k] = e.Margin * v
			}
			f[2*hd] = e.Margin
		}
	}
	row := func(i int) []float32 { return feats[i*d : (i+1)*d] }
	mean, std := make([]float64, d), make([]float64, d)
	for i := range ex {
		for k, v := range row(i) {
			mean[k] += float64(v)
		}
	}
	for k := range mean {
		mean[k] /= float64(len(ex))
	}
	for i := range ex {
		for k, v := range row(i) {
			dv := float64(v) - mean[k]
			std[k] += dv * dv
		}
	}
	for k := range std {
		std[k] = math.Sqrt(std[k]/float64(len(ex))) + 1e-6
	}
	// Standardise in place.
	for i := range ex {
		f := row(i)
		for k, v := range f {
			f[k] = float32((float64(v) - mean[k]) / std[k])
		}
	}
	wPos, wNeg := 1.0, 1.0
	if opt.Balance && pos > 0 && neg > 0 {
		wPos, wNeg = float64(len(ex))/(2*float64(pos)), float64(len(ex))/(2*float64(neg))
	}
	// Adam on (w, b) over the standardised features.
	w := make([]float64, d+1) // w[d] is the bias
	g, m1, m2 := make([]float64, d+1), make([]float64, d+1), make([]float64, d+1)
	const b1, b2 = 0.9, 0.999
	for step := 1; step <= opt.Steps; step++ {
		clear(g)
		for i, e := range ex {
			z := row(i)
			s := w[d]
			for k, v := range z {
				s += w[k] * float64(v)
			}
			y, cw := 0.0, wNeg
			if e.OK {
				y, cw = 1, wPos
			}
			r := cw * (1/(1+math.Exp(-s)) - y) / float64(len(ex))
			for k, v := range z {
				g[k] += r * float64(v)
			}
			g[d] += r
		}
		for k := 0; k < d; k++ {
			g[k] += opt.L2 * w[k]
		}
		c1, c2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
		for k := range w {
			m1[k] = b1*m1[k] + (1-b1)*g[k]
			m2[k] = b2*m2[k] + (1-b2)*g[k]*g[k]
			w[k] -= opt.LR * (m1[k] / c1) / (math.Sqrt(m2[k]/c2) + 1e-8)
		}
	}
	j := &Judge{W: make([]float32, d), Threshold: 0.5, Margin: opt.Margin}
	bias := w[d]
	for k := 0; k < d; k++ {
		j.W[k] = float32(w[k] / std[k])
		bias -= w[k] * mean[k] / std[k]
	}
	j.B = float32(bias)
	rep := TrainReport{Positive: pos, Negative: neg}
	scores := make([]float64, len(ex))
	labels := make([]bool, len(ex))
	var correct int
	for i, e := range ex {
		s := float64(j.Logit(e.Hidden, e.Margin))
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
