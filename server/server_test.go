package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/images", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestImages(t *testing.T) {
	h := New(Options{}).Handler()
	tests := []struct {
		name, body string
		n          int
		label      any
	}{
		{"class", `{"model": "mnist", "class": 3, "n": 2, "steps": 2, "seed": 1}`, 2, float64(3)},
		{"defaults", `{"steps": 1}`, 1, float64(0)},
		{"prompt", `{"model": "emoji", "prompt": "red heart", "n": 1, "steps": 1, "cfg": 4}`, 1, "red heart"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(t, h, tc.body)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var resp ImageResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Images) != tc.n || len(resp.Labels) != tc.n || resp.Stats.N != tc.n {
				t.Fatalf("%d images, %d labels, stats n %d; want %d", len(resp.Images), len(resp.Labels), resp.Stats.N, tc.n)
			}
			if resp.Labels[0] != tc.label {
				t.Errorf("label %v, want %v", resp.Labels[0], tc.label)
			}
			raw, err := base64.StdEncoding.DecodeString(resp.Images[0])
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
				t.Errorf("image %v, want 32x32", b)
			}
			if resp.Stats.NetworkEvals == 0 || resp.Stats.Precision == "" {
				t.Errorf("stats %+v lack evaluations or precision", resp.Stats)
			}
		})
	}
}

// TestImagesSameAsLibrary checks that the same seed gives the same PNG
// twice (the server adds no randomness of its own).
func TestImagesDeterministic(t *testing.T) {
	h := New(Options{}).Handler()
	body := `{"class": 5, "n": 1, "steps": 2, "seed": 9, "precision": "f32"}`
	a, b := post(t, h, body), post(t, h, body)
	if a.Code != 200 || b.Code != 200 || a.Body.String() == "" {
		t.Fatalf("status %d, %d", a.Code, b.Code)
	}
	var ra, rb ImageResponse
	json.Unmarshal(a.Body.Bytes(), &ra)
	json.Unmarshal(b.Body.Bytes(), &rb)
	if ra.Images[0] != rb.Images[0] {
		t.Error("the same request gave different images")
	}
}

func TestGrid(t *testing.T) {
	rec := post(t, New(Options{}).Handler(), `{"n": 4, "steps": 1, "format": "grid"}`)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("status %d, content type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	img, err := png.Decode(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() <= 64 || b.Dy() <= 64 {
		t.Errorf("grid %v, want a 2x2 grid of 32x32 images", b)
	}
}

func TestBadRequests(t *testing.T) {
	h := New(Options{MaxImages: 8, MaxBody: 256}).Handler()
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"not json", `{"model": `, 400, "bad request body"},
		{"empty", ``, 400, "empty request body"},
		{"unknown field", `{"modle": "mnist"}`, 400, `unknown field "modle"`},
		{"two values", `{} {}`, 400, "more than one JSON value"},
		{"wrong type", `{"n": "three"}`, 400, "bad request body"},
		{"too many", `{"n": 9}`, 400, "n must be in 1..8"},
		{"negative steps", `{"steps": -1}`, 400, "steps must be in"},
		{"unknown model", `{"model": "nope"}`, 404, `unknown model "nope"`},
		{"folder refused", `{"model": "/etc"}`, 404, "unknown model"},
		{"not an image model", `{"model": "target"}`, 400, "not an image model"},
		{"class out of range", `{"class": 10}`, 400, "class 10 out of range"},
		{"prompt to class model", `{"prompt": "seven"}`, 400, "give class, not prompt"},
		{"class to text model", `{"model": "emoji", "class": 1}`, 400, "takes a prompt"},
		{"empty prompt", `{"model": "emoji", "prompt": "  "}`, 400, "empty prompt"},
		{"long prompt", `{"model": "emoji", "prompt": "` + strings.Repeat("ab ", 30) + `"}`, 400, "longer than"},
		{"bad sampler", `{"sampler": "rk4", "steps": 1}`, 400, "rk4"},
		{"bad precision", `{"precision": "fp8"}`, 400, "unknown precision"},
		{"bad format", `{"format": "gif"}`, 400, "format must be"},
		{"too big", `{"prompt": "` + strings.Repeat("x", 300) + `"}`, 413, "larger than 256 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(t, h, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error body is not JSON: %q", rec.Body)
			}
			if !strings.Contains(e["error"], tc.want) {
				t.Errorf("error %q does not contain %q", e["error"], tc.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	h := New(Options{}).Handler()
	tests := []struct {
		method, path string
		code         int
		want         string
	}{
		{http.MethodGet, "/healthz", 200, "ok"},
		{http.MethodGet, "/v1/models", 200, `"kind": "class-to-image"`},
		{http.MethodGet, "/v1/images", 405, "use POST"},
		{http.MethodPost, "/v1/models", 405, "use GET"},
		{http.MethodGet, "/v2/nothing", 404, "no endpoint /v2/nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("status %d, body %q; want %d containing %q", rec.Code, rec.Body, tc.code, tc.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/models", nil))
	if !strings.Contains(rec.Body.String(), `"kind": "text-to-image"`) {
		t.Errorf("models list lacks the text-to-image model: %s", rec.Body)
	}
}
