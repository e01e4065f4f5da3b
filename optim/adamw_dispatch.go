package optim

// adamw runs one AdamW step on a range of one parameter with the fastest
// kernel this CPU has.
func adamw(p, g, m, v []float32, c adamwCoef) { adamwGeneric(p, g, m, v, c) }
