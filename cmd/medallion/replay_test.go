package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
)

// replaySource is the pipeline of the replay tests before the rule fix:
// smart_tv is not an accepted device yet. silver.usage_1h reads bronze, so
// the tests see replayed rows reach silver on the next run.
const replaySource = `sources:
  meters:
    format: ndjson
    schema:
      ts:       {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id: {type: string, required: true}
      device:   {type: string, accepted: [desktop, mobile]}
      kwh:      {type: double, min: 0}
    dedupe: [meter_id, ts]
    on_error: quarantine

silver:
  usage_1h:
    from: meters
    event_time: ts
    window: {size: 1h}
    watermark: 1000h
    output: update
    group_by: [device]
    aggregates:
      readings: count(*)
  usage_late:
    from: meters
    event_time: ts
    window: {size: 1m}
    watermark: 1m
    output: append
    aggregates:
      readings: count(*)
`

// replayFixed is replaySource after the fix.
var replayFixed = strings.Replace(replaySource, "accepted: [desktop, mobile]", "accepted: [desktop, mobile, smart_tv]", 1)

// replayInputs are two NDJSON objects. After the fix: m2 and m5 pass, the
// smart_tv reading of m1 passes but its key is in bronze (a duplicate), m3
// now fails on kwh (a new reason), m4 still fails on kwh (the same).
var replayInputs = [2]string{
	`{"ts":"2026-01-01 00:00:00","meter_id":"m1","device":"mobile","kwh":1}
{"ts":"2026-01-01 00:01:00","meter_id":"m2","device":"smart_tv","kwh":2}
{"ts":"2026-01-01 00:02:00","meter_id":"m3","device":"smart_tv","kwh":"abc"}
{"ts":"2026-01-01 00:03:00","meter_id":"m4","device":"desktop","kwh":"xyz"}
{"ts":"2026-01-01 00:00:00","meter_id":"m1","device":"smart_tv","kwh":5}
`,
	`{"ts":"2026-01-01 00:05:00","meter_id":"m5","device":"smart_tv","kwh":3}
{"ts":"2026-01-01 01:00:00","meter_id":"m6","device":"desktop","kwh":4}
`,
}

