package bronze

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

const fastNDJSONYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      ts:  {type: timestamp, format: "2006-01-02 15:04:05"}
      id:  {type: string, required: true}
      v:   {type: double, min: 0}
      n:   {type: int64}
      ok:  {type: bool}
      s:   {type: string}
    dedupe: [id]
`

// fastNDJSONDecimalYAML has a decimal column: an object with a number a
// double may shorten goes the precise way (mayLoseDigits).
const fastNDJSONDecimalYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      id:  {type: string, required: true}
      d:   {type: "decimal(10,2)"}
`

const fastCSVYAML = `lake: file://./lake
sources:
  c:
    format: csv
    schema:
      id: {type: string, required: true}
      ts: {type: timestamp, format: "2006-01-02 15:04:05"}
      v:  {type: double, min: 0}
      n:  {type: int64}
      s:  {type: string}
    dedupe: [id]
`

// TestFastPathMatchesPrecise runs each input through the fast path (with
// its fallback) and through the precise path alone: bronze rows, quarantine
// rows and accounting must be the same, and the fast path must have taken
// the clean inputs and refused the others.
func TestFastPathMatchesPrecise(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxLineBytes)
	nearlyLong := strings.Repeat("y", DefaultMaxLineBytes-100)
	cases := []struct {
		name, yaml, ext, input string
		fast                   bool // the fast path wrote the batch
		preciseFails           bool // the precise path alone cannot read the input
	}{
		{"ndjson clean", fastNDJSONYAML, "ndjson",
			`{"ts": "2024-03-01 10:00:00", "id": "a", "v": 1.50, "n": 7, "ok": true, "s": " padded "}` + "\n" +
				`{"id":"b","ts":"2024-03-02 00:00:00","v":"2","n":"8","ok":"false","s":{"nested": [1, 2.0, "x"]}}` + "\n" +
				`{"id":"c\u00e9\"q","v":null,"s":""}` + "\n" +
				`{"id":"d","s":"   ","v":1e2,"n":-0}` + "\n", true, false},
		// The precise path's line reader (read_csv, new_line '\n') refuses
		// CRLF lines; the JSON reader takes them.
		{"ndjson crlf and blank lines", fastNDJSONYAML, "ndjson",
			"\n" + `{"id":"a","v":1}` + "\r\n   \r\n\n" + `{"id":"b","v":2}` + "\r\n", true, true},
		{"ndjson empty object", fastNDJSONYAML, "ndjson", "", true, false},
		{"ndjson only blank lines", fastNDJSONYAML, "ndjson", "\n\n   \n\t\n", true, false},
		{"ndjson byte order mark", fastNDJSONYAML, "ndjson", "\ufeff" + `{"id":"a","v":1}` + "\n", false, false},
		{"ndjson duplicate key in a line", fastNDJSONYAML, "ndjson", `{"id":"a","id":"b","v":1}` + "\n" + `{"id":"c"}` + "\n", true, false},
		{"ndjson unknown key", fastNDJSONYAML, "ndjson", `{"id":"a","v":1,"firmware":"1.2"}` + "\n" + `{"id":"b"}` + "\n", false, false},
		{"ndjson key in other case", fastNDJSONYAML, "ndjson", `{"ID":"a","V":1}` + "\n", false, false},
		{"ndjson bad rows", fastNDJSONYAML, "ndjson",
			`{"id":"a","v":1}` + "\nnull\n[1,2]\n{not json\n" + `{"id":"b","v":true}` + "\n" + `{"id":"c","v":-1}` + "\n" + `{"v":3}` + "\n" + `{"id":"d","ts":"yesterday"}` + "\n", false, false},
		{"ndjson invalid utf-8", fastNDJSONYAML, "ndjson", `{"id":"a","v":1}` + "\n" + "{\"id\":\"b\xff\"}\n", false, false},
		{"ndjson duplicate rows", fastNDJSONYAML, "ndjson", `{"id":"a","v":1}` + "\n" + `{"id":"a","v":2}` + "\n" + `{"id":"b","v":2}` + "\n", false, false},
		{"ndjson line of 1 MB", fastNDJSONYAML, "ndjson", `{"id":"a","s":"` + long + `"}` + "\n" + `{"id":"b"}` + "\n", false, false},
		{"ndjson decimal column", fastNDJSONDecimalYAML, "ndjson",
			`{"id":"a","d":"12.340"}` + "\n" + `{"id":"b","d":1}` + "\n" + `{"id":"c","d":12345678.99}` + "\n", true, false},
		{"ndjson decimal with more digits than a double keeps", fastNDJSONDecimalYAML, "ndjson",
			`{"id":"a","d":"12.340"}` + "\n" + `{"id":"c","d":0.10000000000000000001}` + "\n", false, false},
		{"ndjson decimal with an exponent", fastNDJSONDecimalYAML, "ndjson",
			`{"id":"a","d":1e-400}` + "\n" + `{"id":"b","d":1.5E1}` + "\n", false, false},
		{"ndjson line just under the limit", fastNDJSONYAML, "ndjson", `{"id":"a","s":"` + nearlyLong + `"}` + "\n" + `{"id":"b"}` + "\n", true, false},
		{"csv clean", fastCSVYAML, "csv",
			"id,ts,v,n,s\na,2024-03-01 10:00:00,1.5,7, padded \nb,,,,\"quoted, with comma\"\n c ,2024-03-02 00:00:00,2,8,\"\"\n", true, false},
		{"csv crlf", fastCSVYAML, "csv", "id,ts,v,n,s\r\na,2024-03-01 10:00:00,1.5,7,x\r\nb,,,,y\r\n", true, false},
		{"csv byte order mark", fastCSVYAML, "csv", "\ufeffid,ts,v,n,s\na,2024-03-01 10:00:00,1.5,7,x\n", true, false},
		{"csv header only", fastCSVYAML, "csv", "id,ts,v,n,s\n", true, false},
		{"csv empty object", fastCSVYAML, "csv", "", true, false},
		{"csv unknown column", fastCSVYAML, "csv", "id,ts,v,n,s,Color\na,,1,2,x,red\nb,,1,2,y,\n", true, false},
		{"csv bad rows", fastCSVYAML, "csv",
			"id,ts,v,n,s\na,2024-03-01 10:00:00,1.5,7,x\nb,yesterday,1,1,y\nc,,-1,1,z\n,,1,1,w\nd,,abc,1,v\ne,,1,1,v,extra\n", false, false},
	}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "input."+tc.ext), []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			p := loadCase(t, dir)
			src := p.SourceOrder[0]
			run := func(precise bool) (out string, fast bool, err error) {
				st := testenv.LocalStore(t)
				landInputs(t, st, p, dir, received)
				var logs bytes.Buffer
				log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Log: log, Now: func() time.Time { return received.Add(time.Hour) }}, precise: precise}, p.Sources[src])
				if err != nil {
					return "", false, err
				}
				if !s.Balanced() {
					t.Fatalf("precise=%v: accounting does not hold: %s", precise, s)
				}
				out = tableCSV(t, st, e.DB(), "bronze/"+src, bronzeCols(p)) + "--- quarantine\n" +
					tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols) + "--- stats\n" + s.String() + "\n"
				return out, strings.Contains(logs.String(), "fast path wrote the batch"), nil
			}
			got, fast, err := run(false)
			if err != nil {
				t.Fatalf("fast path with fallback: %v", err)
			}
			want, _, err := run(true)
			if tc.preciseFails {
				if err == nil {
					t.Errorf("the precise path read the input; drop preciseFails")
				}
				if !fast || !strings.Contains(got, "5 rows read = 2 written + 0 quarantined + 0 dropped + 0 duplicates + 3 blank lines skipped") {
					t.Errorf("fast path: fast=%v\n%s", fast, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("precise path: %v", err)
			}
			if got != want {
				t.Errorf("fast path differs from the precise path\n--- precise\n%s\n--- fast (with fallback)\n%s", want, got)
			}
			if fast != tc.fast {
				t.Errorf("fast path wrote the batch: %v, want %v\n%s", fast, tc.fast, got)
			}
		})
	}
}

