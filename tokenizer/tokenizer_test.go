package tokenizer

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tok := New()
	tests := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"ascii", "A: 37+48 = 85"},
		{"utf8", "héllo, 世界 🙂"},
		{"invalid utf8", "\xff\xfe\x00abc\x80"},
		{"every byte", func() string {
			var b strings.Builder
			for i := 0; i < 256; i++ {
				b.WriteByte(byte(i))
			}
			return b.String()
		}()},
		{"special names as text", "<bos>hi<eos>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := tok.Encode(tc.text)
			if len(ids) != len(tc.text) {
				t.Fatalf("Encode gave %d tokens for %d bytes", len(ids), len(tc.text))
			}
			for _, id := range ids {
				if tok.IsSpecial(id) {
					t.Fatalf("Encode produced special token %d", id)
				}
			}
			got, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.text {
				t.Fatalf("round trip: got %q, want %q", got, tc.text)
			}
		})
	}
}

func TestSpecials(t *testing.T) {
	tok := New()
	if got, want := tok.VocabSize(), 256+3+DefaultReserved; got != want {
		t.Fatalf("VocabSize = %d, want %d", got, want)
	}
	for name, want := range map[string]int{"<bos>": BOS, "<eos>": EOS, "<pad>": Pad, "<reserved_0>": 259} {
		if id, ok := tok.SpecialID(name); !ok || id != want {
			t.Errorf("SpecialID(%q) = %d, %v; want %d", name, id, ok, want)
		}
	}
	tests := []struct {
		text string
		want []int
	}{
		{"<bos>ab<eos>", []int{BOS, 'a', 'b', EOS}},
		{"<unknown>", []int{'<', 'u', 'n', 'k', 'n', 'o', 'w', 'n', '>'}},
		{"a<pad", []int{'a', '<', 'p', 'a', 'd'}},
		{"<<bos>>", []int{'<', BOS, '>'}},
	}
	for _, tc := range tests {
		ids := tok.EncodeSpecial(tc.text)
		if len(ids) != len(tc.want) {
			t.Fatalf("EncodeSpecial(%q) = %v, want %v", tc.text, ids, tc.want)
		}
		for i := range ids {
			if ids[i] != tc.want[i] {
				t.Fatalf("EncodeSpecial(%q) = %v, want %v", tc.text, ids, tc.want)
			}
		}
		back, err := tok.Decode(ids)
		if err != nil || back != tc.text {
			t.Fatalf("Decode(EncodeSpecial(%q)) = %q, %v", tc.text, back, err)
		}
	}
	text, err := tok.DecodeText([]int{BOS, 'h', 'i', EOS, Pad})
	if err != nil || text != "hi" {
		t.Fatalf("DecodeText = %q, %v; want \"hi\"", text, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tok := New()
	for _, ids := range [][]int{{-1}, {tok.VocabSize()}, {'a', 100000}} {
		if _, err := tok.Decode(ids); err == nil {
			t.Errorf("Decode(%v): want an error", ids)
		}
	}
}

func TestWithSpecialsValidation(t *testing.T) {
	tests := []struct {
		names []string
		ok    bool
	}{
		{[]string{"<a>", "<b>"}, true},
		{[]string{"<a>", "<a>"}, false},
		{[]string{"a"}, false},
		{[]string{"<>"}, false},
		{[]string{"<a<b>"}, false},
	}
	for _, tc := range tests {
		tok, err := WithSpecials(tc.names...)
		if (err == nil) != tc.ok {
			t.Errorf("WithSpecials(%v): err = %v, want ok=%v", tc.names, err, tc.ok)
		}
		if err == nil && tok.VocabSize() != 256+len(tc.names) {
			t.Errorf("WithSpecials(%v): VocabSize = %d", tc.names, tok.VocabSize())
		}
	}
}