// replayLake lands replayInputs, runs the pipeline before the fix and
// writes the fixed pipeline. legacy makes bronze._quarantine a table of
// before the column rename (its column is named "column").
func replayLake(t *testing.T, kind string, legacy bool) *testLake {
	t.Helper()
	l := newTestLake(t, kind)
	l.writePipeline(t, replaySource)
	if legacy {
		str := func(n string) delta.Field {
			return delta.Field{Name: n, Type: delta.Primitive(delta.TypeString), Nullable: true}
		}
		schema := &delta.Schema{Fields: []delta.Field{str("source"), str("source_file"),
			{Name: "line", Type: delta.Primitive(delta.TypeLong), Nullable: true}, str("column"), str("reason"), str("raw"), str("batch_id"),
			{Name: "quarantined_at", Type: delta.Primitive(delta.TypeTimestamp), Nullable: true}}}
		tbl := delta.Open(l.store, layers.Quarantine().Dir())
		if _, err := tbl.Create(context.Background(), delta.Metadata{Name: "_quarantine", SchemaString: schema.String(), PartitionColumns: []string{"source"}}, delta.CommitInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, body := range replayInputs {
		f := filepath.Join(l.dir, []string{"a.ndjson", "b.ndjson"}[i])
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		l.run(t, "ingest", "meters", f)
	}
	out := l.run(t, "run")
	if !strings.Contains(out, "bronze.meters: 7 rows read = 2 written + 5 quarantined") {
		t.Fatalf("run before the fix:\n%s", out)
	}
	l.writePipeline(t, replayFixed)
	return l
}

// replayLineRE matches the replay's summary line.
var replayLineRE = regexp.MustCompile(`^bronze\.meters: replay ([0-9a-f]{16}): (\d+) re-typed, (\d+) moved to bronze`)

// replayID returns the id in the replay's summary line.
func replayIDOf(t *testing.T, out string) string {
	t.Helper()
	m := replayLineRE.FindStringSubmatch(lineStarting(t, out, "bronze.meters: "))
	if m == nil {
		t.Fatalf("no replay summary line in:\n%s", out)
	}
	return m[1]
}

// replayQueries are compared between lakes (replayed_at and quarantined_at
// are wall-clock times).
var replayQueries = []string{
	"SELECT * FROM bronze.meters ORDER BY ALL",
	"SELECT * EXCLUDE (quarantined_at, replayed_at), replayed_at IS NOT NULL AS replayed FROM bronze._quarantine ORDER BY ALL",
}

// TestReplayAcceptedFix: smart_tv added to accepted:, `medallion replay
// bronze.meters` moves the rows that now pass into bronze with their
// original lineage, marks them replayed in the quarantine, keeps the rest
// with their (new) reasons, shows a REPLAY commit in history, and the next
// run brings the new rows into silver.
func TestReplayAcceptedFix(t *testing.T) {
	l := replayLake(t, "local", false)
	out := l.run(t, "replay", "bronze.meters")
	id := replayIDOf(t, out)
	want := "bronze.meters: replay " + id + ": 5 re-typed, 2 moved to bronze (+1 already in bronze by key), 2 still quarantined (type: 2)"
	if line := lineStarting(t, out, "bronze.meters: "); !strings.HasPrefix(line, want) {
		t.Errorf("summary:\n  %s\nwant it to start with:\n  %s", line, want)
	}
	if got := l.query(t, "SELECT meter_id, device, kwh, _batch_id = '"+id+"' AS replayed FROM bronze.meters ORDER BY meter_id"); got != "meter_id,device,kwh,replayed\nm1,mobile,1,false\nm2,smart_tv,2,true\nm5,smart_tv,3,true\nm6,desktop,4,false\n" {
		t.Errorf("bronze.meters after the replay:\n%s", got)
	}
	// Lineage: a moved row keeps its object; the quarantine row it came
	// from names its line and the replay.
	if got := l.query(t, "SELECT q.line, q.replay_batch = '"+id+"' AS same FROM bronze.meters b JOIN bronze._quarantine q ON b._source_file = q.source_file AND q.replayed_at IS NOT NULL AND q.raw LIKE '%\"' || b.meter_id || '\"%' AND q.raw LIKE '%smart_tv%' ORDER BY q.line"); got != "line,same\n1,true\n2,true\n5,true\n" {
		t.Errorf("lineage of the moved rows:\n%s", got)
	}
	if got := l.query(t, "SELECT meter_id, column_name, reason, replay_batch IS NOT NULL AS rewritten FROM (SELECT *, json_extract_string(raw, '$.meter_id') AS meter_id FROM bronze._quarantine) WHERE replayed_at IS NULL ORDER BY meter_id"); got != "meter_id,column_name,reason,rewritten\nm3,kwh,\"\"\"abc\"\" is not a double\",true\nm4,kwh,\"\"\"xyz\"\" is not a double\",false\n" {
		t.Errorf("rows still quarantined:\n%s", got)
	}
	if h := l.run(t, "history", "bronze.meters"); !strings.Contains(h, "REPLAY") {
		t.Errorf("history bronze.meters shows no REPLAY commit:\n%s", h)
	}
	l.run(t, "run")
	if got := l.query(t, "SELECT device, sum(readings) FROM silver.usage_1h GROUP BY ALL ORDER BY ALL"); got != "device,sum(readings)\ndesktop,1\nmobile,1\nsmart_tv,2\n" {
		t.Errorf("silver after the next run:\n%s", got)
	}
	// silver.usage_late's watermark (1m behind the latest reading, 01:00)
	// had passed the moved readings' windows: they are late, in silver._late.
	if got := l.query(t, "SELECT event_time, source_file = '"+strings.TrimSpace(l.query(t, "SELECT DISTINCT _source_file FROM bronze.meters WHERE meter_id = 'm5'"))[len("_source_file\n"):]+"' AS lineage FROM silver._late WHERE \"table\" = 'silver.usage_late' ORDER BY ALL"); got != "event_time,lineage\n2026-01-01T00:01:00Z,false\n2026-01-01T00:05:00Z,true\n" {
		t.Errorf("late rows of silver.usage_late:\n%s", got)
	}
}

// TestReplayRerunNoDoubles: a second replay finds only the rows that still
// fail, commits nothing and moves nothing again.
func TestReplayRerunNoDoubles(t *testing.T) {
	l := replayLake(t, "local", false)
	l.run(t, "replay", "bronze.meters")
	before := l.run(t, "tables")
	var want []string
	for _, q := range replayQueries {
		want = append(want, l.query(t, q))
	}
	out := l.run(t, "replay", "bronze.meters")
	id := replayIDOf(t, out)
	if line := lineStarting(t, out, "bronze.meters: "); line != "bronze.meters: replay "+id+": 2 re-typed, 0 moved to bronze, 2 still quarantined (type: 2)" {
		t.Errorf("rerun: %s", line)
	}
	after := l.run(t, "tables")
	for _, tbl := range []string{"bronze.meters", "bronze._quarantine"} {
		if a, b := tableLine(t, before, tbl), tableLine(t, after, tbl); a != b {
			t.Errorf("the rerun committed to %s: %q -> %q", tbl, a, b)
		}
	}
	for i, q := range replayQueries {
		if got := l.query(t, q); got != want[i] {
			t.Errorf("%s changed on the rerun:\n--- before\n%s\n--- after\n%s", q, want[i], got)
		}
	}
	// A filter matching nothing says so.
	if out := l.run(t, "replay", "bronze.meters", "--reason", "accepted"); !strings.Contains(out, "nothing to replay") {
		t.Errorf("replay --reason accepted after the fix: %s", out)
	}
}

// TestReplayStillFailingNewReason: --reason selects by class; a row that
// still fails is rewritten in place with its new reason (never doubled),
// the others are left as they were.
func TestReplayStillFailingNewReason(t *testing.T) {
	l := replayLake(t, "local", false)
	// Before the fix nothing passes, and nothing changes: no commit.
	l.writePipeline(t, replaySource)
	out := l.run(t, "replay", "bronze.meters", "--reason", "accepted")
	if line := lineStarting(t, out, "bronze.meters: "); !strings.Contains(line, ": 4 re-typed, 0 moved to bronze, 4 still quarantined (accepted: 4)") {
		t.Errorf("replay before the fix: %s", line)
	}
	l.writePipeline(t, replayFixed)
	out = l.run(t, "replay", "bronze.meters", "--reason", "smart_tv")
	if line := lineStarting(t, out, "bronze.meters: "); !strings.Contains(line, ": 4 re-typed, 2 moved to bronze (+1 already in bronze by key), 1 still quarantined (type: 1)") {
		t.Errorf("replay --reason smart_tv: %s", line)
	}
	if got := l.query(t, "SELECT count(*), count(replayed_at), count(*) FILTER (reason LIKE '%abc%is not a double') FROM bronze._quarantine"); got != "count_star(),count(replayed_at),count_star() FILTER (WHERE (reason ~~ '%abc%is not a double'))\n5,3,1\n" {
		t.Errorf("quarantine after the replay:\n%s", got)
	}
	if got := l.query(t, "SELECT reason FROM bronze._quarantine WHERE raw LIKE '%m4%'"); got != "reason\n\"\"\"xyz\"\" is not a double\"\n" {
		t.Errorf("the row outside the filter: %s", got)
	}
	if out := l.run(t, "replay", "bronze.meters", "--batch", "nope"); !strings.Contains(out, "nothing to replay") {
		t.Errorf("replay --batch nope: %s", out)
	}
	_, errOut, err := l.exec(t, nil, "replay", "silver.usage_1h")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(errOut, "bronze source table") {
		t.Errorf("replay silver.usage_1h: %v\n%s", err, errOut)
	}
}

// TestReplayKilledBetweenCommits, on a local lake and on MinIO: a replay killed after its bronze commit
// and before its quarantine commit, then run again (with the same filters,
// or others), ends with exactly what an uninterrupted replay gives.
func TestReplayKilledBetweenCommits(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) { replayKilled(t, kind) })
	}
}

