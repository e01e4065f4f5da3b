package main

import (
	"fmt"
	"io"
	"io/fs"
	"strings"

	"tessera/autodiff"
	"tessera/dit"
	"tessera/llama"
	"tessera/models"
	"tessera/safetensors"
	"tessera/tensor"
)

func init() {
	register(&command{name: "forward", summary: "run a network once on given inputs (checkpoint parity checks)", run: runForward})
}

const forwardAbout = `Runs the network once on the tensors of --inputs and writes the result to
--out, for checking a converted checkpoint against the PyTorch reference
(dit.py check / llama.py check read the file).

  DiT:      inputs x [B,C,H,W], t [B] (0..1000), y [B] (integers) -> out
  decoder:  inputs tokens [B,T] (integers)                      -> logits [B,T,V]

The kind of model is read from its config.json.`

func runForward(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("forward", "--model DIR --inputs IN.safetensors --out OUT.safetensors", forwardAbout, stderr)
	modelRef := fs.String("model", "", "model folder (config.json + model.safetensors) or embedded model name")
	inputs := fs.String("inputs", "", "safetensors file with the inputs")
	out := fs.String("out", "", "safetensors file to write")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *modelRef == "" || *inputs == "" || *out == "" {
		return usagef("--model, --inputs and --out are required")
	}
	setThreads(*threads)
	fsys, err := models.Open(*modelRef)
	if err != nil {
		return err
	}
	in, err := safetensors.Open(*inputs)
	if err != nil {
		return err
	}
	defer in.Close()
	raw, err := fsReadConfig(fsys)
	if err != nil {
		return err
	}
	if strings.Contains(raw, `"num_hidden_layers"`) {
		return forwardDecoder(fsys, in, *out)
	}
	return forwardDiT(fsys, in, *out)
}

func fsReadConfig(fsys fs.FS) (string, error) {
	b, err := fs.ReadFile(fsys, "config.json")
	if err != nil {
		return "", fmt.Errorf("model: %w", err)
	}
	return string(b), nil
}

func intsOf(f *safetensors.File, name string) ([]int, []int, error) {
	info, ok := f.Info(name)
	if !ok {
		return nil, nil, fmt.Errorf("inputs %s: no tensor %q", f.Path(), name)
	}
	v, err := f.Int64s(name)
	if err != nil {
		return nil, nil, fmt.Errorf("inputs %s: %w", f.Path(), err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, info.Shape, nil
}

func forwardDiT(fsys fs.FS, in *safetensors.File, out string) error {
	m, err := dit.LoadFS(fsys)
	if err != nil {
		return err
	}
	x, err := in.Tensor("x")
	if err != nil {
		return fmt.Errorf("inputs: %w", err)
	}
	t, err := in.Tensor("t")
	if err != nil {
		return fmt.Errorf("inputs: %w", err)
	}
	y, _, err := intsOf(in, "y")
	if err != nil {
		return err
	}
	if err := m.Check(x.Shape(), t.Data(), y); err != nil {
		return err
	}
	g := autodiff.NoGrad()
	res := m.Forward(g, autodiff.Const(x), t.Data(), y).Value
	return safetensors.Save(out, map[string]*tensor.Tensor{"out": res}, nil)
}

func forwardDecoder(fsys fs.FS, in *safetensors.File, out string) error {
	m, err := llama.LoadFS(fsys, ".")
	if err != nil {
		return err
	}
	toks, shape, err := intsOf(in, "tokens")
	if err != nil {
		return err
	}
	if len(shape) != 2 {
		return fmt.Errorf("inputs: tokens has shape %v, want [B, T]", shape)
	}
	batch := make([][]int, shape[0])
	for b := range batch {
		batch[b] = toks[b*shape[1] : (b+1)*shape[1]]
	}
	g := autodiff.NoGrad()
	logits, err := m.Forward(g, batch)
	if err != nil {
		return err
	}
	return safetensors.Save(out, map[string]*tensor.Tensor{"logits": logits.Value}, nil)
}
