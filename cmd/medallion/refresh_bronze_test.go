package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/layers/bronze"
)

// bronzeRefreshBody is mirrorPipeline with a device column whose
// accepted values are accepted, and a second source (plugs) sharing
// bronze._quarantine.
func bronzeRefreshBody(accepted string) string {
	body := refreshBody("avg(energy_usage)")
	body = strings.Replace(body, "      energy_usage: {type: double, min: 0}\n",
		"      energy_usage: {type: double, min: 0}\n      device:       {type: string, accepted: ["+accepted+"]}\n", 1)
	return strings.Replace(body, "silver:\n", `  plugs:
    format: ndjson
    schema:
      id:    {type: int64, required: true}
      watts: {type: double}
silver:
`, 1)
}

var (
	bronzeBefore = bronzeRefreshBody("desktop, mobile")
	bronzeAfter  = bronzeRefreshBody("desktop, mobile, smart_tv")
)

// bronzeChunk is one NDJSON object of meter readings from startMin for
// minutes minutes, every 10 s; every seventh reading is from a smart_tv.
// dup repeats the first reading of the chunk as a smart_tv reading at the
// end (a duplicate key once smart_tv passes).
func bronzeChunk(startMin, minutes int, dup bool) string {
	var b strings.Builder
	t0 := time.Date(2024, 1, 1, 0, startMin, 0, 0, time.UTC)
	n := 0
	line := func(ts time.Time, m int, dev string, usage float64) {
		fmt.Fprintf(&b, `{"timestamp":"%s","meter_id":"m%d","energy_usage":%g,"device":"%s"}`+"\n", ts.Format("2006-01-02 15:04:05"), m, usage, dev)
	}
	for s := 0; s < minutes*60; s += 10 {
		for m := 1; m <= 3; m++ {
			n++
			dev := []string{"desktop", "mobile"}[n%2]
			if n%7 == 0 {
				dev = "smart_tv"
			}
			line(t0.Add(time.Duration(s)*time.Second), m, dev, float64(m*s%97))
		}
	}
	if dup {
		line(t0, 1, "smart_tv", 999)
	}
	return b.String()
}

// bronzeHistory lands two chunks of meters and one of plugs (one bad row)
// and runs after each.
func (e *mirrorEnv) bronzeHistory() {
	e.t.Helper()
	e.ingestLines("meters", bronzeChunk(0, 6, false))
	e.ingestLines("plugs", "{\"id\":1,\"watts\":3.5}\n{\"id\":\"x\",\"watts\":1}\n")
	e.cli(0, "run")
	e.ingestLines("meters", bronzeChunk(4, 6, true)) // overlaps 00:04-00:06: late rows
	e.cli(0, "run")
}

// Queries comparing bronze lakes built at different times: lineage columns
// that name the object or its landing time are left out.
const (
	qBronzeRows = "SELECT * EXCLUDE (_source_file, _ingested_at, _batch_id) FROM bronze.meters"
	qMetersQ    = "SELECT line, column_name, reason, raw FROM bronze._quarantine WHERE source = 'meters'"
	qPlugsQ     = "SELECT * FROM bronze._quarantine WHERE source = 'plugs'"
)

// exceptAll checks that query q gives the same rows, EXCEPT ALL both ways,
// on lake e and on lake ref (the queries run on each; results compared as
// sorted CSV, which is EXCEPT ALL both ways on the rendered rows).
func exceptAll(t *testing.T, what string, e, ref *mirrorEnv, q string) {
	t.Helper()
	got, want := e.rows(q), ref.rows(q)
	if got != want {
		t.Errorf("%s: %s differs:\ngot:\n%.3000s\nwant:\n%.3000s", what, q, got, want)
	}
	if strings.Count(want, "\n") < 2 {
		t.Errorf("%s: %s has no rows: the test does not test it", what, q)
	}
}

