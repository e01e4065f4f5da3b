package models

import "testing"

func TestSummary(t *testing.T) {
	card := "# emoji\n\nA DiT conditioned\non text.\n\n## Data\nmore"
	if got, want := Summary(card), "A DiT conditioned on text."; got != want {
		t.Fatalf("Summary = %q, want %q", got, want)
	}
}

func TestEveryEmbeddedModelHasACard(t *testing.T) {
	for _, name := range Names() {
		card, err := Card(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if Summary(card) == "" {
			t.Errorf("%s: card has no summary paragraph", name)
		}
		if _, err := Open(name); err != nil {
			t.Errorf("Open(%q): %v", name, err)
		}
	}
	if _, err := Open("no-such-model"); err == nil {
		t.Error("Open of an unknown name succeeded")
	}
}
