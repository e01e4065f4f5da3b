package bench

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"tessera/dit"
)

func TestDiTBenchRunsWithoutPeer(t *testing.T) {
	cfg := dit.Config{InputSize: 8, PatchSize: 4, InChannels: 1, HiddenSize: 16, Depth: 1,
		NumHeads: 2, MLPRatio: 2, NumClasses: 3, Prediction: dit.Velocity}
	r, err := DiT(DiTOptions{Config: cfg, Batch: 2, Steps: 2, Threads: 1, Time: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Params == 0 || r.TrainStepMS <= 0 || r.ForwardMS <= 0 || r.Forward1MS <= 0 || r.SampleMSPerImage <= 0 {
		t.Errorf("missing measurements: %+v", r)
	}
	if r.PeerAvailable || r.TrainRatio != 0 {
		t.Errorf("peer numbers without a peer: %+v", r)
	}
	if _, err := DiT(DiTOptions{Config: dit.Config{InputSize: 7, PatchSize: 2}}); err == nil {
		t.Error("invalid config accepted")
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{"a\nb\n": "b", "x": "x", "warn\n{\"k\":1}\n\n": `{"k":1}`, "": ""} {
		if got := string(lastLine([]byte(in))); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDiTAgainstPeer runs the full comparison of the README when
// TESSERA_BENCH_DIT=1 (it takes a few minutes):
//
//	TESSERA_BENCH_DIT=1 go test -run DiTAgainstPeer -v -timeout 60m ./bench
func TestDiTAgainstPeer(t *testing.T) {
	if os.Getenv("TESSERA_BENCH_DIT") != "1" {
		t.Skip("set TESSERA_BENCH_DIT=1 to compare with the PyTorch peer")
	}
	peer, err := FindPeer("")
	if err != nil {
		t.Skip(err)
	}
	// TESSERA_BENCH_DIT_QUICK=1 leaves out sampling, which dominates the
	// run time.
	quick := os.Getenv("TESSERA_BENCH_DIT_QUICK") == "1"
	r, err := DiT(DiTOptions{Peer: peer, Rounds: 2, NoSampling: quick})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("%s", out)
	if !r.PeerAvailable || r.TrainRatio <= 0 || (!quick && r.SampleSpeedup <= 0) {
		t.Errorf("incomplete comparison: %+v", r)
	}
}

// Benchmarks of the default model's pieces, for profiling:
//
//	go test -run XXX -bench DiT -benchtime 20x -cpuprofile cpu.out ./bench
func benchDiT(b *testing.B, fn func(d *ditBench) error) {
	d := newDiTBench(DiTOptions{Config: dit.DefaultConfig(), Batch: 32, Steps: 32})
	if err := d.setup(); err != nil {
		b.Fatal(err)
	}
	if err := fn(d); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := fn(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiTTrainStep(b *testing.B) { benchDiT(b, (*ditBench).trainStep) }

func BenchmarkDiTForward32(b *testing.B) {
	benchDiT(b, func(d *ditBench) error { return d.forward(d.x, d.t, d.y) })
}

func BenchmarkDiTForward1(b *testing.B) {
	benchDiT(b, func(d *ditBench) error { return d.forward(d.x1, d.t[:1], d.y[:1]) })
}
