// Command configdoc writes docs/config.md, the reference of medallion.yaml,
// from the config package itself: the keys its decoder reads (the
// field{"key", ...} lists of internal/config), the type of reader each key
// uses, and the doc comments of the struct fields each key fills. The
// reference therefore cannot drift from what the loader accepts; a test
// fails when the committed file is not what this command makes.
//
// Usage (from internal/config, as go generate runs it):
//
//	go run ../tools/configdoc -config . -out ../../docs/config.md
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("config", "internal/config", "directory of the config package")
	out := flag.String("out", "docs/config.md", "file to write")
	examples := flag.String("examples", "", "directory of <key>.yaml examples (default: examples beside this command)")
	flag.Parse()
	if *examples == "" {
		*examples = filepath.Join(*dir, "..", "tools", "configdoc", "examples")
	}
	b, err := generate(*dir, *examples)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
	if old, err := os.ReadFile(*out); err == nil && bytes.Equal(old, b) {
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

// generate returns the reference for the config package in dir.
func generate(dir, examples string) ([]byte, error) {
	if err := mustExist(dir); err != nil {
		return nil, err
	}
	w, err := load(dir)
	if err != nil {
		return nil, err
	}
	root, err := w.walk()
	if err != nil {
		return nil, err
	}
	return render(w, root, examples)
}
