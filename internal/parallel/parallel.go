// Package parallel runs loops on a fixed pool of worker goroutines, sized by
// GOMAXPROCS unless SetThreads says otherwise.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// Threads is the number of workers loops are split across.
func Threads() int { return int(threads.Load()) }

// SetThreads sets the worker count (n < 1 means GOMAXPROCS) and returns the
// previous value.
func SetThreads(n int) int {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	return int(threads.Swap(int32(n)))
}

type task struct {
	fn     func(lo, hi int)
	lo, hi int
	join   *join
}

// join counts a Split's outstanding tasks and signals when none are left.
type join struct {
	left atomic.Int32
	done chan struct{}
}

func (j *join) finish() {
	if j.left.Add(-1) == 0 {
		close(j.done)
	}
}

func (t task) run() {
	t.fn(t.lo, t.hi)
	t.join.finish()
}

var (
	startOnce sync.Once
	queue     chan task
)

func start() {
	queue = make(chan task, 256)
	n := runtime.NumCPU()
	if n < 4 {
		n = 4
	}
	for i := 0; i < n; i++ {
		go func() {
			for t := range queue {
				t.run()
			}
		}()
	}
}

// For calls fn on disjoint ranges [lo, hi) covering [0, n), in parallel.
// Ranges hold at least grain items (grain < 1 means 1), so small loops run
// inline on the caller's goroutine. For returns when every call has.
// Calls may nest: a caller waiting for its ranges runs queued work itself,
// so the fixed pool cannot deadlock.
func For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	parts := Threads()
	if max := (n + grain - 1) / grain; parts > max {
		parts = max
	}
	if parts <= 1 {
		fn(0, n)
		return
	}
	Split(n, parts, fn)
}

// Split divides [0, n) into exactly parts contiguous ranges (some may be
// empty when parts > n) and runs them in parallel, the first on the caller.
func Split(n, parts int, fn func(lo, hi int)) {
	if parts <= 1 {
		fn(0, n)
		return
	}
	startOnce.Do(start)
	j := &join{done: make(chan struct{})}
	j.left.Store(int32(parts - 1))
	for p := 1; p < parts; p++ {
		t := task{fn: fn, lo: n * p / parts, hi: n * (p + 1) / parts, join: j}
		select {
		case queue <- t:
		default: // queue full: do it here rather than block
			t.run()
		}
	}
	fn(0, n/parts)
	for {
		select {
		case <-j.done:
			return
		case t := <-queue:
			t.run()
		}
	}
}
