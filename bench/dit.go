package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"tessera/autodiff"
	"tessera/diffusion"
	"tessera/dit"
	"tessera/nn"
	"tessera/optim"
	"tessera/tensor"
)

// DiTOptions configures DiT.
type DiTOptions struct {
	Config  dit.Config    // model; zero value: dit.DefaultConfig()
	Batch   int           // train, forward and sampling batch (default 32)
	Steps   int           // Euler steps for sampling (default 32)
	Threads int           // worker threads, and the peer's torch threads (default 2)
	Rounds  int           // interleaved Tessera/peer rounds (default 1)
	Time    time.Duration // minimum time per Tessera measurement (default 1s)
	Peer    *Peer         // nil: Tessera only
	// NoSampling skips the (slow) sampling comparison: the peer then
	// samples a single step and its sampling time is not reported.
	NoSampling bool
}

// DiTResult is one comparison. Times are milliseconds; train step and
// forward are the best over repetitions and rounds on both sides, sampling
// is the median of the repetitions (the statistic the peer reports). A
// ratio below 1 means Tessera takes less time; SampleSpeedup is Tessera's
// images per second over the peer's.
type DiTResult struct {
	Config  dit.Config `json:"config"`
	Params  int        `json:"params"`
	Threads int        `json:"threads"`
	Batch   int        `json:"batch"`
	Steps   int        `json:"sample_steps"`

	TrainStepMS     float64 `json:"train_step_ms"`
	PeerTrainStepMS float64 `json:"peer_train_step_ms,omitempty"`
	TrainRatio      float64 `json:"train_step_ratio,omitempty"`

	ForwardMS     float64 `json:"forward_ms"`
	PeerForwardMS float64 `json:"peer_forward_ms,omitempty"`
	ForwardRatio  float64 `json:"forward_ratio,omitempty"`

	Forward1MS     float64 `json:"forward_batch1_ms"`
	PeerForward1MS float64 `json:"peer_forward_batch1_ms,omitempty"`
	Forward1Ratio  float64 `json:"forward_batch1_ratio,omitempty"`

	SampleMSPerImage     float64 `json:"sample_ms_per_image,omitempty"`
	PeerSampleMSPerImage float64 `json:"peer_sample_ms_per_image,omitempty"`
	SampleSpeedup        float64 `json:"sample_speedup,omitempty"`
	// The same sampling with bfloat16 products (nn.BF16), measured where
	// the CPU has native bfloat16 dot products; the peer stays float32.
	SampleBF16MSPerImage float64 `json:"sample_bf16_ms_per_image,omitempty"`
	SampleBF16Speedup    float64 `json:"sample_bf16_speedup,omitempty"`

	Rounds        int  `json:"rounds"`
	PeerAvailable bool `json:"peer_available"`
}

