package progress

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every call.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		name      string
		mode      Mode
		wantLines int    // newline-terminated lines after 10 updates and Finish
		want      string // substring of the output
		wantCR    bool
	}{
		{"plain", Plain, 10, "10/10 loss", false},
		{"terminal", Terminal, 1, "[========================] 10/10", true},
		{"silent", Silent, 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			b := New(10, Options{Out: &buf, Mode: tc.mode, Every: time.Nanosecond})
			b.now = fakeClock(time.Second)
			b.start = b.now()
			for s := 1; s <= 10; s++ {
				b.Update(s, 1)
			}
			b.Finish()
			out := buf.String()
			if got := strings.Count(out, "\n"); got != tc.wantLines {
				t.Errorf("%d lines, want %d:\n%q", got, tc.wantLines, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%q", tc.want, out)
			}
			if got := strings.Contains(out, "\r"); got != tc.wantCR {
				t.Errorf("carriage return present = %v, want %v", got, tc.wantCR)
			}
		})
	}
}

func TestAutoIsPlainForBuffers(t *testing.T) {
	var buf bytes.Buffer
	b := New(3, Options{Out: &buf})
	if b.mode != Plain {
		t.Fatalf("mode %v for a bytes.Buffer, want Plain", b.mode)
	}
}

func TestSmoothedLoss(t *testing.T) {
	b := New(100, Options{Mode: Silent, Smoothing: 0.5})
	if !math.IsNaN(b.Loss()) {
		t.Fatalf("loss before updates = %v, want NaN", b.Loss())
	}
	b.Update(1, 4)
	if got := b.Loss(); got != 4 {
		t.Errorf("after one update loss = %v, want 4 (bias-corrected)", got)
	}
	b.Update(2, 1)
	// ema = 0.5*(0.5*4) + 0.5*1 = 1.5; weight = 0.75.
	if got, want := b.Loss(), 1.5/0.75; math.Abs(got-want) > 1e-12 {
		t.Errorf("after two updates loss = %v, want %v", got, want)
	}
	b.Update(3, math.NaN())
	if got, want := b.Loss(), 2.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("NaN loss changed the average: %v, want %v", got, want)
	}
}

func TestRateAndETA(t *testing.T) {
	b := New(100, Options{Mode: Silent})
	b.now = fakeClock(500 * time.Millisecond) // every call to now advances 0.5s
	b.Resume(40)                              // start = t0
	b.step = 50                               // 10 steps done
	// Line calls now once more: elapsed 0.5s, 10 steps -> 20 it/s, 50 left -> 2.5s.
	line := b.Line()
	for _, want := range []string{"50/100", "20 it/s", "eta 2.5s"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestMetricsAndPrintf(t *testing.T) {
	var buf bytes.Buffer
	b := New(5, Options{Out: &buf, Mode: Plain, Label: "train"})
	b.Set("lr", 0.001)
	b.Set("lr", 0.002)
	b.Printf("eval at step %d\n", 3)
	b.Update(5, 0.25)
	out := buf.String()
	for _, want := range []string{"eval at step 3\n", "train 5/5 loss 0.25 lr 0.002"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "0.001") {
		t.Errorf("stale metric value in %q", out)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		sec  float64
		want string
	}{
		{1.25, "1.2s"},
		{75, "1m15s"},
		{3600*2 + 60*5, "2h05m"},
	}
	for _, tc := range tests {
		if got := formatDuration(tc.sec); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}

func TestFormatRate(t *testing.T) {
	tests := []struct {
		rate float64
		want string
	}{
		{5570.4, "5570 it/s"},
		{12.345, "12.3 it/s"},
		{0.5, "2 s/it"},
	}
	for _, tc := range tests {
		if got := formatRate(tc.rate); got != tc.want {
			t.Errorf("formatRate(%v) = %q, want %q", tc.rate, got, tc.want)
		}
	}
}
