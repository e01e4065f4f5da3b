package decoders

import (
	"fmt"

	"tessera/corpus"
	"tessera/llama"
	"tessera/tokenizer"
)

// MaxAnswer bounds the tokens of a generated arithmetic answer (the longest
// valid answer has 62 bytes).
const MaxAnswer = 72

// Greedy decodes from prompt with the target alone, greedily, until <eos>
// or maxNew tokens, on an empty cache (left empty).
func Greedy(c *llama.Cache, prompt []int, maxNew int) ([]int, error) {
	if c.Len() != 0 {
		return nil, fmt.Errorf("decoders: greedy decoding needs an empty cache")
	}
	defer c.Reset()
	logits, err := c.Prefill(prompt)
	if err != nil {
		return nil, fmt.Errorf("decoders: prefill: %w", err)
	}
	var out []int
	for len(out) < maxNew {
		t := llama.Argmax(logits)
		out = append(out, t)
		if t == tokenizer.EOS || len(out) == maxNew {
			break
		}
		if logits, err = c.Decode(t); err != nil {
			return nil, fmt.Errorf("decoders: decode: %w", err)
		}
	}
	return out, nil
}

// AnswerText is the text of generated answer tokens up to <eos>.
func AnswerText(tok *tokenizer.Tokenizer, ids []int) string {
	for i, t := range ids {
		if t == tokenizer.EOS {
			ids = ids[:i]
			break
		}
	}
	s, _ := tok.DecodeText(ids)
	return s
}

// Accuracy is the fraction of problems m answers exactly (greedy decoding),
// with the answers it wrote.
func Accuracy(m *llama.Model, problems []corpus.Problem) (float64, []string, error) {
	if len(problems) == 0 {
		return 0, nil, fmt.Errorf("decoders: no problems")
	}
	tok := tokenizer.New()
	c, err := m.NewCache(256)
	if err != nil {
		return 0, nil, err
	}
	var right int
	texts := make([]string, len(problems))
	for i, p := range problems {
		ids, err := Greedy(c, corpus.PromptTokens(tok, p), MaxAnswer)
		if err != nil {
			return 0, nil, err
		}
		texts[i] = AnswerText(tok, ids)
		if p.Correct(texts[i]) {
			right++
		}
	}
	return float64(right) / float64(len(problems)), texts, nil
}
