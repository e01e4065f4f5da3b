// Package progress draws a training progress bar: a single redrawn line on a
// terminal, plain periodic lines when the output is a file or pipe, or
// nothing at all.
//
//	bar := progress.New(total, progress.Options{})
//	for step := 1; step <= total; step++ {
//		loss := trainStep()
//		bar.Update(step, loss)
//	}
//	bar.Finish()
package progress

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode selects how the bar is drawn.
type Mode int

// Drawing modes.
const (
	Auto     Mode = iota // Terminal when Out is a character device, else Plain
	Terminal             // one line redrawn in place with a carriage return
	Plain                // a full line every Options.Every
	Silent               // nothing
)

// Options configure a Bar. The zero value draws to stderr, choosing the mode
// from what stderr is.
type Options struct {
	Out   io.Writer     // destination; nil means os.Stderr
	Mode  Mode          // Auto by default
	Label string        // printed before the counter, e.g. "train"
	Every time.Duration // minimum time between redraws; default 100ms on a terminal, 10s in Plain mode
	Width int           // bar width in cells on a terminal; default 24
	// Smoothing is the weight of the newest loss in the exponential moving
	// average shown as the loss (0 < Smoothing <= 1; default 0.1). The
	// average is bias-corrected, so the first steps show the true mean.
	Smoothing float64
}

// Bar tracks steps, a smoothed loss and extra named metrics. Its methods are
// safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	opt     Options
	out     io.Writer
	mode    Mode
	total   int
	start   time.Time
	first   int // step at which the bar started (non-zero when resuming)
	step    int
	ema     float64 // biased moving average of the loss
	weight  float64 // 1 - (1-smoothing)^n, to undo the bias
	hasLoss bool
	metrics []metric
	last    time.Time // time of the last draw
	lastLen int       // visible length of the last terminal line
	drawn   int       // step shown by the last draw, -1 before any
	now     func() time.Time
}

type metric struct {
	name string
	val  float64
}

// New starts a bar for total steps.
func New(total int, opt Options) *Bar {
	b := &Bar{opt: opt, total: total, now: time.Now, drawn: -1}
	b.out = opt.Out
	if b.out == nil {
		b.out = os.Stderr
	}
	b.mode = opt.Mode
	if b.mode == Auto {
		b.mode = Plain
		if isTerminal(b.out) {
			b.mode = Terminal
		}
	}
	if b.opt.Every <= 0 {
		b.opt.Every = 100 * time.Millisecond
		if b.mode == Plain {
			b.opt.Every = 10 * time.Second
		}
	}
	if b.opt.Width <= 0 {
		b.opt.Width = 24
	}
	if b.opt.Smoothing <= 0 || b.opt.Smoothing > 1 {
		b.opt.Smoothing = 0.1
	}
	b.start = b.now()
	return b
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0
}

// Resume tells the bar that counting starts at step (e.g. after loading a
// checkpoint), so that steps/s and the ETA count only the steps run now.
func (b *Bar) Resume(step int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.first, b.step = step, step
	b.start = b.now()
}

// Update records that step steps are done and the latest loss (NaN for
// none), and redraws if enough time has passed.
func (b *Bar) Update(step int, loss float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.step = step
	if !math.IsNaN(loss) {
		a := b.opt.Smoothing
		b.ema = (1-a)*b.ema + a*loss
		b.weight = (1-a)*b.weight + a
		b.hasLoss = true
	}
	now := b.now()
	if b.mode == Silent || (now.Sub(b.last) < b.opt.Every && step != b.total) {
		return
	}
	b.draw(now, false)
}

// Set shows a named metric (e.g. "lr", "eval") after the loss until it is
// set again.
func (b *Bar) Set(name string, v float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.metrics {
		if b.metrics[i].name == name {
			b.metrics[i].val = v
			return
		}
	}
	b.metrics = append(b.metrics, metric{name, v})
}

// Printf prints a message on its own line without breaking the bar.
func (b *Bar) Printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode == Silent {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	if b.mode == Terminal && b.lastLen > 0 {
		fmt.Fprintf(b.out, "\r%s\r", strings.Repeat(" ", b.lastLen))
		b.lastLen = 0
	}
	fmt.Fprintln(b.out, msg)
	if b.mode == Terminal && !b.last.IsZero() {
		b.draw(b.now(), false)
	}
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.mode == Silent:
	case b.mode == Plain && b.drawn == b.step:
		// The last line already shows the final state.
	default:
		b.draw(b.now(), true)
	}
}

// Loss returns the smoothed loss shown by the bar (NaN before any loss).
func (b *Bar) Loss() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hasLoss {
		return math.NaN()
	}
	return b.ema / b.weight
}

// Line renders the bar's current state as text, without drawing it.
func (b *Bar) Line() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.line(b.now(), b.mode == Terminal)
}

func (b *Bar) draw(now time.Time, final bool) {
	b.last, b.drawn = now, b.step
	s := b.line(now, b.mode == Terminal)
	switch b.mode {
	case Terminal:
		pad := ""
		if n := len([]rune(s)); n < b.lastLen {
			pad = strings.Repeat(" ", b.lastLen-n)
		}
		fmt.Fprintf(b.out, "\r%s%s", s, pad)
		b.lastLen = len([]rune(s))
		if final {
			fmt.Fprintln(b.out)
			b.lastLen = 0
		}
	case Plain:
		fmt.Fprintln(b.out, s)
	}
}

func (b *Bar) line(now time.Time, withBar bool) string {
	var sb strings.Builder
	if b.opt.Label != "" {
		sb.WriteString(b.opt.Label)
		sb.WriteByte(' ')
	}
	if withBar && b.total > 0 {
		frac := math.Min(1, math.Max(0, float64(b.step)/float64(b.total)))
		full := int(frac * float64(b.opt.Width))
		sb.WriteString("[")
		sb.WriteString(strings.Repeat("=", full))
		if full < b.opt.Width {
			sb.WriteString(">")
			sb.WriteString(strings.Repeat(" ", b.opt.Width-full-1))
		}
		sb.WriteString("] ")
	}
	width := len(fmt.Sprint(b.total))
	fmt.Fprintf(&sb, "%*d/%d", width, b.step, b.total)
	if b.hasLoss {
		fmt.Fprintf(&sb, " loss %.4g", b.ema/b.weight)
	}
	for _, m := range b.metrics {
		fmt.Fprintf(&sb, " %s %.4g", m.name, m.val)
	}
	elapsed := now.Sub(b.start).Seconds()
	done := b.step - b.first
	if done > 0 && elapsed > 0 {
		rate := float64(done) / elapsed
		fmt.Fprintf(&sb, " | %s", formatRate(rate))
		if left := b.total - b.step; left > 0 {
			fmt.Fprintf(&sb, " eta %s", formatDuration(float64(left)/rate))
		} else {
			fmt.Fprintf(&sb, " in %s", formatDuration(elapsed))
		}
	}
	return sb.String()
}

func formatRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f it/s", r)
	case r >= 1:
		return fmt.Sprintf("%.3g it/s", r)
	}
	return fmt.Sprintf("%.3g s/it", 1/r)
}

func formatDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
