// Package atomicfile writes files so that readers see either the old
// content or the complete new content, never a partial file: data goes to a
// temporary file in the destination's directory, which is flushed to disk
// and then renamed over the destination. On any error the temporary file is
// removed and the destination is left untouched.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Mode is the permission given to the files this package creates.
const Mode os.FileMode = 0o644

// Write creates or replaces path with what fn writes to w. The writer is
// buffered; fn must not retain it. If fn returns an error, nothing is left
// behind and the error is returned wrapped with the path.
func Write(path string, fn func(w io.Writer) error) error {
	p, err := Create(path)
	if err != nil {
		return err
	}
	defer p.Abort()
	bw := bufio.NewWriterSize(p, 1<<20)
	if err := fn(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return p.Commit()
}

// WriteFile creates or replaces path with data.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Pending is a file being written: a temporary file next to its destination
// that becomes the destination on Commit. It lets a caller write several
// files completely (Sync each) before renaming any of them into place.
type Pending struct {
	path  string
	tmp   string
	f     *os.File // nil once synced
	ended bool     // committed or aborted
}

// Create starts writing path. Commit or Abort must follow; Abort after
// Commit does nothing, so `defer p.Abort()` is the usual pattern.
func Create(path string) (*Pending, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	return &Pending{path: path, tmp: f.Name(), f: f}, nil
}

var errClosed = errors.New("file already synced, committed or aborted")

// Write writes b to the temporary file.
func (p *Pending) Write(b []byte) (int, error) {
	if p.ended || p.f == nil {
		return 0, fmt.Errorf("write %s: %w", p.path, errClosed)
	}
	return p.f.Write(b)
}

// Path returns the destination path.
func (p *Pending) Path() string { return p.path }

// Sync flushes the temporary file to disk and closes it, without renaming
// it. On error the temporary file is removed.
func (p *Pending) Sync() error {
	if p.ended {
		return fmt.Errorf("sync %s: %w", p.path, errClosed)
	}
	if p.f == nil {
		return nil
	}
	f := p.f
	p.f = nil
	err := f.Chmod(Mode)
	if e := f.Sync(); err == nil {
		err = e
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		p.Abort()
		return fmt.Errorf("write %s: %w", p.path, err)
	}
	return nil
}

// Commit syncs the temporary file and renames it over the destination,
// then syncs the directory so the rename itself survives a crash (where the
// platform allows). On error the temporary file is removed.
func (p *Pending) Commit() error {
	if err := p.Sync(); err != nil {
		return err
	}
	if err := os.Rename(p.tmp, p.path); err != nil {
		p.Abort()
		return fmt.Errorf("rename %s: %w", p.path, err)
	}
	p.ended = true
	syncDir(filepath.Dir(p.path))
	return nil
}

// Abort discards the temporary file. It does nothing after Commit or a
// previous Abort.
func (p *Pending) Abort() {
	if p.ended {
		return
	}
	p.ended = true
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	os.Remove(p.tmp)
}

// syncDir makes a rename in dir durable. Errors are ignored: some platforms
// and file systems cannot open or sync directories, and the data itself is
// already on disk.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
