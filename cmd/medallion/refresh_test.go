package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/gold"
	"github.com/medallion-dev/medallion/layers/silver"
)

// refreshMirrors are the mirrors of mirrorPipeline.
var refreshMirrors = map[string]string{"bronze.meters": "meters", "silver.usage_1m": "Usage1m", "gold.usage_ma": "usage_ma", "gold.top_meters": "top_meters"}

// refreshBody is mirrorPipeline with avg_usage computed by agg.
func refreshBody(agg string) string {
	body := strings.NewReplacer("{extra}", "", "{topkey}", "meter_id").Replace(mirrorPipeline)
	return strings.Replace(body, "avg_usage: avg(energy_usage)", "avg_usage: "+agg, 1)
}

// history builds the same history on a lake: two batches, the second
// with late readings.
func (e *mirrorEnv) history() {
	e.t.Helper()
	e.ingest(0, 600, 5, 1)
	e.cli(0, "run")
	e.ingest(3, 600, 7, 2) // 00:03-00:13: behind the watermark up to 00:08
	e.cli(0, "run")
}

// rows renders the rows of a query, sorted, as CSV.
func (e *mirrorEnv) rows(q string) string {
	e.t.Helper()
	code, stdout, stderr := cli(e.t, "", "query", "-f", e.pipeline, "--format", "csv", q+" ORDER BY ALL")
	if code != 0 {
		e.t.Fatalf("query %s: exit %d: %s", q, code, stderr)
	}
	return stdout
}

// dump renders every table a refresh of silver.usage_1m can change.
func (e *mirrorEnv) dump() map[string]string {
	return map[string]string{
		"silver":    e.rows("SELECT * FROM silver.usage_1m"),
		"late":      e.rows(`SELECT * EXCLUDE (bronze_file, source_file) FROM silver._late WHERE "table" = 'silver.usage_1m'`),
		"usage_ma":  e.rows("SELECT * FROM gold.usage_ma"),
		"top":       e.rows("SELECT * FROM gold.top_meters"),
		"exceptOne": e.rows("SELECT count(*) FROM silver.usage_1m"),
	}
}

func sameDump(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s differs:\ngot:\n%.2000s\nwant:\n%.2000s", what, k, got[k], w)
		}
	}
	if strings.Count(want["late"], "\n") < 2 {
		t.Errorf("%s: the history has no late rows: the test does not test them", what)
	}
}

