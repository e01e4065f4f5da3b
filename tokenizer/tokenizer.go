// Package tokenizer maps text to token ids for Tessera's decoders: one token
// per byte (ids 0–255, so every string, valid UTF-8 or not, round-trips) and a
// few special tokens after the bytes (<bos>, <eos>, <pad> and reserved slots
// for later use, such as chat roles).
package tokenizer

import (
	"fmt"
	"strings"
)

// NumBytes is the number of byte tokens; byte b has id b.
const NumBytes = 256

// Ids of the special tokens of the default tokenizer.
const (
	BOS = NumBytes + iota // beginning of sequence
	EOS                   // end of sequence
	Pad                   // padding in batches
)

// DefaultReserved is how many reserved special tokens New adds after <pad>.
const DefaultReserved = 5

// Tokenizer is a byte-level tokenizer with special tokens. It is immutable
// and safe for concurrent use.
type Tokenizer struct {
	specials []string       // specials[i] has id NumBytes+i
	ids      map[string]int // special name -> id
}

// New returns the default tokenizer: 256 byte tokens, then <bos>, <eos>,
// <pad> and <reserved_0> … <reserved_4> (vocabulary size 264).
func New() *Tokenizer {
	names := []string{"<bos>", "<eos>", "<pad>"}
	for i := 0; i < DefaultReserved; i++ {
		names = append(names, fmt.Sprintf("<reserved_%d>", i))
	}
	t, err := WithSpecials(names...)
	if err != nil {
		panic(err) // the default names are valid
	}
	return t
}

// WithSpecials returns a tokenizer with the given special tokens, in order,
// after the 256 byte tokens. Names must be unique, non-empty and of the form
// "<…>" so that EncodeSpecial can find them in text.
func WithSpecials(names ...string) (*Tokenizer, error) {
	t := &Tokenizer{ids: make(map[string]int, len(names))}
	for i, n := range names {
		if len(n) < 3 || n[0] != '<' || n[len(n)-1] != '>' || strings.ContainsAny(n[1:len(n)-1], "<>") {
			return nil, fmt.Errorf("tokenizer: special token %q: want the form <name>", n)
		}
		if _, dup := t.ids[n]; dup {
			return nil, fmt.Errorf("tokenizer: special token %q listed twice", n)
		}
		t.ids[n] = NumBytes + i
		t.specials = append(t.specials, n)
	}
	return t, nil
}

// VocabSize is the number of token ids: 256 plus the special tokens. A
// model using this tokenizer needs vocab_size >= VocabSize.
func (t *Tokenizer) VocabSize() int { return NumBytes + len(t.specials) }

// SpecialID returns the id of the special token name (for example "<eos>").
func (t *Tokenizer) SpecialID(name string) (int, bool) {
	id, ok := t.ids[name]
	return id, ok
}

// IsSpecial reports whether id is a special token of t.
func (t *Tokenizer) IsSpecial(id int) bool { return id >= NumBytes && id < t.VocabSize() }

// Encode returns one byte token per byte of s. Special-token names in s are
// ordinary text here; use EncodeSpecial to turn them into special tokens.
func (t *Tokenizer) Encode(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

// EncodeSpecial is Encode, except that the names of t's special tokens in s
// (such as "<bos>") become their special ids.
func (t *Tokenizer) EncodeSpecial(s string) []int {
	out := make([]int, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] == '<' {
			if j := strings.IndexByte(s[i:], '>'); j > 0 {
				if id, ok := t.ids[s[i:i+j+1]]; ok {
					out = append(out, id)
					i += j + 1
					continue
				}
			}
		}
		out = append(out, int(s[i]))
		i++
	}
	return out
}

// Decode turns ids back into text: byte tokens become their bytes and
// special tokens their names, so Decode(EncodeSpecial(s)) == s and
// Decode(Encode(s)) == s. An id outside the vocabulary is an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	return t.decode(ids, false)
}

// DecodeText is Decode without the special tokens: only the bytes.
func (t *Tokenizer) DecodeText(ids []int) (string, error) {
	return t.decode(ids, true)
}

func (t *Tokenizer) decode(ids []int, skipSpecial bool) (string, error) {
	var b strings.Builder
	b.Grow(len(ids))
	for i, id := range ids {
		switch {
		case id >= 0 && id < NumBytes:
			b.WriteByte(byte(id))
		case t.IsSpecial(id):
			if !skipSpecial {
				b.WriteString(t.specials[id-NumBytes])
			}
		default:
			return "", fmt.Errorf("tokenizer: token %d at position %d is outside the vocabulary of %d", id, i, t.VocabSize())
		}
	}
	return b.String(), nil
}

// Token returns the text of one token: its byte or its special name.
func (t *Tokenizer) Token(id int) (string, error) {
	return t.Decode([]int{id})
}
