package checkpoint

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"tessera/safetensors"
	"tessera/tensor"
)

// param stands in for autodiff.Var: a Slot with pointer receivers.
type param struct{ t *tensor.Tensor }

func (p *param) Tensor() *tensor.Tensor     { return p.t }
func (p *param) SetTensor(t *tensor.Tensor) { p.t = t }

type linear struct {
	Weight *tensor.Tensor `safetensors:"weight"`
	Bias   *tensor.Tensor `safetensors:"bias,optional"`
}

type attention struct {
	QKV  linear  `safetensors:"qkv"`
	Proj *linear `safetensors:"proj"`
}

type block struct {
	Attn  attention      `safetensors:"attn"`
	Norm  *param         `safetensors:"norm"`  // pointer to a Slot
	Scale param          `safetensors:"scale"` // Slot through the field's address
	Gate  Slot           `safetensors:"gate,optional"`
	Cache []float32      // untagged: ignored
	Skip  *tensor.Tensor `safetensors:"-"`
}

type model struct {
	Embed  *tensor.Tensor `safetensors:"embed"`
	Blocks []*block       `safetensors:"blocks"`
	Heads  [2]linear      `safetensors:"heads"`
	Extra  *linear        `safetensors:"extra"` // nil: the model has no such part
	Final  linear         `safetensors:""`      // no prefix
	Notes  string
}

// fill gives every element a distinct value derived from seed.
func fill(seed float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data() {
		t.Data()[i] = seed + float32(i)/16
	}
	return t
}

// newModel builds a model with hidden size d and n blocks.
func newModel(d, n int, seed float32) *model {
	m := &model{Embed: fill(seed, 10, d)}
	for i := range n {
		s := seed + float32(100*(i+1))
		m.Blocks = append(m.Blocks, &block{
			Attn: attention{
				QKV:  linear{Weight: fill(s, 3*d, d), Bias: fill(s+1, 3*d)},
				Proj: &linear{Weight: fill(s+2, d, d)},
			},
			Norm:  &param{fill(s+3, d)},
			Scale: param{fill(s+4, d)},
			Gate:  &param{fill(s+5, 1)},
			Skip:  fill(s+6, 1),
		})
	}
	for i := range m.Heads {
		m.Heads[i] = linear{Weight: fill(seed+float32(10+i), 2, d), Bias: fill(seed+float32(20+i), 2)}
	}
	m.Final = linear{Weight: fill(seed+30, 1, d)}
	return m
}

var wantNames = []string{
	"embed",
	"blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
	"blocks.0.norm", "blocks.0.scale", "blocks.0.gate",
	"blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias",
	"blocks.1.norm", "blocks.1.scale", "blocks.1.gate",
	"heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
	"weight", "bias",
}

