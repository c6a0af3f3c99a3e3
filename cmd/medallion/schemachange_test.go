package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// schemaLake is a local lake with one ndjson source, meters, whose schema
// the tests edit between runs.
type schemaLake struct {
	t        *testing.T
	dir      string
	pipeline string
	n        int // data files written
}

func newSchemaLake(t *testing.T) *schemaLake {
	t.Helper()
	dir := t.TempDir()
	s := &schemaLake{t: t, dir: dir, pipeline: filepath.Join(dir, "medallion.yaml")}
	markLakeDir(t, filepath.Join(dir, "lake"))
	return s
}

// write writes the pipeline file: the meters source with the given schema
// lines (indented under schema:), then rest (silver:, gold:).
func (s *schemaLake) write(schema, rest string) {
	s.t.Helper()
	yaml := "lake: file://" + filepath.Join(s.dir, "lake") + `
sources:
  meters:
    format: ndjson
    schema:
      timestamp: {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:  {type: string, required: true}
` + schema + rest
	if err := os.WriteFile(s.pipeline, []byte(yaml), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// cli runs a command with -f pipeline after the command name.
func (s *schemaLake) cli(args ...string) (int, string, string) {
	s.t.Helper()
	full := append([]string{args[0], "-f", s.pipeline}, args[1:]...)
	return cli(s.t, "", full...)
}

// ingestRun lands lines as one object and runs the pipeline; it returns
// run's exit code and stderr.
func (s *schemaLake) ingestRun(lines ...string) (int, string) {
	s.t.Helper()
	s.n++
	f := filepath.Join(s.dir, "in", "d"+string(rune('0'+s.n))+".ndjson")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if code, _, stderr := s.cli("ingest", "meters", f); code != 0 {
		s.t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	code, _, stderr := s.cli("run")
	return code, stderr
}

// mustRun is ingestRun that fails the test unless the run succeeded.
func (s *schemaLake) mustRun(lines ...string) {
	s.t.Helper()
	if code, stderr := s.ingestRun(lines...); code != 0 {
		s.t.Fatalf("run: exit %d: %s", code, stderr)
	}
}

// query returns the CSV rows of sql (header first) as lines.
func (s *schemaLake) query(sql string) string {
	s.t.Helper()
	code, stdout, stderr := s.cli("query", "--format", "csv", sql)
	if code != 0 {
		s.t.Fatalf("query %s: exit %d: %s", sql, code, stderr)
	}
	return stdout
}

// history returns `medallion history TABLE`.
func (s *schemaLake) history(table string) string {
	s.t.Helper()
	code, stdout, stderr := s.cli("history", table)
	if code != 0 {
		s.t.Fatalf("history %s: exit %d: %s", table, code, stderr)
	}
	return stdout
}

const (
	voltageDouble = "      voltage:   {type: double}\n"
	row1          = `{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","voltage":230.5}`
	row2          = `{"timestamp":"2024-01-01 00:00:01","meter_id":"m2","voltage":231}`
)

func TestSchemaRenameRefused(t *testing.T) {
	s := newSchemaLake(t)
	s.write(voltageDouble, "")
	s.mustRun(row1, row2)
	before := s.history("bronze.meters")

	// voltage renamed to volts (line 8 of the file, the name at column 7).
	s.write("      volts:     {type: double}\n", "")
	code, stderr := s.ingestRun(`{"timestamp":"2024-01-01 00:00:02","meter_id":"m3","volts":229}`)
	if code != 1 {
		t.Fatalf("run after a rename: exit %d, want 1: %s", code, stderr)
	}
	oneLineErr(t, []string{"run"}, stderr, "medallion run: ",
		"bronze.meters", s.pipeline+":8:7", "column voltage (double) is no longer written", "volts (double) is new",
		"medallion refresh bronze.meters", "renamed_from: voltage` to column volts")
	if after := s.history("bronze.meters"); after != before {
		t.Errorf("a refused run changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := s.query("SELECT count(*) AS n, sum(voltage) AS v FROM bronze.meters"); got != "n,v\n2,461.5\n" {
		t.Errorf("bronze after the refused run:\n%s", got)
	}
}

func TestSchemaAddColumnApplies(t *testing.T) {
	s := newSchemaLake(t)
	s.write(voltageDouble, "")
	s.mustRun(row1, row2)

	s.write(voltageDouble+"      pf:        {type: double}\n", "")
	s.mustRun(`{"timestamp":"2024-01-01 00:00:02","meter_id":"m3","voltage":229,"pf":0.9}`)
	got := s.query("SELECT meter_id, voltage, pf FROM bronze.meters ORDER BY meter_id")
	if want := "meter_id,voltage,pf\nm1,230.5,\nm2,231,\nm3,229,0.9\n"; got != want {
		t.Errorf("bronze after adding pf:\n%s\nwant:\n%s", got, want)
	}
	if h := s.history("bronze.meters"); !strings.Contains(h, "WRITE; SCHEMA: added column pf double") {
		t.Errorf("history does not show the added column:\n%s", h)
	}
}

func TestSchemaRenamedFromKeepsValues(t *testing.T) {
	s := newSchemaLake(t)
	s.write(voltageDouble, "")
	s.mustRun(row1, row2)

	s.write("      volts:     {type: double, renamed_from: voltage}\n", "")
	s.mustRun(`{"timestamp":"2024-01-01 00:00:02","meter_id":"m3","volts":229}`)
	got := s.query("SELECT meter_id, volts FROM bronze.meters ORDER BY meter_id")
	if want := "meter_id,volts\nm1,230.5\nm2,231\nm3,229\n"; got != want {
		t.Errorf("bronze after renaming voltage to volts:\n%s\nwant:\n%s", got, want)
	}
	if h := s.history("bronze.meters"); !strings.Contains(h, "RENAME COLUMN; SCHEMA: renamed voltage -> volts") {
		t.Errorf("history does not show the rename:\n%s", h)
	}
	// The next run (renamed_from still there) changes nothing more.
	s.mustRun(`{"timestamp":"2024-01-01 00:00:03","meter_id":"m4","volts":228}`)
	if got := s.query("SELECT count(*) AS n, count(volts) AS v FROM bronze.meters"); got != "n,v\n4,4\n" {
		t.Errorf("bronze after a second run:\n%s", got)
	}
}

func TestSchemaRetypeRefused(t *testing.T) {
	s := newSchemaLake(t)
	s.write("      voltage:   {type: int64}\n", "")
	s.mustRun(`{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","voltage":230}`)

	// int64 -> double: refused, with the cast that would keep the values.
	s.write(voltageDouble, "")
	code, stderr := s.ingestRun(row2)
	if code != 1 {
		t.Fatalf("run after a retype: exit %d, want 1: %s", code, stderr)
	}
	oneLineErr(t, []string{"run"}, stderr, "medallion run: ",
		s.pipeline+":8:7", "column voltage changed type int64 -> double", "medallion refresh bronze.meters", "`cast_from: int64` to column voltage")

	// int64 -> string... is widening; bool is not: no cast applies.
	s.write("      voltage:   {type: bool}\n", "")
	code, stderr = s.ingestRun(`{"timestamp":"2024-01-01 00:00:02","meter_id":"m3","voltage":true}`)
	if code != 1 {
		t.Fatalf("run after a narrowing retype: exit %d, want 1: %s", code, stderr)
	}
	oneLineErr(t, []string{"run"}, stderr, "medallion run: ", "changed type int64 -> bool", "medallion refresh bronze.meters", "declare column voltage as int64 again")

	// A narrowing cast_from is refused when the file is loaded.
	s.write("      voltage:   {type: int64, cast_from: double}\n", "")
	code, _, stderr = s.cli("run")
	if code != 1 {
		t.Fatalf("run with a narrowing cast_from: exit %d, want 1: %s", code, stderr)
	}
	if !strings.Contains(stderr, s.pipeline+":8:") || !strings.Contains(stderr, "cannot cast double to int64") {
		t.Errorf("narrowing cast_from: %s", stderr)
	}
	s.write("      voltage:   {type: int64}\n", "")
	if got := s.query("SELECT count(*) AS n FROM bronze.meters"); got != "n\n1\n" {
		t.Errorf("bronze after the refused runs:\n%s", got)
	}
}

func TestSchemaWideningCast(t *testing.T) {
	s := newSchemaLake(t)
	s.write("      voltage:   {type: int64}\n", "")
	s.mustRun(`{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","voltage":230}`)

	s.write("      voltage:   {type: double, cast_from: int64}\n", "")
	s.mustRun(`{"timestamp":"2024-01-01 00:00:01","meter_id":"m2","voltage":230.25}`)
	got := s.query("SELECT meter_id, voltage, typeof(voltage) AS t FROM bronze.meters ORDER BY meter_id")
	if want := "meter_id,voltage,t\nm1,230,DOUBLE\nm2,230.25,DOUBLE\n"; got != want {
		t.Errorf("bronze after the cast:\n%s\nwant:\n%s", got, want)
	}
	if h := s.history("bronze.meters"); !strings.Contains(h, "CHANGE COLUMN; SCHEMA: retyped column voltage long -> double") {
		t.Errorf("history does not show the cast:\n%s", h)
	}
}

func TestSchemaSilverGoldChangeRefused(t *testing.T) {
	s := newSchemaLake(t)
	silver := func(aggs string) string {
		return `silver:
  v1m:
    from: meters
    event_time: timestamp
    window: 1m
    group_by: [meter_id]
    aggregates:
` + aggs
	}
	gold := func(flag string) string {
		return `gold:
  v_ma:
    from: v1m
    partition_by: [meter_id]
    moving_average: {column: avg_v, rows: 3}
` + flag
	}
	const aggs = "      avg_v: avg(voltage)\n      max_v: max(voltage)\n"
	const flag = "    flag: {name: spike, when: \"avg_v > ma * 1.5\"}\n"
	s.write(voltageDouble, silver(aggs)+gold(flag))
	s.mustRun(row1, row2, `{"timestamp":"2024-01-01 00:05:00","meter_id":"m1","voltage":240}`)
	if got := s.query("SELECT count(*) AS n FROM gold.v_ma"); got != "n\n2\n" {
		t.Fatalf("gold before the changes:\n%s", got)
	}

	// An aggregate removed and one changed: refused, naming both and refresh.
	s.write(voltageDouble, silver("      avg_v: avg(voltage)\n      n: count(*)\n")+gold(flag))
	code, stderr := s.ingestRun(`{"timestamp":"2024-01-01 00:06:00","meter_id":"m1","voltage":241}`)
	if code != 1 {
		t.Fatalf("run after removing an aggregate: exit %d, want 1: %s", code, stderr)
	}
	if !strings.Contains(stderr, "silver.v1m: "+s.pipeline+":17:7: schema change refused: aggregate n: count(*) is new, aggregate max_v: max(voltage) was removed") ||
		!strings.Contains(stderr, "`medallion refresh silver.v1m`") {
		t.Errorf("silver refusal:\n%s", stderr)
	}
	// The final line, exactly: the table named once.
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	wantLast := "medallion run: silver.v1m: " + s.pipeline + ":17:7: schema change refused: aggregate n: count(*) is new, aggregate max_v: max(voltage) was removed; " +
		"the table's windows and the partial aggregates of its open windows were computed with the earlier definition. " +
		"Rebuild the table from bronze with the new definition: `medallion refresh silver.v1m`, or restore the earlier definition"
	if last := lines[len(lines)-1]; last != wantLast {
		t.Errorf("last line of the silver refusal:\n%s\nwant:\n%s", last, wantLast)
	}

	// A gold column removed (the flag): refused the same way.
	s.write(voltageDouble, silver(aggs)+gold(""))
	code, stderr = s.ingestRun(`{"timestamp":"2024-01-01 00:07:00","meter_id":"m1","voltage":242}`)
	if code != 1 {
		t.Fatalf("run after removing a flag: exit %d, want 1: %s", code, stderr)
	}
	if !strings.Contains(stderr, "gold.v_ma: "+s.pipeline+":19: schema change refused: column spike (boolean) is no longer written") ||
		!strings.Contains(stderr, "`medallion refresh gold.v_ma`") {
		t.Errorf("gold refusal:\n%s", stderr)
	}
	if h := s.history("gold.v_ma"); strings.Count(h, "\n") != 3 {
		t.Errorf("a refused gold run committed:\n%s", h)
	}
}

// TestSchemaRenameThenRefreshSilver: a bronze column renamed with
// renamed_from: and the silver aggregate over it edited to match. The run
// renames bronze's column and refuses silver's changed definition with
// the refresh as the way forward; that refresh rebuilds silver in one
// batch over bronze as it is now (the earlier batches' files name the old
// column, so they cannot be replayed) and gold follows.
func TestSchemaRenameThenRefreshSilver(t *testing.T) {
	s := newSchemaLake(t)
	rest := func(col string) string {
		return `silver:
  v1m:
    from: meters
    event_time: timestamp
    window: 1m
    group_by: [meter_id]
    aggregates:
      avg_v: avg(` + col + `)
gold:
  v_ma:
    from: v1m
    partition_by: [meter_id]
    moving_average: {column: avg_v, rows: 2}
`
	}
	s.write(voltageDouble, rest("voltage"))
	s.mustRun(row1, row2)
	s.mustRun(`{"timestamp":"2024-01-01 00:05:00","meter_id":"m1","voltage":240}`)

	s.write("      volts:     {type: double, renamed_from: voltage}\n", rest("volts"))
	code, stderr := s.ingestRun(`{"timestamp":"2024-01-01 00:06:00","meter_id":"m1","volts":241}`)
	if code != 1 || !strings.Contains(stderr, "`medallion refresh silver.v1m`") {
		t.Fatalf("run after the rename: exit %d, want 1 and silver's refusal naming the refresh: %s", code, stderr)
	}
	code, stdout, stderr := s.cli("refresh", "silver.v1m", "--downstream")
	if code != 0 {
		t.Fatalf("refresh silver.v1m --downstream after the rename: exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "silver.v1m: rebuilt full in one batch over bronze as it is now (bronze.meters RENAME COLUMN at v3, after the table's first batch)") ||
		!strings.Contains(stdout, "gold.v_ma: refreshed in full") {
		t.Errorf("refresh output:\n%s", stdout)
	}
	if got := s.query("SELECT meter_id, window_start, avg_v FROM silver.v1m ORDER BY ALL"); got != "meter_id,window_start,avg_v\nm1,2024-01-01T00:00:00Z,230.5\nm1,2024-01-01T00:05:00Z,240\nm2,2024-01-01T00:00:00Z,231\n" {
		t.Errorf("silver after the refresh:\n%s", got)
	}
	if code, _, stderr := s.cli("run"); code != 0 {
		t.Errorf("run after the refresh: exit %d: %s", code, stderr)
	}
}
