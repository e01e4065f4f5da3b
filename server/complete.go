package server

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"strings"

	"tessera/decoders"
	"tessera/llama"
	"tessera/models"
	"tessera/specdec"
)

// CompletionRequest is the body of POST /v1/completions. Zero fields take
// the defaults of `tessera complete`.
type CompletionRequest struct {
	Model          string  `json:"model"`  // decoder (required)
	Prompt         string  `json:"prompt"` // text to continue (required)
	Draft          string  `json:"draft,omitempty"`
	Judge          string  `json:"judge,omitempty"` // needs a draft
	JudgeThreshold float64 `json:"judge_threshold,omitempty"`
	K              int     `json:"k,omitempty"` // draft tokens per round (default 8)
	Fixed          bool    `json:"fixed,omitempty"`
	MaxTokens      int     `json:"max_tokens,omitempty"` // default 64
	Temperature    float64 `json:"temperature,omitempty"`
	TopK           int     `json:"top_k,omitempty"`
	TopP           float64 `json:"top_p,omitempty"` // default 1
	Seed           uint64  `json:"seed,omitempty"`
}

// CompletionResponse is the answer of POST /v1/completions.
type CompletionResponse struct {
	Model        string        `json:"model"`
	Completion   string        `json:"completion"`
	Tokens       int           `json:"tokens"`
	PromptTokens int           `json:"prompt_tokens"`
	StoppedAtEOS bool          `json:"stopped_at_eos"`
	WallSeconds  float64       `json:"wall_seconds"`
	Stats        specdec.Stats `json:"stats"`
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	var req CompletionRequest
	if err := decode(w, r, s.o.MaxBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	resp, err := s.complete(r.Context(), req)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) complete(ctx context.Context, req CompletionRequest) (*CompletionResponse, error) {
	if req.TopP == 0 {
		req.TopP = 1
	}
	switch {
	case req.Model == "":
		return nil, badRequest("model is required")
	case req.Prompt == "":
		return nil, badRequest("prompt is required")
	case req.MaxTokens < 0 || req.MaxTokens > s.o.MaxTokens:
		return nil, badRequest("max_tokens must be in 1..%d (have %d)", s.o.MaxTokens, req.MaxTokens)
	case req.K < 0 || req.K > 64:
		return nil, badRequest("k must be in 1..64 (have %d)", req.K)
	case req.Temperature < 0 || math.IsNaN(req.Temperature):
		return nil, badRequest("temperature must not be negative (have %v)", req.Temperature)
	case req.TopK < 0 || !(req.TopP > 0 && req.TopP <= 1):
		return nil, badRequest("top_k must not be negative and top_p must be in (0, 1]")
	case req.JudgeThreshold < 0 || req.JudgeThreshold >= 1:
		return nil, badRequest("judge_threshold must be in (0, 1) (have %v)", req.JudgeThreshold)
	case req.Judge != "" && req.Draft == "":
		return nil, badRequest("judge needs a draft")
	}
	target, err := s.decoder(req.Model)
	if err != nil {
		return nil, err
	}
	var draft *llama.Model
	if req.Draft != "" {
		if draft, err = s.decoder(req.Draft); err != nil {
			return nil, err
		}
	}
	var judge *specdec.Judge
	if req.Judge != "" {
		if judge, err = s.judge(req.Judge); err != nil {
			return nil, err
		}
		if req.JudgeThreshold > 0 {
			judge.Threshold = float32(req.JudgeThreshold)
		}
	}
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return nil, &requestError{499, fmt.Errorf("request cancelled while waiting: %w", ctx.Err())}
	}
	c, err := decoders.Complete(target, draft, req.Prompt, decoders.CompleteOptions{MaxTokens: req.MaxTokens, K: req.K, Fixed: req.Fixed,
		Sampler: llama.SamplerOptions{Temperature: float32(req.Temperature), TopK: req.TopK, TopP: float32(req.TopP), Seed: req.Seed}, Judge: judge})
	if err != nil {
		// Complete's errors are about the request (prompt length, vocabularies).
		return nil, &requestError{http.StatusBadRequest, err}
	}
	return &CompletionResponse{Model: req.Model, Completion: c.Text, Tokens: len(c.Tokens), PromptTokens: c.PromptTokens,
		StoppedAtEOS: c.StoppedAtEOS, WallSeconds: c.Wall.Seconds(), Stats: c.Stats}, nil
}

// decoder loads (once) the Llama decoder ref names.
func (s *Server) decoder(ref string) (*llama.Model, error) {
	m, err := s.load("decoder", ref, func(fsys fs.FS) (any, error) {
		if decoders.IsJudge(fsys) || !isDecoderConfig(fsys) {
			return nil, badRequest("model %s is not a decoder", ref)
		}
		return llama.LoadFS(fsys, ".")
	})
	if err != nil {
		return nil, err
	}
	return m.(*llama.Model), nil
}

// judge loads a judge head; each request gets its own copy, so a
// threshold set for one request does not leak into the next.
func (s *Server) judge(ref string) (*specdec.Judge, error) {
	j, err := s.load("judge", ref, func(fsys fs.FS) (any, error) {
		if !decoders.IsJudge(fsys) {
			return nil, badRequest("model %s is not a judge head", ref)
		}
		j, _, err := decoders.LoadJudge(fsys)
		return j, err
	})
	if err != nil {
		return nil, err
	}
	c := *j.(*specdec.Judge)
	return &c, nil
}

// load returns the cached model ref of a kind ("image", "decoder",
// "judge"), loading it with open the first time.
func (s *Server) load(kind, ref string, open func(fs.FS) (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := kind + ":" + ref
	if m, ok := s.loaded[key]; ok {
		return m, nil
	}
	if _, embedded := models.Embedded(ref); !embedded && !s.o.AllowFolders {
		return nil, &requestError{http.StatusNotFound, fmt.Errorf("unknown model %q (embedded models: %s)", ref, strings.Join(models.Names(), ", "))}
	}
	fsys, err := s.o.Open(ref)
	if err != nil {
		return nil, &requestError{http.StatusNotFound, err}
	}
	m, err := open(fsys)
	if err != nil {
		if statusOf(err) != http.StatusInternalServerError {
			return nil, err
		}
		return nil, fmt.Errorf("model %s: %w", ref, err)
	}
	s.loaded[key] = m
	return m, nil
}

// isDecoderConfig reports whether config.json names a vocabulary.
func isDecoderConfig(fsys fs.FS) bool {
	raw, err := fs.ReadFile(fsys, "config.json")
	return err == nil && strings.Contains(string(raw), `"vocab_size"`)
}
