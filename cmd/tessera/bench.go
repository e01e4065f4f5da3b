package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"tessera/bench"
)

func init() {
	register(&command{name: "bench", summary: "measure speed against the PyTorch peer (JSON on stdout)", run: runBench})
}

const benchAbout = `Runs a speed comparison and prints one JSON document on stdout.

Suites:
  kernels   SGEMM/SGEMV GFLOP/s for transformer shapes, interleaved with
            torch.mm from ../shared/peers/pytorch/gemm.py when it is found
            (--peer=false to skip it).

Timings are best-of over interleaved rounds; compare ratios, not absolute
times, since the machine may be shared.`

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "<suite> [flags]", benchAbout, stderr)
	threads := fs.Int("threads", 2, "worker threads for Tessera and the peer")
	shapes := fs.String("shapes", "1024x1024x1024,512x512x512,256x256x256,4096x384x384,64x1536x384,1x4096x4096", "GEMM shapes MxNxK, comma-separated")
	rounds := fs.Int("rounds", 3, "interleaved rounds (best of each side is kept)")
	seconds := fs.Float64("seconds", 0.5, "minimum seconds per measurement")
	usePeer := fs.Bool("peer", true, "also measure the PyTorch peer")
	peerDir := fs.String("peer-dir", "", "folder of the PyTorch peer scripts (default: ../shared/peers/pytorch)")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs.Usage()
		if len(args) == 0 {
			return usagef("missing suite (kernels)")
		}
		return flag.ErrHelp
	}
	suite := args[0]
	if err := parseFlags(fs, args[1:], false); err != nil {
		return err
	}
	if *threads < 1 || *rounds < 1 || *seconds <= 0 {
		return usagef("--threads, --rounds and --seconds must be positive")
	}
	var peer *bench.Peer
	if *usePeer {
		p, err := bench.FindPeer(*peerDir)
		if err != nil {
			fmt.Fprintf(stderr, "tessera bench: %v; measuring Tessera only\n", err)
		} else {
			peer = p
		}
	}
	switch suite {
	case "kernels":
		sh, err := bench.ParseShapes(*shapes)
		if err != nil {
			return usagef("--shapes: %v", err)
		}
		res, err := bench.GEMM(bench.GEMMOptions{Shapes: sh, Threads: *threads, Rounds: *rounds,
			Time: time.Duration(*seconds * float64(time.Second)), Peer: peer})
		if err != nil {
			return err
		}
		return writeJSON(stdout, map[string]any{"suite": "kernels", "gemm": res})
	default:
		return usagef("unknown suite %q (want kernels)", suite)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
