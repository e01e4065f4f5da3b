package data

import (
	"strings"
	"testing"
)

func loadEmojiOrSkip(t *testing.T, split Split) *EmojiSet {
	t.Helper()
	if _, err := EmojiDir(""); err != nil {
		t.Skipf("skipping: %v", err)
	}
	s, err := LoadEmoji("", split, 32)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEmojiSplits(t *testing.T) {
	tr := loadEmojiOrSkip(t, Train)
	ho := loadEmojiOrSkip(t, HeldOut)
	n := len(tr.Emoji) + len(ho.Emoji)
	if want := (n*EmojiHeldOutPercent + 99) / 100; len(ho.Emoji) != want {
		t.Errorf("held out %d of %d emoji, want %d", len(ho.Emoji), n, want)
	}
	train := map[string]bool{}
	for _, e := range tr.Emoji {
		train[e.Unified] = true
	}
	for _, e := range ho.Emoji {
		if train[e.Unified] {
			t.Errorf("emoji %s (%s) is in both splits", e.Unified, e.Name)
		}
	}
	for _, s := range []*EmojiSet{tr, ho} {
		if s.Len() != len(EmojiStyles)*len(s.Emoji) {
			t.Errorf("%d images for %d emoji in %d styles", s.Len(), len(s.Emoji), len(EmojiStyles))
		}
		for i := range s.Pixels {
			if s.Style[i] != EmojiStyles[i%len(EmojiStyles)] || s.Of[i] != i/len(EmojiStyles) {
				t.Fatalf("image %d: style %s of emoji %d, want both styles of each emoji in turn", i, s.Style[i], s.Of[i])
			}
		}
	}
	again := loadEmojiOrSkip(t, HeldOut)
	for i, e := range again.Emoji {
		if e.Unified != ho.Emoji[i].Unified {
			t.Fatalf("held-out split is not deterministic: %s then %s", ho.Emoji[i].Unified, e.Unified)
		}
	}
}

func TestEmojiImages(t *testing.T) {
	s := loadEmojiOrSkip(t, AllEmoji)
	if got := s.Shape(); got != [3]int{3, 32, 32} {
		t.Fatalf("shape %v", got)
	}
	var corners, total float64
	for i, px := range s.Pixels {
		if len(px) != 3*32*32 {
			t.Fatalf("image %d has %d values", i, len(px))
		}
		for _, v := range px {
			if v < -1 || v > 1 {
				t.Fatalf("image %d: value %v outside [-1, 1]", i, v)
			}
		}
		// Transparent corners composite to white (1) in every channel.
		for c := 0; c < 3; c++ {
			corners += float64(px[c*1024])
		}
		total += 3
	}
	if mean := corners / total; mean < 0.9 {
		t.Errorf("mean top-left corner value %.3f, want near 1 (white background)", mean)
	}
}

func TestEmojiCaptions(t *testing.T) {
	s := loadEmojiOrSkip(t, AllEmoji)
	var grin int = -1
	for k, e := range s.Emoji {
		if e.Unified == "1F600" {
			grin = k
		}
	}
	if grin < 0 {
		t.Fatal("grinning face (1F600) missing")
	}
	e := s.Emoji[grin]
	if e.Name != "grinning face" || e.Char != "😀" || e.Category != "smileys & emotion" {
		t.Errorf("grinning face parsed as %+v", e)
	}
	if !strings.Contains(strings.Join(e.Keywords, "|"), "smile") {
		t.Errorf("emojilib keywords of 😀 missing: %v", e.Keywords)
	}
	img := 2 * grin
	seen := map[string]bool{}
	for d := uint64(0); d < 200; d++ {
		c := s.Caption(img, d)
		if c != s.Caption(img, d) {
			t.Fatal("caption draw is not deterministic")
		}
		seen[c] = true
	}
	if !seen[e.Name] || len(seen) < 5 {
		t.Errorf("200 draws gave %d distinct captions %v, want the name and several variants", len(seen), seen)
	}
	valid := map[string]bool{}
	for _, c := range e.Captions() {
		valid[c] = true
	}
	for c := range seen {
		if !valid[c] {
			t.Errorf("caption %q is not one of the variants", c)
		}
	}
}

func TestEmojiChar(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1F600", "😀"}, {"0023-FE0F-20E3", "#\ufe0f\u20e3"}, {"1F469-200D-1F4BB", "👩\u200d💻"},
	} {
		got, err := emojiChar(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("emojiChar(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := emojiChar("ZZ"); err == nil {
		t.Error("emojiChar accepted a bad code point")
	}
}

func TestSpreadPrompts(t *testing.T) {
	s := &EmojiSet{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		s.Emoji = append(s.Emoji, Emoji{Name: n})
	}
	for _, tc := range []struct {
		count int
		want  string
	}{{4, "bdfh"}, {2, "cg"}, {8, "abcdefgh"}, {0, ""}} {
		if got := strings.Join(s.SpreadPrompts(tc.count), ""); got != tc.want {
			t.Errorf("SpreadPrompts(%d) = %q, want %q", tc.count, got, tc.want)
		}
	}
}
