package bronze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

const statsYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      ts:  {type: timestamp, format: "2006-01-02 15:04:05.000000"}
      id:  {type: string}
      v:   {type: double}
      n:   {type: int64}
      d:   {type: "decimal(10,2)"}
    dedupe: [id, ts]
`

// runObject lands one NDJSON object and runs bronze over it, returning the
// accounting and the debug log.
func runObject(t *testing.T, st lake.Store, dir string, env *statsEnv, name, body string, precise bool) (Stats, string) {
	t.Helper()
	p := filepath.Join(dir, name+".ndjson")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	src := env.p.Sources["m"]
	if _, _, err := raw.LandFile(context.Background(), st, src.Name, src.Format, p, received); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: env.e.DB(), ScratchDir: t.TempDir(), Log: log, Now: func() time.Time { return received.Add(time.Hour) }}, precise: precise}, env.p.Sources["m"])
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, logs.String())
	}
	if !s.Balanced() {
		t.Fatalf("%s: accounting does not hold: %s", name, s)
	}
	return s, logs.String()
}

// statsEnv is a DuckDB engine and the pipeline of statsYAML.
type statsEnv struct {
	e *warehouse.Engine
	p *config.Pipeline
}

func newStatsEnv(t *testing.T) *statsEnv {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(statsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return &statsEnv{e: newEngine(t), p: loadCase(t, dir)}
}

// TestBronzeAddStats checks the statistics of bronze adds: the protocol's
// shape, timestamps at milliseconds with the minimum rounded down and the
// maximum up, a column with no value left without bounds, the partition
// column (not stored in the files) absent.
func TestBronzeAddStats(t *testing.T) {
	env := newStatsEnv(t)
	st := testenv.LocalStore(t)
	runObject(t, st, t.TempDir(), env, "a",
		`{"ts":"2024-03-01 10:00:00.000400","id":"b","v":1.5,"n":3,"d":"1.25"}`+"\n"+
			`{"ts":"2024-03-01 10:00:07.123400","id":"a","v":-2,"n":null,"d":"-0.50"}`+"\n"+
			`{"ts":"2024-03-01 09:59:59.999999","id":"c","v":null,"n":7,"d":null}`+"\n", false)
	snap, err := delta.Open(st, "bronze/m").Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != 1 {
		t.Fatalf("want 1 file, got %d", len(snap.Files))
	}
	fs, err := delta.ParseStats(snap.Files[0].Stats)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got map[string]json.RawMessage, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if string(got[k]) != w {
				t.Errorf("%s[%s] = %s, want %s (stats %s)", what, k, got[k], w, snap.Files[0].Stats)
			}
		}
	}
	if fs.NumRecords != 3 {
		t.Errorf("numRecords %d, want 3", fs.NumRecords)
	}
	check("minValues", fs.MinValues, map[string]string{"ts": `"2024-03-01T09:59:59.999Z"`, "id": `"a"`, "v": `-2`, "n": `3`, "d": `-0.50`})
	check("maxValues", fs.MaxValues, map[string]string{"ts": `"2024-03-01T10:00:07.124Z"`, "id": `"c"`, "v": `1.5`, "n": `7`, "d": `1.25`})
	for _, c := range []string{"_rescued", "_source_file", "_batch_id"} {
		if _, ok := fs.NullCount[c]; !ok {
			t.Errorf("no nullCount for %s: %s", c, snap.Files[0].Stats)
		}
	}
	if fs.NullCount["v"] != 1 || fs.NullCount["n"] != 1 || fs.NullCount["id"] != 0 {
		t.Errorf("nullCount %v", fs.NullCount)
	}
	if _, ok := fs.MinValues["_rescued"]; ok {
		t.Errorf("bounds for an all-NULL column: %s", snap.Files[0].Stats)
	}
	for _, f := range snap.Files {
		for k := range f.PartitionValues {
			if _, ok := fs.NullCount[k]; ok {
				t.Errorf("stats for partition column %s", k)
			}
		}
	}
	if !strings.HasPrefix(snap.Files[0].Stats, `{"numRecords":3,`) {
		t.Errorf("numRecords is not first: %s", snap.Files[0].Stats)
	}
}

var existingRE = regexp.MustCompile(`dedupe: existing files.* read=(\d+) skipped_by_stats=(\d+)`)

// TestDedupeSkipsFilesByStats lands objects one by one (a bronze file
// each) and checks that the duplicate check reads only the files whose key
// ranges meet the batch's, never missing a real duplicate: across an
// overlapping file, with NULL keys, against files written before bronze
// wrote bounds, by the fast path and the precise one.
func TestDedupeSkipsFilesByStats(t *testing.T) {
	line := func(ts, id string) string {
		idv, tsv := "null", "null"
		if id != "" {
			idv = strconv.Quote(id)
		}
		if ts != "" {
			tsv = `"2024-03-01 ` + ts + `"`
		}
		return `{"ts":` + tsv + `,"id":` + idv + `,"v":1}` + "\n"
	}
	// Earlier files: 10:00-10:05 (a, b), 11:00-11:05 (a, b, and a NULL
	// id), 12:00:00.000001-12:00:00.000900 (c), and one of a NULL
	// timestamp (in the default partition).
	first := []string{
		line("10:00:00.000000", "a") + line("10:05:00.000000", "b"),
		line("11:00:00.000000", "a") + line("11:05:00.000000", "b") + line("11:02:00.000000", ""),
		line("12:00:00.000001", "c") + line("12:00:00.000900", "c"),
		line("", "b"),
	}
	bad := `{"ts":"yesterday","id":"z"}` + "\n"
	cases := []struct {
		name     string
		batch    string
		stripOld bool // the earlier files have only numRecords
		dups     int64
		read     int // files the duplicate check reads
	}{
		{"duplicate in the overlapping file", line("10:03:00.000000", "x") + line("10:05:00.000000", "b"), false, 1, 1},
		{"no file overlaps", line("13:00:00.000000", "a") + line("13:01:00.000000", "b"), false, 0, 0},
		{"spans two files", line("10:05:00.000000", "b") + line("11:00:00.000000", "a") + line("10:30:00.000000", "a"), false, 2, 2},
		{"key overlaps in time only", line("10:01:00.000000", "zz"), false, 0, 0},
		{"NULL key duplicate", line("11:02:00.000000", ""), false, 1, 1},
		{"NULL key, no file with NULLs in range", line("10:02:00.000000", ""), false, 0, 0},
		{"sub-millisecond maximum", line("12:00:00.000900", "c"), false, 1, 1},
		{"just past the maximum's millisecond", line("12:00:00.001000", "c"), false, 0, 1},
		{"stats-less files are read", line("13:00:00.000000", "a") + line("10:05:00.000000", "b"), true, 1, 3},
		{"precise path: duplicate in the overlapping file", bad + line("11:05:00.000000", "b") + line("11:04:00.000000", "b"), false, 1, 1},
		{"precise path: no file overlaps", bad + line("14:00:00.000000", "a"), false, 0, 0},
		{"precise path: NULL key duplicate", bad + line("11:02:00.000000", ""), false, 1, 1},
		{"precise path: stats-less files", bad + line("11:05:00.000000", "b"), true, 1, 3},
		{"NULL timestamp duplicate", `{"ts":null,"id":"b","v":2}` + "\n", false, 1, 1},
		{"precise path: NULL timestamp duplicate", bad + line("", "b"), false, 1, 1},
		{"NULL timestamp, other key", line("", "a"), false, 0, 0},
	}
	env := newStatsEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := testenv.LocalStore(t)
			dir := t.TempDir()
			for i, body := range first {
				s, _ := runObject(t, st, dir, env, "first"+strconv.Itoa(i), body, false)
				if s.Files != 1 {
					t.Fatalf("setup: %s", s)
				}
			}
			if tc.stripOld {
				stripStats(t, st, "bronze/m")
			}
			s, logs := runObject(t, st, dir, env, "batch", tc.batch, false)
			if s.Duplicates != tc.dups {
				t.Errorf("duplicates %d, want %d: %s", s.Duplicates, tc.dups, s)
			}
			// A batch with a duplicate is checked twice: by the fast path,
			// which refuses it, and by the precise path, which drops it.
			ms := existingRE.FindAllStringSubmatch(logs, -1)
			if len(ms) == 0 {
				t.Fatalf("no duplicate check logged:\n%s", logs)
			}
			for _, m := range ms {
				if got, _ := strconv.Atoi(m[1]); got != tc.read {
					t.Errorf("read %d existing files, want %d\n%s", got, tc.read, logs)
				}
			}
			wantFast := !strings.Contains(tc.batch, "yesterday") && tc.dups == 0
			if fast := strings.Contains(logs, "fast path wrote the batch"); fast != wantFast {
				t.Errorf("fast path wrote the batch: %v, want %v", fast, wantFast)
			}
		})
	}
}

// stripStats rewrites a table's log as an older writer wrote it: adds
// with only numRecords.
func stripStats(t *testing.T, st lake.Store, table string) {
	t.Helper()
	lp, ok := st.(lake.LocalPather)
	if !ok {
		t.Fatal("not a local store")
	}
	logDir := lp.LocalPath(table + "/_delta_log")
	ents, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(logDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var action map[string]map[string]any
			if err := json.Unmarshal(sc.Bytes(), &action); err != nil {
				t.Fatal(err)
			}
			if add, ok := action["add"]; ok {
				fs, err := delta.ParseStats(add["stats"].(string))
				if err != nil {
					t.Fatal(err)
				}
				add["stats"] = delta.FileStats{NumRecords: fs.NumRecords}.String()
			}
			line, err := json.Marshal(action)
			if err != nil {
				t.Fatal(err)
			}
			out = append(append(out, line...), '\n')
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatValue checks how DuckDB's text of a minimum or maximum becomes a
// statistic, and which values are left out.
func TestStatValue(t *testing.T) {
	dec := delta.Primitive("decimal(10,2)")
	cases := []struct {
		typ  string
		text string
		up   bool
		want string // "" when left out
	}{
		{delta.TypeString, "meter-00001", false, `"meter-00001"`},
		{delta.TypeString, `a"b<`, false, `"a\"b\u003c"`},
		{delta.TypeString, strings.Repeat("x", maxStatString), true, ""},
		{delta.TypeString, "\xff", false, ""},
		{delta.TypeLong, "-42", false, `-42`},
		{delta.TypeInteger, "x", false, ""},
		{delta.TypeDouble, "1e+300", true, `1e+300`},
		{delta.TypeDouble, "inf", true, ""},
		{delta.TypeDouble, "nan", true, ""},
		{delta.TypeDate, "2024-02-29", false, `"2024-02-29"`},
		{delta.TypeDate, "0044-03-15 (BC)", false, ""},
		{delta.TypeTimestamp, "2024-01-01 00:00:00.123456+00", false, `"2024-01-01T00:00:00.123Z"`},
		{delta.TypeTimestamp, "2024-01-01 00:00:00.123456+00", true, `"2024-01-01T00:00:00.124Z"`},
		{delta.TypeTimestamp, "2024-01-01 05:30:00+05:30", false, `"2024-01-01T00:00:00.000Z"`},
		{delta.TypeTimestamp, "infinity", false, ""},
		{delta.TypeTimestampNTZ, "2024-01-01 10:00:00.5", true, `"2024-01-01T10:00:00.500"`},
		{delta.TypeBoolean, "true", false, ""},
		{"decimal(10,2)", "-0.50", false, `-0.50`},
		{"decimal(10,2)", "1e5", false, ""},
	}
	for _, tc := range cases {
		typ := delta.Primitive(tc.typ)
		if tc.typ == "decimal(10,2)" {
			typ = dec
		}
		got, ok := statValue(typ, tc.text, tc.up)
		if (tc.want == "") == ok || (ok && string(got) != tc.want) {
			t.Errorf("statValue(%s, %q, up=%v) = %s, %v; want %s", tc.typ, tc.text, tc.up, got, ok, tc.want)
		}
	}
}

// TestFileStatsFromMap checks fileStats over a column_statistics value
// shaped as a Go map: quoted names, NaN, missing bounds, unknown columns.
func TestFileStatsFromMap(t *testing.T) {
	schema := &delta.Schema{Fields: []delta.Field{
		{Name: `we"ird`, Type: delta.Primitive(delta.TypeLong)},
		{Name: "v", Type: delta.Primitive(delta.TypeDouble)},
		{Name: "b", Type: delta.Primitive(delta.TypeBoolean)},
		{Name: "s", Type: delta.Primitive(delta.TypeString)},
		{Name: "part", Type: delta.Primitive(delta.TypeDate)},
	}}
	cs := map[string]any{
		`"we""ird"`: map[string]any{"min": "1", "max": "9", "null_count": "0"},
		`"v"`:       map[string]any{"min": "1.5", "max": "2", "null_count": "0", "has_nan": "true"},
		`"b"`:       map[string]any{"min": "0", "max": "1", "null_count": "2"},
		`"s"`:       map[string]any{"min": nil, "max": "z", "null_count": "1"},
		`"other"`:   map[string]any{"min": "1", "max": "2", "null_count": "0"},
	}
	got := fileStats(5, cs, schema).String()
	want := `{"numRecords":5,"minValues":{"we\"ird":1},"maxValues":{"we\"ird":9},"nullCount":{"b":2,"s":1,"v":0,"we\"ird":0}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := fileStats(5, nil, schema).String(); got != `{"numRecords":5}` {
		t.Errorf("no column statistics: got %s", got)
	}
}

// TestKeyRangeMeets checks the pruning rule, NULLs included.
func TestKeyRangeMeets(t *testing.T) {
	n := func(lo, hi int64) keyRange {
		return keyRange{known: true, values: true, lo: bound{num: big.NewRat(lo, 1)}, hi: bound{num: big.NewRat(hi, 1)}}
	}
	withNulls := func(r keyRange) keyRange { r.nulls = true; return r }
	allNull := keyRange{known: true, nulls: true}
	unknown := keyRange{}
	cases := []struct {
		name string
		a, b keyRange
		want bool
	}{
		{"overlap", n(1, 5), n(5, 9), true},
		{"inside", n(1, 9), n(3, 4), true},
		{"apart", n(1, 4), n(5, 9), false},
		{"apart, NULLs on one side", withNulls(n(1, 4)), n(5, 9), false},
		{"apart, NULLs on both sides", withNulls(n(1, 4)), withNulls(n(5, 9)), true},
		{"all NULL against NULLs", allNull, withNulls(n(5, 9)), true},
		{"all NULL against values", allNull, n(5, 9), false},
		{"unknown", unknown, n(5, 9), true},
		{"mixed kinds", n(1, 2), keyRange{known: true, values: true, lo: bound{str: "x"}, hi: bound{str: "y"}}, true},
	}
	for _, tc := range cases {
		if got := tc.a.meets(tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.b.meets(tc.a); got != tc.want {
			t.Errorf("%s (swapped): %v, want %v", tc.name, got, tc.want)
		}
	}
}

// BenchmarkMayMatch is the cost per existing file of the statistics check
// (every file of the batch's partitions, every batch).
func BenchmarkMayMatch(b *testing.B) {
	s := `{"numRecords":245000,"minValues":{"timestamp":"2024-01-01T00:00:00.000Z","meter_id":"meter-00001","energy_usage":5,"anomaly":false,"_source_file":"raw/meters/2024/01/01/00/abc.ndjson","_ingested_at":"2024-01-01T00:00:00.000Z","_batch_id":"b-0123456789abcdef"},"maxValues":{"timestamp":"2024-01-01T00:00:25.000Z","meter_id":"meter-10000","energy_usage":499.9,"_source_file":"raw/meters/2024/01/01/00/abd.ndjson","_ingested_at":"2024-01-01T00:00:01.000Z","_batch_id":"b-0123456789abcdef"},"nullCount":{"timestamp":0,"meter_id":0,"energy_usage":0,"anomaly":0,"_rescued":245000,"_source_file":0,"_ingested_at":0,"_batch_id":0}}`
	types := map[string]delta.DataType{"timestamp": delta.Primitive(delta.TypeTimestamp), "meter_id": delta.Primitive(delta.TypeString)}
	batch := map[string]keyRange{
		"timestamp": {known: true, values: true, lo: bound{num: big.NewRat(1704067300000000, 1)}, hi: bound{num: big.NewRat(1704067310000000, 1)}},
		"meter_id":  {known: true, values: true, lo: bound{str: "meter-00001"}, hi: bound{str: "meter-10000"}},
	}
	for i := 0; i < b.N; i++ {
		if mayMatch(s, batch, types) {
			b.Fatal("match")
		}
	}
}