func replayKilled(t *testing.T, kind string) {
	base := replayLake(t, kind, false)
	ref := base.cloneTo(t, replayFixed)
	ref.run(t, "replay", "bronze.meters")
	var want []string
	for _, q := range replayQueries {
		want = append(want, ref.query(t, q))
	}
	rerunWith := map[string][]string{"same-filters": {"replay", "bronze.meters"}, "other-filters": {"replay", "bronze.meters", "--reason", "type"}}
	if kind == "s3" {
		delete(rerunWith, "other-filters")
	}
	for name, rerun := range rerunWith {
		t.Run(name, func(t *testing.T) {
			l := base.cloneTo(t, replayFixed)
			l.env = append(l.env, crashLeaseEnv...)
			out, errOut, err := l.exec(t, []string{bronze.CrashEnv + "=replay.after-bronze"}, "replay", "bronze.meters")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
				t.Fatalf("replay with the crash point: %v, want death by SIGKILL\n%s\n%s", err, out, errOut)
			}
			if got := l.query(t, "SELECT count(*) FROM bronze.meters"); got != "count_star()\n4\n" {
				t.Fatalf("the killed replay did not commit to bronze first: %s", got)
			}
			if name == "other-filters" {
				// The rule fix undone before the rerun: the interrupted
				// replay cannot be finished the same way; nothing changes.
				l.writePipeline(t, replaySource)
				_, errOut, err := l.exec(t, nil, rerun...)
				if err == nil || !strings.Contains(errOut, "changed since replay") || !strings.Contains(errOut, "Put the rules back") {
					t.Errorf("rerun with the fix undone: %v\n%s", err, errOut)
				}
				l.writePipeline(t, replayFixed)
			}
			out = l.run(t, rerun...)
			if !strings.Contains(out, "finished interrupted replay") {
				t.Errorf("the rerun did not say it finished the interrupted replay:\n%s", out)
			}
			for i, q := range replayQueries {
				if got := l.query(t, q); got != want[i] {
					t.Errorf("%s differs from an uninterrupted replay\n--- uninterrupted\n%s\n--- killed and rerun\n%s", q, want[i], got)
				}
			}
		})
	}
}

