package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// streamOnlyPipeline is servePipeline without the mirror, for tests that
// need no PostgreSQL.
func streamOnlyPipeline() string {
	body, _, _ := strings.Cut(servePipeline, "mirror:\n")
	return body + "stream:\n  trigger: 300ms\n"
}

// TestServeSaysWhatItDoes: at the default log level serve prints one line
// per micro-batch (rows, time, lag), and the batches' job runs are in the
// lake's run history, so `medallion runs` lists them with their durations.
func TestServeSaysWhatItDoes(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, streamOnlyPipeline())
	srv := startServe(t, l)
	if n := post(srv.base, 0, 20); n != 20 {
		t.Fatalf("posted 20 rows, %d acknowledged", n)
	}
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ micro-batch: \d+ objects? new, [1-9]\d* rows in, \d+ rows out, \d+ jobs in \S+(, lag \S+)?$`)
	waitFor(t, "a micro-batch line with rows", func() bool { return line.MatchString(srv.output()) })
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	out := l.run(t, "runs", "bronze.meters")
	rows := regexp.MustCompile(`(?m)^bronze\.meters +\S+ +\S+ +\d+(\.\d+)?(ms|s|µs) +([1-9]\d*) +\d+ +ok +-$`)
	if !strings.HasPrefix(out, "job  ") || !strings.Contains(out, "duration") || !rows.MatchString(out) {
		t.Errorf("runs after stream mode:\n%s\nserve said:\n%s", out, srv.output())
	}
}

func TestServeLines(t *testing.T) {
	due := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{batchLine(jobs.BatchReport{Objects: 1, Jobs: 4, RowsIn: 120, RowsOut: 30, Duration: 420 * time.Millisecond, Lag: 1234 * time.Millisecond}),
			"micro-batch: 1 object new, 120 rows in, 30 rows out, 4 jobs in 420ms, lag 1.23s"},
		{batchLine(jobs.BatchReport{Objects: 1, Jobs: 4, RowsIn: 8, RowsOut: 8, Duration: 300 * time.Millisecond, Compacted: 21, CompactTime: 85 * time.Millisecond}),
			"micro-batch: 1 object new, 8 rows in, 8 rows out, 4 jobs in 300ms, then compacted 21 small files in 85ms"},
		{batchLine(jobs.BatchReport{Objects: 2, Jobs: 4, Failed: 1, Duration: time.Second, Err: errors.New("silver.x: boom")}),
			"micro-batch: 2 objects new, 0 rows in, 0 rows out, 4 jobs in 1s: 1 failed: silver.x: boom"},
		{scheduledLine(jobs.RunRecord{Job: "silver", Due: due, Start: due.Add(50 * time.Millisecond), End: due.Add(2 * time.Second), RowsIn: 9, RowsOut: 3, Result: "ok"}),
			"scheduled run silver: ok, 9 rows in, 3 rows out in 1.95s, lag 50ms after due 2026-01-01T10:00:00Z"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}

// TestUnknownNames: `runs nope` and `history gold.nope` say the name is
// unknown, with the nearest known one.
func TestUnknownNames(t *testing.T) {
	pipeline := initLake(t)
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"runs", "nope"}, []string{`medallion runs: unknown job "nope"`}},
		{[]string{"runs", "silver.meter_usage_1n"}, []string{`unknown job "silver.meter_usage_1n"`, "did you mean"}},
		{[]string{"history", "gold.nope"}, []string{"medallion history: unknown table gold.nope", "medallion tables"}},
		{[]string{"history", "gold.top_meter"}, []string{"unknown table gold.top_meter", "(did you mean gold.top_meters?)"}},
	} {
		code, _, stderr := cli(t, "", append(tc.args, "-f", pipeline)...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args, code)
		}
		oneLineErr(t, tc.args, stderr, "medallion "+tc.args[0]+": ", tc.wants...)
	}
	// A declared table without commits, and a job without runs, are not unknown.
	if code, _, stderr := cli(t, "", "history", "-f", pipeline, "gold.top_meters"); code != 1 || !strings.Contains(stderr, "has no commits yet") {
		t.Errorf("history gold.top_meters: exit %d, %q", code, stderr)
	}
	if code, stdout, stderr := cli(t, "", "runs", "-f", pipeline, "silver"); code != 0 || !strings.Contains(stdout, "no runs of silver recorded yet") {
		t.Errorf("runs silver: exit %d, %q %q", code, stdout, stderr)
	}
}

// TestServeFirstBatchCountsOnlyNewObjects: objects an earlier `medallion
// run` promoted are listed again by serve's first trigger (the grace
// window), but they are not new: the first micro-batch line says 0 objects
// and 0 rows in, and an object posted afterwards is counted as 1.
func TestServeFirstBatchCountsOnlyNewObjects(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, streamOnlyPipeline())
	for i, name := range []string{"a.ndjson", "b.ndjson"} {
		var body strings.Builder
		for j := 0; j < 5; j++ {
			id := i*5 + j
			fmt.Fprintf(&body, `{"id":%d,"timestamp":"2024-01-01 00:00:%02d","meter_id":"m%d","energy_usage":1.5}`+"\n", id, id, id%2)
		}
		if err := os.WriteFile(filepath.Join(l.dir, name), []byte(body.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		l.run(t, "ingest", "meters", name)
	}
	l.run(t, "run")
	srv := startServe(t, l)
	first := regexp.MustCompile(`(?m)^\S+ (micro-batch: .*)$`)
	waitFor(t, "the first micro-batch line", func() bool { return first.MatchString(srv.output()) })
	got := first.FindStringSubmatch(srv.output())[1]
	if !strings.HasPrefix(got, "micro-batch: 0 objects new, 0 rows in, ") {
		t.Errorf("first micro-batch after a run that promoted both objects: %q, want 0 objects new, 0 rows in\nserve said:\n%s", got, srv.output())
	}
	if n := post(srv.base, 100, 4); n != 4 {
		t.Fatalf("posted 4 rows, %d acknowledged", n)
	}
	next := regexp.MustCompile(`(?m)^\S+ micro-batch: 1 object new, [1-9]\d* rows in, `)
	waitFor(t, "a micro-batch line for the posted object", func() bool { return next.MatchString(srv.output()) })
}
