package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// mirrorEnv is a pipeline on a local lake whose mirrors write into a
// PostgreSQL schema of its own.
type mirrorEnv struct {
	t        *testing.T
	dir      string
	pipeline string
	store    lake.Store
	schema   string
	conn     *pgx.Conn
	dsn      string
	chunks   int
}

func newMirrorEnv(t *testing.T, prefix string) *mirrorEnv {
	t.Helper()
	e := &mirrorEnv{t: t, dir: t.TempDir(), dsn: testenv.PostgresURL(t)}
	e.schema, e.conn = pgmirrortest.Schema(t, e.dsn, prefix)
	var err error
	if e.store, err = lake.NewLocal(filepath.Join(e.dir, "lake")); err != nil {
		t.Fatal(err)
	}
	e.pipeline = filepath.Join(e.dir, "medallion.yaml")
	return e
}

// write writes the pipeline file: body with {schema} replaced.
func (e *mirrorEnv) write(body string) {
	e.t.Helper()
	yaml := "lake: file://" + filepath.Join(e.dir, "lake") + "\ncache: " + filepath.Join(e.dir, "cache") +
		"\npostgres: \"" + e.dsn + "\"\n" + strings.ReplaceAll(body, "{schema}", e.schema)
	if err := os.WriteFile(e.pipeline, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	markLakeDir(e.t, filepath.Join(e.dir, "lake"))
}

// ingest lands readings of meters m1..m3 every step seconds from start
// (minutes after midnight) for n seconds.
func (e *mirrorEnv) ingest(startMin, seconds, step int, usage float64) {
	e.t.Helper()
	var b strings.Builder
	t0 := time.Date(2024, 1, 1, 0, startMin, 0, 0, time.UTC)
	for s := 0; s < seconds; s += step {
		for m := 1; m <= 3; m++ {
			fmt.Fprintf(&b, `{"timestamp":"%s","meter_id":"m%d","energy_usage":%g}`+"\n",
				t0.Add(time.Duration(s)*time.Second).Format("2006-01-02 15:04:05"), m, usage+float64(m*s%97))
		}
	}
	e.chunks++
	path := filepath.Join(e.dir, fmt.Sprintf("chunk%d.ndjson", e.chunks))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.cli(0, "ingest", "meters", path)
}

// cli runs a command line in-process and checks its exit code.
func (e *mirrorEnv) cli(want int, args ...string) string {
	e.t.Helper()
	args = append(args, "-f", e.pipeline)
	code, stdout, stderr := cli(e.t, "", args...)
	if code != want {
		e.t.Fatalf("medallion %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout + stderr
}

// equal checks every mirrored table against its lake table.
func (e *mirrorEnv) equal(mirrors map[string]string) {
	e.t.Helper()
	for table, target := range mirrors {
		ref, err := layers.ParseTableRef(table, "")
		if err != nil {
			e.t.Fatal(err)
		}
		n := pgmirrortest.AssertEqual(e.t, e.store, jobs.WarehouseRef(ref), warehouse.Latest(), e.conn, e.schema, target)
		if n == 0 {
			e.t.Errorf("%s: no rows", table)
		}
	}
}

const mirrorPipeline = `
sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0}
    dedupe: [meter_id, timestamp]
silver:
  usage_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 2m
    output: update
    group_by: [meter_id]
    aggregates:
      readings: count(*)
      avg_usage: avg(energy_usage)
gold:
  usage_ma:
    from: usage_1m
    partition_by: [meter_id]
    order_by: window_start
    moving_average: {column: avg_usage, rows: 3}
  top_meters:
    sql: SELECT meter_id, avg(avg_usage) AS mean_usage{extra} FROM silver.usage_1m GROUP BY meter_id
mirror:
  - table: bronze.meters
    to: {schema}.meters
    key: [meter_id, timestamp]
  - table: silver.usage_1m
    to: {schema}.Usage1m
    key: [meter_id, window_start]
  - table: gold.usage_ma
    to: {schema}.usage_ma
    key: [meter_id, window_start]
  - table: gold.top_meters
    to: {schema}.top_meters
    key: [{topkey}]
`

// TestMirrorRun: after every `medallion run` each mirrored table equals
// its lake table; rewritten silver windows and recomputed gold rows are
// replaced, not doubled; reruns change nothing; a new column is added; a
// key change is refused with the way out, and --rebuild works while a
// reader queries the table.
func TestMirrorRun(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_mirror_")
	pipeline := func(extra, topkey string) string {
		return strings.NewReplacer("{extra}", extra, "{topkey}", topkey).Replace(mirrorPipeline)
	}
	e.write(pipeline("", "meter_id"))
	mirrors := map[string]string{"bronze.meters": "meters", "silver.usage_1m": "Usage1m", "gold.usage_ma": "usage_ma", "gold.top_meters": "top_meters"}

	e.ingest(0, 20*60, 2, 10) // even seconds of 00:00-00:20
	out := e.cli(0, "run")
	if strings.Count(out, ": first load of v1:") != 4 {
		t.Errorf("first run:\n%s", out)
	}
	e.equal(mirrors)

	// Odd seconds of 00:18-00:20 (windows still open: rewritten in update
	// mode) and new data up to 00:30.
	e.ingest(18, 12*60, 1, 20)
	out = e.cli(0, "run")
	if strings.Count(out, "incremental v1 -> v2") != 4 || !strings.Contains(out, "-> "+e.schema+".Usage1m: incremental v1 -> v2:") {
		t.Errorf("second run:\n%s", out)
	}
	e.equal(mirrors)
	var deleted int
	if err := e.conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{e.schema, "Usage1m"}.Sanitize()+
		" WHERE window_start = '2024-01-01 00:19:00+00' AND readings = 60").Scan(&deleted); err != nil || deleted != 3 {
		t.Errorf("window 00:19 not rewritten to 60 readings per meter: %d rows (%v)", deleted, err)
	}

	for range 3 {
		out = e.cli(0, "mirror")
		if strings.Count(out, "up to date (v2)") != 4 {
			t.Errorf("rerun:\n%s", out)
		}
	}
	e.equal(mirrors)
	if out = e.cli(0, "run", "mirror"); strings.Count(out, "up to date (v2)") != 4 {
		t.Errorf("run mirror:\n%s", out)
	}

	// A new column in the model: added in PostgreSQL.
	e.write(pipeline(", max(readings) AS peak_readings", "meter_id"))
	out = e.cli(0, "run", "gold.top_meters", "mirror."+e.schema+".top_meters")
	if !strings.Contains(out, "added columns peak_readings") {
		t.Errorf("new column:\n%s", out)
	}
	e.equal(mirrors)

	// A changed key: refused, saying what to do.
	e.write(pipeline(", max(readings) AS peak_readings", "meter_id, peak_readings"))
	out = e.cli(1, "mirror", "top_meters")
	if !strings.Contains(out, "its primary key is (meter_id) but the pipeline's key: is now (meter_id, peak_readings); run `medallion mirror --rebuild gold.top_meters`") {
		t.Errorf("key change:\n%s", out)
	}
	// The rest of the pipeline still runs; the failed mirror is reported once.
	out = e.cli(1, "run")
	if strings.Count(out, "FAILED") != 1 || strings.Count(out, "up to date (v2)") != 3 {
		t.Errorf("run with a changed key:\n%s", out)
	}

	// --rebuild while a reader queries the table.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var readErr error
	var reads atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc, err := pgx.Connect(context.Background(), e.dsn)
		if err != nil {
			readErr = err
			return
		}
		defer rc.Close(context.Background())
		for ctx.Err() == nil {
			var n int
			err := rc.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{e.schema, "top_meters"}.Sanitize()).Scan(&n)
			if ctx.Err() != nil {
				return
			}
			if err != nil || n != 3 {
				readErr = fmt.Errorf("reader: %d rows, %v", n, err)
				return
			}
			reads.Add(1)
		}
	}()
	// The reader must be reading before the rebuild starts and still read
	// after it (a loaded machine can take a while to schedule it).
	waitReads := func(min int64) {
		deadline := time.Now().Add(30 * time.Second)
		for reads.Load() < min && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitReads(1)
	out = e.cli(0, "mirror", "--rebuild", "gold.top_meters")
	waitReads(reads.Load() + 1)
	cancel()
	wg.Wait()
	if readErr != nil || reads.Load() < 2 {
		t.Errorf("reader during the rebuild: %d reads, %v", reads.Load(), readErr)
	}
	if !strings.Contains(out, "top_meters: rebuild v") {
		t.Errorf("rebuild:\n%s", out)
	}
	e.equal(mirrors)
	if out = e.cli(0, "run"); strings.Count(out, "up to date") != 4 {
		t.Errorf("after the rebuild:\n%s", out)
	}
}

// TestMirrorDisabled: without postgres:, `medallion run` says so once.
func TestMirrorDisabled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yaml := "lake: file://" + filepath.Join(dir, "lake") + "\npostgres: \"\"\n" +
		strings.NewReplacer("{extra}", "", "{topkey}", "meter_id", "{schema}", "public").Replace(mirrorPipeline)
	path := filepath.Join(dir, "medallion.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	markLakeDir(t, filepath.Join(dir, "lake"))
	code, stdout, stderr := cli(t, "", "run", "-f", path)
	if code != 0 || strings.Count(stdout, "mirror disabled: postgres is not set") != 1 || !strings.HasSuffix(stdout, "mirror disabled: postgres is not set\n") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = cli(t, "", "mirror", "-f", path)
	if code != 1 || !strings.Contains(stderr, "postgres: is not set") {
		t.Errorf("mirror without postgres: exit %d: %s", code, stderr)
	}
	code, _, stderr = cli(t, "", "mirror", "-f", path, "gold.nope")
	if code != 2 || !strings.Contains(stderr, `"gold.nope" is not mirrored`) {
		t.Errorf("unknown table: exit %d: %s", code, stderr)
	}
}

// TestMirrorCrash kills `medallion mirror` (a separate process) with
// SIGKILL during the COPY, before the commit and after it: PostgreSQL is
// left at the old version or the new one, and a rerun catches up.
func TestMirrorCrash(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_crash_")
	body := strings.NewReplacer("{extra}", "", "{topkey}", "meter_id").Replace(mirrorPipeline)
	e.write(body)
	mirrors := map[string]string{"bronze.meters": "meters", "silver.usage_1m": "Usage1m", "gold.usage_ma": "usage_ma", "gold.top_meters": "top_meters"}
	ref := warehouse.TableRef{Schema: "bronze", Name: "meters"}
	for i, point := range []string{pgmirror.CrashDuringCopy, pgmirror.CrashBeforeCommit, pgmirror.CrashAfterCommit, pgmirror.CrashDuringCopy} {
		e.ingest(i*30, 30*60, 1, float64(i)) // 5400 readings: the COPY is under way at the crash
		e.cli(0, "run", "gold")
		before, hadState := pgmirrortest.State(t, e.conn, e.schema, "meters")

		cmd := exec.Command(medallionBin(t), "mirror", "-f", e.pipeline) // built with -tags crashpoints
		cmd.Env = append(os.Environ(), crashpoint.Env+"="+point)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: want death by SIGKILL, got %v\n%s", point, err, out)
		}

		// The first mirror (bronze.meters) was killed: at the old version,
		// or at the new one after the commit.
		after, hasState := pgmirrortest.State(t, e.conn, e.schema, "meters")
		latest := int64(i + 1)
		switch {
		case point == pgmirror.CrashAfterCommit:
			if !hasState || after != latest {
				t.Errorf("%s: state v%d (%v), want v%d", point, after, hasState, latest)
			}
			pgmirrortest.AssertEqual(t, e.store, ref, warehouse.AsOf{Version: latest, HasVersion: true}, e.conn, e.schema, "meters")
		case !hadState:
			var exists bool
			e.conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{e.schema, "meters"}.Sanitize()).Scan(&exists)
			if hasState || exists {
				t.Errorf("%s on the first load: state %v, table exists %v; want neither", point, hasState, exists)
			}
		default:
			if !hasState || after != before {
				t.Errorf("%s: state v%d (%v), want v%d", point, after, hasState, before)
			}
			pgmirrortest.AssertEqual(t, e.store, ref, warehouse.AsOf{Version: before, HasVersion: true}, e.conn, e.schema, "meters")
		}

		out2 := e.cli(0, "mirror")
		t.Logf("after %s:\n%s", point, out2)
		e.equal(mirrors)
		if v, _ := pgmirrortest.State(t, e.conn, e.schema, "meters"); v != latest {
			t.Errorf("after the rerun: state v%d, want v%d", v, latest)
		}
	}
}
