// Command testreport reads `go test -json` on standard input and prints
// what a plain `go test` would (a line per package, the output of failing
// tests, build errors), then a summary of every skipped test with its
// reason. `make test` pipes through it so that a test that did not run is
// said out loud at the end instead of hiding in a verbose log.
//
// It exits 1 when any test or package failed, or when the input held no
// test events at all (go test itself did not run).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output / build-fail events
	Test       string
	Output     string
	Elapsed    float64
}

// skip is a test that did not run, and the last thing it logged.
type skip struct {
	pkg, test, reason string
}

// report gathers the stream's state; out gets everything printed.
type report struct {
	out      io.Writer
	outputs  map[string][]string // package/test -> output lines so far
	skips    []skip
	counts   map[string]int // pass, fail, skip
	failed   bool
	sawEvent bool
}

func main() {
	r := &report{out: os.Stdout, outputs: map[string][]string{}, counts: map[string]int{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	r.summary()
	if r.failed || !r.sawEvent {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event: go vet or the toolchain talking. Pass it on.
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.sawEvent = true
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
	case "build-fail":
		r.failed = true
	case "output":
		if e.Test == "" {
			// Package-level lines: "ok  pkg 1.2s", "FAIL", panics, TestMain output.
			if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS") {
				fmt.Fprint(r.out, e.Output)
			}
			return
		}
		r.outputs[key] = append(r.outputs[key], e.Output)
	case "pass":
		if e.Test != "" {
			r.counts["pass"]++
		}
		delete(r.outputs, key)
	case "skip":
		if e.Test != "" {
			r.counts["skip"]++
			r.skips = append(r.skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(r.outputs[key])})
		}
		delete(r.outputs, key)
	case "fail":
		r.failed = true
		if e.Test != "" {
			r.counts["fail"]++
			for _, l := range r.outputs[key] {
				fmt.Fprint(r.out, l)
			}
		}
		delete(r.outputs, key)
	}
}

// skipReason is the last line a skipped test logged before "--- SKIP",
// without its file:line prefix.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, after, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:len(l)-len(after)], ".go:") {
			return after
		}
		return l
	}
	return "(no reason given)"
}

func (r *report) summary() {
	fmt.Fprintf(r.out, "\n==> tests: %d passed, %d failed, %d skipped\n", r.counts["pass"], r.counts["fail"], r.counts["skip"])
	if len(r.skips) == 0 {
		return
	}
	sort.Slice(r.skips, func(i, j int) bool {
		if r.skips[i].pkg != r.skips[j].pkg {
			return r.skips[i].pkg < r.skips[j].pkg
		}
		return r.skips[i].test < r.skips[j].test
	})
	fmt.Fprintln(r.out, "==> skipped tests (these did not run):")
	for _, s := range r.skips {
		fmt.Fprintf(r.out, "    %s %s: %s\n", s.pkg, s.test, s.reason)
	}
}