// DiT measures Tessera's DiT against the PyTorch peer (dit.py bench): a
// training step (flow-matching loss, backward, AdamW) and a forward pass at
// the batch size, a forward pass at batch 1, and Euler sampling with
// classifier-free guidance (scale 2, conditional and unconditional batched)
// at the batch size. Tessera and the peer alternate round by round.
func DiT(o DiTOptions) (*DiTResult, error) {
	if o.Config == (dit.Config{}) {
		o.Config = dit.DefaultConfig()
	}
	o.Batch = cmpOr(o.Batch, 32)
	o.Steps = cmpOr(o.Steps, 32)
	o.Threads = cmpOr(o.Threads, 2)
	o.Rounds = cmpOr(o.Rounds, 1)
	if o.Time <= 0 {
		o.Time = time.Second
	}
	b := newDiTBench(o)
	if err := b.setup(); err != nil {
		return nil, err
	}
	r := &DiTResult{Config: b.m.Config, Params: nn.NumParams(b.m), Threads: o.Threads, Batch: o.Batch,
		Steps: o.Steps, Rounds: o.Rounds}
	var cfgPath string
	if o.Peer != nil {
		dir, err := os.MkdirTemp("", "tessera-bench-dit-")
		if err != nil {
			return nil, fmt.Errorf("bench dit: %w", err)
		}
		defer os.RemoveAll(dir)
		cfgPath = filepath.Join(dir, "config.json")
		raw, _ := json.Marshal(b.m.Config)
		if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
			return nil, fmt.Errorf("bench dit: %w", err)
		}
	}
	minPos := func(cur, v float64) float64 {
		if cur == 0 || v < cur {
			return v
		}
		return cur
	}
	for round := 0; round < o.Rounds; round++ {
		var err error
		withThreads(o.Threads, func() {
			var d time.Duration
			if d, err = b.bestOf(b.trainStep); err != nil {
				return
			}
			r.TrainStepMS = minPos(r.TrainStepMS, ms(d))
			if d, err = b.bestOf(func() error { return b.forward(b.x, b.t, b.y) }); err != nil {
				return
			}
			r.ForwardMS = minPos(r.ForwardMS, ms(d))
			if d, err = b.bestOf(func() error { return b.forward(b.x1, b.t[:1], b.y[:1]) }); err != nil {
				return
			}
			r.Forward1MS = minPos(r.Forward1MS, ms(d))
			if o.NoSampling {
				return
			}
			var per float64
			if per, err = b.sampleMSPerImage(); err != nil {
				return
			}
			r.SampleMSPerImage = minPos(r.SampleMSPerImage, per)
			if !tensor.BF16Native() {
				return
			}
			nn.SetPrecision(b.m, nn.BF16)
			per, err = b.sampleMSPerImage()
			nn.SetPrecision(b.m, nn.F32)
			if err != nil {
				return
			}
			r.SampleBF16MSPerImage = minPos(r.SampleBF16MSPerImage, per)
		})
		if err != nil {
			return nil, fmt.Errorf("bench dit: %w", err)
		}
		if o.Peer == nil {
			continue
		}
		steps := o.Steps
		if o.NoSampling {
			steps = 1
		}
		big, err := o.Peer.ditBench(cfgPath, o.Batch, steps, o.Threads, 8)
		if err != nil {
			return nil, err
		}
		one, err := o.Peer.ditBench(cfgPath, 1, 1, o.Threads, 8)
		if err != nil {
			return nil, err
		}
		r.PeerAvailable = true
		r.PeerTrainStepMS = minPos(r.PeerTrainStepMS, big.TrainBest)
		r.PeerForwardMS = minPos(r.PeerForwardMS, big.ForwardBest)
		r.PeerForward1MS = minPos(r.PeerForward1MS, one.ForwardBest)
		if !o.NoSampling {
			r.PeerSampleMSPerImage = minPos(r.PeerSampleMSPerImage, big.SampleMSPerImage)
		}
	}
	if r.PeerAvailable {
		r.TrainRatio = r.TrainStepMS / r.PeerTrainStepMS
		r.ForwardRatio = r.ForwardMS / r.PeerForwardMS
		r.Forward1Ratio = r.Forward1MS / r.PeerForward1MS
		if !o.NoSampling {
			r.SampleSpeedup = r.PeerSampleMSPerImage / r.SampleMSPerImage
			if r.SampleBF16MSPerImage > 0 {
				r.SampleBF16Speedup = r.PeerSampleMSPerImage / r.SampleBF16MSPerImage
			}
		}
	}
	return r, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// ditBench is the Tessera side: a model, an optimiser and fixed inputs.
type ditBench struct {
	o      DiTOptions
	m      *dit.Model
	opt    *optim.AdamW
	rng    *tensor.RNG
	x, x1  *tensor.Tensor
	t      []float32
	y      []int
	params []*autodiff.Var
}

func newDiTBench(o DiTOptions) *ditBench { return &ditBench{o: o} }

