package parallel

import (
	"sync/atomic"
	"testing"
)

func TestForCoversRange(t *testing.T) {
	tests := []struct{ n, grain, threads int }{
		{0, 1, 2}, {1, 1, 2}, {7, 1, 2}, {100, 10, 3}, {1000, 1, 8}, {5, 100, 4},
	}
	for _, tc := range tests {
		prev := SetThreads(tc.threads)
		seen := make([]atomic.Int32, tc.n)
		For(tc.n, tc.grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		SetThreads(prev)
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("n=%d grain=%d threads=%d: index %d visited %d times", tc.n, tc.grain, tc.threads, i, c)
			}
		}
	}
}

// Nested parallel loops with more threads than workers must not deadlock.
func TestNestedDoesNotDeadlock(t *testing.T) {
	prev := SetThreads(16)
	defer SetThreads(prev)
	var total atomic.Int64
	For(64, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			For(64, 1, func(lo2, hi2 int) {
				For(8, 1, func(a, b int) { total.Add(int64(b - a)) })
				_ = lo2
				_ = hi2
			})
		}
	})
	if got, want := total.Load(), int64(64*16*8); got != want {
		// Each outer index runs 16 middle ranges (64 items over 16 threads),
		// each of which runs all 8 inner items.
		t.Fatalf("inner work %d, want %d", got, want)
	}
}
