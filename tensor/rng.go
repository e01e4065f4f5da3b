package tensor

import (
	"fmt"
	"math"
)

// RNG is a xoshiro256** generator seeded through SplitMix64. Its stream is
// fixed by the seed: the same on every run, machine and Go version (it uses
// only integer arithmetic; Normal uses float64 Box–Muller). It is not safe
// for concurrent use.
type RNG struct{ s [4]uint64 }

// NewRNG returns a generator whose stream is determined by seed.
func NewRNG(seed uint64) *RNG {
	r := &RNG{}
	x := seed
	for i := range r.s {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		r.s[i] = z ^ (z >> 31)
	}
	return r
}

// State returns the generator's full state, for exact checkpoint resume.
func (r *RNG) State() [4]uint64 { return r.s }

// SetState restores a state returned by State. An all-zero state (which
// xoshiro cannot leave) is rejected.
func (r *RNG) SetState(s [4]uint64) error {
	if s == ([4]uint64{}) {
		return fmt.Errorf("tensor.RNG.SetState: all-zero state")
	}
	r.s = s
	return nil
}

func rotl(x uint64, k uint) uint64 { return x<<k | x>>(64-k) }

// Uint64 returns the next 64 random bits.
func (r *RNG) Uint64() uint64 {
	s := &r.s
	out := rotl(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = rotl(s[3], 45)
	return out
}

// Float64 returns a uniform value in [0, 1) with 53 random bits.
func (r *RNG) Float64() float64 { return float64(r.Uint64()>>11) * (1.0 / (1 << 53)) }

// Intn returns a uniform integer in [0, n); n must be positive.
func (r *RNG) Intn(n int) int {
	if n <= 0 {
		panic(fmt.Sprintf("tensor.RNG.Intn: n = %d", n))
	}
	// Rejection sampling removes the modulo bias.
	un := uint64(n)
	limit := math.MaxUint64 - math.MaxUint64%un
	for {
		x := r.Uint64()
		if x < limit {
			return int(x % un)
		}
	}
}

// Perm returns a uniformly random permutation of [0, n) (Fisher–Yates).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// NormFloat64 returns one standard normal value (Box–Muller; the second
// value of the pair is discarded so that the state alone fixes the stream).
func (r *RNG) NormFloat64() float64 {
	a, _ := r.normPair()
	return a
}

func (r *RNG) normPair() (float64, float64) {
	u1 := 1 - r.Float64() // (0, 1]: log stays finite
	u2 := r.Float64()
	rad := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	return rad * c, rad * s
}

// Normal returns a tensor of standard normal values, filled pairwise in
// row-major order.
func (r *RNG) Normal(shape ...int) *Tensor {
	t := New(shape...)
	d := t.data
	for i := 0; i < len(d); i += 2 {
		a, b := r.normPair()
		d[i] = float32(a)
		if i+1 < len(d) {
			d[i+1] = float32(b)
		}
	}
	return t
}

// Uniform returns a tensor of values uniform in [lo, hi).
func (r *RNG) Uniform(lo, hi float32, shape ...int) *Tensor {
	t := New(shape...)
	w := float64(hi) - float64(lo)
	for i := range t.data {
		t.data[i] = float32(float64(lo) + w*r.Float64())
	}
	return t
}
