// Package models holds Tessera's shipped models, embedded into the binary so
// that the CLI works offline. Each model is a folder with config.json,
// model.safetensors and a model card, README.md.
package models

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

//go:embed */config.json */model.safetensors */README.md
var embedded embed.FS

// Names lists the embedded models.
func Names() []string {
	ents, _ := fs.ReadDir(embedded, ".")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Embedded returns the files of an embedded model.
func Embedded(name string) (fs.FS, bool) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return nil, false
	}
	if _, err := fs.Stat(embedded, name+"/config.json"); err != nil {
		return nil, false
	}
	sub, err := fs.Sub(embedded, name)
	return sub, err == nil
}

// Open resolves a model reference: the name of an embedded model, or a
// folder on disk holding config.json and model.safetensors.
func Open(ref string) (fs.FS, error) {
	if f, ok := Embedded(ref); ok {
		return f, nil
	}
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		if _, err := os.Stat(ref + "/config.json"); err != nil {
			return nil, fmt.Errorf("model folder %s has no config.json", ref)
		}
		return os.DirFS(ref), nil
	}
	return nil, fmt.Errorf("unknown model %q: not an embedded model (%s) nor a folder with config.json", ref, strings.Join(Names(), ", "))
}

// Card returns the model card (README.md) of an embedded model.
func Card(name string) (string, error) {
	b, err := fs.ReadFile(embedded, name+"/README.md")
	if err != nil {
		return "", fmt.Errorf("model %q has no card: %w", name, err)
	}
	return string(b), nil
}

// Summary is a model card's first paragraph after the title, on one line.
func Summary(card string) string {
	var para []string
	for _, l := range strings.Split(card, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" && len(para) > 0:
			return strings.Join(para, " ")
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			para = append(para, l)
		}
	}
	return strings.Join(para, " ")
}
