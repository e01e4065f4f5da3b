// Package server serves Tessera's models over HTTP with the same
// library calls the CLI makes: JSON requests in, JSON (or PNG) out.
//
//	GET  /healthz        200 "ok"
//	GET  /v1/models      the models it can serve, with their card summaries
//	POST /v1/images      generate images (ImageRequest → ImageResponse, or a
//	                     PNG grid with "format": "grid")
//	POST /v1/completions continue a prompt with a decoder, optionally with a
//	                     draft and a judge (CompletionRequest → CompletionResponse)
//
// Bad requests get a 4xx status and {"error": "..."} naming the problem:
// malformed or unknown JSON fields, unknown models, classes out of range,
// empty or over-long prompts, counts and steps out of bounds. Generation is
// CPU-bound, so requests run one at a time (the kernels already use every
// core); a request whose client goes away while it waits is dropped.
package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"sync"
	"time"

	"tessera/decoders"
	"tessera/dit"
	"tessera/imagefile"
	"tessera/imagegen"
	"tessera/internal/progress"
	"tessera/models"
	"tessera/nn"
	"tessera/t2i"
	"tessera/tensor"
)

// Options bounds what one request may ask for.
type Options struct {
	MaxImages int   // images per request (default 64)
	MaxSteps  int   // sampling steps per request (default 250)
	MaxTokens int   // tokens per completion (default 1024)
	MaxBody   int64 // request body bytes (default 64 KiB)
	// Open resolves a model reference (default models.Open: embedded
	// names, and folders on disk when AllowFolders).
	Open func(ref string) (fs.FS, error)
	// AllowFolders lets requests name model folders on the server's disk;
	// by default only embedded models are served.
	AllowFolders bool
}

// Server holds the loaded models. Use Handler to serve it.
type Server struct {
	o    Options
	turn chan struct{} // one generation at a time

	mu     sync.Mutex
	loaded map[string]any // *dit.Model or *t2i.Model by reference
}

// New returns a server with o's limits (zero fields take the defaults).
func New(o Options) *Server {
	if o.MaxImages <= 0 {
		o.MaxImages = 64
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = 250
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 1024
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.Open == nil {
		o.Open = models.Open
	}
	return &Server{o: o, turn: make(chan struct{}, 1), loaded: map[string]any{}}
}

// Handler routes the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/v1/models", s.handleModels)
	mux.HandleFunc("/v1/images", s.handleImages)
	mux.HandleFunc("/v1/completions", s.handleCompletions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s (try GET /v1/models, POST /v1/images or POST /v1/completions)", r.URL.Path))
	})
	return mux
}

