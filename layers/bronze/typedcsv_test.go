package bronze

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// typedCSVYAML declares a column of every kind the typed CSV read takes
// (a string, an int64, a decimal, a double, a formatted timestamp), like
// bench case 1's source, with rules over the typed values.
const typedCSVYAML = `lake: file://./lake
sources:
  e:
    format: csv
    schema:
      id: {type: string, required: true}
      n:  {type: int64, min: 0}
      p:  {type: "decimal(10,2)", min: 0}
      d:  double
      ts: {type: timestamp, format: "2006-01-02 15:04:05"}
      s:  string
    dedupe: [id]
`

// TestTypedCSVMatchesPrecise runs CSV inputs through the fast path (the
// typed CSV read first, then the text read, then the precise path) and
// through the precise path alone: bronze rows, quarantine rows and
// accounting must be the same, and the batch must have been written by
// the reader listed. The inputs include the values DuckDB's typed reader
// reads otherwise than bronze's casts (rounded, padded, quoted, special
// words), which the scan must leave to bronze's casts, and values the
// shape lets through that the reader must refuse (a 13th month, a 30th
// of February, a decimal too large).
func TestTypedCSVMatchesPrecise(t *testing.T) {
	const h = "id,n,p,d,ts,s\n"
	clean := h + `a,1,565.63,1.5,2024-03-01 10:00:00,x` + "\n" +
		`b,0,0,-2e-3,2024-03-02 00:00:00,"Tablet 10.1"""` + "\n" +
		`c,,,,,` + "\n" +
		`d,42,7.5,0.25,2024-12-31 23:59:59,"comma, inside"` + "\n" +
		`e,999999999999999999,12345678.99,-0,1999-01-01 00:00:00,tab` + "\tinside\n"
	row := func(n, p, d, ts, s string) string {
		return h + "a,1,1.00,1,2024-03-01 10:00:00,ok\n" + strings.Join([]string{"b", n, p, d, ts, s}, ",") + "\n"
	}
	cases := []struct {
		name, input string
		reader      string // typed, text, or "" (the precise path)
	}{
		{"clean", clean, "typed"},
		{"clean, no final line end", strings.TrimSuffix(clean, "\n"), "typed"},
		{"clean, CRLF", strings.ReplaceAll(clean, "\n", "\r\n"), "typed"},
		{"header only", h, "typed"},
		{"columns in another order, another case, one unknown", "S,ID,extra,Ts,p,N,d\nx,a,zz,2024-03-01 10:00:00,1.25,3,1\n", "typed"},
		// Each value the scan leaves to bronze's casts: its column is read
		// as text, the others still by the reader.
		{"padded string", row("1", "1", "1", "2024-03-01 10:00:00", " x "), "typed"},
		{"quoted empty string", row("1", "1", "1", "2024-03-01 10:00:00", `""`), "typed"},
		{"plus sign", row("+5", "1", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"leading zeros", row("007", "001.50", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"padded integer", row(" 12 ", "1", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"quoted integer", row(`"12"`, `"1.5"`, `"1"`, `"2024-03-01 10:00:00"`, "x"), "typed"},
		{"nineteen digits", row("9223372036854775807", "1", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"decimal with trailing zeros", row("1", "1.500", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"decimal without integer part", row("1", ".5", "1", "2024-03-01 10:00:00", "x"), "typed"},
		{"double without integer part", row("1", "1", ".5", "2024-03-01 10:00:00", "x"), "typed"},
		{"double with plus exponent", row("1", "1", "1e+2", "2024-03-01 10:00:00", "x"), "typed"},
		{"padded timestamp", row("1", "1", "1", " 2024-03-01 10:00:00", "x"), "typed"},
		// Values bronze refuses: the precise path quarantines them.
		{"fraction in an integer", row("1.5", "1", "1", "2024-03-01 10:00:00", "x"), ""},
		{"integer too large", row("9223372036854775808", "1", "1", "2024-03-01 10:00:00", "x"), ""},
		{"decimal rounded", row("1", "1.239", "1", "2024-03-01 10:00:00", "x"), ""},
		{"decimal too large", row("1", "123456789.5", "1", "2024-03-01 10:00:00", "x"), ""},
		{"decimal with exponent", row("1", "1e2", "1", "2024-03-01 10:00:00", "x"), ""},
		{"double too large", row("1", "1", "1e400", "2024-03-01 10:00:00", "x"), ""},
		{"NaN", row("1", "1", "NaN", "2024-03-01 10:00:00", "x"), ""},
		{"13th month", row("1", "1", "1", "2024-13-01 10:00:00", "x"), ""},
		{"30 February", row("1", "1", "1", "2024-02-30 10:00:00", "x"), ""},
		{"hour 24", row("1", "1", "1", "2024-03-01 24:00:00", "x"), ""},
		{"infinity", row("1", "1", "1", "infinity", "x"), ""},
		{"timestamp in another layout", row("1", "1", "1", "2024-03-01T10:00:00", "x"), ""},
		{"below the minimum", row("-1", "-0.5", "1", "2024-03-01 10:00:00", "x"), ""},
		{"required missing", h + ",1,1,1,2024-03-01 10:00:00,x\n", ""},
		{"duplicate rows", h + "a,1,1,1,,x\na,1,1,1,,x\n", ""},
		{"too few fields", h + "a,1,1,1\n", ""},
		{"too many fields", h + "a,1,1,1,,x,y\n", ""},
		// Keys equal as values, written differently.
		{"duplicate keys, one quoted", h + "a,1,1,1,,x\n\"a\",2,2,2,,y\n", ""},
		{"duplicate keys with a doubled quote", h + "\"a\"\"b\",1,1,1,,x\n\"a\"\"b\",2,2,2,,y\n", ""},
		{"keys differing by a quote", h + "\"a\"\"b\",1,1,1,,x\n\"a\"\"\"\"b\",2,2,2,,y\n", "typed"},
		// Layouts the scan refuses: the text read takes the object whole.
		{"quoted line end", h + "a,1,1,1,,\"two\nlines\"\nb,2,2,2,,y\n", "text"},
		{"blank line", h + "a,1,1,1,,x\n\nb,2,2,2,,y\n", "text"},
		{"quote inside an unquoted field", h + `a,1,1,1,,x"y` + "\n", "text"},
	}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkTypedRead(t, e, typedCSVYAML, tc.input, tc.reader)
		})
	}
}

// TestTypedCSVBadValueCorpus runs every CSV value of the bad-value corpus
// through the fast path (the typed CSV read first) and the precise path
// alone, each value alone with a good row, then all of them in one
// object: rows, quarantine rows and their reasons, and accounting must be
// the same. An accepted value's batch must have been written by the typed
// read (its column by the reader or, when the scan leaves the value to
// bronze's cast, as text), so that the typed read's values are the ones
// compared.
func TestTypedCSVBadValueCorpus(t *testing.T) {
	e := newEngine(t)
	yaml := "lake: file://./lake\nsources:\n  v:\n    format: csv\n" + corpusSchema
	header := "id," + strings.Join(corpusCols, ",") + "\n"
	good := corpusCSVLine("r99", "s", "ok")
	var all strings.Builder
	for k, c := range badValueCorpus {
		if c.csv == "" {
			continue
		}
		line := corpusCSVLine(fmt.Sprintf("r%02d", k), c.col, c.csv)
		all.WriteString(line + "\n")
		reader := "typed"
		if c.reason != "" {
			reader = ""
		}
		t.Run(c.col+"="+c.csv, func(t *testing.T) {
			checkTypedRead(t, e, yaml, header+good+"\n"+line+"\n", reader)
		})
	}
	t.Run("whole corpus", func(t *testing.T) {
		checkTypedRead(t, e, yaml, header+good+"\n"+all.String(), "")
	})
}

// typedCSVChecks is the scan's checks of typedCSVYAML's columns, in order.
var typedCSVChecks = []fieldCheck{
	{kind: csvText},
	{kind: csvInt},
	{kind: csvDecimal, digits: 8, scale: 2},
	{kind: csvDouble},
	{kind: csvTime, shape: []byte{0, 0, 0, 0, '-', 0, 0, '-', 0, 0, ' ', 0, 0, ':', 0, 0, ':', 0, 0}},
	{kind: csvText},
}

// TestCSVLineFits: which lines the scan takes, and which fields it
// leaves to bronze's casts.
func TestCSVLineFits(t *testing.T) {
	cases := []struct {
		line string
		fits bool
		bad  string // the failed fields' positions, as digits
	}{
		{`a,1,2.50,1.5,2024-03-01 10:00:00,x`, true, ""},
		{`,,,,,`, true, ""},
		{`"a",1,2,3,,"x, ""y"""`, true, ""},
		{`"",1,2,3,,""`, true, "05"},
		{` a,01,2.555,+1,2024-3-01 10:00:00,x `, true, "012345"},
		{`a,-0,-0.5,-1e-300,,`, true, ""},
		{`a,"1","2","3","2024-03-01 10:00:00",x`, true, "1234"},
		{`a,1234567890123456789,123456789,1e1234,,`, true, "123"},
		{`a,1,2,3,,x,`, false, ""},
		{`a,1,2,3,`, false, ""},
		{`a,1,2,3,,x"y`, false, ""},
		{`a,1,2,3,,"x"y`, false, ""},
		{`a,1,2,3,,"x`, false, ""},
		{"a,1,2,3,,x\ry", false, ""},
	}
	for _, tc := range cases {
		checks := append([]fieldCheck(nil), typedCSVChecks...)
		bad := make([]bool, len(checks))
		fits := csvLineFits([]byte(tc.line), ',', '"', checks, bad)
		var got strings.Builder
		for k, b := range bad {
			if b {
				fmt.Fprint(&got, k)
			}
		}
		if fits != tc.fits || (fits && got.String() != tc.bad) {
			t.Errorf("csvLineFits(%q) = %v, bad fields %q; want %v, %q", tc.line, fits, got.String(), tc.fits, tc.bad)
		}
	}
}

// csvScanInputs are objects the typed CSV scan takes and objects it must
// not, for the piece tests.
var csvScanInputs = []string{
	"",
	"id,n,p,d,ts,s\n",
	"id,n,p,d,ts,s\na,1,2.5,3,2024-03-01 10:00:00,x\n",
	"id,n,p,d,ts,s\r\na,1,2.5,3,2024-03-01 10:00:00,x\r\nb,2,,,,\r\n",
	"id,n,p,d,ts,s\na,1,2.5,3,2024-03-01 10:00:00,x\nb, 2,,,,\n",
	"id,n,p,d,ts,s\na,1,2.5,3,,\"two\nlines\"\nb,2,,,,\n",
	"\"i\nd\",n,p,d,ts,s\na,1,2.5,3,,x\n",
	"id,n,p,d,ts,s\na,1,2.5,3,,x\n\nb,2,,,,\n",
	"id,n,p,d,ts,s\na,1,2.5,3,,x\nb,2,,,,,\n",
	"id,n,p,d,ts,s\na,1,2.5,3,,x\nb,2,,,,y" + strings.Repeat("z", 80) + "\n",
}

// TestCSVTypedFitsInPieces: scanning a CSV object in pieces cut at line
// ends answers what one scan answers (fits, and the failed fields), for
// every number of pieces; the header is skipped in the first piece only.
func TestCSVTypedFitsInPieces(t *testing.T) {
	for i, in := range csvScanInputs {
		rows := in
		if k := strings.IndexByte(in, '\n'); k >= 0 {
			rows = in[k+1:]
		}
		checkCSVFitsInPieces(t, fmt.Sprintf("input %d", i), []byte(in+strings.Repeat(rows, 3)))
	}
}

func checkCSVFitsInPieces(t *testing.T, name string, data []byte) {
	t.Helper()
	const maxLine = 64
	want, wantBad, err := csvTypedFitsIn(bytes.NewReader(data), int64(len(data)), true, ',', '"', typedCSVChecks, maxLine, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "o.csv")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	old := parallelScanMin
	parallelScanMin = 1
	defer func() { parallelScanMin = old }()
	got, gotBad, err := csvTypedFits(path, true, ',', '"', typedCSVChecks, maxLine)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || (got && fmt.Sprint(gotBad) != fmt.Sprint(wantBad)) {
		t.Fatalf("%s: in pieces fits %v, bad %v; one scan %v, %v\n%q", name, got, gotBad, want, wantBad, data)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for n := 1; n <= 7; n++ {
		got, err := scanPieces(f, int64(len(data)), n, path, func(r io.Reader, size int64, first bool) (bool, error) {
			fits, _, err := csvTypedFitsIn(r, size, first, ',', '"', typedCSVChecks, maxLine, path)
			return fits, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s, %d pieces: fits %v, one scan %v\n%q", name, n, got, want, data)
		}
	}
}

// FuzzCSVTypedFits: for any bytes, the scan in pieces answers as one
// scan, and a line it takes is one record of encoding/csv with the same
// number of fields and, for a field it takes as text, the same text.
func FuzzCSVTypedFits(f *testing.F) {
	for _, in := range csvScanInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCSVFitsInPieces(t, "fuzz", data)
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			checks := make([]fieldCheck, len(typedCSVChecks))
			for k := range checks {
				checks[k] = fieldCheck{kind: csvText}
			}
			bad := make([]bool, len(checks))
			if len(line) == 0 || !csvLineFits(line, ',', '"', checks, bad) {
				continue
			}
			r := csv.NewReader(bytes.NewReader(line))
			rec, err := r.Read()
			if err != nil || len(rec) != len(checks) {
				t.Fatalf("scan takes %q as %d fields; encoding/csv reads %q, %v", line, len(checks), rec, err)
			}
			for k, v := range rec {
				if !bad[k] && v != strings.Trim(v, " ") {
					t.Fatalf("scan takes field %d of %q as text without blanks at its ends: %q", k, line, v)
				}
			}
		}
	})
}
