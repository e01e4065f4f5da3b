// Package bench measures Tessera against its PyTorch peer on the same
// machine. Every comparison interleaves the two (Tessera, peer, Tessera,
// peer, …) and keeps the best time of each, so that the reported ratio comes
// from one run under the same machine load.
package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"tessera/internal/parallel"
)

// Shape is a GEMM problem: C[M×N] = A[M×K]·B[K×N].
type Shape struct{ M, N, K int }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.M, s.N, s.K) }

// FLOPs is the multiply-add count times two.
func (s Shape) FLOPs() float64 { return 2 * float64(s.M) * float64(s.N) * float64(s.K) }

// ParseShapes reads a comma-separated list of MxNxK shapes.
func ParseShapes(list string) ([]Shape, error) {
	var out []Shape
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, "x")
		if len(parts) != 3 {
			return nil, fmt.Errorf("shape %q: want MxNxK", f)
		}
		var d [3]int
		for i, p := range parts {
			v, err := strconv.Atoi(p)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("shape %q: dimension %q is not a positive integer", f, p)
			}
			d[i] = v
		}
		out = append(out, Shape{d[0], d[1], d[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no shapes given")
	}
	return out, nil
}

// best runs fn repeatedly for at least minTime (and at least minReps
// times) after two warm-up calls and returns the fastest call.
func best(fn func(), minTime time.Duration, minReps int) (time.Duration, int) {
	fn()
	fn()
	b := time.Duration(1<<63 - 1)
	reps := 0
	end := time.Now().Add(minTime)
	for time.Now().Before(end) || reps < minReps {
		t0 := time.Now()
		fn()
		if d := time.Since(t0); d < b {
			b = d
		}
		reps++
	}
	return b, reps
}

// withThreads runs fn with the worker pool set to n threads (n < 1 keeps
// the current setting).
func withThreads(n int, fn func()) {
	if n >= 1 {
		prev := parallel.SetThreads(n)
		defer parallel.SetThreads(prev)
	}
	fn()
}
