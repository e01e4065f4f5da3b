package checkpoint

import (
	"embed"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"tessera/safetensors"
)

var update = flag.Bool("update", false, "rewrite testdata/tiny")

// tinyConfig is a config with defaults, as model packages write them.
type tinyConfig struct {
	Hidden     int     `json:"hidden_size"`
	Depth      int     `json:"depth"`
	MLPRatio   float64 `json:"mlp_ratio"`
	Prediction string  `json:"prediction"`
}

func defaultTiny() tinyConfig {
	return tinyConfig{Hidden: 4, Depth: 2, MLPRatio: 4, Prediction: "epsilon"}
}

//go:embed testdata/tiny
var embedded embed.FS

// TestEmbedded loads a committed model directory through embed.FS, the
// way the CLI loads shipped models.
func TestEmbedded(t *testing.T) {
	want := newModel(4, 2, 7)
	if *update {
		if err := SaveDir("testdata/tiny", tinyConfig{Hidden: 4, Depth: 2, MLPRatio: 4, Prediction: "velocity"}, want,
			&safetensors.SaveOptions{DType: safetensors.F16, Metadata: map[string]string{"format": "pt"}}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenFS(embedded, "testdata/tiny")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := defaultTiny()
	if err := d.Config(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg != (tinyConfig{Hidden: 4, Depth: 2, MLPRatio: 4, Prediction: "velocity"}) {
		t.Errorf("config = %+v", cfg)
	}
	m := newModel(cfg.Hidden, cfg.Depth, 0)
	if err := d.Bind(m, nil); err != nil {
		t.Fatal(err)
	}
	// The file stores F16: expect the saved values rounded to it.
	got, _ := Tensors(m)
	exp, _ := Tensors(want)
	for name, w := range exp {
		for i, v := range w.Data() {
			v = safetensors.F16ToFloat32(safetensors.Float32ToF16(v))
			if g := got[name].Data()[i]; g != v {
				t.Fatalf("%s[%d] = %g, want %g", name, i, g, v)
			}
		}
	}
	if md := d.Weights().Metadata(); md["format"] != "pt" {
		t.Errorf("metadata = %v", md)
	}
}

func TestSaveDirOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models", "tiny")
	src := newModel(4, 3, 1)
	cfg := tinyConfig{Hidden: 4, Depth: 3, MLPRatio: 2, Prediction: "velocity"}
	if err := SaveDir(dir, cfg, src, nil); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("directory holds %v, want config.json and model.safetensors", ents)
	}
	for _, open := range []struct {
		name string
		fn   func() (*Dir, error)
	}{
		{"disk", func() (*Dir, error) { return Open(dir) }},
		{"fs", func() (*Dir, error) { return OpenFS(os.DirFS(filepath.Dir(dir)), "tiny") }},
	} {
		t.Run(open.name, func(t *testing.T) {
			d, err := open.fn()
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if !d.HasConfig() {
				t.Error("HasConfig = false")
			}
			got := defaultTiny()
			if err := d.Config(&got); err != nil || got != cfg {
				t.Fatalf("Config = %+v, %v; want %+v", got, err, cfg)
			}
			m := newModel(got.Hidden, got.Depth, 9)
			if err := d.Bind(m, nil); err != nil {
				t.Fatal(err)
			}
			if m.Blocks[2].Norm.t.Data()[3] != src.Blocks[2].Norm.t.Data()[3] {
				t.Error("bound values differ from saved ones")
			}
			// A model built from a different config fails with the file named.
			err = d.Bind(newModel(4, 2, 0), nil)
			if err == nil || !strings.Contains(err.Error(), WeightsFile) || !strings.Contains(err.Error(), "blocks.2.attn.qkv.weight") {
				t.Errorf("Bind(smaller model) = %v", err)
			}
		})
	}

	// Replacing a directory's contents keeps it consistent; a failed save
	// changes nothing and leaves no temporary files.
	if err := SaveDir(dir, cfg, newModel(4, 3, 2), &safetensors.SaveOptions{DType: safetensors.BF16}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if err := SaveDir(dir, cfg, newModel(4, 3, 3), &safetensors.SaveOptions{DType: safetensors.I64}); err == nil {
		t.Error("SaveDir with an integer float dtype succeeded")
	}
	if err := SaveDir(dir, cfg, struct{ N int }{}, nil); err != nil {
		t.Errorf("SaveDir of a model without slots: %v", err)
	}
	if err := SaveDir(dir, cfg, newModel(4, 3, 2), &safetensors.SaveOptions{DType: safetensors.BF16}); err != nil {
		t.Fatal(err)
	}
	if err := SaveDir(dir, map[string]any{"f": func() {}}, newModel(4, 3, 3), nil); err == nil {
		t.Error("SaveDir with an unencodable config succeeded")
	}
	if after := snapshot(t, dir); !maps(before, after) {
		t.Errorf("failed saves changed the directory: %v -> %v", keys(before), keys(after))
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestReadConfig(t *testing.T) {
	fsys := fstest.MapFS{
		"ok/config.json":     {Data: []byte(`{"hidden_size": 8, "extra_key": [1, 2], "prediction": "velocity"}`)},
		"syntax/config.json": {Data: []byte("{\n  \"hidden_size\": 8,\n  \"depth\": ,\n}")},
		"type/config.json":   {Data: []byte("{\n  \"hidden_size\": \"eight\"\n}")},
		"float/config.json":  {Data: []byte(`{"depth": 2.5}`)},
		"notobj/config.json": {Data: []byte(`[1]`)},
		"empty/config.json":  {Data: []byte(``)},
		"nodir/readme.md":    {Data: []byte(`x`)},
	}
	tests := []struct {
		dir  string
		want tinyConfig
		err  []string
	}{
		{"ok", tinyConfig{Hidden: 8, Depth: 2, MLPRatio: 4, Prediction: "velocity"}, nil},
		{"syntax", tinyConfig{}, []string{"syntax/config.json:3:13: invalid JSON: invalid character ','"}},
		{"type", tinyConfig{}, []string{"type/config.json:2:", `key "hidden_size": a JSON string cannot be stored in int`}},
		{"float", tinyConfig{}, []string{`float/config.json`, `key "depth": a JSON number 2.5 cannot be stored in int`}},
		{"notobj", tinyConfig{}, []string{"notobj/config.json", "a JSON array cannot be stored in checkpoint.tinyConfig"}},
		{"empty", tinyConfig{}, []string{"empty/config.json", "invalid JSON: unexpected end of JSON input"}},
		{"nodir", tinyConfig{}, []string{"read nodir/config.json", "file does not exist"}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			got := defaultTiny()
			err := ReadConfigFS(fsys, tc.dir, &got)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Errorf("ReadConfigFS = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadConfigFS succeeded with %+v", got)
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
	if err := ReadConfigFS(fsys, "nodir", &tinyConfig{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing config: %v does not wrap fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"depth": 5}`), 0o644)
	got := defaultTiny()
	if err := ReadConfig(dir, &got); err != nil || got.Depth != 5 || got.Hidden != 4 {
		t.Errorf("ReadConfig = %+v, %v", got, err)
	}
}