func (b *ditBench) setup() error {
	cfg := b.o.Config
	m, err := dit.New(cfg, tensor.NewRNG(0))
	if err != nil {
		return fmt.Errorf("bench dit: %w", err)
	}
	// Random (not zero) adaLN and output weights, so no kernel sees the
	// all-zero inputs of a fresh adaLN-Zero model.
	rng := tensor.NewRNG(1)
	for _, p := range nn.Params(m) {
		if p.RequiresGrad() {
			nn.Normal(rng, p.Value, 0.02)
		}
	}
	b.m, b.rng = m, rng
	b.params = nn.Trainable(m)
	b.opt = optim.NewAdamW(b.params, optim.AdamWConfig{LR: 1e-4})
	s := cfg.InputSize
	b.x = rng.Normal(b.o.Batch, cfg.InChannels, s, s)
	b.x1 = b.x.Slice(0, 0, 1).Contiguous()
	b.t = make([]float32, b.o.Batch)
	b.y = make([]int, b.o.Batch)
	for i := range b.t {
		b.t[i] = 500
		b.y[i] = i % max(cfg.NumClasses, 1)
	}
	return nil
}

// bestOf runs fn for at least o.Time (and 3 times) after two warm-ups and
// returns the fastest call.
func (b *ditBench) bestOf(fn func() error) (time.Duration, error) {
	var err error
	d, _ := best(func() {
		if e := fn(); e != nil && err == nil {
			err = e
		}
	}, b.o.Time, 3)
	return d, err
}

func (b *ditBench) trainStep() error {
	g := autodiff.NewGraph()
	defer g.Release()
	loss, err := diffusion.Loss(g, b.m, b.x, b.y, b.rng)
	if err != nil {
		return err
	}
	b.opt.ZeroGrad()
	if err := g.Backward(loss); err != nil {
		return err
	}
	b.opt.Step()
	return nil
}

func (b *ditBench) forward(x *tensor.Tensor, t []float32, y []int) error {
	g := autodiff.NoGrad()
	defer g.Release()
	b.m.Forward(g, autodiff.Const(x), t, y)
	return nil
}

// sampleMSPerImage times Euler sampling with guidance over the batch: one
// warm-up and three timed runs, median.
func (b *ditBench) sampleMSPerImage() (float64, error) {
	cfg := b.m.Config
	guided := diffusion.Guided{Model: b.m, Scale: 2, Null: cfg.NumClasses}
	sig, err := diffusion.Uniform(b.o.Steps)
	if err != nil {
		return 0, err
	}
	var times []float64
	for rep := 0; rep < 4; rep++ {
		noise := b.rng.Normal(b.x.Shape()...)
		t0 := time.Now()
		if _, _, err := diffusion.Euler(guided, noise, b.y, sig); err != nil {
			return 0, err
		}
		if rep > 0 {
			times = append(times, ms(time.Since(t0)))
		}
	}
	slices.Sort(times)
	return times[len(times)/2] / float64(b.o.Batch), nil
}

// peerDiT is what dit.py bench prints.
type peerDiT struct {
	TrainBest        float64 `json:"train_step_ms_best"`
	ForwardBest      float64 `json:"forward_ms_best"`
	SampleMSPerImage float64 `json:"sample_ms_per_image"`
}

func (p *Peer) ditBench(cfgPath string, batch, steps, threads, reps int) (*peerDiT, error) {
	out, err := p.Run("dit.py", "bench", "--config", cfgPath, "--batch", strconv.Itoa(batch),
		"--steps", strconv.Itoa(steps), "--threads", strconv.Itoa(threads), "--reps", strconv.Itoa(reps))
	if err != nil {
		return nil, err
	}
	var r peerDiT
	if err := json.Unmarshal(lastLine(out), &r); err != nil || r.ForwardBest <= 0 {
		return nil, fmt.Errorf("peer dit.py bench: no result in its output %q", out)
	}
	return &r, nil
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) []byte {
	end := len(out)
	for end > 0 && (out[end-1] == '\n' || out[end-1] == '\r' || out[end-1] == ' ') {
		end--
	}
	start := end
	for start > 0 && out[start-1] != '\n' {
		start--
	}
	return out[start:end]
}
