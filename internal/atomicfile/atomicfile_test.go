package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// leftovers lists the entries of dir other than the given names.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		found := false
		for _, k := range keep {
			found = found || e.Name() == k
		}
		if !found {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWrite(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		old     string // existing content, "" for none
		write   func(w io.Writer) error
		wantErr error
		want    string // content afterwards, "" for absent
	}{
		{"new file", "", func(w io.Writer) error { _, err := io.WriteString(w, "hello"); return err }, nil, "hello"},
		{"replace", "old", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, nil, "new"},
		{"empty", "old", func(w io.Writer) error { return nil }, nil, "\x00"},
		{"error keeps old", "old", func(w io.Writer) error { io.WriteString(w, "partial"); return boom }, boom, "old"},
		{"error leaves nothing", "", func(w io.Writer) error { io.WriteString(w, "partial"); return boom }, boom, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.bin")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(path, tc.write)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Write error = %v, want %v", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.want == "":
				if !os.IsNotExist(rerr) {
					t.Errorf("file exists after failed write: %q, %v", got, rerr)
				}
			case tc.want == "\x00":
				if rerr != nil || len(got) != 0 {
					t.Errorf("got %q, %v; want empty file", got, rerr)
				}
			default:
				if rerr != nil || string(got) != tc.want {
					t.Errorf("got %q, %v; want %q", got, rerr, tc.want)
				}
			}
			if l := leftovers(t, dir, "out.bin"); len(l) != 0 {
				t.Errorf("temporary files left behind: %v", l)
			}
			if tc.wantErr == nil {
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != Mode {
					t.Errorf("mode = %v, want %v", st.Mode().Perm(), Mode)
				}
			}
		})
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	dir := t.TempDir()
	err := WriteFile(filepath.Join(dir, "no", "such", "file"), []byte("x"))
	if err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

func TestPendingTwoFiles(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	b, err := Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort()
	io.WriteString(a, "A")
	io.WriteString(b, "B")
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("late")); err == nil {
		t.Error("Write after Sync succeeded")
	}
	if l := leftovers(t, dir, "a", "b"); len(l) != 2 {
		t.Errorf("want two temporary files before commit, have %v", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Error("destination visible before Commit")
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Abort()
	if got, _ := os.ReadFile(filepath.Join(dir, "a")); string(got) != "A" {
		t.Errorf("a = %q", got)
	}
	if l := leftovers(t, dir, "a"); len(l) != 0 {
		t.Errorf("left behind after commit+abort: %v", l)
	}
	if err := a.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}
