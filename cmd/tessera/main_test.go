package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     int
		inStderr string
		inStdout string
	}{
		{"no args", nil, 2, "Usage:", ""},
		{"help", []string{"help"}, 0, "", "Commands:"},
		{"version", []string{"version"}, 0, "", "tessera "},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{"bench without suite", []string{"bench"}, 2, "missing suite", ""},
		{"bench unknown suite", []string{"bench", "nope"}, 2, `unknown suite "nope"`, ""},
		{"bench unknown flag", []string{"bench", "kernels", "--bogus"}, 2, "flag provided but not defined: -bogus", ""},
		{"bench bad shape", []string{"bench", "kernels", "--peer=false", "--shapes", "3x3"}, 2, "want MxNxK", ""},
		{"bench accel bad time rounds", []string{"bench", "accel", "--peer=false", "--time-rounds", "-1"}, 2, "--time-rounds", ""},
		{"bench accel bad fewer steps", []string{"bench", "accel", "--peer=false", "--fewer-steps", "x"}, 2, "--fewer-steps", ""},
		{"bench help", []string{"bench", "--help"}, 0, "Suites:", ""},
		{"eval-emoji unknown cache", []string{"eval-emoji", "--cache", "fast"}, 2, `--cache "fast"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			got := run(tc.args, &out, &errb)
			if got != tc.want {
				t.Fatalf("exit status %d, want %d (stderr %q)", got, tc.want, errb.String())
			}
			if !strings.Contains(errb.String(), tc.inStderr) {
				t.Errorf("stderr %q does not contain %q", errb.String(), tc.inStderr)
			}
			if !strings.Contains(out.String(), tc.inStdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.inStdout)
			}
		})
	}
}

// TestSubcommandHelp checks that --help on a subcommand prints its usage
// once, with the flags.
func TestSubcommandHelp(t *testing.T) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"generate", "--help"}, "-steps"},
		{[]string{"train", "emoji", "--help"}, "-checkpoints"},
		{[]string{"complete", "-h"}, "-max-tokens"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tc.args, &out, &errb); got != 0 {
				t.Fatalf("exit status %d, want 0 (stderr %q)", got, errb.String())
			}
			text := errb.String() + out.String()
			if n := strings.Count(text, "Usage:"); n != 1 {
				t.Errorf("usage printed %d times:\n%s", n, text)
			}
			if !strings.Contains(text, tc.flag) {
				t.Errorf("usage does not list %s:\n%s", tc.flag, text)
			}
		})
	}
}
