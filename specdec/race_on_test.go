//go:build race

package specdec

// raceEnabled: the race detector makes sync.Pool drop items, so SGEMM's
// workspaces are allocated again and allocation counts mean nothing.
const raceEnabled = true
