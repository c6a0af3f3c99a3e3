package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// partitionPipeline has a source partitioned by the date of a timestamp
// that may be NULL (events) and one partitioned by a string column whose
// values need escaping in a directory name (tagged).
const partitionPipeline = `
sources:
  events:
    format: ndjson
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      id: {type: string, required: true}
      v:  {type: double}
    dedupe: [id, ts]
  tagged:
    format: ndjson
    schema:
      id:     {type: string, required: true}
      region: {type: string}
    partition_by: region
    dedupe: [id, region]
mirror:
  - table: bronze.events
    to: {schema}.events
    key: [id]
  - table: bronze.tagged
    to: {schema}.tagged
    key: [id]
`

// awkwardRegions are string partition values that need escaping in a
// directory name; the empty string is null in Delta, as Spark writes it.
var awkwardRegions = []string{"a/b", "x=y", "50%", "a b", "é", "a%2Fb", "Zürich/Ost = 100% süß", ""}

// ingestLines lands body as one NDJSON object of source src.
func (e *mirrorEnv) ingestLines(src, body string) {
	e.t.Helper()
	e.chunks++
	path := filepath.Join(e.dir, fmt.Sprintf("%s%d.ndjson", src, e.chunks))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.cli(0, "ingest", src, path)
}

// logPartitionValues returns the partitionValues of every add in the
// table's JSON commits, as raw JSON.
func (e *mirrorEnv) logPartitionValues(table string) []string {
	e.t.Helper()
	logDir := filepath.Join(e.dir, "lake", filepath.FromSlash(table), "_delta_log")
	ents, err := os.ReadDir(logDir)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(logDir, ent.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var a struct {
				Add *struct {
					PartitionValues json.RawMessage `json:"partitionValues"`
				} `json:"add"`
			}
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				e.t.Fatalf("%s: %v", ent.Name(), err)
			}
			if a.Add != nil {
				out = append(out, string(a.Add.PartitionValues))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestNullTimestampPartition: rows whose partition-deriving timestamp is
// NULL go to the null partition, recorded as JSON null in the log (not
// "__HIVE_DEFAULT_PARTITION__"); the table reads them as NULL, their
// duplicates are found, and the mirror to PostgreSQL works.
func TestNullTimestampPartition(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_nullpart_")
	e.write(partitionPipeline)
	body := `{"ts":"2024-01-01 10:00:00","id":"a","v":1}
{"ts":null,"id":"b","v":2}
{"id":"c","v":3}
{"ts":"2024-01-02 23:59:59","id":"d","v":4}
`
	e.ingestLines("events", body)
	e.cli(0, "run", "bronze.events")
	// The same rows again: all duplicates, the NULL-partition ones too.
	e.ingestLines("events", body)
	e.cli(0, "run", "bronze.events")

	got := e.cli(0, "query", "--format", "csv", "SELECT id, ts, event_date, v FROM bronze.events ORDER BY id")
	want := "id,ts,event_date,v\n" +
		"a,2024-01-01T10:00:00Z,2024-01-01,1\n" +
		"b,,,2\n" +
		"c,,,3\n" +
		"d,2024-01-02T23:59:59Z,2024-01-02,4\n"
	if got != want {
		t.Errorf("bronze.events:\n%s\nwant:\n%s", got, want)
	}
	pv := e.logPartitionValues("bronze/events")
	if !slices.Contains(pv, `{"event_date":null}`) || slices.ContainsFunc(pv, func(s string) bool { return strings.Contains(s, "HIVE") }) {
		t.Errorf("partitionValues in the log: %v, want event_date null for the NULL timestamps", pv)
	}

	out := e.cli(0, "mirror")
	if !strings.Contains(out, "events") {
		t.Errorf("mirror:\n%s", out)
	}
	e.cli(0, "mirror") // a rerun finds nothing new and does not fail
	e.equal(map[string]string{"bronze.events": "events"})
}

// TestStringPartitionEscaping: string partition values with '/', '=', '%',
// spaces and non-ASCII round-trip: the log holds them raw, the query and
// the mirror return them exactly, and a second delivery of the same rows
// is found to be duplicates.
func TestStringPartitionEscaping(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_strpart_")
	e.write(partitionPipeline)
	var b strings.Builder
	for i, r := range awkwardRegions {
		fmt.Fprintf(&b, `{"id":"r%d","region":%q}`+"\n", i, r)
	}
	b.WriteString(`{"id":"rnull","region":null}` + "\n")
	e.ingestLines("tagged", b.String())
	e.cli(0, "run", "bronze.tagged")
	e.ingestLines("tagged", b.String())
	out := e.cli(0, "run", "bronze.tagged")

	got := e.cli(0, "query", "--format", "json", "SELECT id, region FROM bronze.tagged ORDER BY id")
	var rows []struct {
		ID     string  `json:"id"`
		Region *string `json:"region"`
	}
	if err := json.Unmarshal([]byte(got), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, got)
	}
	if len(rows) != len(awkwardRegions)+1 {
		t.Fatalf("%d rows, want %d (duplicates not found?):\n%s\nrun:\n%s", len(rows), len(awkwardRegions)+1, got, out)
	}
	for _, r := range rows {
		var want *string
		if r.ID != "rnull" {
			var i int
			fmt.Sscanf(r.ID, "r%d", &i)
			if v := awkwardRegions[i]; v != "" {
				want = &v
			}
		}
		if (r.Region == nil) != (want == nil) || (want != nil && *r.Region != *want) {
			t.Errorf("%s: region %v, want %v", r.ID, deref(r.Region), deref(want))
		}
	}
	pv := e.logPartitionValues("bronze/tagged")
	for _, r := range awkwardRegions {
		if r == "" {
			continue
		}
		j, _ := json.Marshal(map[string]string{"region": r})
		if !slices.Contains(pv, string(j)) {
			t.Errorf("no add with partitionValues %s in the log: %v", j, pv)
		}
	}
	if !slices.Contains(pv, `{"region":null}`) {
		t.Errorf("no add with a null region in the log: %v", pv)
	}

	e.cli(0, "mirror")
	e.equal(map[string]string{"bronze.tagged": "tagged"})
	var n int
	if err := e.conn.QueryRow(context.Background(), "SELECT count(*) FROM "+e.schema+".tagged WHERE region = 'Zürich/Ost = 100% süß'").Scan(&n); err != nil || n != 1 {
		t.Errorf("PostgreSQL rows with the awkward region: %d (%v)", n, err)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// legacyPipeline is the pipeline that wrote testdata/partition-legacy.
const legacyPipeline = `
sources:
  events:
    format: ndjson
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      id: {type: string, required: true}
    dedupe: [id, ts]
  tagged:
    format: ndjson
    schema:
      id:     {type: string, required: true}
      region: {type: string}
    partition_by: region
  stamped:
    format: ndjson
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      id: {type: string, required: true}
    partition_by: ts
mirror:
  - table: bronze.events
    to: {schema}.events
    key: [id]
  - table: bronze.stamped
    to: {schema}.stamped
    key: [id]
`

// TestLegacyNullPartitionTables: tables written before partition values
// followed the protocol ("__HIVE_DEFAULT_PARTITION__" in partitionValues,
// escaped timestamps) read with NULL for the null partition, mirror to
// PostgreSQL, and take new rows, their duplicates found.
func TestLegacyNullPartitionTables(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_legacypart_")
	if err := os.CopyFS(filepath.Join(e.dir, "lake"), os.DirFS(filepath.Join(testenv.RepoRoot(t), "testdata", "partition-legacy", "lake"))); err != nil {
		t.Fatal(err)
	}
	e.write(legacyPipeline)
	queries := map[string]string{
		"SELECT id, ts, event_date FROM bronze.events ORDER BY id": "id,ts,event_date\na,2024-01-01T10:00:00Z,2024-01-01\nb,,\n",
		"SELECT id, region FROM bronze.tagged ORDER BY id":         "id,region\nr1,north\nr2,\n",
		"SELECT id, ts FROM bronze.stamped ORDER BY id":            "id,ts\ns1,2024-01-01T10:00:00Z\ns2,\n",
	}
	check := func(when string) {
		t.Helper()
		for q, want := range queries {
			if got := e.cli(0, "query", "--format", "csv", q); got != want {
				t.Errorf("%s: %s:\n%s\nwant:\n%s", when, q, got, want)
			}
		}
	}
	check("as written")
	e.cli(0, "mirror")
	e.equal(map[string]string{"bronze.events": "events", "bronze.stamped": "stamped"})

	// New rows, one a duplicate of the legacy NULL-partition row.
	e.ingestLines("events", `{"ts":null,"id":"b"}`+"\n"+`{"ts":null,"id":"c"}`+"\n")
	out := e.cli(0, "run", "bronze.events")
	queries["SELECT id, ts, event_date FROM bronze.events ORDER BY id"] = "id,ts,event_date\na,2024-01-01T10:00:00Z,2024-01-01\nb,,\nc,,\n"
	check("after new rows:\n" + out)
	e.cli(0, "mirror")
	e.equal(map[string]string{"bronze.events": "events", "bronze.stamped": "stamped"})
}

// TestStringPartitionEscapingS3: the awkward partition values round-trip on
// MinIO too (object keys hold the escaped directory names).
func TestStringPartitionEscapingS3(t *testing.T) {
	l := newTestLake(t, "s3")
	l.writePipeline(t, `
sources:
  tagged:
    format: ndjson
    schema:
      id:     {type: string, required: true}
      region: {type: string}
    partition_by: region
    dedupe: [id, region]
`)
	var b strings.Builder
	for i, r := range awkwardRegions {
		fmt.Fprintf(&b, `{"id":"r%d","region":%q}`+"\n", i, r)
	}
	in := filepath.Join(l.dir, "tagged.ndjson")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run(t, "ingest", "tagged", in)
	l.run(t, "run", "bronze")
	got := l.run(t, "query", "--format", "json", "SELECT id, region FROM bronze.tagged ORDER BY id")
	var rows []struct {
		ID     string  `json:"id"`
		Region *string `json:"region"`
	}
	if err := json.Unmarshal([]byte(got), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, got)
	}
	if len(rows) != len(awkwardRegions) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(awkwardRegions), got)
	}
	for i, r := range rows {
		want := awkwardRegions[i]
		if (want == "") != (r.Region == nil) || (r.Region != nil && *r.Region != want) {
			t.Errorf("%s: region %s, want %q", r.ID, deref(r.Region), want)
		}
	}
}

