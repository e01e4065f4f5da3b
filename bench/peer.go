package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Peer runs the PyTorch reference scripts (../shared/peers/pytorch) with
// Debian's python3 and the environment that gives OpenBLAS its fast kernels.
type Peer struct {
	Dir    string // folder holding gemm.py, dit.py, llama.py
	Python string // interpreter; /usr/bin/python3 by default
}

// FindPeer locates the peer scripts: dir if non-empty, else
// ../shared/peers/pytorch relative to the working directory or its parents.
func FindPeer(dir string) (*Peer, error) {
	cands := []string{dir}
	if dir == "" {
		wd, _ := os.Getwd()
		cands = nil
		for d := wd; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, "..", "shared", "peers", "pytorch"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "gemm.py")); err == nil {
			py := "/usr/bin/python3"
			if _, err := os.Stat(py); err != nil {
				py = "python3"
			}
			return &Peer{Dir: c, Python: py}, nil
		}
	}
	return nil, errors.New("PyTorch peer scripts not found (looked for ../shared/peers/pytorch/gemm.py); pass --peer-dir")
}

// Run executes one peer script with args and returns its standard output.
func (p *Peer) Run(script string, args ...string) ([]byte, error) {
	cmd := exec.Command(p.Python, append([]string{filepath.Join(p.Dir, script)}, args...)...)
	env := []string{"OMP_WAIT_POLICY=PASSIVE"}
	for _, kv := range os.Environ() {
		if hasPrefix(kv, "OPENBLAS_CORETYPE=") || hasPrefix(kv, "OPENBLAS_L2_SIZE=") || hasPrefix(kv, "OMP_WAIT_POLICY=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("peer %s %v: %w: %s", script, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// GEMM returns torch.mm's best GFLOP/s on one shape.
func (p *Peer) GEMM(s Shape, threads int, minTime time.Duration) (float64, error) {
	if threads < 1 {
		threads = 2
	}
	out, err := p.Run("gemm.py", "--threads", strconv.Itoa(threads), "--shapes", s.String(),
		"--seconds", strconv.FormatFloat(minTime.Seconds(), 'f', 3, 64))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			GFLOPS float64 `json:"gflops_best"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.GFLOPS > 0 {
			return r.GFLOPS, nil
		}
	}
	return 0, fmt.Errorf("peer gemm.py %s: no result in its output %q", s, out)
}
