package corpus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"tessera/tokenizer"
)

// DefaultTextDir is where the shared text data sets live, relative to the
// repository root.
const DefaultTextDir = "../shared/data/text"

// ShakespeareFile is the file name of tinyshakespeare in the text folder.
const ShakespeareFile = "tinyshakespeare.txt"

// ErrNoData reports that a data set is not on this machine.
var ErrNoData = errors.New("corpus: data set not found")

// Text is a plain-text corpus tokenised byte by byte, split into a
// training part (the first 90%) and a validation part (the rest).
type Text struct {
	Train, Valid []int
}

// LoadShakespeare reads tinyshakespeare.txt from dir (DefaultTextDir when
// empty, also tried relative to the parent folders, so tests in
// subpackages find it). The error wraps ErrNoData when the file is absent.
func LoadShakespeare(dir string) (*Text, error) {
	path, err := findText(dir, ShakespeareFile)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if len(raw) < 1024 {
		return nil, fmt.Errorf("corpus: %s has only %d bytes", path, len(raw))
	}
	ids := tokenizer.New().Encode(string(raw))
	cut := len(ids) * 9 / 10
	return &Text{Train: ids[:cut], Valid: ids[cut:]}, nil
}

func findText(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNoData, p, err)
		}
		return p, nil
	}
	rel := DefaultTextDir
	for range 4 {
		p := filepath.Join(rel, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		rel = filepath.Join("..", rel)
	}
	return "", fmt.Errorf("%w: %s not in %s (or its parents' copies); pass --data DIR", ErrNoData, name, DefaultTextDir)
}

// Windows draws rows random windows of n tokens from ids.
func Windows(r *rand.Rand, ids []int, rows, n int) [][]int {
	out := make([][]int, rows)
	for i := range out {
		s := r.IntN(len(ids) - n)
		out[i] = ids[s : s+n : s+n]
	}
	return out
}
