package optim

import (
	"sort"

	"tessera/internal/parallel"
)

// grain is the fewest elements a worker takes: below it the fork costs more
// than the update.
const grain = 1 << 14

// forEachRange calls fn(i, lo, hi) on ranges [lo, hi) of item i, covering
// every element of every item once, in parallel over the concatenation of
// all items so that one huge tensor and many small ones both spread over
// the workers. sizes[i] is item i's element count.
func forEachRange(sizes []int, fn func(i, lo, hi int)) {
	offs := make([]int, len(sizes)+1)
	for i, n := range sizes {
		offs[i+1] = offs[i] + n
	}
	total := offs[len(sizes)]
	parallel.For(total, grain, func(lo, hi int) {
		// First item whose end is past lo.
		i := sort.Search(len(sizes), func(i int) bool { return offs[i+1] > lo })
		for ; i < len(sizes) && offs[i] < hi; i++ {
			a := max(lo, offs[i]) - offs[i]
			b := min(hi, offs[i+1]) - offs[i]
			if a < b {
				fn(i, a, b)
			}
		}
	})
}