// TestReplayLegacyQuarantine: a quarantine table of before the rename (its
// column is "column") replays the same way and keeps its column name.
func TestReplayLegacyQuarantine(t *testing.T) {
	l := replayLake(t, "local", true)
	out := l.run(t, "replay", "bronze.meters")
	if line := lineStarting(t, out, "bronze.meters: "); !strings.Contains(line, ": 5 re-typed, 2 moved to bronze (+1 already in bronze by key), 2 still quarantined (type: 2)") {
		t.Errorf("replay on a legacy quarantine: %s", line)
	}
	if got := l.query(t, `SELECT "column", count(*), count(replayed_at) FROM bronze._quarantine GROUP BY ALL ORDER BY ALL`); got != "column,count_star(),count(replayed_at)\ndevice,3,3\nkwh,2,0\n" {
		t.Errorf("legacy quarantine after the replay:\n%s", got)
	}
	const cols = "source, source_file, line, %s AS column_name, reason, raw, batch_id, quarantined_at, replayed_at, replay_batch"
	before := l.query(t, "SELECT "+fmt.Sprintf(cols, `"column"`)+" FROM bronze._quarantine ORDER BY ALL")
	if out := l.run(t, "replay", "--migrate"); !strings.Contains(out, `column "column" renamed to column_name`) {
		t.Errorf("replay --migrate: %s", out)
	}
	if got := l.query(t, "SELECT "+fmt.Sprintf(cols, "column_name")+" FROM bronze._quarantine ORDER BY ALL"); got != before {
		t.Errorf("the renamed quarantine differs:\n--- before (column aliased)\n%s\n--- after\n%s", before, got)
	}
	if out := l.run(t, "replay", "--migrate", "bronze.meters"); !strings.Contains(out, "nothing to rename") || !strings.Contains(out, ": 2 re-typed, 0 moved") {
		t.Errorf("replay --migrate again: %s", out)
	}
	// Bronze runs go on quarantining into the renamed table.
	f := filepath.Join(l.dir, "c.ndjson")
	if err := os.WriteFile(f, []byte(`{"ts":"2026-01-01 00:09:00","meter_id":"m9","device":"vr","kwh":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run(t, "ingest", "meters", f)
	l.run(t, "run", "bronze")
	if got := l.query(t, `SELECT column_name, count(*) FROM bronze._quarantine WHERE replayed_at IS NULL GROUP BY ALL ORDER BY ALL`); got != "column_name,count_star()\ndevice,1\nkwh,2\n" {
		t.Errorf("quarantine after a run on the renamed table:\n%s", got)
	}
}

// TestReplayCSV, on a local lake and on MinIO (the header is read from
// the raw object): a CSV source's quarantined records are typed again under
// their object's header (here in another column order than the schema).
func TestReplayCSV(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) { replayCSV(t, kind) })
	}
}

func replayCSV(t *testing.T, kind string) {
	l := newTestLake(t, kind)
	body := `sources:
  meters:
    format: csv
    csv: {header: true}
    schema:
      meter_id: {type: string, required: true}
      device:   {type: string, accepted: [desktop]}
      kwh:      {type: double}
`
	l.writePipeline(t, body)
	f := filepath.Join(l.dir, "a.csv")
	if err := os.WriteFile(f, []byte("kwh,device,meter_id\n1,desktop,m1\n2,smart_tv,m2\n\"3\",\"smart\ntv\",m3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run(t, "ingest", "meters", f)
	l.run(t, "run")
	l.writePipeline(t, strings.Replace(body, "[desktop]", "[desktop, smart_tv]", 1))
	out := l.run(t, "replay", "bronze.meters")
	if line := lineStarting(t, out, "bronze.meters: "); !strings.Contains(line, ": 2 re-typed, 1 moved to bronze, 1 still quarantined (accepted: 1)") {
		t.Errorf("CSV replay: %s", line)
	}
	if got := l.query(t, "SELECT meter_id, device, kwh FROM bronze.meters ORDER BY ALL"); got != "meter_id,device,kwh\nm1,desktop,1\nm2,smart_tv,2\n" {
		t.Errorf("bronze after the CSV replay:\n%s", got)
	}
	if got := l.query(t, "SELECT line, column_name, replayed_at IS NULL AS still FROM bronze._quarantine ORDER BY line"); got != "line,column_name,still\n3,device,false\n4,device,true\n" {
		t.Errorf("quarantine after the CSV replay:\n%s", got)
	}
}

// replayGoldPipeline is replaySource's source with a silver table whose
// watermark (1m) the replayed readings are behind, and a gold table on it.
const replayGoldPipeline = `sources:
  meters:
    format: ndjson
    schema:
      ts:       {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id: {type: string, required: true}
      device:   {type: string, accepted: [desktop, mobile]}
      kwh:      {type: double, min: 0}
    dedupe: [meter_id, ts]
    on_error: quarantine

silver:
  dev_1m:
    from: meters
    event_time: ts
    window: {size: 1m}
    watermark: 1m
    output: append
    group_by: [device]
    aggregates:
      readings: count(*)
      kwh_sum: sum(kwh)

gold:
  dev_ma:
    from: dev_1m
    partition_by: [device]
    moving_average: {column: kwh_sum, rows: 2}
`

// TestReplayThenRefreshSilver: rows replayed after a rule fix are behind
// silver's watermark, so the next run puts them in silver._late; the
// replay's last line says so and names the refresh that counts them, and
// `medallion refresh silver.dev_1m --downstream` rebuilds silver over the
// current bronze in one pass: silver and gold then hold the replayed rows
// and equal a lake built from scratch with the fixed rules.
func TestReplayThenRefreshSilver(t *testing.T) {
	fixed := strings.Replace(replayGoldPipeline, "accepted: [desktop, mobile]", "accepted: [desktop, mobile, smart_tv]", 1)
	land := func(l *testLake) {
		for i, body := range replayInputs {
			f := filepath.Join(l.dir, []string{"a.ndjson", "b.ndjson"}[i])
			if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			l.run(t, "ingest", "meters", f)
		}
	}
	l := newTestLake(t, "local")
	l.writePipeline(t, replayGoldPipeline)
	land(l)
	l.run(t, "run")
	l.writePipeline(t, fixed)
	out := l.run(t, "replay", "bronze.meters")
	if want := "run `medallion run` to bring the moved rows into silver and gold; rows behind a silver table's watermark go to silver._late: run `medallion refresh silver.dev_1m --downstream` to include them"; !strings.Contains(out, "\n"+want+"\n") {
		t.Errorf("replay output:\n%s\nwant the line:\n%s", out, want)
	}
	l.run(t, "run")
	const smartTV = "SELECT count(*) AS n FROM silver.dev_1m WHERE device = 'smart_tv'"
	if got := l.query(t, smartTV); got != "n\n0\n" {
		t.Fatalf("silver after the run that read the replayed rows (they are late):\n%s", got)
	}
	if got := l.query(t, "SELECT count(*) AS n FROM silver._late WHERE \"table\" = 'silver.dev_1m'"); got != "n\n2\n" {
		t.Errorf("late rows of silver.dev_1m after the run:\n%s", got)
	}
	out = l.run(t, "refresh", "silver.dev_1m", "--downstream")
	if !strings.Contains(out, "silver.dev_1m: rebuilt full in one batch over bronze as it is now (bronze.meters REPLAY at v2, after the table's first batch)") {
		t.Errorf("refresh after a replay did not rebuild over the current bronze:\n%s", out)
	}
	if got := l.query(t, smartTV); got != "n\n2\n" {
		t.Errorf("smart_tv windows in silver after the refresh:\n%s", got)
	}
	if got := l.query(t, "SELECT count(*) AS n FROM gold.dev_ma WHERE device = 'smart_tv'"); got != "n\n2\n" {
		t.Errorf("smart_tv rows in gold after the refresh --downstream:\n%s", got)
	}

	// Counted in their windows now, the replayed rows are late no more
	// (a lake built from scratch has no late row: no silver._late at all).
	if got := l.query(t, "SELECT count(*) AS n FROM silver._late WHERE \"table\" = 'silver.dev_1m'"); got != "n\n0\n" {
		t.Errorf("late rows of silver.dev_1m after the refresh:\n%s", got)
	}

	// A lake built from scratch with the fixed rules: the same rows.
	s := newTestLake(t, "local")
	s.writePipeline(t, fixed)
	land(s)
	s.run(t, "run")
	for _, q := range []string{
		"SELECT window_start, window_end, device, readings, kwh_sum FROM silver.dev_1m",
		"SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM gold.dev_ma",
	} {
		// Equal as multisets (EXCEPT ALL empty both ways): sorted, row for row.
		q += " ORDER BY ALL"
		if got, want := l.query(t, q), s.query(t, q); got != want {
			t.Errorf("%s:\n--- replayed and refreshed\n%s--- from scratch\n%s", q, got, want)
		}
	}
}
