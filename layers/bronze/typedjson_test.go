package bronze

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
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
// the batch must have been written by reader (typed, map or text, or ""
// for the precise path). A yaml whose source is CSV gets a CSV input.
func checkTypedRead(t *testing.T, e *warehouse.Engine, yaml, input, wantReader string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "input.ndjson"
	if strings.Contains(yaml, "format: csv") {
		name = "input.csv"
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(input), 0o644); err != nil {
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
	if wantReader != anyReader && reader != wantReader {
		t.Errorf("the batch was written by reader %q, want %q\n%s", reader, wantReader, got)
	}
}

// anyReader tells checkTypedRead that any reader may write the batch.
const anyReader = "*"

// typedCorpusYAML declares the bad-value corpus's columns the typed read
// can take (a string, a double, a timestamp with a format and no zone),
// and no other, so that the typed read applies to the source.
const typedCorpusYAML = `lake: file://./lake
sources:
  v:
    format: ndjson
    schema:
      id: {type: string, required: true}
      d:  double
      s:  string
      tf: {type: timestamp, format: "2006-01-02 15:04:05"}
`

// typedCorpus is the bad-value corpus's NDJSON cases for the columns of
// typedCorpusYAML, plus the formatted-timestamp cases of its zoned column
// on a column without a zone.
func typedCorpus() []corpusValue {
	notTS := func(text string) string {
		return fmt.Sprintf("%q is not a timestamp (want 2006-01-02 15:04:05)", text)
	}
	cases := []corpusValue{
		str("tf", "2024-03-01 10:00:00", "2024-03-01 10:00:00+00", ""),
		str("tf", " 2024-03-01 10:00:00 ", "2024-03-01 10:00:00+00", ""),
		str("tf", "2024-02-30 10:00:00", "", notTS("2024-02-30 10:00:00")),
		str("tf", "2024-03-01T10:00:00", "", notTS("2024-03-01T10:00:00")),
		str("tf", "infinity", "", notTS("infinity")),
		str("tf", "-Infinity", "", notTS("-Infinity")),
		str("tf", "EPOCH", "", notTS("EPOCH")),
		jsonOnly("tf", "17", "", notTS("17")),
	}
	for _, c := range badValueCorpus {
		if (c.col == "d" || c.col == "s") && c.json != "" {
			cases = append(cases, c)
		}
	}
	return cases
}

// typedCorpusReader is the reader that must write a batch of one good row
// and c: the precise path for a refused value (it alone quarantines), the
// typed read for an accepted value of a JSON kind the column's typed read
// takes (a number for the double, a string without blanks at its ends for
// the string: the MAP path trims), any reader otherwise.
func typedCorpusReader(c corpusValue) string {
	if c.reason != "" {
		return ""
	}
	isString := c.json[0] == '"'
	switch c.col {
	case "d":
		if !isString && c.json[0] != 't' && c.json[0] != 'f' && c.json[0] != 'n' {
			return "typed"
		}
	case "s":
		if isString && strings.TrimSpace(c.want) == c.want && c.want != "" {
			return "typed"
		}
	case "tf":
		if isString {
			return "typed"
		}
	}
	return anyReader
}

// TestTypedReadBadValueCorpus runs the bad-value corpus's values of the
// columns the typed read takes through the fast path (the typed read
// first) and the precise path alone: each value alone with a good row,
// then all of them in one object. Rows, quarantine rows and their reasons,
// and accounting must be the same; an accepted number in a double column
// and an accepted string in a string column must have been written by the
// typed read, so that its values, not a fallback's, are the ones compared.
func TestTypedReadBadValueCorpus(t *testing.T) {
	e := newEngine(t)
	cases := typedCorpus()
	good := corpusLine("r99", "s", `"ok"`)
	var all strings.Builder
	for k, c := range cases {
		line := corpusLine(fmt.Sprintf("r%02d", k), c.col, c.json)
		all.WriteString(line + "\n")
		t.Run(c.col+"="+c.json, func(t *testing.T) {
			checkTypedRead(t, e, typedCorpusYAML, good+"\n"+line+"\n", typedCorpusReader(c))
		})
	}
	t.Run("whole corpus", func(t *testing.T) {
		checkTypedRead(t, e, typedCorpusYAML, good+"\n"+all.String(), "")
	})
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

// typedScanJob is a job over typedNDJSONYAML's source with lines of at most
// 64 bytes, for the scan's own tests.
func typedScanJob(t testing.TB) *job {
	t.Helper()
	p, err := config.Parse("medallion.yaml", []byte(typedNDJSONYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planSource(p.Sources["m"])
	if err != nil {
		t.Fatal(err)
	}
	return &job{src: p.Sources["m"], plan: plan, maxLine: 64}
}

// typedScanInputs are objects the typed read takes and objects it must
// not: undeclared and repeated keys, values of the wrong kind, lines too
// long, blank lines, no line end at the end, escapes and nesting.
var typedScanInputs = []string{
	"",
	"\n\n",
	`{"ts":"2024-01-01 00:00:00","id":"a","v":1.5}` + "\n",
	`{"ts":"2024-01-01 00:00:00","id":"a","v":1.5}` + "\n" + `{"ts":"2024-01-01 00:00:01","id":"b","v":2}`,
	`{"ts":"2024-01-01 00:00:00","id":"a","v":1.5}` + "\n\n \n" + `{"id":"b","v":null,"s":"x y"}` + "\r\n",
	`{"id":"a","v":1}` + "\n" + `{"id":"b","zz":1}` + "\n" + `{"id":"c","v":1}` + "\n",
	`{"id":"a","v":1}` + "\n" + `{"id":"b","id":"c"}` + "\n",
	`{"id":"a","v":1}` + "\n" + `{"id":"b","v":"1"}` + "\n" + `{"id":"c","v":1}` + "\n",
	`{"id":"a","v":1}` + "\n" + `{"id":"b","s":"` + strings.Repeat("x", 80) + `"}` + "\n" + `{"id":"c"}` + "\n",
	`{"id":"a\"b","s":"{\"v\":1}"}` + "\n" + `{"id":"c","s":"d"}` + "\n",
	`{"id":"a","s":{"nested":{"v":1}}}` + "\n",
	`["id","a"]` + "\n" + `{"id":"a"}` + "\n",
	`{"id":"a"}` + "\n" + `{"i\u0064":"a"}` + "\n",
}

// TestTypedFitsInPieces: scanning an object in pieces cut at line ends
// (large objects, one piece per core) answers what one scan answers, for
// every number of pieces.
func TestTypedFitsInPieces(t *testing.T) {
	j := typedScanJob(t)
	for i, in := range typedScanInputs {
		// Repeated so that there are lines to cut between.
		data := []byte(strings.Repeat(in+"\n", 3) + in)
		checkTypedFitsInPieces(t, j, fmt.Sprintf("input %d", i), data)
	}
}

func checkTypedFitsInPieces(t *testing.T, j *job, name string, data []byte) {
	t.Helper()
	want, err := j.typedFitsIn(bytes.NewReader(data), int64(len(data)), name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "o.ndjson")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for n := 1; n <= 7; n++ {
		cuts, err := lineCuts(f, int64(len(data)), n)
		if err != nil {
			t.Fatal(err)
		}
		if cuts[0] != 0 || cuts[len(cuts)-1] != int64(len(data)) || len(cuts) > n+1 {
			t.Fatalf("%s, %d pieces: cuts %v of %d bytes", name, n, cuts, len(data))
		}
		for k := 1; k < len(cuts)-1; k++ {
			if cuts[k] <= cuts[k-1] || data[cuts[k]-1] != '\n' {
				t.Fatalf("%s, %d pieces: cut %d at %d is not just after a line end (cuts %v)", name, n, k, cuts[k], cuts)
			}
		}
		got, err := scanPieces(f, int64(len(data)), n, path, func(r io.Reader, size int64, _ bool) (bool, error) {
			return j.typedFitsIn(r, size, path)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s, %d pieces (cuts %v): fits %v, one scan says %v\n%q", name, n, cuts, got, want, data)
		}
	}
}

// FuzzTypedFitsInPieces: the same for any bytes.
func FuzzTypedFitsInPieces(f *testing.F) {
	for _, in := range typedScanInputs {
		f.Add([]byte(in))
	}
	j := typedScanJob(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTypedFitsInPieces(t, j, "fuzz", data)
	})
}

// TestTypedFitsLargeObjectInPieces: typedFits takes the pieces from
// parallelScanMin on, and answers as one scan does.
func TestTypedFitsLargeObjectInPieces(t *testing.T) {
	j := typedScanJob(t)
	old := parallelScanMin
	parallelScanMin = 1
	defer func() { parallelScanMin = old }()
	for i, in := range typedScanInputs {
		data := []byte(strings.Repeat(in+"\n", 5))
		path := filepath.Join(t.TempDir(), "o.ndjson")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := j.typedFits(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := j.typedFits(path, data) // held bytes: one scan
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("input %d: in pieces %v, one scan %v", i, got, want)
		}
	}
}

// TestTypedReadGoldenCases runs the golden cases whose source a typed
// read (NDJSON or CSV) can take through the fast path and the precise path alone (same
// rows, quarantine rows and accounting); a case without a bad line must
// have been written by the typed read. TestGolden holds those cases to
// their expected files.
func TestTypedReadGoldenCases(t *testing.T) {
	e := newEngine(t)
	root := casesDir(t)
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, ent := range ents {
		dir := filepath.Join(root, ent.Name())
		input, err := os.ReadFile(filepath.Join(dir, "input.ndjson"))
		if err != nil {
			input, err = os.ReadFile(filepath.Join(dir, "input.csv"))
		}
		if err != nil {
			continue // not one NDJSON or CSV object
		}
		yaml, err := os.ReadFile(filepath.Join(dir, "medallion.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		p := loadCase(t, dir)
		plan, err := planSource(p.Sources[p.SourceOrder[0]])
		if err != nil {
			t.Fatal(err)
		}
		if !(&job{src: p.Sources[p.SourceOrder[0]], plan: plan}).typedApplies() {
			continue
		}
		reader := anyReader
		if !strings.HasPrefix(ent.Name(), "bad_") {
			reader = "typed"
		}
		ran++
		t.Run(ent.Name(), func(t *testing.T) {
			checkTypedRead(t, e, string(yaml), string(input), reader)
		})
	}
	if ran < 10 {
		t.Fatalf("%d golden cases the typed reads take, want at least 10 (energy, bad_ndjson, ecommerce and the bad CSV cases)", ran)
	}
}
