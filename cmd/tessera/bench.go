package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"tessera/bench"
	"tessera/dit"
	"tessera/internal/gemm"
	"tessera/internal/simd"
)

func init() {
	register(&command{name: "bench", summary: "measure speed against the PyTorch peer (JSON on stdout)", run: runBench})
}

// benchEnv is what every suite gets: the shared flags, parsed.
type benchEnv struct {
	Threads int
	Rounds  int
	Time    time.Duration
	Peer    *bench.Peer // nil when the peer is off or not found
	Extra   *flag.FlagSet
}

// benchSuite is one "tessera bench <suite>".
type benchSuite struct {
	about string
	flags func(fs *flag.FlagSet) // suite-specific flags, may be nil
	run   func(env benchEnv) (any, error)
}

var benchSuites = map[string]*benchSuite{}

func init() {
	var shapes *string
	benchSuites["kernels"] = &benchSuite{
		about: "SGEMM/SGEMV GFLOP/s for transformer shapes vs torch.mm (gemm.py)",
		flags: func(fs *flag.FlagSet) {
			shapes = fs.String("shapes", "1024x1024x1024,512x512x512,256x256x256,4096x384x384,64x1536x384,1x4096x4096", "GEMM shapes MxNxK, comma-separated")
		},
		run: func(env benchEnv) (any, error) {
			sh, err := bench.ParseShapes(*shapes)
			if err != nil {
				return nil, usagef("--shapes: %v", err)
			}
			res, err := bench.GEMM(bench.GEMMOptions{Shapes: sh, Threads: env.Threads, Rounds: env.Rounds, Time: env.Time, Peer: env.Peer})
			if err != nil {
				return nil, err
			}
			single, err := bench.GEMM(bench.GEMMOptions{Shapes: sh[:1], Threads: 1, Rounds: env.Rounds, Time: env.Time, Peer: env.Peer})
			if err != nil {
				return nil, err
			}
			return map[string]any{"gemm": res, "gemm_single_thread": single}, nil
		},
	}
	var batch, steps *int
	var ditConfig *string
	benchSuites["dit"] = &benchSuite{
		about: "DiT train step, forward (batch B and 1) and guided Euler sampling vs dit.py bench",
		flags: func(fs *flag.FlagSet) {
			batch = fs.Int("batch", 32, "batch size for training, forward and sampling")
			steps = fs.Int("steps", 32, "Euler steps for sampling")
			ditConfig = fs.String("config", "", "DiT config.json (default: the reference 32x32 config of dit.py)")
		},
		run: func(env benchEnv) (any, error) {
			var cfg dit.Config
			if *ditConfig != "" {
				raw, err := os.ReadFile(*ditConfig)
				if err != nil {
					return nil, err
				}
				if cfg, err = dit.ParseConfig(raw); err != nil {
					return nil, fmt.Errorf("%s: %w", *ditConfig, err)
				}
			}
			return bench.DiT(bench.DiTOptions{Config: cfg, Batch: *batch, Steps: *steps, Threads: env.Threads, Rounds: env.Rounds, Time: env.Time, Peer: env.Peer})
		},
	}
	var prompt, newTok *int
	benchSuites["llama"] = &benchSuite{
		about: "Llama decoder prefill and batch-1 decode tokens/s vs llama.py bench (default and 27M configs)",
		flags: func(fs *flag.FlagSet) {
			prompt = fs.Int("prompt", 64, "prompt tokens")
			newTok = fs.Int("new", 128, "decoded tokens")
		},
		run: func(env benchEnv) (any, error) {
			return bench.Llama(bench.LlamaOptions{Prompt: *prompt, New: *newTok, Threads: env.Threads, Rounds: env.Rounds, Peer: env.Peer})
		},
	}
}

func benchAbout() string {
	names := make([]string, 0, len(benchSuites))
	for n := range benchSuites {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Runs a speed comparison and prints one JSON document on stdout.\n\nSuites:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", n, benchSuites[n].about)
	}
	b.WriteString(`
The PyTorch peer (../shared/peers/pytorch) runs interleaved with Tessera when
it is found (--peer=false to skip it). Timings are best-of over interleaved
rounds; compare ratios, not absolute times, since the machine may be shared.`)
	return b.String()
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs := newFlags("bench", "<suite> [flags]", benchAbout(), stderr)
		fs.Usage()
		if len(args) == 0 {
			return usagef("missing suite")
		}
		return flag.ErrHelp
	}
	name := args[0]
	suite, ok := benchSuites[name]
	if !ok {
		return usagef("unknown suite %q", name)
	}
	fs := newFlags("bench "+name, "[flags]", suite.about, stderr)
	threads := fs.Int("threads", 2, "worker threads for Tessera and the peer")
	rounds := fs.Int("rounds", 3, "interleaved rounds (best of each side is kept)")
	seconds := fs.Float64("seconds", 0.5, "minimum seconds per measurement")
	usePeer := fs.Bool("peer", true, "also measure the PyTorch peer")
	peerDir := fs.String("peer-dir", "", "folder of the PyTorch peer scripts (default: ../shared/peers/pytorch)")
	if suite.flags != nil {
		suite.flags(fs)
	}
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if *threads < 1 || *rounds < 1 || *seconds <= 0 {
		return usagef("--threads, --rounds and --seconds must be positive")
	}
	env := benchEnv{Threads: *threads, Rounds: *rounds, Time: time.Duration(*seconds * float64(time.Second)), Extra: fs}
	if *usePeer {
		p, err := bench.FindPeer(*peerDir)
		if err != nil {
			fmt.Fprintf(stderr, "tessera bench: %v; measuring Tessera only\n", err)
		} else {
			env.Peer = p
		}
	}
	res, err := suite.run(env)
	if err != nil {
		return err
	}
	return writeJSON(stdout, map[string]any{"suite": name, "kernels": simd.Current().String(), "gemm_kernel": gemm.Info(),
		"threads": *threads, "result": res})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
