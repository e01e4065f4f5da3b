package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The emoji splits. Train and HeldOut partition the emoji (not the images):
// both styles of a held-out emoji are held out.
const (
	HeldOut  Split = "heldout"
	AllEmoji Split = "all"
)

// EmojiHeldOutPercent is the share of emoji held out from training.
const EmojiHeldOutPercent = 5

// EmojiStyles are the image sets read, each a folder of 64×64 RGBA PNGs
// named by emoji.json's "image" field. Both are training examples.
var EmojiStyles = []string{"twitter-64", "google-64"}

// Emoji is one emoji's caption material, from emoji-datasource's emoji.json
// joined with emojilib's keywords on the emoji character.
type Emoji struct {
	Unified     string   // code points, e.g. "1F600"
	Char        string   // the emoji itself
	Name        string   // lower case, e.g. "grinning face"
	ShortNames  []string // with spaces for underscores, e.g. "grinning"
	Category    string   // lower case, e.g. "smileys & emotion"
	Subcategory string   // with spaces for hyphens, e.g. "face smiling"
	Keywords    []string // emojilib keywords, underscores as spaces, without duplicates of Name
}

// EmojiSet is one split of the emoji images: every kept emoji in both
// styles, alpha-composited on white and box-filtered to Size×Size, as
// [3, Size, Size] values in [-1, 1].
//
// Skin-tone variants are skipped: their captions would differ only by a
// tone word, and they would multiply the people emoji ~6× against the
// rest. Only emoji with an image in every style are kept.
type EmojiSet struct {
	Size   int
	Emoji  []Emoji     // the split's emoji
	Pixels [][]float32 // image i: 3·Size·Size values, channel-major
	Of     []int       // image i shows Emoji[Of[i]]
	Style  []string    // image i's style folder
}

// EmojiDir finds the emoji data folder: dir if given, else $TESSERA_EMOJI,
// else ../shared/data/emoji relative to the working directory or one of its
// parents.
func EmojiDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("TESSERA_EMOJI")
	}
	if dir != "" {
		if !emojiOK(dir) {
			return "", fmt.Errorf("emoji data: %s has no emoji.json", dir)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("emoji data: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, "..", "shared", "data", "emoji")
		if emojiOK(c) {
			return c, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", errors.New("emoji data not found (looked for ../shared/data/emoji from the working directory up); pass --data or set TESSERA_EMOJI")
}

func emojiOK(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "emoji.json"))
	return err == nil
}

// LoadEmoji reads a split (Train, HeldOut or AllEmoji) of the emoji data
// in dir (see EmojiDir for the default) at size×size pixels; size must
// divide 64.
func LoadEmoji(dir string, split Split, size int) (*EmojiSet, error) {
	if size < 1 || 64%size != 0 {
		return nil, fmt.Errorf("emoji data: size %d does not divide 64", size)
	}
	if split != Train && split != HeldOut && split != AllEmoji {
		return nil, fmt.Errorf("emoji data: unknown split %q (want %q, %q or %q)", split, Train, HeldOut, AllEmoji)
	}
	dir, err := EmojiDir(dir)
	if err != nil {
		return nil, err
	}
	all, images, err := readEmojiCaptions(dir)
	if err != nil {
		return nil, err
	}
	held := emojiHeldOut(all)
	set := &EmojiSet{Size: size}
	var files []string
	for i, e := range all {
		if split != AllEmoji && held[e.Unified] != (split == HeldOut) {
			continue
		}
		k := len(set.Emoji)
		set.Emoji = append(set.Emoji, e)
		for _, style := range EmojiStyles {
			files = append(files, filepath.Join(dir, style, images[i]))
			set.Of = append(set.Of, k)
			set.Style = append(set.Style, style)
		}
	}
	set.Pixels = make([][]float32, len(files))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			set.Pixels[i], errs[i] = readEmojiPNG(f, size)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("emoji data: %w", err)
	}
	return set, nil
}

