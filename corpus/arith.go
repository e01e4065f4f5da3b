// Package corpus generates the training and evaluation text of Tessera's
// small decoders: procedurally generated arithmetic problems whose correct
// answer can be written in several valid ways (so that a draft and a target
// trained on different phrasing mixes disagree on correct answers), with an
// exact-answer checker, and a loader for plain text (tinyshakespeare).
//
// An arithmetic example reads
//
//	<bos>Q: 37+48=?
//	A: 30+40=70, 7+8=15, 70+15=85. The answer is 85.<eos>
//
// An answer has three worked steps (tens, ones, total) and a closing
// sentence. The steps come in two orders (tens first or ones first) and two
// wordings: a plain list ("30+40=70, 7+8=15, 70+15=85.") or labelled steps
// ("ones 7+8=15; tens 30+40=70; sum 70+15=85."); the closing sentence has
// five phrasings. Every combination is correct and the numbers are the same
// in all of them. The target's mix mostly uses plain steps and "The answer
// is"; the draft's mix only labelled steps and "Total:" or "Hence", so the
// two differ at the first token, at every step boundary and in the closing
// sentence; both write the tens step first 80% of the time. Problems are split by operand pair: held-out pairs never appear
// in either training mix. The out-of-domain split asks the same sums in a
// question phrasing neither mix contains.
package corpus

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"tessera/tokenizer"
)

// Split names a part of the arithmetic corpus.
type Split int

// The splits. TrainTarget and TrainDraft draw from the same training pairs
// with different phrasing mixes; HeldOut and OutOfDomain use held-out pairs.
const (
	TrainTarget Split = iota // training text of the target model (mix A)
	TrainDraft               // training text of the draft model (mix B)
	HeldOut                  // held-out operand pairs, in-domain question phrasings
	OutOfDomain              // held-out pairs asked in an unseen question phrasing
)

var splitNames = map[Split]string{TrainTarget: "arith-target", TrainDraft: "arith-draft", HeldOut: "heldout", OutOfDomain: "ood"}