// TestRefreshBronzeAfterRuleFix: smart_tv was refused, then added to
// accepted:; `refresh bronze.meters` re-types every consumed object: the
// smart_tv readings move from the quarantine to bronze once (a rerun
// changes nothing), bronze and the source's quarantine rows equal a lake
// built with the new rules from scratch, and the other source's
// quarantine rows are untouched.
func TestRefreshBronzeAfterRuleFix(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_brefresh_fix_"), newMirrorEnv(t, "cli_brefresh_fixref_")
	e.write(bronzeBefore)
	e.bronzeHistory()
	ref.write(bronzeAfter)
	ref.bronzeHistory()
	if got := e.rows("SELECT count(*) AS n FROM bronze._quarantine WHERE source = 'meters' AND raw LIKE '%smart_tv%'"); got == "n\n0\n" {
		t.Fatalf("nothing quarantined before the fix: the test does not test it")
	}
	plugs := e.rows(qPlugsQ)
	e.write(bronzeAfter)
	for i := 0; i < 2; i++ { // the second refresh changes nothing
		out := e.cli(0, "refresh", "bronze.meters")
		if !strings.Contains(out, "bronze.meters: refreshed full from 2 raw objects") {
			t.Errorf("refresh %d: %s", i, out)
		}
		exceptAll(t, "bronze", e, ref, qBronzeRows)
		if got, want := e.rows(qMetersQ), ref.rows(qMetersQ); got != want {
			t.Errorf("refresh %d: quarantine rows of meters:\ngot:\n%s\nwant:\n%s", i, got, want)
		}
		if got := e.rows("SELECT count(*) AS n FROM bronze._quarantine WHERE source = 'meters' AND raw LIKE '%smart_tv%'"); got != "n\n0\n" {
			t.Errorf("refresh %d: stale smart_tv rows left in the quarantine: %s", i, got)
		}
		if got := e.rows(qPlugsQ); got != plugs {
			t.Errorf("refresh %d: the quarantine rows of plugs changed:\ngot:\n%s\nwant:\n%s", i, got, plugs)
		}
	}
	// Moved once: every smart_tv reading is in bronze once (the duplicate
	// key kept once).
	if got := e.rows("SELECT count(*) AS n FROM (SELECT meter_id, \"timestamp\" FROM bronze.meters GROUP BY ALL HAVING count(*) > 1)"); got != "n\n0\n" {
		t.Errorf("duplicate keys in bronze after the refresh: %s", got)
	}
	if h := e.cli(0, "history", "bronze.meters"); !strings.Contains(h, "REFRESH") {
		t.Errorf("history of bronze lacks the refresh:\n%s", h)
	}
}

