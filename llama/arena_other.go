//go:build !linux

package llama

// streamAlloc returns n zeroed floats for weights that are streamed once
// per token.
func streamAlloc(n int) []float32 { return make([]float32, n) }
