package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
)

// TestRunProgressLogs: not on a terminal, `run` logs a progress line at
// info every MEDALLION_PROGRESS_EVERY while jobs run; --no-progress and
// the default level keep it quiet.
func TestRunProgressLogs(t *testing.T) {
	pipeline := initLake(t)
	data := filepath.Join(t.TempDir(), "m.ndjson")
	if code, _, stderr := cli(t, "", "generate", "energy", "--rows", "20000", "--out", data); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", data); code != 0 {
		t.Fatal(stderr)
	}
	t.Setenv(envProgressEvery, "10ms")
	code, stdout, stderr := cli(t, "", "run", "-f", pipeline, "--log-level", "info")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	line := regexp.MustCompile(`level=INFO msg=progress jobs_done=\d+/\d+ running="?[a-z_.]+ [0-9.]+m?s`)
	if !line.MatchString(stderr) {
		t.Errorf("no progress line in:\n%s", stderr)
	}
	if strings.Contains(stdout, "progress") {
		t.Errorf("progress on stdout:\n%s", stdout)
	}
	code, _, stderr = cli(t, "", "run", "-f", pipeline, "--log-level", "info", "--no-progress")
	if code != 0 || strings.Contains(stderr, "msg=progress") {
		t.Errorf("--no-progress: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := cli(t, "", "run", "-f", pipeline, "--log-level", "info"); code != 0 {
		t.Errorf("run: %s", stderr)
	}
	t.Setenv(envProgressEvery, "soon")
	if code, _, stderr := cli(t, "", "run", "-f", pipeline); code != 1 || !strings.Contains(stderr, envProgressEvery+`="soon"`) {
		t.Errorf("bad %s: exit %d, %q", envProgressEvery, code, stderr)
	}
}

// TestProgressLine: the terminal status line and how a summary line
// clears it.
func TestProgressLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	var term bytes.Buffer
	p := &progress{out: &term, log: slog.Default(), total: 4, running: map[string]time.Time{}, now: func() time.Time { return now }, start: t0}
	meters := jobs.Job{Table: layers.TableRef{Layer: layers.Bronze, Name: "meters"}}
	p.started(meters)
	now = t0.Add(2 * time.Second)
	p.finished(jobs.Result{Job: meters, RowsIn: 200000})
	p.started(jobs.Job{Table: layers.TableRef{Layer: layers.Silver, Name: "usage"}})
	now = t0.Add(4 * time.Second)
	if got, want := p.line(), "[1/4] silver.usage 2s · 200000 rows in (50000/s) · 4s"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	p.report()
	var out bytes.Buffer
	p.println(&out, "bronze.meters: done")
	if got := term.String(); got != "\r\033[K"+p.line()+"\r\033[K" {
		t.Errorf("terminal got %q", got)
	}
	if out.String() != "bronze.meters: done\n" {
		t.Errorf("stdout got %q", out.String())
	}
}
