package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
)

// TestConfigDocUpToDate fails when docs/config.md is not what the
// generator makes from the config package as it is now.
func TestConfigDocUpToDate(t *testing.T) {
	want, err := generate("../../config", "examples")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../../docs/config.md")
	if err != nil {
		t.Fatalf("read docs/config.md: %v (run `go generate ./internal/config` or `make docs`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/config.md is out of date with internal/config: run `go generate ./internal/config` (or `make docs`) and commit the result")
	}
}

// TestConfigDocCoversEveryKey checks the reference names the keys the
// issue asked about, each with a description, type and section.
func TestConfigDocCoversEveryKey(t *testing.T) {
	b, err := generate("../../config", "examples")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"| `accepted` | list of strings |", "| `regex` | string |", "| `trim` | bool | true |",
		"| `empty_as_null` | bool | true |", "### `sources.<source>.csv`", "| `delimiter` | string |",
		"| `quote` | string |", "| `header` | bool | true |", "| `slide` | duration |",
		"| `as` | string | \"ma\" |", "### `sources.<source>.batch`", "### `sources.<source>.from.files`",
		"| `max_body_bytes` | size |", "## `mirror`", "| [`<column>`](#sourcessourceschemacolumn) | mapping, or a string for `type` |",
		"| `on_error` | string | quarantine | quarantine \\| drop \\| fail |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

// TestConfigDocExamplesLoad loads every example the reference shows: each
// must be a pipeline the loader accepts as it is.
func TestConfigDocExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	env := func(name string) (string, bool) {
		return map[string]string{
			"DATABASE_URL": "postgres://u@127.0.0.1/db", "S3_ACCESS_KEY": "minioadmin",
			"S3_SECRET_KEY": "minioadmin", "MQTT_PASSWORD": "secret",
		}[name], true
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Parse(f, data, env); err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
		})
	}
}

// TestConfigDocRefusesUndocumentedKey checks the generator names a key
// with no doc comment instead of writing an empty description.
func TestConfigDocRefusesUndocumentedKey(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Glob("../../config/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range src {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "types.go" {
			b = bytes.Replace(b, []byte("Listen      string     // optional TCP line listener address for serve (\":9999\")"), []byte("Listen      string"), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = generate(dir, "examples")
	if err == nil || !strings.Contains(err.Error(), "sources.<source>.listen") {
		t.Fatalf("want an error naming sources.<source>.listen, got %v", err)
	}
}
