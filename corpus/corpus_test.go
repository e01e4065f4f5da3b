package corpus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"tessera/tokenizer"
)

func TestPhrasingsAreAllCorrect(t *testing.T) {
	g := NewGenerator(TrainTarget, 1)
	for range 40 {
		p := g.Problem()
		answers := p.Answers()
		if len(answers) != NumAnswers {
			t.Fatalf("%d answers, want %d", len(answers), NumAnswers)
		}
		for _, ph := range Phrasings() {
			if !p.Valid(p.Text(ph)) {
				t.Fatalf("phrasing %+v: %q is not among the answers", ph, p.Text(ph))
			}
		}
		seen := map[string]bool{}
		for _, a := range answers {
			if seen[a] {
				t.Fatalf("phrasing %q listed twice", a)
			}
			seen[a] = true
			if !p.Correct(a) || !p.Valid(a) || p.FirstError(a) != -1 {
				t.Fatalf("%d+%d: valid answer %q judged wrong", p.A, p.B, a)
			}
		}
	}
}

// TestTextCoversAnswers checks that the phrasings (with every combination
// of swapped parts) write exactly the valid answers.
func TestTextCoversAnswers(t *testing.T) {
	p := Problem{A: 64, B: 29}
	valid := map[string]bool{}
	for _, a := range p.Answers() {
		valid[a] = true
	}
	written := map[string]bool{}
	for _, l := range []bool{false, true} {
		for _, o := range []bool{false, true} {
			for sw := range uint8(32) {
				for f := range NumFinals {
					a := p.Text(Phrasing{OnesFirst: o, Labelled: l, Swapped: sw, Final: f})
					if !valid[a] {
						t.Fatalf("phrasing %v/%v/%05b/%d wrote %q, not a valid answer", o, l, sw, f, a)
					}
					written[a] = true
				}
			}
		}
	}
	if len(written) != len(valid) || len(valid) != NumAnswers {
		t.Fatalf("phrasings write %d distinct answers, %d are valid, want %d", len(written), len(valid), NumAnswers)
	}
	if got := p.Text(Phrasing{Labelled: true, Swapped: 0b01001}); got != "60+20=80, ones 4+9=13; sum 80+13=93. The answer is 93." {
		t.Errorf("swapped parts: %q", got)
	}
}

func TestDeterministicBySeed(t *testing.T) {
	for _, s := range []Split{TrainTarget, TrainDraft, HeldOut, OutOfDomain} {
		a, b := NewGenerator(s, 7), NewGenerator(s, 7)
		for range 50 {
			pa, ta := a.Example()
			pb, tb := b.Example()
			if pa != pb || ta != tb {
				t.Fatalf("%v: same seed gave %q and %q", s, ta, tb)
			}
		}
		if NewGenerator(s, 7).Problem() == NewGenerator(s, 8).Problem() && NewGenerator(s, 9).Problem() == NewGenerator(s, 10).Problem() {
			t.Errorf("%v: different seeds give the same problems", s)
		}
	}
}

func TestSplitsAreDisjoint(t *testing.T) {
	train := map[[2]int]bool{}
	for _, s := range []Split{TrainTarget, TrainDraft} {
		g := NewGenerator(s, 3)
		for range 3000 {
			p := g.Problem()
			if p.OOD {
				t.Fatalf("%v drew an out-of-domain problem", s)
			}
			train[[2]int{p.A, p.B}] = true
		}
	}
	for _, s := range []Split{HeldOut, OutOfDomain} {
		g := NewGenerator(s, 3)
		for range 500 {
			p := g.Problem()
			if train[[2]int{p.A, p.B}] {
				t.Fatalf("%v problem %d+%d also appears in training", s, p.A, p.B)
			}
			if p.OOD != (s == OutOfDomain) {
				t.Fatalf("%v: OOD flag %v", s, p.OOD)
			}
		}
	}
	// The out-of-domain phrasing appears in no training text.
	g := NewGenerator(TrainTarget, 4)
	for range 500 {
		if _, text := g.Example(); strings.Contains(text, "plus") {
			t.Fatalf("training text %q uses the out-of-domain phrasing", text)
		}
	}
}