// TestNegativeYearEventDate: a timestamp before year 1 gets the UTC date
// of its own day as event_date (astronomical years, as ISO 8601 and Delta
// write them: year 0 is 1 BC), recorded as "-0044-03-15" in the log, and a
// second delivery is found to be duplicates.
func TestNegativeYearEventDate(t *testing.T) {
	t.Parallel()
	e := newMirrorEnv(t, "cli_negyear_")
	e.write(`
sources:
  old:
    format: ndjson
    schema:
      ts: {type: timestamp}
      id: {type: string, required: true}
    dedupe: [id, ts]
`)
	body := `{"ts":"-0044-03-15T12:00:00Z","id":"a"}
{"ts":"0000-06-01T00:00:00Z","id":"b"}
{"ts":"-0001-12-31T23:59:59Z","id":"c"}
{"ts":"0001-01-01T00:00:00Z","id":"d"}
`
	e.ingestLines("old", body)
	e.cli(0, "run", "bronze")
	e.ingestLines("old", body+`{"ts":"-0044-03-15T12:00:01Z","id":"e"}`+"\n")
	out := e.cli(0, "run", "bronze")
	if !strings.Contains(out, "5 rows read = 1 written + 0 quarantined + 0 dropped + 4 duplicates") {
		t.Errorf("second delivery:\n%s", out)
	}
	got := e.cli(0, "query", "--format", "csv",
		"SELECT id, ts, event_date FROM bronze.old ORDER BY id")
	want := "id,ts,event_date\n" +
		"a,-0044-03-15T12:00:00Z,-0044-03-15\n" +
		"b,0000-06-01T00:00:00Z,0000-06-01\n" +
		"c,-0001-12-31T23:59:59Z,-0001-12-31\n" +
		"d,0001-01-01T00:00:00Z,0001-01-01\n" +
		"e,-0044-03-15T12:00:01Z,-0044-03-15\n"
	if got != want {
		t.Errorf("bronze.old:\n%s\nwant:\n%s", got, want)
	}
	pv := e.logPartitionValues("bronze/old")
	for _, w := range []string{`{"event_date":"-0044-03-15"}`, `{"event_date":"0000-06-01"}`, `{"event_date":"-0001-12-31"}`, `{"event_date":"0001-01-01"}`} {
		if !slices.Contains(pv, w) {
			t.Errorf("no add with partitionValues %s in the log: %v", w, pv)
		}
	}
}
