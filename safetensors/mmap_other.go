//go:build !unix

package safetensors

// mapFile reads path into memory on platforms without mmap.
func mapFile(path string) ([]byte, func() error, error) { return readAll(path) }
