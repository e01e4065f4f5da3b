//go:build linux

package llama

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on linux/amd64 and
// linux/arm64 with 4 KiB base pages.
const hugePage = 2 << 20

// streamAlloc returns n zeroed floats for weights that are streamed once
// per token. Large buffers start on a huge-page boundary and are advised
// to be backed by transparent huge pages (where the kernel allows it on
// request), so streaming them takes a few hundred TLB misses rather than
// tens of thousands; the advice is only a hint.
func streamAlloc(n int) []float32 {
	if n*4 < 2*hugePage {
		return make([]float32, n)
	}
	raw := make([]float32, n+hugePage/4)
	off := int((hugePage - uintptr(unsafe.Pointer(&raw[0]))%hugePage) % hugePage / 4)
	buf := raw[off : off+n : off+n]
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), n*4), syscall.MADV_HUGEPAGE)
	return buf
}