// String is the split's name as the CLI spells it.
func (s Split) String() string {
	if n, ok := splitNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// ParseSplit returns the split called name (arith-target, arith-draft,
// heldout, ood).
func ParseSplit(name string) (Split, error) {
	for s, n := range splitNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("corpus: unknown split %q (want arith-target, arith-draft, heldout or ood)", name)
}

// Operands are two-digit numbers.
const (
	MinOperand = 10
	MaxOperand = 99
)

// Problem is one addition question.
type Problem struct {
	A, B     int
	Question int // index into the question phrasings (see Prompt)
	OOD      bool
}

// Answer is the correct result.
func (p Problem) Answer() int { return p.A + p.B }

var (
	names   = []string{"Ann", "Bob", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"}
	objects = []string{"apples", "coins", "books", "stones", "cards", "shells"}
)

// numQuestions is the number of in-domain question phrasings.
const numQuestions = 2

// Prompt is the question text up to and including "A: ", without <bos>.
func (p Problem) Prompt() string {
	var q string
	switch {
	case p.OOD:
		q = fmt.Sprintf("What is %d plus %d?", p.A, p.B)
	case p.Question == 1:
		n, o := names[(p.A+3*p.B)%len(names)], objects[(7*p.A+p.B)%len(objects)]
		q = fmt.Sprintf("%s has %d %s and gets %d more. How many %s now?", n, p.A, o, p.B, o)
	default:
		q = fmt.Sprintf("%d+%d=?", p.A, p.B)
	}
	return "Q: " + q + "\nA: "
}

// Phrasing selects one valid way of writing the answer.
type Phrasing struct {
	OnesFirst bool // the ones step before the tens step
	Labelled  bool // labelled steps ("ones 7+8=15; tens …; sum …") instead of a plain list
	// Swapped writes single parts in the other wording: bit i (0..2) the
	// label of step i+1 (present or not), bit 3+j (j = 0, 1) the separator
	// after step j+1 ("; " or ", ").
	Swapped uint8
	Final   int // index of the closing sentence (0..NumFinals-1)
}

// NumFinals is the number of closing sentences.
const NumFinals = 5

// finals are the closing sentences; %d is the answer.
var finals = [NumFinals]string{"The answer is %d.", "So we get %d.", "That makes %d.", "Total: %d.", "Hence %d."}

// Phrasings lists every valid phrasing.
func Phrasings() []Phrasing {
	var out []Phrasing
	for _, l := range []bool{false, true} {
		for _, o := range []bool{false, true} {
			for f := 0; f < NumFinals; f++ {
				out = append(out, Phrasing{OnesFirst: o, Labelled: l, Final: f})
			}
		}
	}
	return out
}

// Text writes the answer to p in phrasing ph (without <eos>).
func (p Problem) Text(ph Phrasing) string {
	tens := fmt.Sprintf("%d+%d=%d", p.A/10*10, p.B/10*10, p.A/10*10+p.B/10*10)
	ones := fmt.Sprintf("%d+%d=%d", p.A%10, p.B%10, p.A%10+p.B%10)
	total := fmt.Sprintf("%d+%d=%d", p.A/10*10+p.B/10*10, p.A%10+p.B%10, p.Answer())
	steps, labels := [3]string{tens, ones, total}, [3]string{"tens ", "ones ", "sum "}
	if ph.OnesFirst {
		steps[0], steps[1], labels[0], labels[1] = ones, tens, "ones ", "tens "
	}
	var out strings.Builder
	for i, st := range steps {
		if ph.Labelled != (ph.Swapped>>i&1 == 1) {
			out.WriteString(labels[i])
		}
		out.WriteString(st)
		switch {
		case i == 2:
			out.WriteString(". ")
		case ph.Labelled != (ph.Swapped>>(3+i)&1 == 1):
			out.WriteString("; ")
		default:
			out.WriteString(", ")
		}
	}
	f := finals[0]
	if ph.Final > 0 && ph.Final < NumFinals {
		f = finals[ph.Final]
	}
	out.WriteString(fmt.Sprintf(f, p.Answer()))
	return out.String()
}

// Answers lists every valid answer: the two step orders, each step plain
// or labelled on its own, each of the two step separators ", " or "; ", and
// every closing sentence (an answer may mix the wordings step by step, as
// the target's mix does now and then, and as happens when Judge Decoding
// keeps the draft's steps around a target's token). It is the text of every
// Phrasing without Labelled, in another order.
func (p Problem) Answers() []string {
	tens := fmt.Sprintf("%d+%d=%d", p.A/10*10, p.B/10*10, p.A/10*10+p.B/10*10)
	ones := fmt.Sprintf("%d+%d=%d", p.A%10, p.B%10, p.A%10+p.B%10)
	total := fmt.Sprintf("%d+%d=%d", p.A/10*10+p.B/10*10, p.A%10+p.B%10, p.Answer())
	seps := []string{", ", "; "}
	var closing [NumFinals]string
	for i, f := range finals {
		closing[i] = fmt.Sprintf(f, p.Answer())
	}
	out := make([]string, 0, NumAnswers)
	for _, onesFirst := range []bool{false, true} {
		first, second, l1, l2 := tens, ones, "tens ", "ones "
		if onesFirst {
			first, second, l1, l2 = ones, tens, "ones ", "tens "
		}
		for mask := range 8 {
			steps := [3]string{first, second, total}
			for i, l := range [3]string{l1, l2, "sum "} {
				if mask>>i&1 == 1 {
					steps[i] = l + steps[i]
				}
			}
			for _, s1 := range seps {
				for _, s2 := range seps {
					body := steps[0] + s1 + steps[1] + s2 + steps[2] + ". "
					for _, c := range closing {
						out = append(out, body+c)
					}
				}
			}
		}
	}
	return out
}

// NumAnswers is the number of valid answers to a problem (Answers).
const NumAnswers = 2 * 8 * 4 * NumFinals

// Mix is a distribution over phrasings: P(ones first), P(labelled steps),
// the probability that each of the five parts (three step labels, two
// separators) is independently written in the other wording, and the
// weights of the closing sentences.
type Mix struct {
	OnesFirst float64
	Labelled  float64
	Swap      float64
	Finals    [NumFinals]float64
}

// MixTarget is the target's phrasing mix (A): mostly plain steps, tens
// first and "The answer is"; every wording of the draft's mix occurs in
// it, less often (labelled answers 30%, each part swapped 10%, "Total:"
// and "Hence" 5% each), so that the target reads the draft's wording
// without preferring it.
var MixTarget = Mix{OnesFirst: 0.2, Labelled: 0.3, Swap: 0.1, Finals: [NumFinals]float64{0.6, 0.15, 0.15, 0.05, 0.05}}

// MixDraft is the draft's phrasing mix (B): the steps in the target's
// usual order (mostly tens first) but labelled and separated by
// semicolons, and "Total:" or "Hence" to close; it never uses the target's
// preferred step wording or closing sentence.
var MixDraft = Mix{OnesFirst: 0.2, Labelled: 1, Finals: [NumFinals]float64{3: 0.7, 4: 0.3}}

// draw picks a phrasing. A mix draws no number for labels or swaps it
// never uses.
func (m Mix) draw(r *rand.Rand) Phrasing {
	ph := Phrasing{OnesFirst: r.Float64() < m.OnesFirst}
	if m.Labelled > 0 {
		ph.Labelled = r.Float64() < m.Labelled
	}
	if m.Swap > 0 {
		for i := range 5 {
			if r.Float64() < m.Swap {
				ph.Swapped |= 1 << i
			}
		}
	}
	u, total, last := r.Float64(), 0.0, 0
	for i, w := range m.Finals {
		total += w
		if w > 0 {
			last = i
		}
	}
	u *= total
	ph.Final = last
	for i, w := range m.Finals {
		if w > 0 && u < w {
			ph.Final = i
			break
		}
		u -= w
	}
	return ph
}

// Mode is the mix's most likely phrasing.
func (m Mix) Mode() Phrasing {
	ph := Phrasing{OnesFirst: m.OnesFirst > 0.5, Labelled: m.Labelled > 0.5}
	for i, w := range m.Finals {
		if w > m.Finals[ph.Final] {
			ph.Final = i
		}
	}
	return ph
}

// Draw picks a phrasing from the mix with r.
func (m Mix) Draw(r *rand.Rand) Phrasing { return m.draw(r) }

// heldOutPair reports whether the operand pair belongs to the held-out
// problems (about one pair in eight, fixed by a hash, not by a seed).
func heldOutPair(a, b int) bool {
	h := uint32(a*131+b*7919) * 2654435761
	return h>>29 == 0
}

// Generator draws problems and examples of one split, deterministically
// from its seed.
type Generator struct {
	split Split
	r     *rand.Rand
}

// NewGenerator returns a generator of split seeded with seed.
func NewGenerator(split Split, seed uint64) *Generator {
	return &Generator{split: split, r: rand.New(rand.NewPCG(seed, uint64(split)+0x5eed))}
}

// Problem draws the next problem of the split.
func (g *Generator) Problem() Problem {
	held := g.split == HeldOut || g.split == OutOfDomain
	for {
		a := MinOperand + g.r.IntN(MaxOperand-MinOperand+1)
		b := MinOperand + g.r.IntN(MaxOperand-MinOperand+1)
		if heldOutPair(a, b) != held {
			continue
		}
		return Problem{A: a, B: b, Question: g.r.IntN(numQuestions), OOD: g.split == OutOfDomain}
	}
}

// Problems draws n problems.
func (g *Generator) Problems(n int) []Problem {
	out := make([]Problem, n)
	for i := range out {
		out[i] = g.Problem()
	}
	return out
}

// Example draws a problem and writes it with an answer in the split's
// phrasing mix (the target's mix for the evaluation splits), as text
// without specials.
func (g *Generator) Example() (Problem, string) {
	p := g.Problem()
	mix := MixTarget
	if g.split == TrainDraft {
		mix = MixDraft
	}
	return p, p.Prompt() + p.Text(mix.draw(g.r))
}

// Tokens is the token sequence <bos> text <eos>.
func Tokens(tok *tokenizer.Tokenizer, text string) []int {
	out := make([]int, 0, len(text)+2)
	out = append(out, tokenizer.BOS)
	out = append(out, tok.Encode(text)...)
	return append(out, tokenizer.EOS)
}

// PromptTokens is <bos> followed by the prompt of p.
func PromptTokens(tok *tokenizer.Tokenizer, p Problem) []int {
	return append([]int{tokenizer.BOS}, tok.Encode(p.Prompt())...)
}

// Batch fills rows of n tokens each by packing whole examples
// (<bos> … <eos>) one after another, as a language-model batch: a row
// starts at an example boundary and the last example may be cut.
func (g *Generator) Batch(tok *tokenizer.Tokenizer, rows, n int) [][]int {
	out := make([][]int, rows)
	for i := range out {
		row := make([]int, 0, n+64)
		for len(row) < n {
			_, text := g.Example()
			row = append(row, Tokens(tok, text)...)
		}
		out[i] = row[:n]
	}
	return out
}

var lastNumber = regexp.MustCompile(`-?\d+`)

// ExtractAnswer returns the final number of an answer text (the last
// integer in it), and false when there is none.
func ExtractAnswer(text string) (int, bool) {
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	all := lastNumber.FindAllString(text, -1)
	if len(all) == 0 {
		return 0, false
	}
	v, err := strconv.Atoi(all[len(all)-1])
	return v, err == nil
}

// Correct is the exact-answer check: the final number of text is the
// problem's answer.
func (p Problem) Correct(text string) bool {
	v, ok := ExtractAnswer(text)
	return ok && v == p.Answer()
}

// Valid reports whether text is exactly one of the valid answers.
func (p Problem) Valid(text string) bool {
	for _, a := range p.Answers() {
		if a == text {
			return true
		}
	}
	return false
}

// FirstError returns the byte index of the first character of text at
// which it stops being a prefix of every valid answer (with the end of the
// answer, <eos>, at index len(answer)), or -1 when text is a valid answer
// or a prefix of one. A text that continues after a complete answer errs at
// that point.
func (p Problem) FirstError(text string) int {
	best := 0
	for _, a := range p.Answers() {
		n := 0
		for n < len(text) && n < len(a) && text[n] == a[n] {
			n++
		}
		if n == len(text) {
			return -1
		}
		best = max(best, n)
	}
	return best
}
