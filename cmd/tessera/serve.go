package main

import (
	"fmt"
	"io"
	"time"

	"tessera/server"
)

func init() {
	register(&command{name: "serve", summary: "serve the models over HTTP (JSON API: images, completions)", run: runServe})
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[flags]", `Serves Tessera's models over HTTP until Ctrl-C:

  GET  /healthz      "ok"
  GET  /v1/models    the embedded models, their kinds and card summaries
  POST /v1/images    {"model": "mnist", "class": 7, "n": 4, "seed": 1, "steps": 32,
                      "cfg": 2, "sampler": "euler", "precision": "auto"}
                     or {"model": "emoji", "prompt": "red heart", ...};
                     answers {"images": [base64 PNG, ...], "labels": [...],
                     "stats": {...}}, or one PNG grid with "format": "grid".
  POST /v1/completions {"model": "target", "prompt": "Q: 37+48=?\nA: ",
                      "draft": "draft", "judge": "judge", "k": 16,
                      "max_tokens": 64, "temperature": 0}; answers
                     {"completion": "...", "tokens": N, "stats": {...}}.

Bad requests get status 4xx and {"error": "..."}. Requests run one at a
time; each uses every worker thread.`, stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	maxImages := fs.Int("max-images", 64, "most images one request may ask for")
	maxSteps := fs.Int("max-steps", 250, "most sampling steps one request may ask for")
	maxTokens := fs.Int("max-tokens", 1024, "most tokens one completion may ask for")
	folders := fs.Bool("allow-folders", false, "let requests name model folders on this machine (default: embedded models only)")
	threads := fs.Int("threads", 0, "worker threads (default: all cores)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *maxImages < 1 || *maxSteps < 1 || *maxTokens < 1 {
		return usagef("--max-images, --max-steps and --max-tokens must be at least 1")
	}
	setThreads(*threads)
	s := server.New(server.Options{MaxImages: *maxImages, MaxSteps: *maxSteps, MaxTokens: *maxTokens, AllowFolders: *folders})
	ctx, stop := signalContext()
	defer stop()
	fmt.Fprintf(stderr, "serving on http://%s (Ctrl-C stops)\n", *addr)
	if err := server.ListenAndServe(ctx, *addr, s.Handler(), 30*time.Second); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
