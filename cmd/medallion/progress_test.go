package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	line := regexp.MustCompile(`level=INFO msg=progress job=(bronze|silver|gold)\.[a-z_]+ jobs_done=\d+/\d+ step=[a-z]+ done=`)
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

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// testProgress is a progress that is not started (no ticker): tests call
// report themselves, with the clock c.
func testProgress(out io.Writer, log *slog.Logger, total int, c *fakeClock) *progress {
	return &progress{out: out, log: log, total: total, running: map[string]*jobProgress{}, now: c.now, start: c.t,
		width: func() int { return 0 }}
}

var (
	meters = jobs.Job{Table: layers.TableRef{Layer: layers.Bronze, Name: "meters"}}
	usage  = jobs.Job{Table: layers.TableRef{Layer: layers.Silver, Name: "usage"}}
)

// TestProgressLogLines: not on a terminal, each report is one info line
// per running job with what it is doing, bytes or files done of the
// total, the percentage, the rate, rows, elapsed time and the estimate.
func TestProgressLogLines(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	p := testProgress(nil, log, 3, c)
	p.started(meters)
	p.advanced(meters.Table, layers.Progress{Step: "typing", Unit: layers.UnitBytes, Total: 400 << 20})
	c.t = c.t.Add(5 * time.Second)
	p.advanced(meters.Table, layers.Progress{Step: "typing", Unit: layers.UnitBytes, Done: 100 << 20, Total: 400 << 20, Rows: 500000})
	p.report()
	p.started(usage)
	c.t = c.t.Add(5 * time.Second)
	p.advanced(meters.Table, layers.Progress{Step: "writing", Unit: layers.UnitBytes, Done: 200 << 20, Total: 400 << 20, Rows: 1000000})
	p.advanced(usage.Table, layers.Progress{Step: "reading", Unit: layers.UnitFiles, Done: 1, Total: 4})
	p.report()
	want := `level=INFO msg=progress job=bronze.meters jobs_done=0/3 step=typing done="100.0 MiB" total="400.0 MiB" pct=25 rate="20.0 MiB/s" rows=500000 elapsed=5s eta=15s
level=INFO msg=progress job=bronze.meters jobs_done=0/3 step=writing done="200.0 MiB" total="400.0 MiB" pct=50 rate="20.0 MiB/s" rows=1000000 elapsed=10s eta=10s
level=INFO msg=progress job=silver.usage jobs_done=0/3 step=reading done="1 files" total="4 files" pct=25 rate="0.2 files/s" elapsed=5s eta=15s
`
	if logs.String() != want {
		t.Errorf("log lines\n--- got\n%s--- want\n%s", logs.String(), want)
	}
	logs.Reset()
	p.finished(jobs.Result{Job: meters, RowsIn: 1000000})
	p.finished(jobs.Result{Job: usage})
	p.report()
	if logs.Len() != 0 {
		t.Errorf("a line with no job running: %s", logs.String())
	}
}

// TestProgressLogsPeriodically: started on a writer that is not a
// terminal, progress logs a line per running job every interval until it
// is closed, and none on the writer itself.
func TestProgressLogsPeriodically(t *testing.T) {
	var stderr bytes.Buffer
	lines := make(chan string, 100)
	log := slog.New(slog.NewTextHandler(lineWriter(lines), nil))
	p := newProgress(&stderr, log, 1, time.Millisecond)
	p.started(meters)
	p.advanced(meters.Table, layers.Progress{Step: "typing", Unit: layers.UnitBytes, Done: 10, Total: 100, Rows: 7})
	// A tick may come between started and advanced: that line has no
	// figures yet.
	full := 0
	for n := 0; full < 3; n++ {
		l := <-lines
		switch {
		case strings.Contains(l, `msg=progress job=bronze.meters jobs_done=0/1 step=typing done="10 B" total="100 B" pct=10 rate=`) && strings.Contains(l, "rows=7"):
			full++
		case n > 0 || !strings.Contains(l, "msg=progress job=bronze.meters jobs_done=0/1 elapsed="):
			t.Fatalf("line %q", l)
		}
	}
	p.close()
	if stderr.Len() != 0 {
		t.Errorf("status line on a writer that is not a terminal: %q", stderr.String())
	}
}

// lineWriter sends each write (one log line) to ch, dropping it when ch
// is full.
type lineWriter chan string

func (w lineWriter) Write(b []byte) (int, error) {
	select {
	case w <- string(b):
	default:
	}
	return len(b), nil
}