// readEmojiCaptions parses emoji.json and emojilib and returns the emoji
// with images in every style, in emoji.json's order, and their file names.
func readEmojiCaptions(dir string) ([]Emoji, []string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "emoji.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("emoji data: %w", err)
	}
	var entries []struct {
		Name        string   `json:"name"`
		Unified     string   `json:"unified"`
		Image       string   `json:"image"`
		ShortNames  []string `json:"short_names"`
		Category    string   `json:"category"`
		Subcategory string   `json:"subcategory"`
		HasTwitter  bool     `json:"has_img_twitter"`
		HasGoogle   bool     `json:"has_img_google"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, nil, fmt.Errorf("emoji data: emoji.json: %w", err)
	}
	lib := map[string][]string{}
	if raw, err := os.ReadFile(filepath.Join(dir, "emojilib-en-US.json")); err == nil {
		if err := json.Unmarshal(raw, &lib); err != nil {
			return nil, nil, fmt.Errorf("emoji data: emojilib-en-US.json: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("emoji data: %w", err)
	}
	var out []Emoji
	var images []string
	for _, e := range entries {
		if !e.HasTwitter || !e.HasGoogle || e.Image == "" || e.Name == "" {
			continue
		}
		ch, err := emojiChar(e.Unified)
		if err != nil {
			return nil, nil, fmt.Errorf("emoji data: %s: %w", e.Name, err)
		}
		em := Emoji{Unified: e.Unified, Char: ch, Name: strings.ToLower(e.Name),
			Category: strings.ToLower(e.Category), Subcategory: strings.ReplaceAll(strings.ToLower(e.Subcategory), "-", " ")}
		seen := map[string]bool{em.Name: true}
		for _, s := range e.ShortNames {
			s = strings.ReplaceAll(s, "_", " ")
			if !seen[s] {
				seen[s] = true
				em.ShortNames = append(em.ShortNames, s)
			}
		}
		kws, ok := lib[ch]
		if !ok {
			kws = lib[strings.ReplaceAll(ch, "\ufe0f", "")]
		}
		for _, k := range kws {
			k = strings.ToLower(strings.ReplaceAll(k, "_", " "))
			if !seen[k] {
				seen[k] = true
				em.Keywords = append(em.Keywords, k)
			}
		}
		out = append(out, em)
		images = append(images, e.Image)
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("emoji data: %s/emoji.json lists no emoji with images", dir)
	}
	return out, images, nil
}

// emojiChar builds the emoji character from code points like "1F469-200D-1F4BB".
func emojiChar(unified string) (string, error) {
	var b strings.Builder
	for _, h := range strings.Split(unified, "-") {
		r, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return "", fmt.Errorf("bad code point %q in %q", h, unified)
		}
		b.WriteRune(rune(r))
	}
	return b.String(), nil
}

// emojiHeldOut picks the held-out emoji: the EmojiHeldOutPercent of emoji
// (rounded up) whose FNV-1a hash of the code points is smallest, a
// deterministic choice spread over all categories.
func emojiHeldOut(all []Emoji) map[string]bool {
	type kv struct {
		h uint64
		u string
	}
	hs := make([]kv, len(all))
	for i, e := range all {
		f := fnv.New64a()
		f.Write([]byte("tessera-emoji-split/" + e.Unified))
		hs[i] = kv{f.Sum64(), e.Unified}
	}
	sort.Slice(hs, func(a, b int) bool { return hs[a].h < hs[b].h })
	n := (len(all)*EmojiHeldOutPercent + 99) / 100
	held := make(map[string]bool, n)
	for _, x := range hs[:n] {
		held[x.u] = true
	}
	return held
}

// readEmojiPNG decodes an RGBA PNG, composites it on white and box-filters
// it to size×size, returning [3, size, size] values in [-1, 1].
func readEmojiPNG(path string, size int) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() || b.Dx()%size != 0 {
		return nil, fmt.Errorf("%s: %dx%d image does not box-filter to %dx%d", path, b.Dx(), b.Dy(), size, size)
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Over) // alpha-composite on white
	k := b.Dx() / size
	out := make([]float32, 3*size*size)
	norm := float32(1) / float32(k*k*255)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var s [3]int
			for dy := 0; dy < k; dy++ {
				o := rgba.PixOffset(x*k, y*k+dy)
				for dx := 0; dx < k; dx++ {
					p := rgba.Pix[o+4*dx:]
					s[0] += int(p[0])
					s[1] += int(p[1])
					s[2] += int(p[2])
				}
			}
			for c := 0; c < 3; c++ {
				out[(c*size+y)*size+x] = 2*float32(s[c])*norm - 1
			}
		}
	}
	return out, nil
}

// Len is the number of images.
func (s *EmojiSet) Len() int { return len(s.Pixels) }

// Example copies image i ([3, Size, Size]) into dst.
func (s *EmojiSet) Example(i int, dst []float32) { copy(dst, s.Pixels[i]) }

// EmojiOf is the index in Emoji of the emoji image i shows.
func (s *EmojiSet) EmojiOf(i int) int { return s.Of[i] }

// Shape is [3, Size, Size].
func (s *EmojiSet) Shape() [3]int { return [3]int{3, s.Size, s.Size} }

// Prompt is emoji k's canonical caption, its name ("grinning face"): the
// prompt evaluation uses.
func (s *EmojiSet) Prompt(k int) string { return s.Emoji[k].Name }

// SpreadPrompts returns the names of count emoji spread evenly over the
// set (emoji ⌊L·i/count⌋ + ⌊L/(2·count)⌋ of the L, wrapping), a fixed
// calibration list that does not depend on which prompts are evaluated.
func (s *EmojiSet) SpreadPrompts(count int) []string {
	n := len(s.Emoji)
	if n == 0 || count <= 0 {
		return nil
	}
	out := make([]string, count)
	for i := range out {
		out[i] = s.Prompt((i*n/count + n/(2*count)) % n)
	}
	return out
}

// Captions lists every caption variant of emoji k: the name; each short
// name; "category: name"; "subcategory: name"; each keyword; and the name
// followed by up to three keywords.
func (e Emoji) Captions() []string {
	out := []string{e.Name}
	out = append(out, e.ShortNames...)
	out = append(out, e.Category+": "+e.Name, e.Subcategory+": "+e.Name)
	out = append(out, e.Keywords...)
	if len(e.Keywords) > 0 {
		out = append(out, e.Name+", "+strings.Join(e.Keywords[:min(3, len(e.Keywords))], ", "))
	}
	return out
}

// Caption is a caption of image i for one draw: a variant of its emoji's
// captions chosen by a hash of (i, draw), so a training run that numbers
// its draws sees the same captions when repeated. Half the draws give the
// name itself, the prompt users most likely type; the rest spread evenly
// over the other variants.
func (s *EmojiSet) Caption(i int, draw uint64) string {
	e := s.Emoji[s.Of[i]]
	h := mix64(uint64(i)*0x9E3779B97F4A7C15 ^ draw)
	if h&1 == 0 {
		return e.Name
	}
	c := e.Captions()
	return c[int((h>>1)%uint64(len(c)))]
}

// mix64 is SplitMix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}
