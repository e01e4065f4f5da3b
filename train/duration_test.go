package train

import (
	"context"
	"testing"
	"time"

	"tessera/internal/progress"
)

func TestResultDuration(t *testing.T) {
	l := &Loop{Steps: 3, Step: func(int) (float32, error) { time.Sleep(2 * time.Millisecond); return 1, nil },
		Progress: progress.Options{Mode: progress.Silent}}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Duration < 6*time.Millisecond {
		t.Fatalf("Duration %v, want at least the 6ms the steps slept", res.Duration)
	}
}
