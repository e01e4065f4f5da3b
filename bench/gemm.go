package bench

import (
	"time"

	"math/rand/v2"

	"tessera/internal/gemm"
	"tessera/internal/simd"
)

// GEMMResult is one shape's throughput, Tessera's and (when measured) the
// peer's, with their ratio.
type GEMMResult struct {
	Shape         string  `json:"shape"`
	Threads       int     `json:"threads"`
	Kernel        string  `json:"kernel"`
	GFLOPS        float64 `json:"gflops"`
	PeerGFLOPS    float64 `json:"peer_gflops,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Rounds        int     `json:"rounds"`
	PeerAvailable bool    `json:"peer_available"`
}

// GEMMOptions configures GEMM.
type GEMMOptions struct {
	Shapes  []Shape
	Threads int           // worker threads (and the peer's torch threads)
	Time    time.Duration // minimum time per measurement
	Rounds  int           // interleaved Tessera/peer rounds
	Peer    *Peer         // nil: Tessera only
}

// GEMM measures SGEMM throughput for each shape, interleaved with the peer's
// torch.mm when a peer is given, keeping the best of every round.
func GEMM(o GEMMOptions) ([]GEMMResult, error) {
	if o.Rounds < 1 {
		o.Rounds = 1
	}
	if o.Time <= 0 {
		o.Time = 500 * time.Millisecond
	}
	var out []GEMMResult
	for _, s := range o.Shapes {
		a, b := randomSlice(s.M*s.K, 1), randomSlice(s.K*s.N, 2)
		c := make([]float32, s.M*s.N)
		r := GEMMResult{Shape: s.String(), Threads: o.Threads, Kernel: simd.Current().String(), Rounds: o.Rounds}
		var bestT time.Duration = 1<<63 - 1
		for round := 0; round < o.Rounds; round++ {
			withThreads(o.Threads, func() {
				d, _ := best(func() { gemm.Sgemm(false, false, s.M, s.N, s.K, 1, a, s.K, b, s.N, 0, c, s.N) }, o.Time, 5)
				if d < bestT {
					bestT = d
				}
			})
			if o.Peer != nil {
				g, err := o.Peer.GEMM(s, o.Threads, o.Time)
				if err != nil {
					return nil, err
				}
				r.PeerAvailable = true
				if g > r.PeerGFLOPS {
					r.PeerGFLOPS = g
				}
			}
		}
		r.GFLOPS = s.FLOPs() / bestT.Seconds() / 1e9
		if r.PeerGFLOPS > 0 {
			r.Ratio = r.GFLOPS / r.PeerGFLOPS
		}
		out = append(out, r)
	}
	return out, nil
}

func randomSlice(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}
