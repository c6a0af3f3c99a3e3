package bronze

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// typedNDJSONYAML has only columns the typed read can take (string,
// double, a timestamp with a format), like bench case 2's source.
const typedNDJSONYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      ts:  {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      id:  {type: string, required: true}
      v:   {type: double, min: 0}
      s:   {type: string}
    dedupe: [id, ts]
    derive:
      big: v > 100
`

// TestTypedReadMatchesPrecise runs inputs through the fast path (the typed
// read first, then the MAP read, then the precise path) and through the
// precise path alone: bronze rows, quarantine rows and accounting must be
// the same, and the typed read must have written exactly the batches it
// can prove it types as the others do. The inputs include the values
// DuckDB's typed reader is looser on than bronze's casts
// (docs/bronze-profile.md).
func TestTypedReadMatchesPrecise(t *testing.T) {
	clean := `{"ts":"2024-03-01 10:00:00","id":"a","v":1.50,"s":"x"}` + "\n" +
		`{"id":"b","ts":"2024-03-02 00:00:00","v":2e2,"s":"q\"uo\u00e9"}` + "\n" +
		`{"id":"c","v":null,"s":null,"ts":null}` + "\n" + "\n" +
		`{"id":"d", "v" : -0, "s":"tab\tinside"}` + "\n"
	cases := []struct {
		name, input string
		reader      string // which reader wrote the batch: typed, map, or "" (the precise path)
	}{
		{"clean", clean, "typed"},
		{"empty object", "", "typed"},
		{"line just under the limit", `{"id":"a","s":"` + strings.Repeat("y", DefaultMaxLineBytes-100) + `"}` + "\n" + `{"id":"b"}` + "\n", "typed"},
		{"bool in a double column", `{"id":"a","v":true}` + "\n", ""},
		{"string in a double column", `{"id":"a","v":"12.5"}` + "\n", "map"},
		{"number in a string column", `{"id":"a","s":12}` + "\n", "map"},
		{"nested value in a string column", `{"id":"a","s":{"k":[1,"x"]}}` + "\n", "map"},
		{"padded string", `{"id":"a","s":" padded "}` + "\n", "map"},
		{"empty string", `{"id":"a","s":""}` + "\n", "map"},
		// DuckDB's typed reader takes blanks around a timestamp, as
		// bronze's trim does.
		{"padded timestamp", `{"id":"a","ts":" 2024-03-01 10:00:00 "}` + "\n", "typed"},
		// The typed reader, like strptime, reads these words as
		// 1900-01-01: the scan leaves them to the precise path.
		{"infinity timestamp", `{"id":"a","ts":"infinity"}` + "\n" + `{"id":"b","ts":"2024-03-01 10:00:00"}` + "\n", ""},
		{"epoch timestamp", `{"id":"a","ts":" Epoch "}` + "\n", ""},
		{"tab before a timestamp", `{"id":"a","ts":"\t2024-03-01 10:00:00"}` + "\n", "map"},
		{"timestamp in another layout", `{"id":"a","ts":"2024-03-01T10:00:00"}` + "\n", ""},
		{"number too large", `{"id":"a","v":1e400}` + "\n", ""},
		{"bare NaN literal", `{"id":"a","v":NaN}` + "\n", ""},
		{"below the minimum", `{"id":"a","v":-1}` + "\n" + `{"id":"b","v":1}` + "\n", ""},
		{"required missing", `{"v":1}` + "\n" + `{"id":"b","v":1}` + "\n", ""},
		{"unknown key", `{"id":"a","v":1,"firmware":"1.2"}` + "\n", ""},
		{"escaped key", `{"i\u0064":"a","v":1}` + "\n", "map"},
		{"duplicate key in a line", `{"id":"a","id":"b","v":1}` + "\n", "map"},
		{"not an object", `{"id":"a","v":1}` + "\n[1]\n", ""},
		{"broken line", `{"id":"a","v":1}` + "\n{\"id\":\n", ""},
		{"duplicate rows", `{"id":"a","ts":"2024-03-01 10:00:00"}` + "\n" + `{"id":"a","ts":"2024-03-01 10:00:00"}` + "\n", ""},
	}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkTypedRead(t, e, typedNDJSONYAML, tc.input, tc.reader)
		})
	}
	// Objects with an empty object on a line: the typed read's joined
	// file merges the lineage keys into it without a comma.
	t.Run("empty objects", func(t *testing.T) {
		checkTypedRead(t, e, strings.NewReplacer("required: true", "required: false", "    dedupe: [id, ts]\n", "").Replace(typedNDJSONYAML), `{}`+"\n"+`{ }`+"\n"+`{"id":"a"}`+"\n", "typed")
	})
}

// TestTypedReadDeclaredLineageNames: a source declaring columns named
// like the joined file's merged keys (_f, _r) is typed by the typed read
// over the objects' own files, with the same rows as the precise path.
func TestTypedReadDeclaredLineageNames(t *testing.T) {
	yaml := `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      _f: {type: string, required: true}
      _R: {type: double}
`
	checkTypedRead(t, newEngine(t), yaml, `{"_f":"a","_R":1.5}`+"\n"+`{"_f":"b"}`+"\n", "typed")
}

// checkTypedRead runs input through the fast path (the typed read first,
// then the MAP read, then the precise path) and through the precise path
// alone: bronze rows, quarantine rows and accounting must be the same, and
// the batch must have been written by reader (typed, map, or "" for the
// precise path).
func checkTypedRead(t *testing.T, e *warehouse.Engine, yaml, input, wantReader string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "input.ndjson"), []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	src := p.SourceOrder[0]
	run := func(precise bool) (out, logs string) {
		st := testenv.LocalStore(t)
		landInputs(t, st, p, dir, received)
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Log: log, Now: func() time.Time { return received.Add(time.Hour) }}, precise: precise}, p.Sources[src])
		if err != nil {
			t.Fatalf("precise=%v: %v", precise, err)
		}
		if !s.Balanced() {
			t.Fatalf("precise=%v: accounting does not hold: %s", precise, s)
		}
		out = tableCSV(t, st, e.DB(), "bronze/"+src, bronzeCols(p)) + "--- quarantine\n" +
			tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols) + "--- stats\n" + s.String() + "\n"
		return out, buf.String()
	}
	got, logs := run(false)
	want, _ := run(true)
	if got != want {
		t.Errorf("fast path differs from the precise path\n--- precise\n%s\n--- fast (with fallbacks)\n%s", want, got)
	}
	reader := ""
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "fast path wrote the batch") {
			_, r, _ := strings.Cut(l, " reader=")
			reader, _, _ = strings.Cut(r, " ")
		}
	}
	if reader != wantReader {
		t.Errorf("the batch was written by reader %q, want %q\n%s", reader, wantReader, got)
	}
}

// FuzzSkipBlanks: skipBlanks trims what bytes.TrimLeft(b, " \t") trims.
func FuzzSkipBlanks(f *testing.F) {
	for _, s := range []string{"", " ", "\t \t:1", "  \"a\"", "x ", " \r\n1", "\t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := skipBlanks(b), bytes.TrimLeft(b, " \t"); !bytes.Equal(got, want) || len(got) != len(want) {
			t.Fatalf("skipBlanks(%q) = %q, want %q", b, got, want)
		}
	})
}
