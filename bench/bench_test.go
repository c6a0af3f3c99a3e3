package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// TestMain lets the test binary stand in for the bench when it re-executes
// itself to run a reference.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-reference" {
		os.Exit(referenceMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "-stream-day" {
		os.Exit(streamDayMain(os.Args[2:], os.Stdout))
	}
	os.Exit(m.Run())
}

// TestBenchSmall is the -short variant of make bench, run by make test so
// the bench code cannot rot: every case at tiny sizes, one run per side. It
// asserts that every case ran (or says why it could not) and that the
// table was produced and written; nothing about time.
func TestBenchSmall(t *testing.T) {
	root := testenv.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "medallion")
	build := exec.Command("go", "build", "-o", bin, "./cmd/medallion")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build medallion: %v\n%s", err, out)
	}
	srv := testenv.MinIO(t)
	cfg := defaultConfig()
	cfg.medallion = bin
	cfg.workDir = t.TempDir()
	cfg.runs = 1
	cfg.rowsCSV, cfg.rowsNDJSON, cfg.rowsMirror, cfg.rowsIncr, cfg.rowsMemory, cfg.rowsS3 = 2000, 4000, 2000, 4000, 2000, 2000
	cfg.memoryCase = "256MB"
	cfg.smallObjects = 200
	cfg.growthSmall, cfg.growthLarge, cfg.growthRuns = 20, 200, 2
	cfg.streamBatches = 2*streamDayWindow + 20 // case 12: the first and the last 100 micro-batches, barely apart
	// Case 9 for a few seconds at a low rate: the load generator, serve's
	// metrics and the report run; the rate found says nothing here.
	cfg.streamRates, cfg.streamDuration, cfg.streamBatch, cfg.streamPosters = []int{2000}, 3*time.Second, 500, 4
	cfg.databaseURL = testenv.PostgresURL(t)
	cfg.startMinIO = func(string) (*testenv.MinIOServer, func(), error) { return srv, func() {}, nil }
	var progress bytes.Buffer
	cfg.progress = &progress

	rep, err := run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	if len(rep.results) != len(caseNumbers) {
		t.Fatalf("got %d results, want %d cases", len(rep.results), len(caseNumbers))
	}
	for _, r := range rep.results {
		switch {
		case r.err != nil:
			t.Errorf("case %d failed: %v", r.id, r.err)
		case r.id == 5 && r.skip != "":
			if !strings.HasPrefix(r.skip, "not measured yet") {
				t.Errorf("case %d: skip %q, want a not-measured-yet note", r.id, r.skip)
			}
		case !r.measured():
			t.Errorf("case %d: not measured: %s", r.id, r.summary())
		}
	}
	// The raw output is written as JSON, read back, and the table is
	// rendered from it.
	path, err := rep.record().writeJSON(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := loadRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := rec.Started.Format("2006-01-02") + "-" + rec.Commit + ".json"; filepath.Base(path) != want {
		t.Errorf("results file %s, want %s", filepath.Base(path), want)
	}
	if len(rec.Cases) != len(caseNumbers) || rec.Machine.Nproc < 1 || rec.Machine.DuckDB == "" || rec.Machine.Psql == "" {
		t.Errorf("results file lacks cases or machine facts: %+v", rec.Machine)
	}
	for _, c := range rec.Cases {
		if c.Kind == "stream" || c.Skip != "" {
			continue
		}
		runs := 1
		if c.ID == 11 {
			runs = cfg.growthRuns // case 11 takes its own rounds
		}
		if len(c.Sides) != 2 || len(c.Sides[0].Runs) != runs || len(c.Sides[1].Runs) != runs || c.Sides[0].MedianSec <= 0 {
			t.Errorf("case %d: sides %+v, want ours and the reference with %d runs each", c.ID, c.Sides, runs)
		}
	}
	if nd := rec.nonDefault(); !strings.Contains(nd, "-rows-csv 2000") || !strings.Contains(nd, "-runs 1") || strings.Contains(nd, "-cases") {
		t.Errorf("flags line %q: want the sizes that differ from the defaults, and only those", nd)
	}
	md, err := renderFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| figure | ours: min / median / max | reference: min / median / max | ratio |", "1. CSV to bronze", "9. Stream mode",
		"13. PostgreSQL mirror, incremental", "Case 11, after N landed objects", "12. A day of streaming", "Case 6, the 1% run one step per process", filepath.Base(path), rec.Commit} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	// Writing keeps what is outside the markers.
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(out, []byte("# Benchmarks\n\nintro\n\n"+beginMarker+"\nold table\n"+endMarker+"\n\n## Findings\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMarkdown(out, md); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"intro", "## Findings\n\nkept", "1. CSV to bronze"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, got)
		}
	}
	if bytes.Contains(got, []byte("old table")) {
		t.Errorf("BENCHMARKS.md kept the old table:\n%s", got)
	}
}
