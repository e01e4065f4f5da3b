package main

import (
	"fmt"
	"io"
	iofs "io/fs"

	"tessera/models"
)

func init() {
	register(&command{name: "models", summary: "list the embedded models with their cards", run: runModels})
}

func runModels(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("models", "[--json] [NAME]", "Lists the models embedded in this binary; with NAME, prints that model's card.", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("at most one model name")
	}
	if fs.NArg() == 1 {
		card, err := models.Card(fs.Arg(0))
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, map[string]string{"name": fs.Arg(0), "card": card})
		}
		fmt.Fprint(stdout, card)
		return nil
	}
	type entry struct {
		Name    string `json:"name"`
		Summary string `json:"summary"`
	}
	var list []entry
	for _, n := range models.Names() {
		card, _ := models.Card(n)
		list = append(list, entry{n, models.Summary(card)})
	}
	if *asJSON {
		return writeJSON(stdout, list)
	}
	for _, e := range list {
		fmt.Fprintf(stdout, "%-18s %s\n", e.Name, e.Summary)
	}
	return nil
}

// openWithConfig opens a model reference (models.Open) and reads its
// config.json, which tells the kind of model it is.
func openWithConfig(ref string) (iofs.FS, []byte, error) {
	fsys, err := models.Open(ref)
	if err != nil {
		return nil, nil, err
	}
	raw, err := iofs.ReadFile(fsys, "config.json")
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", ref, err)
	}
	return fsys, raw, nil
}