// TestMixesDiffer checks that the two training mixes prefer different
// phrasings, so a draft and a target disagree on correct answers at every
// step boundary and in the closing sentence, while the target's mix still
// contains the draft's wording now and then.
func TestMixesDiffer(t *testing.T) {
	type counts struct{ onesFirst, labelled, answerIs, total, newFinal int }
	count := func(s Split) (c counts) {
		g := NewGenerator(s, 5)
		for range 2000 {
			p, text := g.Example()
			ans := strings.TrimPrefix(text, p.Prompt())
			ones := fmt.Sprintf("%d+%d=", p.A%10, p.B%10)
			if strings.HasPrefix(ans, ones) || strings.HasPrefix(ans, "ones "+ones) {
				c.onesFirst++
			}
			if strings.HasPrefix(ans, "ones ") || strings.HasPrefix(ans, "tens ") {
				c.labelled++
			}
			if strings.Contains(ans, "The answer is") {
				c.answerIs++
			}
			if strings.Contains(ans, "Total:") {
				c.total++
			}
			if strings.Contains(ans, "Total:") || strings.Contains(ans, "Hence") {
				c.newFinal++
			}
			if !p.Valid(ans) {
				t.Fatalf("%v: example answer %q is not valid", s, ans)
			}
		}
		return c
	}
	tc, dc := count(TrainTarget), count(TrainDraft)
	if tc.labelled < 500 || tc.labelled > 900 || tc.newFinal < 100 || tc.newFinal > 300 || tc.onesFirst > 600 || tc.answerIs < 1100 {
		t.Errorf("target mix (of 2000): %+v", tc)
	}
	if dc.labelled != 2000 || dc.answerIs != 0 || dc.onesFirst > 600 || dc.total < 1200 || dc.newFinal != 2000 {
		t.Errorf("draft mix (of 2000): %+v", dc)
	}
	// The preferred answers differ early and in many places.
	p := Problem{A: 37, B: 48}
	a, b := p.Text(MixTarget.Mode()), p.Text(MixDraft.Mode())
	if a != "30+40=70, 7+8=15, 70+15=85. The answer is 85." || b != "tens 30+40=70; ones 7+8=15; sum 70+15=85. Total: 85." {
		t.Errorf("preferred answers %q and %q", a, b)
	}
}

func TestFirstErrorAndChecker(t *testing.T) {
	p := Problem{A: 37, B: 48}
	valid := p.Text(Phrasing{})
	tests := []struct {
		text     string
		firstErr int
		correct  bool
	}{
		{valid, -1, true},
		{valid[:10], -1, false},
		{"7+8=15, 30+40=70, 70+15=85. So we get 85.", -1, true},
		{"ones 7+8=15; tens 30+40=70; sum 70+15=85. Total: 85.", -1, true},
		{"tens 30+40=70; ones 7+8=15; sum 70+15=85. Hence 85.", -1, true},
		{"ones 7+8=15; tens 30+40=71", 25, false},
		{"ones 7+8=15, 30+40=70; sum 70+15=85. The answer is 85.", -1, true},
		{"ones 7+8=15. 30", 11, false},
		{"30+40=71, 7+8=15", 7, false},
		{"30+40=70, 7+8=15, 70+15=85. The answer is 86.", len(valid) - 2, false},
		{valid + " more", len(valid), true},
		{"The answer is 85.", 0, true},
		{"", -1, false},
	}
	for _, tc := range tests {
		if got := p.FirstError(tc.text); got != tc.firstErr {
			t.Errorf("FirstError(%q) = %d, want %d", tc.text, got, tc.firstErr)
		}
		if got := p.Correct(tc.text); got != tc.correct {
			t.Errorf("Correct(%q) = %v, want %v", tc.text, got, tc.correct)
		}
	}
	if v, ok := ExtractAnswer("so 12 and then 130.\nQ: 5"); !ok || v != 130 {
		t.Errorf("ExtractAnswer stops at the first line: got %d, %v", v, ok)
	}
}

func TestBatchPacksExamples(t *testing.T) {
	tok := tokenizer.New()
	rows := NewGenerator(TrainTarget, 2).Batch(tok, 4, 300)
	for _, r := range rows {
		if len(r) != 300 || r[0] != tokenizer.BOS {
			t.Fatalf("row of %d tokens starting with %d", len(r), r[0])
		}
		text, err := tok.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "<eos><bos>Q: ") {
			t.Fatalf("row %q does not pack whole examples", text)
		}
	}
}

func TestShakespeare(t *testing.T) {
	text, err := LoadShakespeare("")
	if errors.Is(err, ErrNoData) {
		t.Skip("tinyshakespeare.txt not found under ../shared/data/text:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(text.Train) < 900_000 || len(text.Valid) < 100_000 {
		t.Fatalf("split %d/%d tokens", len(text.Train), len(text.Valid))
	}
	if _, err := LoadShakespeare(t.TempDir()); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty folder: error %v, want ErrNoData", err)
	}
}