// TestRefreshBronzeRange: after the rule fix, `refresh bronze.meters
// --from --to` replaces only the rows whose timestamp lies in the range:
// there bronze equals a lake built with the new rules and the smart_tv
// readings have left the quarantine; every bronze and quarantine row
// outside the range is exactly as it was (lineage included), and the
// other source's quarantine rows are untouched.
func TestRefreshBronzeRange(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_brefresh_range_"), newMirrorEnv(t, "cli_brefresh_rangeref_")
	e.write(bronzeBefore)
	e.bronzeHistory()
	ref.write(bronzeAfter)
	ref.bronzeHistory()
	plugs := e.rows(qPlugsQ)
	const (
		inB  = "\"timestamp\" >= TIMESTAMPTZ '2024-01-01 00:03:00+00' AND \"timestamp\" < TIMESTAMPTZ '2024-01-01 00:07:00+00'"
		inQ  = "json_extract_string(raw, '$.timestamp') >= '2024-01-01 00:03:00' AND json_extract_string(raw, '$.timestamp') < '2024-01-01 00:07:00'"
		outB = "SELECT * FROM bronze.meters WHERE NOT (" + inB + ")"
		outQ = "SELECT * FROM bronze._quarantine WHERE source = 'meters' AND NOT (" + inQ + ")"
	)
	beforeB, beforeQ := e.rows(outB), e.rows(outQ)
	if !strings.Contains(beforeQ, "smart_tv") || strings.Count(beforeB, "\n") < 5 {
		t.Fatalf("no rows outside the range: the test does not test them")
	}
	staleQ := "SELECT count(*) AS n FROM bronze._quarantine WHERE source = 'meters' AND raw LIKE '%smart_tv%' AND " + inQ
	if got := e.rows(staleQ); got == "n\n0\n" {
		t.Fatalf("no smart_tv reading quarantined in the range: the test does not test it")
	}
	e.write(bronzeAfter)
	out := e.cli(0, "refresh", "bronze.meters", "--from", "2024-01-01 00:03:00", "--to", "2024-01-01T00:07:00Z")
	if !strings.Contains(out, "bronze.meters: refreshed [2024-01-01T00:03:00Z, 2024-01-01T00:07:00Z) from 2 raw objects") {
		t.Errorf("refresh output: %s", out)
	}
	if got := e.rows(outB); got != beforeB {
		t.Errorf("bronze rows outside the range changed:\ngot:\n%.2000s\nwant:\n%.2000s", got, beforeB)
	}
	if got := e.rows(outQ); got != beforeQ {
		t.Errorf("quarantine rows outside the range changed:\ngot:\n%.2000s\nwant:\n%.2000s", got, beforeQ)
	}
	exceptAll(t, "bronze in the range", e, ref, qBronzeRows+" WHERE "+inB)
	if got, want := e.rows(qMetersQ+" AND "+inQ), ref.rows(qMetersQ+" AND "+inQ); got != want {
		t.Errorf("quarantine rows in the range:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if got := e.rows(staleQ); got != "n\n0\n" {
		t.Errorf("stale smart_tv rows in the range left in the quarantine: %s", got)
	}
	if got := e.rows(qPlugsQ); got != plugs {
		t.Errorf("the quarantine rows of plugs changed:\ngot:\n%s\nwant:\n%s", got, plugs)
	}
	if got := e.rows("SELECT count(*) AS n FROM (SELECT meter_id, \"timestamp\" FROM bronze.meters GROUP BY ALL HAVING count(*) > 1)"); got != "n\n0\n" {
		t.Errorf("duplicate keys in bronze after the refresh: %s", got)
	}
	if h := e.cli(0, "history", "bronze.meters"); !strings.Contains(h, "REFRESH") {
		t.Errorf("history of bronze lacks the refresh:\n%s", h)
	}
	if out := e.cli(1, "refresh", "bronze.plugs", "--from", "2024-01-01"); !strings.Contains(out, "no timestamp column") {
		t.Errorf("range refresh of a source without a timestamp: %s", out)
	}
}

// TestRefreshBronzeKilledAndRerun kills `medallion refresh bronze.meters`
// (the binary built with crash points) while it types into the shadow
// table, once the shadow is complete, and between the quarantine and the
// bronze commit; each rerun gives the lake built with the new rules.
func TestRefreshBronzeKilledAndRerun(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_brefresh_kill_"), newMirrorEnv(t, "cli_brefresh_killref_")
	e.write(bronzeBefore)
	e.bronzeHistory()
	ref.write(bronzeAfter)
	ref.bronzeHistory()
	e.write(bronzeAfter)
	plugs := e.rows(qPlugsQ)
	env := append(os.Environ(), "MEDALLION_LEASE_TTL=3s", "MEDALLION_LEASE_MAX_SKEW=500ms")
	// A range refresh killed between its two commits, then rerun.
	rng := []string{"--from", "2024-01-01 00:03:00", "--to", "2024-01-01 00:07:00"}
	cmd := exec.Command(medallionBin(t), append([]string{"refresh", "bronze.meters", "-f", e.pipeline}, rng...)...)
	cmd.Env = append(env, crashpoint.Env+"="+bronze.PointRefreshQuarantined)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("range: want death by SIGKILL, got %v\n%s", err, out)
	}
	cmd = exec.Command(medallionBin(t), append([]string{"refresh", "bronze.meters", "--wait", "1m", "-f", e.pipeline}, rng...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("range rerun: %v\n%s", err, out)
	}
	inB := " WHERE \"timestamp\" >= TIMESTAMPTZ '2024-01-01 00:03:00+00' AND \"timestamp\" < TIMESTAMPTZ '2024-01-01 00:07:00+00'"
	exceptAll(t, "range rerun", e, ref, qBronzeRows+inB)
	if got := e.rows("SELECT count(*) AS n FROM (SELECT meter_id, \"timestamp\" FROM bronze.meters GROUP BY ALL HAVING count(*) > 1)"); got != "n\n0\n" {
		t.Errorf("range rerun: duplicate keys in bronze: %s", got)
	}
	for _, point := range []string{"bronze.after-quarantine", "bronze.after-commit", bronze.PointRefreshShadowed, bronze.PointRefreshQuarantined} {
		cmd := exec.Command(medallionBin(t), "refresh", "bronze.meters", "-f", e.pipeline)
		cmd.Env = append(env, crashpoint.Env+"="+point)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s: want death by SIGKILL, got %v\n%s", point, err, out)
		}
		cmd = exec.Command(medallionBin(t), "refresh", "bronze.meters", "--wait", "1m", "-f", e.pipeline)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rerun after %s: %v\n%s", point, err, out)
		}
		exceptAll(t, "after "+point, e, ref, qBronzeRows)
		if got, want := e.rows(qMetersQ), ref.rows(qMetersQ); got != want {
			t.Errorf("after %s: quarantine rows of meters:\ngot:\n%s\nwant:\n%s", point, got, want)
		}
		if got := e.rows(qPlugsQ); got != plugs {
			t.Errorf("after %s: the quarantine rows of plugs changed:\ngot:\n%s\nwant:\n%s", point, got, plugs)
		}
	}
}

