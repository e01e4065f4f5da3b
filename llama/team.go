package llama

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"tessera/internal/parallel"
)

// team runs the small, frequent parallel loops of batch-1 decoding: a
// decoded token issues a few dozen loops of a few microseconds each, where
// waking a parked goroutine per loop would cost as much as the loop. The
// team's helpers spin between loops while decoding is under way and park
// after a while without work.
//
// Work is handed out in chunks that whoever is free claims, the caller
// included, so a helper the OS has descheduled delays a loop by at most
// the chunk it holds, and a loop runs entirely on the caller when no
// helper shows up. The claim counter, the chunk count and a generation
// live in one atomic word, so a claim made on a finished loop fails.
type team struct {
	mu sync.Mutex // held by the one cache using the team

	// work is gen<<32 | chunks<<16 | next: the loop's generation, its
	// number of chunks and the next chunk to claim.
	work atomic.Uint64
	done atomic.Int64 // chunks of the current loop finished

	// The current loop, written only while no chunk of a previous loop is
	// claimable or running, and read after a successful claim.
	fn      func(lo, hi int)
	n, unit int

	helpers []*helper

	// A step in which the caller waited more than stallTime for a helper
	// (the machine has fewer free cores than the team has threads) makes
	// the next backoffSteps steps run on the caller alone, long enough
	// for the helpers to park.
	stalled bool
	backoff int

	// resting tells helpers without work to park at once rather than
	// spin: set by a caller whose next loops are far off (see rest).
	resting atomic.Bool

	// sleeping is set by a caller that stopped spinning for the last
	// chunks of its loop; it waits on woken.
	sleeping atomic.Bool
	woken    chan struct{}
}

// helper is one spinning worker of the team.
type helper struct {
	parked atomic.Bool
	wake   chan struct{}
}

// Spin limits: a helper parks after helperSpin without work (far longer
// than the gaps between the loops of a step, or between the steps of a
// generation; short enough not to get in the way of other work, such as
// the next prompt's batched prefill), a caller waiting for chunks held by
// helpers sleeps after spinning for callerSpin (more than a chunk of the
// largest matrices takes unless the helper's thread was descheduled), and
// spinners yield the processor every yieldEvery polls.
const (
	helperSpin = 100 * time.Microsecond
	callerSpin = 200 * time.Microsecond
	yieldEvery = 64
)

// Stall detection: see team.stalled.
const (
	stallTime    = 500 * time.Microsecond
	backoffSteps = 64
)

// maxChunks bounds the chunks of one loop (the field is 16 bits wide).
const maxChunks = 1<<16 - 1

// decodeTeam is shared by every cache: the machine has only so many cores,
// and a cache that finds it busy runs on its own goroutine.
var decodeTeam = team{woken: make(chan struct{}, 1)}

// acquire reserves the team for one decode step and returns how many
// threads (the caller included) take part, or 0 when another cache holds
// the team; release must follow a non-zero acquire.
func (t *team) acquire() int {
	want := min(parallel.Threads(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	if want <= 1 || !t.mu.TryLock() {
		return 0
	}
	if t.backoff > 0 {
		t.backoff--
		return 1
	}
	for len(t.helpers) < want-1 {
		h := &helper{wake: make(chan struct{}, 1)}
		t.helpers = append(t.helpers, h)
		go t.loop(h)
	}
	return want
}

func (t *team) release() {
	if t.stalled {
		t.stalled, t.backoff = false, backoffSteps
	}
	t.mu.Unlock()
}

// run calls fn on chunks covering [0, n), each a multiple of unit long
// (the last excepted), and returns when all have run. chunks <= 1 runs
// fn(0, n) on the caller.
func (t *team) run(n, unit, chunks int, fn func(lo, hi int)) {
	units := (n + unit - 1) / unit
	chunks = min(chunks, units, maxChunks)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	t.fn, t.n, t.unit = fn, n, unit
	t.resting.Store(false)
	t.done.Store(0)
	gen := t.work.Load()>>32 + 1
	t.work.Store(gen<<32 | uint64(chunks)<<16)
	for _, h := range t.helpers {
		if h.parked.Load() && h.parked.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
	for t.claim() {
	}
	var start time.Time
	for spins := 1; t.done.Load() < int64(chunks); spins++ {
		if spins%yieldEvery != 0 {
			continue
		}
		runtime.Gosched()
		if start.IsZero() {
			start = time.Now()
			continue
		}
		if time.Since(start) > callerSpin {
			// A helper holding a chunk is not running (a loaded machine):
			// sleep so that its thread can have this core.
			t0 := time.Now()
			t.sleeping.Store(true)
			if t.done.Load() < int64(chunks) || !t.sleeping.CompareAndSwap(true, false) {
				<-t.woken // the helper finishing the last chunk clears sleeping and sends once
			}
			if time.Since(t0) > stallTime {
				t.stalled = true
			}
			break
		}
	}
	t.fn = nil
}

// claim runs one chunk of the current loop if one is left and reports
// whether it did.
func (t *team) claim() bool {
	for {
		w := t.work.Load()
		next, chunks := w&0xffff, w>>16&0xffff
		if next >= chunks {
			return false
		}
		if !t.work.CompareAndSwap(w, w+1) {
			continue
		}
		units := (t.n + t.unit - 1) / t.unit
		c, k := int(next), int(chunks)
		lo, hi := units*c/k*t.unit, min(units*(c+1)/k*t.unit, t.n)
		t.fn(lo, hi)
		if t.done.Add(1) == int64(k) && t.sleeping.Load() && t.sleeping.CompareAndSwap(true, false) {
			t.woken <- struct{}{}
		}
		return true
	}
}

// loop is a helper's life: claim chunks, spin while there are none, park
// when none come for a while.
func (t *team) loop(h *helper) {
	var idle time.Time // when the helper last found no work, checked every yieldEvery polls
	for spins := 0; ; {
		if t.claim() {
			spins, idle = 0, time.Time{}
			continue
		}
		spins++
		if spins%yieldEvery != 0 {
			continue
		}
		runtime.Gosched()
		if idle.IsZero() && !t.resting.Load() {
			idle = time.Now()
			continue
		}
		if !t.resting.Load() && time.Since(idle) < helperSpin {
			continue
		}
		spins, idle = 0, time.Time{}
		h.parked.Store(true)
		if t.claimable() && h.parked.CompareAndSwap(true, false) {
			continue // work arrived while parking
		}
		<-h.wake // the poster cleared parked and sends exactly once
	}
}

// rest makes the helpers park as soon as they run out of work, for a
// caller that holds the team and will not issue loops for a while (a
// batched pass followed by steps of another, smaller model).
func (t *team) rest() { t.resting.Store(true) }

// claimable reports whether the current loop has unclaimed chunks.
func (t *team) claimable() bool {
	w := t.work.Load()
	return w&0xffff < w>>16&0xffff
}