// TestProgressLine: the terminal status line, redrawn in place with a
// carriage return, and how a summary line clears it.
func TestProgressLine(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var term bytes.Buffer
	p := testProgress(&term, slog.Default(), 4, c)
	p.started(meters)
	c.t = c.t.Add(2 * time.Second)
	if got, want := p.line(c.t), "[0/4] bronze.meters 2s · 2s"; got != want {
		t.Errorf("line before any report %q, want %q", got, want)
	}
	p.advanced(meters.Table, layers.Progress{Step: "typing", Unit: layers.UnitBytes, Done: 30 << 20, Total: 120 << 20, Rows: 250000})
	p.started(usage)
	c.t = c.t.Add(time.Second)
	p.advanced(usage.Table, layers.Progress{Step: "reading", Unit: layers.UnitFiles, Done: 2, Total: 8})
	c.t = c.t.Add(time.Second)
	want := "[0/4] bronze.meters typing 30.0 MiB/120.0 MiB 25% 7.5 MiB/s 250000 rows 4s ETA 12s | silver.usage reading 2/8 files 1.0 files/s 2s ETA 6s · 4s"
	if got := p.line(c.t); got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	p.report()
	var out bytes.Buffer
	p.println(&out, "bronze.meters: done")
	if got := term.String(); got != "\r\033[K"+want+"\r\033[K" {
		t.Errorf("terminal got %q", got)
	}
	if out.String() != "bronze.meters: done\n" {
		t.Errorf("stdout got %q", out.String())
	}
	// A log line clears the status line first; the next redraw draws it again.
	term.Reset()
	p.report()
	fmt.Fprint(p.logsTo(&term), "level=WARN msg=x\n")
	if got := term.String(); got != "\r\033[K"+want+"\r\033[Klevel=WARN msg=x\n" {
		t.Errorf("terminal with a log line got %q", got)
	}
	if w := testProgress(nil, nil, 1, c).logsTo(&out); w != io.Writer(&out) {
		t.Errorf("not on a terminal, log lines go through %T", w)
	}
	if got := fitWidth(want, 40); got != want[:38]+"…" {
		t.Errorf("fitWidth: %q", got)
	}
	if got := fitWidth("short", 40); got != "short" {
		t.Errorf("fitWidth: %q", got)
	}
}

// TestProgressNeverBackwards: whatever a job reports (a retried attempt
// counting again from zero, a total that shrinks, a report with no total),
// what is shown never goes backwards and never exceeds the total.
func TestProgressNeverBackwards(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := testProgress(nil, nil, 1, c)
	p.started(meters)
	reports := []layers.Progress{
		{Unit: layers.UnitBytes, Done: 0, Total: 1000},
		{Unit: layers.UnitBytes, Done: 400, Total: 1000, Rows: 40},
		{Unit: layers.UnitBytes, Done: 100, Total: 1000, Rows: 10}, // a retry counting again
		{Unit: layers.UnitBytes, Done: 500, Total: 450, Rows: 50},  // a replan that found less left
		{Unit: layers.UnitBytes, Done: 600},                        // no total
		{Unit: layers.UnitBytes, Done: 2000, Total: 900},
		{Unit: layers.UnitBytes, Done: -5, Total: 900},
	}
	var prev figures
	for i, r := range reports {
		p.advanced(meters.Table, r)
		c.t = c.t.Add(time.Second)
		f := figuresOf(p.running["bronze.meters"], c.t)
		if f.done < prev.done || f.rows < prev.rows {
			t.Errorf("report %d (%+v): shown %+v went back from %+v", i, r, f, prev)
		}
		if f.total > 0 && f.done > f.total {
			t.Errorf("report %d (%+v): shown %d above total %d", i, r, f.done, f.total)
		}
		if f.etaKnown && f.eta < 0 {
			t.Errorf("report %d: negative estimate %v", i, f.eta)
		}
		prev = f
	}
	if prev.done != 2000 || prev.total != 2000 {
		t.Errorf("last shown %d of %d, want 2000 of 2000", prev.done, prev.total)
	}
	// Nothing done yet, or all: no rate, no estimate.
	p.started(usage)
	p.advanced(usage.Table, layers.Progress{Step: "reading", Unit: layers.UnitFiles, Total: 3})
	if got, want := jobText("silver.usage", figuresOf(p.running["silver.usage"], c.t.Add(time.Second))), "silver.usage reading 0/3 files 1s"; got != want {
		t.Errorf("nothing done: %q, want %q", got, want)
	}
	p.advanced(usage.Table, layers.Progress{Step: "aggregating", Unit: layers.UnitFiles, Done: 3, Total: 3, Rows: 9})
	if got, want := jobText("silver.usage", figuresOf(p.running["silver.usage"], c.t.Add(time.Second))), "silver.usage aggregating 3/3 files 9 rows 1s"; got != want {
		t.Errorf("all done: %q, want %q", got, want)
	}
	p.finished(jobs.Result{Job: usage})
	// A report for a job that is not running is ignored.
	p.advanced(usage.Table, layers.Progress{Unit: layers.UnitFiles, Done: 3})
	if _, ok := p.running["silver.usage"]; ok {
		t.Errorf("a report started a job")
	}
}

// TestIngestProgress: an ingest is one job whose total is the bytes of the
// files given (stdin left out) and whose count is the files landed.
func TestIngestProgress(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.ndjson"), filepath.Join(dir, "b.ndjson")
	if err := os.WriteFile(a, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, make([]byte, 50), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := testProgress(nil, nil, 3, c)
	track := newIngestProgress(p, "meters", []ingestInput{{path: a}, {path: "-"}, {path: b}})
	read := track.reading()
	read(60)
	c.t = c.t.Add(time.Second)
	if got, want := p.line(c.t), "[0/3] ingest meters landing 60 B/150 B 40% 60 B/s 1s ETA 2s · 1s"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	read(100)
	track.landed()
	track.reading()(0)
	track.landed()
	track.reading()(50)
	track.landed()
	if got, want := p.line(c.t), "[3/3] ingest meters landing 150 B/150 B 100% 1s · 1s"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	var none *ingestProgress
	if none.reading() != nil {
		t.Errorf("no progress: a reading callback")
	}
	none.landed()
}