// TestRefreshBronzeSilverRefuses: after a bronze refresh, a silver run
// stops with the way forward instead of reading the replaced rows again;
// `refresh bronze.meters --downstream` then rebuilds silver over the
// refreshed bronze, refreshes gold and the mirrors, and every table equals
// a lake built with the new rules in one run.
func TestRefreshBronzeSilverRefuses(t *testing.T) {
	t.Parallel()
	e, ref := newMirrorEnv(t, "cli_brefresh_silver_"), newMirrorEnv(t, "cli_brefresh_silref_")
	e.write(bronzeBefore)
	e.bronzeHistory()
	e.write(bronzeAfter)
	e.cli(0, "refresh", "bronze.meters")
	e.ingestLines("meters", bronzeChunk(12, 2, false))
	out := e.cli(1, "run")
	if !strings.Contains(out, "medallion refresh silver.usage_1m") || !strings.Contains(out, "--downstream") {
		t.Errorf("silver run after a bronze refresh: %s", out)
	}
	out = e.cli(0, "refresh", "bronze.meters", "--downstream")
	for _, want := range []string{"bronze.meters: refreshed full", "silver.usage_1m: rebuilt full", "gold.usage_ma: refreshed in full", "gold.top_meters: refreshed in full", e.schema + ".meters", e.schema + ".Usage1m"} {
		if !strings.Contains(out, want) {
			t.Errorf("refresh --downstream output lacks %q:\n%s", want, out)
		}
	}
	// The reference: the same objects, the new rules, one run.
	ref.write(bronzeAfter)
	ref.ingestLines("meters", bronzeChunk(0, 6, false))
	ref.ingestLines("plugs", "{\"id\":1,\"watts\":3.5}\n{\"id\":\"x\",\"watts\":1}\n")
	ref.ingestLines("meters", bronzeChunk(4, 6, true))
	ref.ingestLines("meters", bronzeChunk(12, 2, false))
	ref.cli(0, "run")
	exceptAll(t, "bronze", e, ref, qBronzeRows)
	for _, q := range []string{"SELECT * FROM silver.usage_1m", "SELECT * FROM gold.usage_ma", "SELECT * FROM gold.top_meters"} {
		exceptAll(t, "downstream", e, ref, q)
	}
	// The one run of the reference finds no row late; the rebuild, one
	// pass too, leaves none of the table's late rows either.
	lateQ := `SELECT count(*) AS n FROM silver._late WHERE "table" = 'silver.usage_1m'`
	for _, x := range []*mirrorEnv{e, ref} {
		if code, stdout, _ := cli(t, "", "query", "-f", x.pipeline, "--format", "csv", lateQ); code == 0 && stdout != "n\n0\n" {
			t.Errorf("late rows of silver.usage_1m: %s", stdout)
		}
	}
	e.equal(refreshMirrors)
	// The next runs go on incrementally, nothing read twice.
	for _, x := range []*mirrorEnv{e, ref} {
		x.ingestLines("meters", bronzeChunk(15, 2, false))
		x.cli(0, "run")
	}
	exceptAll(t, "after the next run", e, ref, "SELECT * FROM silver.usage_1m")
	e.equal(refreshMirrors)
}

// TestRefreshBronzeSchemaChange: a renamed column stops a run with the
// hint to refresh the bronze table; the refresh then rebuilds it from the
// raw objects with the new column, which every row has.
func TestRefreshBronzeSchemaChange(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_brefresh_schema_")
	e.write(bronzeBefore)
	e.bronzeHistory()
	renamed := strings.Replace(bronzeBefore, "watts: {type: double}", "power: {type: double, from: watts}", 1)
	e.write(renamed)
	e.ingestLines("plugs", "{\"id\":2,\"watts\":7}\n")
	if out := e.cli(1, "run", "bronze.plugs"); !strings.Contains(out, "medallion refresh bronze.plugs") {
		t.Errorf("run after a rename: %s", out)
	}
	out := e.cli(0, "refresh", "bronze.plugs")
	if !strings.Contains(out, "bronze.plugs: refreshed full from 1 raw objects") {
		t.Errorf("refresh: %s", out)
	}
	if got := e.rows("SELECT id, power FROM bronze.plugs"); got != "id,power\n1,3.5\n" {
		t.Errorf("bronze.plugs after the refresh: %q", got)
	}
	e.cli(0, "run", "bronze.plugs")
	if got := e.rows("SELECT id, power FROM bronze.plugs"); got != "id,power\n1,3.5\n2,7\n" {
		t.Errorf("bronze.plugs after the next run: %q", got)
	}
}
