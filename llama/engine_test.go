package llama

import (
	"fmt"
	"math"
	"testing"

	"tessera/safetensors"
	"tessera/tensor"
)

// tslot is a bare weight holder for engine tests.
type tslot struct{ t *tensor.Tensor }

func (s *tslot) Tensor() *tensor.Tensor     { return s.t }
func (s *tslot) SetTensor(t *tensor.Tensor) { s.t = t }

// goldenIO reads the reference tokens and logits of testdata/golden.
func goldenIO(t *testing.T) (tokens []int, logits []float32) {
	t.Helper()
	f, err := safetensors.Open("testdata/golden/io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := f.Int64s("tokens")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		tokens = append(tokens, int(id))
	}
	lt, err := f.Tensor("logits")
	if err != nil {
		t.Fatal(err)
	}
	return tokens, lt.Data()
}

// engineFromFile builds an engine straight from a safetensors file.
func engineFromFile(t *testing.T, dir string) *engine {
	t.Helper()
	cfg, err := LoadConfig(dir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(dir + "/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) slot {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		return &tslot{x}
	}
	layers := make([]layerSlots, cfg.NumHiddenLayers)
	for i := range layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		layers[i] = layerSlots{
			inNorm: get(p + "input_layernorm.weight"), postNorm: get(p + "post_attention_layernorm.weight"),
			q: get(p + "self_attn.q_proj.weight"), k: get(p + "self_attn.k_proj.weight"),
			v: get(p + "self_attn.v_proj.weight"), o: get(p + "self_attn.o_proj.weight"),
			gate: get(p + "mlp.gate_proj.weight"), up: get(p + "mlp.up_proj.weight"), down: get(p + "mlp.down_proj.weight"),
		}
	}
	embed := get("model.embed_tokens.weight")
	head := embed
	if !cfg.TieWordEmbeddings {
		head = get("lm_head.weight")
	}
	return newEngine(cfg, embed, get("model.norm.weight"), head, layers)
}

// maxRelErr is max|got-want| / max(1, max|want|), the golden check's measure.
func maxRelErr(got, want []float32) float64 {
	var err, scale float64
	for i := range want {
		err = math.Max(err, math.Abs(float64(got[i])-float64(want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return err / math.Max(1, scale)
}

func TestEngineGolden(t *testing.T) {
	e := engineFromFile(t, "testdata/golden")
	tokens, want := goldenIO(t)
	c := newCache(e, 32)
	got, err := c.Extend(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if r := maxRelErr(got, want); r > 1e-4 {
		t.Fatalf("logits differ from the reference: max relative error %.3g", r)
	}
}

func TestEngineDecodeMatchesPrefill(t *testing.T) {
	e := engineFromFile(t, "testdata/golden")
	tokens, want := goldenIO(t)
	V := e.cfg.VocabSize
	for _, split := range []int{1, 5, 11} {
		c := newCache(e, len(tokens))
		last, err := c.Prefill(tokens[:split])
		if err != nil {
			t.Fatal(err)
		}
		if r := maxRelErr(last, want[(split-1)*V:split*V]); r > 1e-4 {
			t.Fatalf("split %d: prefill logits error %.3g", split, r)
		}
		for i := split; i < len(tokens); i++ {
			got, err := c.Decode(tokens[i])
			if err != nil {
				t.Fatal(err)
			}
			if r := maxRelErr(got, want[i*V:(i+1)*V]); r > 1e-4 {
				t.Fatalf("split %d: decode of token %d: error %.3g", split, i, r)
			}
		}
		if _, err := c.Decode(0); err == nil {
			t.Fatal("decode past capacity: want an error")
		}
	}
}
