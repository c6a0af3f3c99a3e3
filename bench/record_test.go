package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite bench/testdata/render.golden.md")

// TestRenderGolden renders the table from a committed-style results file
// and the run before it, and compares it with the golden markdown.
func TestRenderGolden(t *testing.T) {
	cur, err := loadRun("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := loadRun("testdata/prev.json")
	if err != nil {
		t.Fatal(err)
	}
	got := renderMarkdown(cur, "bench/testdata/run.json", []priorRun{{rec: prev, name: "bench/testdata/prev.json"}})
	golden := filepath.Join("testdata", "render.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("rendered markdown differs from %s (go test ./bench -run TestRenderGolden -update rewrites it):\n%s", golden, got)
	}
}

// TestRenderFirstRun: with no earlier run the table says so instead of
// comparing with anything.
func TestRenderFirstRun(t *testing.T) {
	cur, err := loadRun("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	md := renderMarkdown(cur, "x.json", nil)
	if !strings.Contains(md, "no earlier committed results file") {
		t.Errorf("first run does not say there is nothing to compare with:\n%s", md)
	}
}

// TestPreviousCommitted: the previous run is the latest committed results
// file that started before the one rendered; files git does not hold at
// HEAD do not count.
func TestPreviousCommitted(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	b, err := os.ReadFile("testdata/prev.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	older := strings.Replace(string(b), "2026-12-01T10:00:00Z", "2026-11-20T10:00:00Z", 1)
	later := strings.Replace(string(c), "2026-12-02T11:30:00Z", "2026-12-03T11:30:00Z", 1)
	for name, text := range map[string]string{"2026-11-20-aaaaaaa.json": older, "2026-12-01-aaaaaaa.json": string(b), "2026-12-02-bbbbbbb.json": string(c), "notes.txt": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", ".")
	git("commit", "-q", "-m", "runs")
	// Newer but not committed: ignored as a previous run.
	if err := os.WriteFile(filepath.Join(dir, "2026-12-01-ccccccc.json"), []byte(strings.Replace(string(b), "10:00:00Z", "12:00:00Z", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "2026-12-02-bbbbbbb.json")
	rec, err := loadRun(cur)
	if err != nil {
		t.Fatal(err)
	}
	prevs := previousCommitted(cur, rec)
	if len(prevs) != 2 || filepath.Base(prevs[0].name) != "2026-12-01-aaaaaaa.json" || filepath.Base(prevs[1].name) != "2026-11-20-aaaaaaa.json" {
		t.Fatalf("previous runs %v, want 2026-12-01-aaaaaaa.json then 2026-11-20-aaaaaaa.json", prevs)
	}
	// An uncommitted later run compares with the latest committed one.
	if err := os.WriteFile(filepath.Join(dir, "2026-12-03-ddddddd.json"), []byte(later), 0o644); err != nil {
		t.Fatal(err)
	}
	rec2, err := loadRun(filepath.Join(dir, "2026-12-03-ddddddd.json"))
	if err != nil {
		t.Fatal(err)
	}
	if prevs := previousCommitted(filepath.Join(dir, "2026-12-03-ddddddd.json"), rec2); len(prevs) == 0 || filepath.Base(prevs[0].name) != "2026-12-02-bbbbbbb.json" {
		t.Errorf("previous of an uncommitted run %v, want 2026-12-02-bbbbbbb.json first", prevs)
	}
}

// TestRenderFlag: -render re-renders BENCHMARKS.md from a results file
// without running anything.
func TestRenderFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var stdout, stderr strings.Builder
	if code := runMain(t.Context(), []string{"-render", "testdata/run.json", "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "bench/testdata/run.json") || !strings.Contains(string(got), "`bbbbbbb-dirty`") {
		t.Errorf("rendered file does not name its results file and commit:\n%s", got)
	}
	if code := runMain(t.Context(), []string{"-render", "testdata/missing.json"}, &stdout, &stderr); code != 1 {
		t.Errorf("missing results file: exit %d, want 1", code)
	}
}

// TestSinceTextPerCase: each case is compared with the newest earlier
// committed run that measured it, so a partial run does not hide an older
// full one from the cases it left out.
func TestSinceTextPerCase(t *testing.T) {
	run := func(commit string, ratios map[int]string) *runRecord {
		r := &runRecord{Commit: commit}
		for _, id := range []int{1, 2, 10} {
			if v, ok := ratios[id]; ok {
				r.Cases = append(r.Cases, caseRecord{ID: id, RatioText: v})
			}
		}
		return r
	}
	cur := run("ccccccc", map[int]string{1: "0.60", 2: "0.40", 10: "0.35"})
	partial := run("bbbbbbb", map[int]string{10: "0.29"})
	full := run("aaaaaaa", map[int]string{1: "0.53", 10: "0.20"})
	got := sinceText(cur, []priorRun{{rec: partial, name: "b.json"}, {rec: full, name: "a.json"}})
	for _, want := range []string{
		"case 10 0.29 -> 0.35 (from [`b.json`](b.json), commit `bbbbbbb`)",
		"case 1 0.53 -> 0.60 (from [`a.json`](a.json), commit `aaaaaaa`)",
		"not measured in any earlier committed run: case 2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("since text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "0.20") {
		t.Errorf("case 10 compared with the older run too:\n%s", got)
	}
}

// TestBinaryCommit: the commit a `medallion version` line names, in the
// forms make build and a plain go build stamp.
func TestBinaryCommit(t *testing.T) {
	for _, tc := range []struct {
		line, want string
		ok         bool
	}{
		{"medallion 0878993 (go1.26.8, linux/amd64)", "0878993", true},
		{"medallion 0878993-dirty (go1.26.8, linux/amd64)", "0878993-dirty", true},
		{"medallion dev-0878993abcde (go1.26.8, linux/amd64, committed 2026-12-07T19:00:00Z)", "0878993", true},
		{"medallion dev-0878993abcde-dirty (go1.26.8, linux/amd64)", "0878993-dirty", true},
		{"medallion v1.2.0-3-g0878993 (go1.26.8, linux/amd64)", "v1.2.0-3-g0878993", true},
		{"medallion dev (go1.26.8, linux/amd64)", "", false},
		{"", "", false},
		{"bash: medallion: not found", "", false},
	} {
		got, ok := binaryCommit(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("binaryCommit(%q) = %q, %v; want %q, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
