package llama

import (
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerOptions chooses how the next token is drawn from the logits. The
// transforms apply in the order of Hugging Face's generate: temperature,
// then top-k, then top-p.
type SamplerOptions struct {
	// Temperature divides the logits; 0 (the default) means greedy decoding
	// (argmax, ties broken towards the lower id).
	Temperature float32
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP (nucleus sampling); 0 or 1 keeps all.
	TopP float32
	// Seed makes sampling reproducible: the same seed and logits give the
	// same tokens.
	Seed uint64
}

// Sampler draws tokens from logits. It owns scratch buffers, so one Sampler
// must not be used from two goroutines at once.
type Sampler struct {
	opt   SamplerOptions
	rng   *rand.Rand
	probs []float32
	order []int32
}

// NewSampler returns a sampler with the given options.
func NewSampler(opt SamplerOptions) *Sampler {
	if opt.TopP <= 0 || opt.TopP > 1 {
		opt.TopP = 1
	}
	if opt.TopK < 0 {
		opt.TopK = 0
	}
	return &Sampler{opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x7e55e7a))}
}

// Options returns the sampler's options (after normalisation).
func (s *Sampler) Options() SamplerOptions { return s.opt }

// Greedy reports whether the sampler takes the argmax.
func (s *Sampler) Greedy() bool { return s.opt.Temperature <= 0 }

// Sample returns the next token for one row of logits.
func (s *Sampler) Sample(logits []float32) int {
	if s.Greedy() {
		return Argmax(logits)
	}
	return s.Draw(s.Distribution(nil, logits))
}

// Uniform returns a uniform random number in [0, 1) from the sampler's
// seeded stream (speculative decoding uses it for its acceptance tests).
func (s *Sampler) Uniform() float64 { return s.rng.Float64() }

// Distribution writes into dst (grown to len(logits) when too short; nil
// allocates a buffer owned by the sampler) the probabilities the sampler
// draws from: softmax(logits/T) restricted to the top-k and top-p sets and
// renormalised. For a greedy sampler it is one-hot on the argmax.
func (s *Sampler) Distribution(dst, logits []float32) []float32 {
	n := len(logits)
	if dst == nil {
		if cap(s.probs) < n {
			s.probs = make([]float32, n)
		}
		dst = s.probs[:n]
	} else if len(dst) < n {
		dst = slices.Grow(dst[:0], n)[:n]
	} else {
		dst = dst[:n]
	}
	if s.Greedy() {
		clear(dst)
		dst[Argmax(logits)] = 1
		return dst
	}
	inv := 1 / s.opt.Temperature
	m := float32(math.Inf(-1))
	for _, v := range logits {
		m = max(m, v)
	}
	var sum float64
	for i, v := range logits {
		e := float32(math.Exp(float64((v - m) * inv)))
		dst[i] = e
		sum += float64(e)
	}
	norm := float32(1 / sum)
	for i := range dst {
		dst[i] *= norm
	}
	k := s.opt.TopK
	if (k <= 0 || k >= n) && s.opt.TopP >= 1 {
		return dst
	}
	// Order ids by probability (descending, lower id first on ties) and
	// keep a prefix.
	if cap(s.order) < n {
		s.order = make([]int32, n)
	}
	order := s.order[:n]
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		pa, pb := dst[a], dst[b]
		switch {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return int(a - b)
	})
	keep := n
	if k > 0 && k < n {
		keep = k
	}
	if s.opt.TopP < 1 {
		var kept float64
		for i := 0; i < keep; i++ {
			kept += float64(dst[order[i]])
		}
		// Nucleus over the renormalised top-k set.
		var c float64
		for i := 0; i < keep; i++ {
			c += float64(dst[order[i]]) / kept
			if c >= float64(s.opt.TopP) {
				keep = i + 1
				break
			}
		}
	}
	var kept float64
	for _, id := range order[:keep] {
		kept += float64(dst[id])
	}
	for _, id := range order[keep:] {
		dst[id] = 0
	}
	norm = float32(1 / kept)
	for _, id := range order[:keep] {
		dst[id] *= norm
	}
	return dst
}

// Draw samples an id from probs (non-negative weights, not necessarily
// normalised) with the sampler's random stream.
func (s *Sampler) Draw(probs []float32) int {
	var total float64
	for _, p := range probs {
		total += float64(p)
	}
	u := s.rng.Float64() * total
	last := -1
	var c float64
	for i, p := range probs {
		if p <= 0 {
			continue
		}
		c += float64(p)
		last = i
		if u < c {
			return i
		}
	}
	if last < 0 {
		return 0
	}
	return last // rounding left u just above the running sum
}

// Argmax returns the index of the largest value (the first one on ties).
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
