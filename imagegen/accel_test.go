package imagegen

import (
	"math"
	"strings"
	"testing"

	"tessera/blockcache"
	"tessera/flexidit"
	"tessera/tensor"
)

func maxAbsDiff(a, b []*tensor.Tensor) float64 {
	d := 0.0
	for i := range a {
		for j, v := range a[i].Data() {
			d = math.Max(d, math.Abs(float64(v-b[i].Data()[j])))
		}
	}
	return d
}

func TestParseAccelFlags(t *testing.T) {
	tests := []struct {
		spec  string
		mode  string
		reuse blockcache.Reuse
		d     float64
		bad   bool
	}{
		{"off", "", "", 0, false}, {"ss", "ss", "", 0, false}, {"ss:0.1", "ss", "", 0.1, false},
		{"plan:0.2", "plan", "", 0.2, false}, {"dynamic:0.3", "dynamic", "", 0.3, false},
		{"res:0.08", "ss", blockcache.ReuseResidual, 0.08, false}, {"res-plan", "plan", blockcache.ReuseResidual, 0, false},
		{"fc:0.1", "ss", blockcache.ReuseForecast, 0.1, false}, {"fc-plan", "plan", blockcache.ReuseForecast, 0, false},
		{"fast", "", "", 0, true}, {"ss:-1", "", "", 0, true}, {"ss:x", "", "", 0, true}, {"res:0", "", "", 0, true}, {"fc:", "", "", 0, true},
	}
	for _, tc := range tests {
		c, err := ParseCache(tc.spec)
		if (err != nil) != tc.bad || (!tc.bad && (c.Mode != tc.mode || c.Reuse() != tc.reuse || c.Threshold != tc.d)) {
			t.Errorf("ParseCache(%q) = %+v, %v", tc.spec, c, err)
		}
		if name, _, _ := strings.Cut(tc.spec, ":"); !tc.bad && name != "off" && c.Name() != name {
			t.Errorf("ParseCache(%q).Name() = %q", tc.spec, c.Name())
		}
	}
	f, err := ParseFlex("12,reverse,weak-guidance")
	if err != nil || f.WeakSteps != 12 || !f.Reverse || !f.WeakGuidance {
		t.Errorf("ParseFlex = %+v, %v", f, err)
	}
	if _, err := ParseFlex("x"); err == nil {
		t.Error("ParseFlex accepted a non-number")
	}
}

// A cache that never reuses gives Generate's images; caching and FlexiDiT
// report what they skipped, and their FLOPs fall accordingly.
func TestGenerateAccel(t *testing.T) {
	m := tinyModel(t)
	for _, b := range m.Blocks { // every block live, so that caching matters
		b.AdaLN.Weight.Value.CopyFrom(tensor.Scale(tensor.NewRNG(9).Normal(b.AdaLN.Weight.Value.Shape()...), 0.1))
	}
	opts := GenerateOptions{N: 3, Seed: 2, Steps: 6, CFG: 2, Progress: silent}
	want, base, err := Generate(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exact, st, err := GenerateAccel(m, opts, AccelOptions{Cache: CacheOptions{Mode: "plan", Threshold: 1e-9, Dir: dir, Calibration: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(exact, want); d > 1e-5 {
		t.Errorf("cache that never reuses differs from Generate by %g", d)
	}
	if st.Cache == nil || st.Cache.HitRate != 0 || math.Abs(st.FLOPs-base.FLOPs) > 1e-6*base.FLOPs {
		t.Errorf("never-reusing cache: hit rate %v, FLOPs %g, want 0 and %g", st.Cache, st.FLOPs, base.FLOPs)
	}
	f, err := flexidit.Flexify(m, flexidit.Config{WeakPatch: 8}, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		a    AccelOptions
	}{
		{"scale-shift", AccelOptions{Cache: CacheOptions{Mode: "ss", Threshold: 0.5, Dir: dir, Calibration: 4}}},
		{"dynamic", AccelOptions{Cache: CacheOptions{Mode: "dynamic", Threshold: 10}}},
		{"flex", AccelOptions{Flex: &FlexOptions{Model: f, WeakSteps: 3}}},
		{"flex and cache", AccelOptions{Flex: &FlexOptions{Model: f, WeakSteps: 3, WeakGuidance: true}, Cache: CacheOptions{Mode: "plan", Threshold: 0.5, Dir: dir, Calibration: 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			imgs, st, err := GenerateAccel(m, opts, tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != opts.N || st.NetworkEvals != base.NetworkEvals {
				t.Fatalf("%d images in %d evaluations, want %d in %d", len(imgs), st.NetworkEvals, opts.N, base.NetworkEvals)
			}
			if !(st.FLOPs < base.FLOPs) {
				t.Errorf("FLOPs %g not below the baseline's %g", st.FLOPs, base.FLOPs)
			}
			if tc.a.Cache.Mode != "" && !(st.Cache.HitRate > 0) {
				t.Errorf("no cache hits: %+v", st.Cache)
			}
			if tc.a.Flex != nil && st.Flex.Schedule != "WWWPPP" {
				t.Errorf("flex schedule %q, want WWWPPP", st.Flex.Schedule)
			}
		})
	}
}
