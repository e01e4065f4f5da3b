package checkpoint_test

import (
	"fmt"
	"os"
	"path/filepath"

	"tessera/checkpoint"
	"tessera/tensor"
)

type Linear struct {
	Weight *tensor.Tensor `safetensors:"weight"`
	Bias   *tensor.Tensor `safetensors:"bias,optional"`
}

type Config struct {
	Hidden int `json:"hidden_size"`
	Depth  int `json:"depth"`
}

type Model struct {
	Blocks []Linear `safetensors:"blocks"`
	Head   Linear   `safetensors:"head"`
}

func New(c Config) *Model {
	m := &Model{Head: Linear{Weight: tensor.New(1, c.Hidden)}}
	for range c.Depth {
		m.Blocks = append(m.Blocks, Linear{Weight: tensor.New(c.Hidden, c.Hidden), Bias: tensor.New(c.Hidden)})
	}
	return m
}

// A model directory is saved from a config and a model, then loaded by
// reading the config, building the model from it and binding the weights.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	dir = filepath.Join(dir, "tiny")

	trained := New(Config{Hidden: 3, Depth: 2})
	trained.Blocks[1].Bias.Set(0.5, 2)
	if err := checkpoint.SaveDir(dir, Config{Hidden: 3, Depth: 2}, trained, nil); err != nil {
		fmt.Println(err)
		return
	}

	d, err := checkpoint.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	var cfg Config
	if err := d.Config(&cfg); err != nil {
		fmt.Println(err)
		return
	}
	m := New(cfg)
	if err := d.Bind(m, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Weights().Names())
	fmt.Println(m.Blocks[1].Bias.At(2))

	// A model built with the wrong size is refused with both shapes.
	err = d.Bind(New(Config{Hidden: 4, Depth: 2}), nil)
	fmt.Println(err != nil)
	// Output:
	// [blocks.0.bias blocks.0.weight blocks.1.bias blocks.1.weight head.weight]
	// 0.5
	// true
}