// TestRefreshDownstreamMirror refreshes silver with --downstream on an
// unchanged lake: silver, its late rows, gold and the mirrors come out as
// the incremental history made them, history shows the REFRESH commits,
// and the next run gives what a lake never refreshed gives.
func TestRefreshDownstreamMirror(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_refresh_"), newMirrorEnv(t, "cli_refresh_ref_")
	for _, x := range []*mirrorEnv{e, ref} {
		x.write(refreshBody("avg(energy_usage)"))
		x.history()
	}
	before := e.dump()
	out := e.cli(0, "refresh", "silver.usage_1m", "--downstream")
	for _, want := range []string{"silver.usage_1m: refreshed full", "gold.usage_ma: refreshed in full", "gold.top_meters: refreshed in full", e.schema + ".Usage1m", e.schema + ".usage_ma", e.schema + ".top_meters"} {
		if !strings.Contains(out, want) {
			t.Errorf("refresh output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, e.schema+".meters") {
		t.Errorf("refresh rebuilt the mirror of bronze, which it does not change:\n%s", out)
	}
	sameDump(t, "after the refresh", e.dump(), before)
	e.equal(refreshMirrors)
	if h := e.cli(0, "history", "silver.usage_1m"); !strings.Contains(h, "REFRESH full") {
		t.Errorf("history of silver lacks the refresh:\n%s", h)
	}
	if h := e.cli(0, "history", "gold.usage_ma"); !strings.Contains(h, "REFRESH full") {
		t.Errorf("history of gold lacks the refresh:\n%s", h)
	}
	// The next batch: nothing read twice.
	for _, x := range []*mirrorEnv{e, ref} {
		x.ingest(12, 300, 5, 3)
		x.cli(0, "run")
	}
	sameDump(t, "after the next run", e.dump(), ref.dump())
	e.equal(refreshMirrors)
}

// TestRefreshSilverRange changes an aggregate and refreshes a range of
// windows: the range equals a lake built with the new definition from the
// start, the rest is untouched, and later runs go on with the new one.
func TestRefreshSilverRange(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_refresh_range_"), newMirrorEnv(t, "cli_refresh_rref_")
	e.write(refreshBody("avg(energy_usage)"))
	e.history()
	e.write(refreshBody("max(energy_usage)"))
	ref.write(refreshBody("max(energy_usage)"))
	ref.history()

	e.cli(0, "refresh", "silver.usage_1m", "--from", "2024-01-01 00:05:00", "--to", "2024-01-01T00:09:00Z")
	in := "SELECT * FROM silver.usage_1m WHERE window_start >= TIMESTAMPTZ '2024-01-01 00:05:00+00' AND window_start < TIMESTAMPTZ '2024-01-01 00:09:00+00'"
	out := "SELECT * FROM silver.usage_1m WHERE NOT (window_start >= TIMESTAMPTZ '2024-01-01 00:05:00+00' AND window_start < TIMESTAMPTZ '2024-01-01 00:09:00+00')"
	if got, want := e.rows(in), ref.rows(in); got != want || strings.Count(got, "\n") < 5 {
		t.Errorf("windows in the range:\ngot:\n%s\nwant:\n%s", got, want)
	}
	// Rows outside the range: those of version 2 (before the refresh)
	// outside the range, EXCEPT ALL both ways.
	old := strings.Replace(out, "silver.usage_1m", "silver.usage_1m AT (VERSION => 2)", 1)
	for _, q := range []string{
		"SELECT count(*) AS n FROM (" + out + " EXCEPT ALL " + old + ")",
		"SELECT count(*) AS n FROM (" + old + " EXCEPT ALL " + out + ")",
	} {
		if got := e.rows(q); got != "n\n0\n" {
			t.Errorf("%s: %q, want 0", q, got)
		}
	}
	if got := e.rows("SELECT count(*) AS n FROM (" + old + ")"); got == "n\n0\n" {
		t.Errorf("no rows outside the range: the test does not test them")
	}
	if h := e.cli(0, "history", "silver.usage_1m"); !strings.Contains(h, "REFRESH [2024-01-01T00:05:00Z, 2024-01-01T00:09:00Z)") {
		t.Errorf("history lacks the ranged refresh:\n%s", h)
	}
	// Later runs go on with the new definition.
	for _, x := range []*mirrorEnv{e, ref} {
		x.ingest(12, 300, 5, 3)
		x.cli(0, "run")
	}
	late := "SELECT * FROM silver.usage_1m WHERE window_start >= TIMESTAMPTZ '2024-01-01 00:12:00+00'"
	if got, want := e.rows(late), ref.rows(late); got != want {
		t.Errorf("windows after the next run:\ngot:\n%s\nwant:\n%s", got, want)
	}
	e.equal(refreshMirrors) // the run's incremental mirror took the REFRESH commit
}

// TestRefreshUsage: wrong calls exit 2 (an unknown table names the
// nearest), a bronze table never run has nothing to refresh.
func TestRefreshUsage(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_refresh_usage_")
	e.write(refreshBody("avg(energy_usage)"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"refresh"}, "want exactly one TABLE"},
		{[]string{"refresh", "silver.usage_1mm"}, "did you mean silver.usage_1m?"},
		{[]string{"refresh", "silver.usage_1m", "--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"refresh", "silver.usage_1m", "--from", "2024-01-02", "--to", "2024-01-01"}, "is not before"},
		{[]string{"refresh", "gold.usage_ma", "--from", "2024-01-01"}, "refreshed whole"},
	} {
		if out := e.cli(2, c.args...); !strings.Contains(out, c.want) {
			t.Errorf("%v: %s, want %q", c.args, out, c.want)
		}
	}
	if out := e.cli(1, "refresh", "bronze.meters", "--to", "2024-01-01"); !strings.Contains(out, "run medallion run first") {
		t.Errorf("refresh of a bronze table never run: %s", out)
	}
	// A silver refresh's error names the table once.
	if out := e.cli(1, "refresh", "silver.usage_1m"); !strings.Contains(out, "medallion refresh: silver.usage_1m: refresh: ") || strings.Count(out, "silver.usage_1m") != 1 {
		t.Errorf("refresh of a silver table never run: %s", out)
	}
}

// TestRefreshKilledAndRerun kills `medallion refresh --downstream` (the
// binary built with crash points) inside the replay, between the late and
// the silver commit, and in the gold refresh; the rerun gives the tables of
// the incremental history and equal mirrors.
func TestRefreshKilledAndRerun(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_refresh_kill_")
	e.write(refreshBody("avg(energy_usage)"))
	e.history()
	before := e.dump()
	env := append(os.Environ(), "MEDALLION_LEASE_TTL=3s", "MEDALLION_LEASE_MAX_SKEW=500ms")
	for _, point := range []string{"files-written", silver.PointRefreshReplayed, silver.PointRefreshLateCommitted, gold.CrashFilesWritten} {
		cmd := exec.Command(medallionBin(t), "refresh", "silver.usage_1m", "--downstream", "-f", e.pipeline)
		cmd.Env = append(env, crashpoint.Env+"="+point)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: want death by SIGKILL, got %v\n%s", point, err, out)
		}
		cmd = exec.Command(medallionBin(t), "refresh", "silver.usage_1m", "--downstream", "--wait", "1m", "-f", e.pipeline)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rerun after %s: %v\n%s", point, err, out)
		}
		sameDump(t, "after "+point, e.dump(), before)
		e.equal(refreshMirrors)
	}
}

// TestRefreshWaitsForLease: a refresh takes the table lease `run` and
// `serve` take, so it does not interleave with a run of the table: while
// another runner holds it, the refresh fails naming the holder and
// changes nothing; once released, it goes through.
func TestRefreshWaitsForLease(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_refresh_lease_")
	e.write(refreshBody("avg(energy_usage)"))
	e.ingest(0, 300, 5, 1)
	e.cli(0, "run")
	ctx := context.Background()
	held, err := jobs.AcquireWith(ctx, e.store, jobs.TableLease(layers.TableRef{Layer: layers.Silver, Name: "usage_1m"}), "other-runner", jobs.DefaultLeaseOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := e.cli(1, "refresh", "silver.usage_1m", "--wait", "300ms")
	if !strings.Contains(out, "other-runner") {
		t.Errorf("refresh under another runner's lease: %s, want the holder named", out)
	}
	if h := e.cli(0, "history", "silver.usage_1m"); strings.Contains(h, "REFRESH") {
		t.Errorf("a refresh committed under another runner's lease:\n%s", h)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e.cli(0, "refresh", "silver.usage_1m")
}
