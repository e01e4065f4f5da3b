// Command tessera generates images with diffusion transformers, decodes text
// with Llama-style models, trains them, evaluates them and benchmarks them
// against PyTorch. Run "tessera help" for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"tessera/internal/parallel"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// usageError marks an error in how the command was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the CLI and returns the exit status: 0 success, 1 failure,
// 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return exitCode(c.run([]string{"--help"}, stdout, stderr), stderr, c.name)
			}
		}
		printHelp(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintf(stdout, "tessera %s\n", version)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "tessera: unknown command %q\n\n", name)
		printHelp(stderr)
		return 2
	}
	return exitCode(c.run(args[1:], stdout, stderr), stderr, c.name)
}

func exitCode(err error, stderr io.Writer, name string) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintf(stderr, "tessera %s: %v\nRun 'tessera %s --help' for usage.\n", name, err, name)
		return 2
	}
	fmt.Fprintf(stderr, "tessera %s: %v\n", name, err)
	return 1
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "Tessera %s: fast generative transformers in Go.\n\nUsage:\n  tessera <command> [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n  %-10s %s\n", "version", "print the version", "help", "help on a command: tessera help <command>")
	fmt.Fprintln(w, "\nEnvironment:\n  TESSERA_KERNELS=generic|avx2|avx512   force a kernel path (default: the best the CPU has)")
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints a usage text built from the summary, the synopsis and the flags.
func newFlags(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tessera "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tessera %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns flag errors into usage errors; leftover
// positional arguments are an error unless allowArgs.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) error {
	// Parse quietly (flag would print the usage on every error, and with
	// its output discarded, print it without the flags); help is printed
	// once here, to the writer newFlags was given.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{err.Error()}
	}
	if !allowArgs && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// setThreads applies --threads (0 keeps the default of all cores).
func setThreads(n int) {
	if n > 0 {
		parallel.SetThreads(n)
	}
}