// TestManyObjectsOneBatch: a batch of more objects than are fused into one
// statement is gathered into one table, each object's rows carrying its own
// key as _source_file (the lineage ENUM holds every key of the batch, and
// reads back as a plain string), and of a key repeated across two objects
// landed at the same instant the row of the object whose key sorts first
// is kept, as for string keys.
func TestManyObjectsOneBatch(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(fastNDJSONYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	n := maxFusedObjects + 4
	for i := range n {
		body := fmt.Sprintf(`{"id":"o%02d-a","v":%d}`+"\n"+`{"id":"o%02d-b","v":1}`+"\n", i, i, i)
		if i == n-1 {
			body += `{"id":"o00-a","v":99}` + "\n" // the first object's key again
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("input%02d.ndjson", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := loadCase(t, dir)
	src := p.SourceOrder[0]
	st := testenv.LocalStore(t)
	landInputs(t, st, p, dir, received)
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}, p.Sources[src])
	if err != nil {
		t.Fatal(err)
	}
	if s.RowsRead != int64(2*n+1) || s.Written != int64(2*n) || s.Duplicates != 1 {
		t.Errorf("stats: %s; want %d read, %d written, 1 duplicate", s, 2*n+1, 2*n)
	}
	got := tableCSV(t, st, e.DB(), "bronze/"+src, "id, CAST(v AS VARCHAR) AS v, _source_file, typeof(_source_file) AS t")
	type row struct{ v, file string }
	rows := map[string]row{}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) != 4 || f[3] != "VARCHAR" {
			t.Fatalf("row %q", line)
		}
		rows[f[0]] = row{f[1], f[2]}
	}
	if len(rows) != 2*n {
		t.Fatalf("%d distinct ids, want %d:\n%s", len(rows), 2*n, got)
	}
	files := map[string]bool{}
	for i := 1; i < n; i++ {
		a, b := rows[fmt.Sprintf("o%02d-a", i)], rows[fmt.Sprintf("o%02d-b", i)]
		if a.file == "" || a.file != b.file || files[a.file] {
			t.Errorf("object %d: rows from %q and %q", i, a.file, b.file)
		}
		files[a.file] = true
	}
	first, last := rows["o00-b"].file, rows[fmt.Sprintf("o%02d-a", n-1)].file
	want := row{"0.0", first}
	if last < first {
		want = row{"99.0", last}
	}
	if rows["o00-a"] != want {
		t.Errorf("o00-a kept %+v, want %+v (object keys %s, %s)", rows["o00-a"], want, first, last)
	}
}
