package llama

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"tessera/internal/parallel"
)

// TestTeamRunCovers checks that a team loop calls fn on disjoint chunks
// that cover [0, n) exactly once and start on multiples of unit, whatever
// the number of threads.
func TestTeamRunCovers(t *testing.T) {
	cases := []struct{ n, unit, chunks int }{
		{1, 1, 8}, {7, 4, 8}, {256, 4, 8}, {1376, 4, 8}, {16, 32, 4}, {100, 1, 3}, {1000, 8, 1},
	}
	for _, threads := range []int{1, 2, 3} {
		defer parallel.SetThreads(parallel.SetThreads(threads))
		for _, c := range cases {
			t.Run(fmt.Sprintf("threads%d/n%d/unit%d/chunks%d", threads, c.n, c.unit, c.chunks), func(t *testing.T) {
				hits := make([]atomic.Int32, c.n)
				var bad atomic.Int32
				fn := func(lo, hi int) {
					if lo%c.unit != 0 || lo >= hi {
						bad.Add(1)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				}
				n := decodeTeam.acquire()
				for range 20 {
					if n > 0 {
						decodeTeam.run(c.n, c.unit, c.chunks, fn)
					} else {
						fn(0, c.n)
					}
				}
				if n > 0 {
					decodeTeam.release()
				}
				if bad.Load() != 0 {
					t.Fatalf("%d chunks were empty or started off a multiple of %d", bad.Load(), c.unit)
				}
				for i := range hits {
					if h := hits[i].Load(); h != 20 {
						t.Fatalf("index %d covered %d times in 20 loops", i, h)
					}
				}
			})
		}
	}
}

// TestDecodeThreadsAgree checks that decoding gives the same bits on one
// thread and on a team: chunks are cut on multiples of 4 rows and whole
// heads, which the kernels' results do not depend on.
func TestDecodeThreadsAgree(t *testing.T) {
	cfgs := []Config{
		{VocabSize: 96, HiddenSize: 64, IntermediateSize: 176, NumHiddenLayers: 2,
			NumAttentionHeads: 4, NumKeyValueHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000},
		// Heads of 6 rows, 9 of them in q|k|v: cut into chunks of single
		// heads, some would start off a multiple of 4 rows.
		{VocabSize: 50, HiddenSize: 42, IntermediateSize: 100, NumHiddenLayers: 2,
			NumAttentionHeads: 7, NumKeyValueHeads: 1, RMSNormEps: 1e-5, RopeTheta: 10000},
	}
	for _, cfg := range cfgs {
		decodeThreadsAgree(t, cfg)
	}
}

func decodeThreadsAgree(t *testing.T, cfg Config) {
	defer func(n int) { teamMinArena = n }(teamMinArena)
	teamMinArena = 0 // these small models would decode alone
	e := randomEngine(cfg, 4)
	decode := func(threads int) []float32 {
		defer parallel.SetThreads(parallel.SetThreads(threads))
		c := newCache(e, 40)
		logits, err := c.Prefill([]int{1, 2, 3, 4, 5})
		if err != nil {
			t.Fatal(err)
		}
		var all []float32
		for range 30 {
			if logits, err = c.Decode(Argmax(logits)); err != nil {
				t.Fatal(err)
			}
			all = append(all, logits...)
		}
		return all
	}
	one, two := decode(1), decode(2)
	if !slices.Equal(one, two) {
		t.Fatalf("head dim %d: decoded logits differ between 1 and 2 threads", cfg.HeadDim())
	}
}

// TestThreadChoice drives the probe-and-use cycle with synthetic step
// times and checks that the faster way is chosen and the cycle restarts.
func TestThreadChoice(t *testing.T) {
	cases := []struct {
		name        string
		team, alone time.Duration
		want        bool
	}{
		{"team faster", 100 * time.Microsecond, 200 * time.Microsecond, true},
		{"alone faster", 300 * time.Microsecond, 200 * time.Microsecond, false},
		{"within the margin", 199 * time.Microsecond, 200 * time.Microsecond, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tc threadChoice
			for cycle := 0; cycle < 2; cycle++ {
				for i := 0; i < 2*probeSteps+useSteps; i++ {
					useTeam, probe := tc.next()
					if wantProbe := i < 2*probeSteps; probe != wantProbe {
						t.Fatalf("cycle %d step %d: probe %v, want %v", cycle, i, probe, wantProbe)
					}
					if i >= 2*probeSteps && useTeam != c.want {
						t.Fatalf("cycle %d step %d: team %v, want %v", cycle, i, useTeam, c.want)
					}
					dt := c.alone
					if useTeam {
						dt = c.team
					}
					tc.done(useTeam, probe, dt)
				}
			}
		})
	}
}

// TestTeamRest checks that helpers told to rest park without spinning and
// still take part in the loops that follow.
func TestTeamRest(t *testing.T) {
	defer parallel.SetThreads(parallel.SetThreads(2))
	n := decodeTeam.acquire()
	if n == 0 {
		t.Skip("the decode team is busy")
	}
	defer decodeTeam.release()
	const size = 4096
	for round := range 5 {
		var hits [size]atomic.Int32
		decodeTeam.run(size, 4, 8, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("round %d: index %d covered %d times", round, i, h)
			}
		}
		decodeTeam.rest()
		if n < 2 {
			continue
		}
		deadline := time.Now().Add(time.Second)
		for !allParked() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: helpers still spinning after a rest", round)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func allParked() bool {
	for _, h := range decodeTeam.helpers {
		if !h.parked.Load() {
			return false
		}
	}
	return true
}
