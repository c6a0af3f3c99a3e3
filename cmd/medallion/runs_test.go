package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
)

// runsCmd calls the runs command directly (main.go registers it).
func runsCmd(t *testing.T, pipeline string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, logFormat: "text", logLevel: "warn"}
	err := runRuns(context.Background(), a, append([]string{"-f", pipeline}, args...))
	return stdout.String(), err
}

func TestRunsCommand(t *testing.T) {
	pipeline := initLake(t)
	out, err := runsCmd(t, pipeline)
	if err != nil || !strings.Contains(out, "no runs recorded yet") {
		t.Fatalf("empty history: %q, %v", out, err)
	}

	p, err := config.Load(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.Open(t.Context(), p.Lake, lake.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	for i, r := range []jobs.RunRecord{
		{Job: "bronze", Start: t0, End: t0.Add(2 * time.Second), RowsIn: 100, RowsOut: 98, Result: jobs.ResultOK},
		{Job: "silver", Start: t0.Add(3 * time.Second), End: t0.Add(4 * time.Second), RowsIn: 98, RowsOut: 0, Result: jobs.ResultFailed, Error: "silver.x: watermark column missing\nmore detail"},
		{Job: "gold", Start: t0.Add(4 * time.Second), End: t0.Add(4 * time.Second), Result: jobs.ResultSkipped, Error: "upstream silver failed"},
		{Job: "bronze", Start: t0.Add(time.Minute), End: t0.Add(time.Minute + time.Second), RowsIn: 5, RowsOut: 5, Result: jobs.ResultOK},
	} {
		if err := jobs.RecordRun(t.Context(), store, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	out, err = runsCmd(t, pipeline)
	if err != nil {
		t.Fatal(err)
	}
	want := `job     start                 end                   duration  rows in  rows out  result   error
bronze  2024-01-01T10:01:00Z  2024-01-01T10:01:01Z  1s        5        5         ok       -
gold    2024-01-01T10:00:04Z  2024-01-01T10:00:04Z  0s        0        0         skipped  upstream silver failed
silver  2024-01-01T10:00:03Z  2024-01-01T10:00:04Z  1s        98       0         failed   silver.x: watermark column missing
bronze  2024-01-01T10:00:00Z  2024-01-01T10:00:02Z  2s        100      98        ok       -
`
	if out != want {
		t.Fatalf("runs:\n%s\nwant:\n%s", out, want)
	}
	out, err = runsCmd(t, pipeline, "--limit", "1", "bronze")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "10:01:00Z") {
		t.Fatalf("--limit 1 bronze:\n%s", out)
	}
	var ue *usageError
	if _, err := runsCmd(t, pipeline, "--limit", "-1"); !errors.As(err, &ue) {
		t.Fatalf("--limit -1: %v, want a usage error", err)
	}
	if _, err := runsCmd(t, pipeline, "a", "b"); !errors.As(err, &ue) {
		t.Fatalf("two jobs: %v, want a usage error", err)
	}
}

// TestRunRecordsRuns: `medallion run` writes one record per job to the run
// history, so `medallion runs` and the dashboard show batch runs too; with
// the mirror disabled (no postgres:), the line saying so is not a run.
func TestRunRecordsRuns(t *testing.T) {
	t.Run("mirror", func(t *testing.T) { testRunRecordsRuns(t) })
	t.Run("no-mirror", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "")
		testRunRecordsRuns(t)
	})
}

func testRunRecordsRuns(t *testing.T) {
	pipeline := initLake(t)
	if code, _, stderr := cli(t, "", "run", "-f", pipeline); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	p, err := config.Load(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := jobs.Plan(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := lake.Open(t.Context(), p.Lake, lake.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := jobs.ListRuns(t.Context(), store, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range runs {
		if r.Result != jobs.ResultOK || r.Owner == "" || r.End.Before(r.Start) {
			t.Errorf("run record %+v: want ok, an owner, and an end after the start", r)
		}
		got[r.Job] = true
	}
	want := 0
	for _, j := range plan {
		if j.MirrorDisabled() {
			if got[j.Table.String()] {
				t.Errorf("a run record for %q, the disabled mirror's message", j.Table)
			}
			continue
		}
		want++
		if !got[j.Table.String()] {
			t.Errorf("no run record for %s", j.Table)
		}
	}
	if len(runs) != want {
		t.Errorf("%d run records, want one per job run (%d)", len(runs), want)
	}
}
