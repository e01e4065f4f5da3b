package safetensors

import (
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"tessera/tensor"
)

// bigFile saves one tensor of n float32 elements as dtype and returns the path.
func bigFile(tb testing.TB, n int, dtype DType) string {
	tb.Helper()
	x := tensor.New(n)
	for i := range x.Data() {
		x.Data()[i] = float32(i%1000) / 7
	}
	path := filepath.Join(tb.TempDir(), "big.safetensors")
	if err := Save(path, map[string]*tensor.Tensor{"x": x}, &SaveOptions{DType: dtype}); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestOpenDoesNotCopy checks that opening a file maps it instead of
// reading it onto the heap.
func TestOpenDoesNotCopy(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no mmap on", runtime.GOOS)
	}
	const n = 4 << 20 // 16 MB of F32
	path := bigFile(t, n, F32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	defer f.Close()
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("Open allocated %d bytes for a %d-byte file", grew, 4*n)
	}
	x, err := f.Tensor("x")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := x.Data()[n-1], float32((n-1)%1000)/7; got != want {
		t.Errorf("last element = %g, want %g", got, want)
	}
}

// TestConcurrentReads reads tensors from several goroutines at once (run
// with -race).
func TestConcurrentReads(t *testing.T) {
	path := bigFile(t, 1000, BF16)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	sums := make([]float32, 4)
	for g := range sums {
		wg.Go(func() {
			x, err := f.Tensor("x")
			if err != nil {
				t.Error(err)
				return
			}
			for _, v := range x.Data() {
				sums[g] += v
			}
		})
	}
	wg.Wait()
	for g := range sums {
		if sums[g] != sums[0] {
			t.Errorf("goroutine %d read sum %g, goroutine 0 read %g", g, sums[g], sums[0])
		}
	}
}

func BenchmarkTensor(b *testing.B) {
	const n = 1 << 20
	for _, dt := range []DType{F32, F16, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			f, err := Open(bigFile(b, n, dt))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(4 * n) // float32 bytes produced
			for b.Loop() {
				if _, err := f.Tensor("x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSave(b *testing.B) {
	const n = 1 << 20
	x := tensor.New(n)
	for i := range x.Data() {
		x.Data()[i] = float32(i) / 3
	}
	path := filepath.Join(b.TempDir(), "out.safetensors")
	for _, dt := range []DType{F32, F16, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			b.SetBytes(4 * n) // float32 bytes consumed
			for b.Loop() {
				if err := Save(path, map[string]*tensor.Tensor{"x": x}, &SaveOptions{DType: dt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
