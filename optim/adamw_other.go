//go:build !amd64 || purego

package optim

// adamw runs one AdamW step on a range of one parameter.
func adamw(p, g, m, v []float32, c adamwCoef) { adamwGeneric(p, g, m, v, c) }