// ModelInfo is one entry of GET /v1/models.
type ModelInfo struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // "class-to-image", "text-to-image", "decoder", "judge" or "other"
	Classes int    `json:"classes,omitempty"`
	Summary string `json:"summary"`
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	var out []ModelInfo
	for _, name := range models.Names() {
		info := ModelInfo{Name: name, Kind: "other"}
		if card, err := models.Card(name); err == nil {
			info.Summary = models.Summary(card)
		}
		if fsys, ok := models.Embedded(name); ok {
			if raw, err := fs.ReadFile(fsys, "config.json"); err == nil {
				switch {
				case t2i.IsConfig(raw):
					info.Kind = "text-to-image"
				case dit.IsConfig(raw):
					if cfg, err := dit.ParseConfig(raw); err == nil {
						info.Kind, info.Classes = "class-to-image", cfg.NumClasses
					}
				case decoders.IsJudge(fsys):
					info.Kind = "judge"
				case isDecoderConfig(fsys):
					info.Kind = "decoder"
				}
			}
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

// ImageRequest is the body of POST /v1/images. Zero fields take the
// defaults of `tessera generate`.
type ImageRequest struct {
	Model     string  `json:"model"`            // embedded name (default "mnist")
	Class     *int    `json:"class,omitempty"`  // class of every image (class models; default: cycle)
	Prompt    string  `json:"prompt,omitempty"` // text-to-image models
	N         int     `json:"n"`                // images (default 1)
	Seed      uint64  `json:"seed"`
	Steps     int     `json:"steps"`     // default 32
	Sampler   string  `json:"sampler"`   // euler (default), heun, dpm++2m, ddim
	Schedule  string  `json:"schedule"`  // uniform (default), linear-quadratic, shifted
	Shift     float64 `json:"shift"`     // for the shifted schedule (default 3)
	CFG       float64 `json:"cfg"`       // guidance weight (default 2; 1 disables)
	Precision string  `json:"precision"` // auto (default), f32, bf16
	Format    string  `json:"format"`    // "json" (default: base64 PNGs) or "grid" (one PNG)
}

// ImageResponse is the JSON answer of POST /v1/images.
type ImageResponse struct {
	Model  string         `json:"model"`
	Images []string       `json:"images"` // base64-encoded PNGs
	Labels []any          `json:"labels"` // class or prompt of each image
	Stats  imagegen.Stats `json:"stats"`
}

// requestError is a problem with the request (4xx), not the server.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

func (s *Server) handleImages(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	var req ImageRequest
	if err := decode(w, r, s.o.MaxBody, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	resp, grid, err := s.images(r.Context(), req)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if grid != nil {
		w.Header().Set("Content-Type", "image/png")
		w.WriteHeader(http.StatusOK)
		w.Write(grid)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// images validates req, waits for its turn and generates.
func (s *Server) images(ctx context.Context, req ImageRequest) (*ImageResponse, []byte, error) {
	if req.Model == "" {
		req.Model = "mnist"
	}
	if req.N == 0 {
		req.N = 1
	}
	if req.Steps == 0 {
		req.Steps = 32
	}
	if req.CFG == 0 {
		req.CFG = 2
	}
	if req.Shift == 0 {
		req.Shift = 3
	}
	switch {
	case req.N < 1 || req.N > s.o.MaxImages:
		return nil, nil, badRequest("n must be in 1..%d (have %d)", s.o.MaxImages, req.N)
	case req.Steps < 1 || req.Steps > s.o.MaxSteps:
		return nil, nil, badRequest("steps must be in 1..%d (have %d)", s.o.MaxSteps, req.Steps)
	case req.CFG < 0 || math.IsNaN(req.CFG) || math.IsInf(req.CFG, 0):
		return nil, nil, badRequest("cfg must be a non-negative number (have %v)", req.CFG)
	case req.Format != "" && req.Format != "json" && req.Format != "grid":
		return nil, nil, badRequest("format must be json or grid (have %q)", req.Format)
	}
	if _, err := nn.ParsePrecision(req.Precision); err != nil {
		return nil, nil, badRequest("precision: %v", err)
	}
	m, err := s.model(req.Model)
	if err != nil {
		return nil, nil, err
	}
	// Validate against the model before queueing.
	var classes []int
	labels := make([]any, req.N)
	switch m := m.(type) {
	case *dit.Model:
		if req.Prompt != "" {
			return nil, nil, badRequest("model %s is class-conditional: give class, not prompt", req.Model)
		}
		if req.Class != nil {
			if k := *req.Class; k < 0 || k >= m.Config.NumClasses {
				return nil, nil, badRequest("class %d out of range: model %s has classes 0..%d", k, req.Model, m.Config.NumClasses-1)
			}
		}
		classes = make([]int, req.N)
		for i := range classes {
			classes[i] = i % max(m.Config.NumClasses, 1)
			if req.Class != nil {
				classes[i] = *req.Class
			}
			labels[i] = classes[i]
		}
	case *t2i.Model:
		if req.Class != nil {
			return nil, nil, badRequest("model %s takes a prompt, not a class", req.Model)
		}
		if err := m.Config.Text.CheckPrompt(req.Prompt); err != nil {
			return nil, nil, badRequest("model %s: %v", req.Model, err)
		}
		for i := range labels {
			labels[i] = req.Prompt
		}
	}

	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return nil, nil, &requestError{499, fmt.Errorf("request cancelled while waiting: %w", ctx.Err())}
	}
	quiet := progress.Options{Mode: progress.Silent}
	var imgs []*tensor.Tensor
	var st imagegen.Stats
	switch m := m.(type) {
	case *dit.Model:
		imgs, st, err = imagegen.Generate(m, imagegen.GenerateOptions{N: req.N, Classes: classes, Seed: req.Seed, Steps: req.Steps,
			Sampler: req.Sampler, Schedule: req.Schedule, Shift: req.Shift, CFG: req.CFG, Precision: req.Precision, Progress: quiet})
	case *t2i.Model:
		prompts := make([]string, req.N)
		for i := range prompts {
			prompts[i] = req.Prompt
		}
		imgs, st, err = t2i.Generate(m, prompts, t2i.GenerateOptions{Seed: req.Seed, Steps: req.Steps,
			Sampler: req.Sampler, Schedule: req.Schedule, Shift: req.Shift, CFG: req.CFG, Precision: req.Precision, Progress: quiet})
	}
	if err != nil {
		// Generate's errors are about the options (sampler, schedule…).
		return nil, nil, &requestError{http.StatusBadRequest, err}
	}
	if req.Format == "grid" {
		cols := int(math.Ceil(math.Sqrt(float64(len(imgs)))))
		g, err := imagefile.Grid(imgs, cols, 2, 1)
		if err != nil {
			return nil, nil, err
		}
		var buf bytes.Buffer
		if err := imagefile.Encode(&buf, g); err != nil {
			return nil, nil, err
		}
		return nil, buf.Bytes(), nil
	}
	resp := &ImageResponse{Model: req.Model, Labels: labels, Stats: st}
	for _, img := range imgs {
		var buf bytes.Buffer
		if err := imagefile.Encode(&buf, img); err != nil {
			return nil, nil, err
		}
		resp.Images = append(resp.Images, base64.StdEncoding.EncodeToString(buf.Bytes()))
	}
	return resp, nil, nil
}

// model loads (once) and returns the image model ref names: a *dit.Model
// or a *t2i.Model.
func (s *Server) model(ref string) (any, error) {
	return s.load("image", ref, func(fsys fs.FS) (any, error) {
		raw, err := fs.ReadFile(fsys, "config.json")
		if err != nil {
			return nil, err
		}
		switch {
		case t2i.IsConfig(raw):
			return t2i.LoadFS(fsys)
		case dit.IsConfig(raw):
			return dit.LoadFS(fsys)
		}
		return nil, badRequest("model %s is not an image model", ref)
	})
}

// decode reads one JSON object of at most limit bytes, rejecting unknown
// fields and trailing data. The body is read as JSON whatever its
// Content-Type says (curl -d sends a form type).
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &requestError{http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", limit)}
		}
		if errors.Is(err, io.EOF) {
			return badRequest("empty request body: send a JSON object")
		}
		return badRequest("bad request body: %v", err)
	}
	if dec.More() {
		return badRequest("bad request body: more than one JSON value")
	}
	return nil
}

func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.status
	}
	return http.StatusInternalServerError
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: use %s", allow))
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ListenAndServe serves h on addr until ctx is cancelled, then shuts down
// gracefully, giving running requests up to grace to finish.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