func TestNames(t *testing.T) {
	got, err := Names(newModel(4, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, wantNames) {
		t.Errorf("Names:\n got %v\nwant %v", got, wantNames)
	}
	// A struct value (not a pointer) can be listed too.
	if got, err := Names(*newModel(4, 2, 0)); err != nil || !slices.Equal(got, wantNames) {
		t.Errorf("Names(value) = %v, %v", got, err)
	}
}

func TestTensors(t *testing.T) {
	m := newModel(4, 2, 0)
	ts, err := Tensors(m)
	if err != nil {
		t.Fatal(err)
	}
	// The two proj biases and Final.Bias are nil and optional, so they are left out.
	if len(ts) != len(wantNames)-3 {
		t.Errorf("Tensors has %d entries, want %d", len(ts), len(wantNames)-3)
	}
	if ts["blocks.1.norm"] != m.Blocks[1].Norm.t || ts["blocks.0.scale"] != m.Blocks[0].Scale.t || ts["embed"] != m.Embed {
		t.Error("Tensors does not return the model's own tensors")
	}
	m.Blocks[0].Attn.QKV.Weight = nil
	m.Blocks[1].Norm.t = nil
	ts, err = Tensors(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ts["blocks.0.attn.qkv.weight"]; ok || len(ts) != len(wantNames)-5 {
		t.Errorf("nil slots were collected: %d tensors", len(ts))
	}
}

func TestRoundTrip(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			src := newModel(4, 3, 1)
			ts, err := Tensors(src)
			if err != nil {
				t.Fatal(err)
			}
			b, err := safetensors.Marshal(ts, &safetensors.SaveOptions{DType: dt})
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			dst := newModel(4, 3, 50)
			if err := Bind(dst, f, nil); err != nil {
				t.Fatal(err)
			}
			got, _ := Tensors(dst)
			for name, want := range ts {
				g := got[name]
				if g == want {
					t.Errorf("%s: bound tensor aliases the source", name)
				}
				for i, v := range want.Data() {
					if dt == safetensors.BF16 {
						v = safetensors.BF16ToFloat32(safetensors.Float32ToBF16(v))
					}
					if g.Data()[i] != v {
						t.Fatalf("%s[%d] = %g, want %g", name, i, g.Data()[i], v)
					}
				}
			}
			if dst.Blocks[0].Skip.Data()[0] != 50+100+6 {
				t.Error("the skipped field was changed")
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	saved := func(m *model, extra map[string]*tensor.Tensor, drop ...string) *safetensors.File {
		t.Helper()
		ts, err := Tensors(m)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range extra {
			ts[k] = v
		}
		for _, k := range drop {
			delete(ts, k)
		}
		b, err := safetensors.Marshal(ts, &safetensors.SaveOptions{Ints: map[string]safetensors.IntTensor{}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name  string
		file  *safetensors.File
		model *model
		opt   *BindOptions
		want  []string // substrings of the error; none means success
		check func(*BindError) bool
	}{
		{
			name:  "shape mismatch",
			file:  saved(newModel(4, 2, 0), nil),
			model: newModel(5, 2, 0),
			want:  []string{"blocks.1.attn.qkv.weight: checkpoint has shape [12 4], model expects [15 5]", "embed: checkpoint has shape [10 4], model expects [10 5]"},
			check: func(e *BindError) bool { return len(e.Mismatched) == 14 },
		},
		{
			name:  "missing",
			file:  saved(newModel(4, 2, 0), nil, "blocks.1.norm", "heads.0.weight"),
			model: newModel(4, 2, 0),
			want:  []string{"2 tensors missing from the checkpoint: blocks.1.norm, heads.0.weight"},
			check: func(e *BindError) bool { return len(e.Missing) == 2 && len(e.Unused) == 0 },
		},
		{
			name:  "missing optional is fine",
			file:  saved(newModel(4, 2, 0), nil, "blocks.1.gate", "heads.0.bias"),
			model: newModel(4, 2, 0),
		},
		{
			name:  "unused",
			file:  saved(newModel(4, 3, 0), map[string]*tensor.Tensor{"pos_embed": tensor.New(2)}),
			model: newModel(4, 2, 0),
			want:  []string{"7 tensors in the checkpoint are not used by the model: blocks.2.attn.proj.weight, ", "pos_embed"},
		},
		{
			name:  "unused allowed",
			file:  saved(newModel(4, 3, 0), map[string]*tensor.Tensor{"pos_embed": tensor.New(2)}),
			model: newModel(4, 2, 0),
			opt:   &BindOptions{AllowUnused: true},
		},
		{
			name:  "nil slot",
			file:  saved(newModel(4, 1, 0), map[string]*tensor.Tensor{"bias": tensor.New(1)}),
			model: newModel(4, 1, 0),
			want:  []string{"1 tensors in the checkpoint are for parts the model does not have (nil slots): bias"},
		},
		{
			name:  "nil slots absent from the file are fine",
			file:  saved(newModel(4, 1, 0), nil),
			model: func() *model { m := newModel(4, 1, 0); m.Blocks[0].Attn.Proj.Bias = nil; return m }(),
		},
		{
			name:  "nil slot of a smaller model",
			file:  saved(newModel(4, 1, 0), nil),
			model: func() *model { m := newModel(4, 1, 0); m.Blocks[0].Norm.t = nil; return m }(),
			want:  []string{"(nil slots): blocks.0.norm"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := Tensors(tc.model)
			err := Bind(tc.model, tc.file, tc.opt)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Bind: %v", err)
				}
				return
			}
			var be *BindError
			if !errors.As(err, &be) {
				t.Fatalf("Bind error = %v, want a *BindError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if tc.check != nil && !tc.check(be) {
				t.Errorf("BindError fields: %+v", be)
			}
			after, _ := Tensors(tc.model)
			for k, v := range before {
				if after[k] != v {
					t.Errorf("failed Bind changed slot %s", k)
				}
			}
		})
	}
}

func TestBindDTypeMismatch(t *testing.T) {
	type labels struct {
		Y *tensor.Tensor `safetensors:"y"`
	}
	b, err := safetensors.Marshal(nil, &safetensors.SaveOptions{Ints: map[string]safetensors.IntTensor{"y": safetensors.Int64Tensor([]int64{1, 2}, 2)}})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := safetensors.Parse(b)
	err = Bind(&labels{Y: tensor.New(2)}, f, nil)
	if err == nil || !strings.Contains(err.Error(), "y: checkpoint has dtype I64, model expects a float tensor") {
		t.Errorf("Bind = %v", err)
	}
}

func TestBadModels(t *testing.T) {
	type unexported struct {
		w *tensor.Tensor `safetensors:"w"`
	}
	type badType struct {
		N int `safetensors:"n"`
	}
	type dup struct {
		A *tensor.Tensor `safetensors:"w"`
		B *tensor.Tensor `safetensors:"w"`
	}
	type badOpt struct {
		A *tensor.Tensor `safetensors:"w,optinal"`
	}
	type node struct {
		W    *tensor.Tensor `safetensors:"w"`
		Next *node          `safetensors:"next"`
	}
	cyc := &node{W: tensor.New(1)}
	cyc.Next = cyc
	chain := &node{W: tensor.New(1), Next: &node{W: tensor.New(2)}}
	tests := []struct {
		name  string
		model any
		want  string // "" for success
	}{
		{"not a struct", 3, "model must be a struct"},
		{"nil pointer", (*model)(nil), "model must be a struct"},
		{"unexported", &unexported{}, "field unexported.w has a safetensors tag but is unexported"},
		{"bad type", &badType{}, "field badType.N (int) has a safetensors tag but is neither"},
		{"duplicate", &dup{A: tensor.New(1), B: tensor.New(1)}, `tensor name "w" is used by two slots: dup.A and dup.B`},
		{"unknown option", &badOpt{}, `unknown safetensors tag option "optinal"`},
		{"cycle", cyc, "points back"},
		{"linked list", chain, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Tensors(tc.model)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Tensors error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := Bind(model{}, nil, nil); err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
		t.Errorf("Bind(value) = %v", err)
	}
}
