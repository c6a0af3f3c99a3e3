package bronze

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

// corpusSchema declares one column of every type bronze knows (and a
// double with allow_nan, and a timestamp in a zone with daylight saving).
const corpusSchema = `
    schema:
      id:   {type: string, required: true}
      i:    int64
      d:    double
      dn:   {type: double, allow_nan: true}
      dec:  {type: "decimal(5,2)"}
      b:    bool
      ts:   timestamp
      dt:   date
      s:    string
      ny:   {type: timestamp, format: "2006-01-02 15:04:05", tz: America/New_York}
`

// corpusValue is one value of the bad-value corpus: the text a CSV field
// holds and the token an NDJSON value is ("" when the case does not apply
// to that format), and what bronze must make of it: the stored value (as
// DuckDB renders it as text) or the quarantine column and reason.
type corpusValue struct {
	col       string
	csv, json string
	want      string // stored value when accepted
	reason    string // quarantine reason when refused ("" when accepted)
	wholeLine bool   // the refusal is of the line, not of the column
}

// numv is a value written alike in both formats (a bare JSON number).
func numv(col, text, want, reason string) corpusValue {
	return corpusValue{col: col, csv: text, json: text, want: want, reason: reason}
}

// str is a value written as text in CSV and as a JSON string in NDJSON.
func str(col, text, want, reason string) corpusValue {
	b, _ := json.Marshal(text)
	return corpusValue{col: col, csv: text, json: string(b), want: want, reason: reason}
}

// jsonOnly is an NDJSON token with no CSV counterpart.
func jsonOnly(col, token, want, reason string) corpusValue {
	return corpusValue{col: col, json: token, want: want, reason: reason}
}

// bareLit is an NDJSON line with a bare NaN/Infinity literal: refused as
// not JSON, at the column (character) of the literal in the line.
func bareLit(col, token string) corpusValue {
	line := corpusLine("r00", col, token) // ids are r and two digits
	at := strings.Index(line, ":"+token) + 2
	return corpusValue{col: col, json: token, wholeLine: true,
		reason: fmt.Sprintf("invalid JSON at column %d: %s is not a JSON value (JSON has no NaN or Infinity; send null, or a string for an allow_nan column)", at, token)}
}

func notInt(text string) string { return fmt.Sprintf("%q is not an integer", text) }
func notFinite(text string) string {
	return fmt.Sprintf("%q is not a finite double (allow_nan: true accepts NaN and infinities)", text)
}

var badValueCorpus = []corpusValue{
	// int64: integer text only; never rounded.
	numv("i", "42", "42", ""),
	numv("i", "-7", "-7", ""),
	str("i", "+5", "5", ""),
	str("i", "007", "7", ""),
	str("i", " 12 ", "12", ""),
	numv("i", "9223372036854775807", "9223372036854775807", ""),
	numv("i", "-9223372036854775808", "-9223372036854775808", ""),
	str("i", "42", "42", ""),
	numv("i", "1.5", "", notInt("1.5")),
	numv("i", "10.5", "", notInt("10.5")),
	numv("i", "2.5", "", notInt("2.5")),
	numv("i", "1.0", "", notInt("1.0")),
	{col: "i", csv: "1e3", reason: notInt("1e3")},
	// DuckDB's JSON reader hands a number with an exponent over as its
	// double's text: refused all the same, named as read.
	jsonOnly("i", "1e3", "", notInt("1000.0")),
	numv("i", "1e999", "", notInt("1e999")),
	str("i", "0x10", "", notInt("0x10")),
	str("i", "1_000", "", notInt("1_000")),
	str("i", "abc", "", notInt("abc")),
	numv("i", "9223372036854775808", "", `"9223372036854775808" is out of range for int64`),
	numv("i", "-9223372036854775809", "", `"-9223372036854775809" is out of range for int64`),
	jsonOnly("i", "true", "", notInt("true")),

	// double: finite values, to the nearest double.
	numv("d", "1.5", "1.5", ""),
	numv("d", "-0.25", "-0.25", ""),
	numv("d", "1e3", "1000.0", ""),
	numv("d", "1.7976931348623157e308", "1.7976931348623157e+308", ""),
	numv("d", "1e-400", "0.0", ""), // below the smallest double: 0, as any rounding to the nearest
	str("d", "2", "2.0", ""),
	numv("d", "1e309", "", `"1e309" is too large for a double`),
	numv("d", "-1e999", "", `"-1e999" is too large for a double`),
	str("d", "NaN", "", notFinite("NaN")),
	str("d", "inf", "", notFinite("inf")),
	str("d", "Infinity", "", notFinite("Infinity")),
	str("d", "-Infinity", "", notFinite("-Infinity")),
	str("d", "abc", "", `"abc" is not a double`),
	bareLit("d", "NaN"),
	bareLit("d", "Infinity"),
	bareLit("d", "-Infinity"),

	// double with allow_nan: NaN and infinities as text; overflow still refused.
	str("dn", "NaN", "nan", ""),
	str("dn", "Infinity", "inf", ""),
	str("dn", "-Infinity", "-inf", ""),
	str("dn", "-inf", "-inf", ""),
	numv("dn", "2.5", "2.5", ""),
	numv("dn", "1e309", "", `"1e309" is too large for a double`),
	bareLit("dn", "NaN"),
	bareLit("dn", "-Infinity"),

	// decimal(5,2): plain notation, at most 2 places (trailing zeros aside), at most 3 integer digits.
	numv("dec", "123.45", "123.45", ""),
	numv("dec", "-1.5", "-1.50", ""),
	numv("dec", "1.500", "1.50", ""),
	numv("dec", "7", "7.00", ""),
	str("dec", ".5", "0.50", ""),
	numv("dec", "999.99", "999.99", ""),
	str("dec", "0.10", "0.10", ""),
	numv("dec", "1.005", "", `"1.005" does not fit decimal(5,2) without rounding (more than 2 decimal places)`),
	numv("dec", "10.555", "", `"10.555" does not fit decimal(5,2) without rounding (more than 2 decimal places)`),
	numv("dec", "1234.5", "", `"1234.5" is too large for decimal(5,2)`),
	{col: "dec", csv: "1e2", reason: `"1e2" is not a decimal(5,2)`},
	jsonOnly("dec", "1e2", "100.00", ""), // a JSON number is taken by value
	jsonOnly("dec", "2.5", "2.50", ""),
	str("dec", "0.10000000000000000001", "", `"0.10000000000000000001" does not fit decimal(5,2) without rounding (more than 2 decimal places)`),
	// DuckDB's JSON reader would hand this number over as "0.1".
	jsonOnly("dec", "0.10000000000000000001", "", "JSON number 0.10000000000000000001 has more digits than a double keeps (DuckDB reads JSON numbers as doubles): send it as a string to keep them"),
	str("dec", "abc", "", `"abc" is not a decimal(5,2)`),

	// bool.
	str("b", "true", "true", ""),
	str("b", "FALSE", "false", ""),
	jsonOnly("b", "true", "true", ""),
	str("b", "maybe", "", `"maybe" is not a bool`),

	// timestamp (ISO 8601, UTC unless the text has an offset).
	str("ts", "2024-03-01T10:00:00Z", "2024-03-01 10:00:00+00", ""),
	str("ts", "2024-03-01 10:00:00+02:00", "2024-03-01 08:00:00+00", ""),
	str("ts", "2024-03-01 10:00:00.123456", "2024-03-01 10:00:00.123456+00", ""),
	str("ts", "2024-02-30 10:00:00", "", `"2024-02-30 10:00:00" is not a timestamp`),
	str("ts", "yesterday", "", `"yesterday" is not a timestamp`),

	// A wall time in a zone with daylight saving: a time in the spring gap
	// is moved forward by the gap (02:30 is 03:30 EDT); a time in the
	// autumn overlap is the second of the two (01:30 EST).
	str("ny", "2024-03-10 02:30:00", "2024-03-10 07:30:00+00", ""),
	str("ny", "2024-11-03 01:30:00", "2024-11-03 06:30:00+00", ""),
	str("ny", "2024-07-01 12:00:00", "2024-07-01 16:00:00+00", ""),
	// DuckDB's strptime answers 1900-01-01 for these words whatever the
	// format: they are not timestamps in it.
	str("ny", "infinity", "", `"infinity" is not a timestamp (want 2006-01-02 15:04:05)`),
	str("ny", "-Infinity", "", `"-Infinity" is not a timestamp (want 2006-01-02 15:04:05)`),
	str("ny", "EPOCH", "", `"EPOCH" is not a timestamp (want 2006-01-02 15:04:05)`),

	// date.
	str("dt", "2024-02-29", "2024-02-29", ""),
	str("dt", "2023-02-29", "", `"2023-02-29" is not a date`),
	str("dt", "2024-13-01", "", `"2024-13-01" is not a date`),

	// string: any text; a JSON number keeps its text.
	str("s", "abc", "abc", ""),
	str("s", "NaN", "NaN", ""),
	jsonOnly("s", "1.50", "1.5", ""), // a JSON number keeps its value, not its spelling
	bareLit("s", "NaN"),
	bareLit("s", "inf"),
}

var corpusCols = []string{"i", "d", "dn", "dec", "b", "ts", "dt", "s", "ny"}

// corpusLine is the NDJSON line of a case.
func corpusLine(id, col, token string) string {
	return fmt.Sprintf(`{"id":"%s","%s":%s}`, id, col, token)
}

// corpusCSVLine is the CSV record of a case.
func corpusCSVLine(id, col, text string) string {
	f := []string{id}
	for _, c := range corpusCols {
		v := ""
		if c == col {
			v = text
			if strings.ContainsAny(v, ",\"") {
				v = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
			}
		}
		f = append(f, v)
	}
	return strings.Join(f, ",")
}

// TestBadValueCorpus runs every value of the corpus through bronze on a
// local lake, in CSV and NDJSON: an accepted value must be stored exactly
// as listed, a refused one quarantined with the listed column and reason.
// The whole corpus runs as one object by the precise path alone (every
// line number checked), then each refused value runs alone in an object
// with one good row through the fast path with its fallback, so that a
// value the fast path would let through is caught: the good row must be
// written and the value quarantined.
func TestBadValueCorpus(t *testing.T) {
	e := newEngine(t)
	for _, format := range []string{"csv", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			yaml := "lake: file://./lake\nsources:\n  v:\n    format: " + format + "\n" + corpusSchema
			var cases []corpusValue
			for _, c := range badValueCorpus {
				if (format == "csv" && c.csv != "") || (format == "ndjson" && c.json != "") {
					cases = append(cases, c)
				}
			}
			line := func(k int, c corpusValue) string {
				id := fmt.Sprintf("r%02d", k)
				if format == "csv" {
					return corpusCSVLine(id, c.col, c.csv)
				}
				return corpusLine(id, c.col, c.json)
			}
			header := ""
			if format == "csv" {
				header = "id," + strings.Join(corpusCols, ",") + "\n"
			}
			run := func(t *testing.T, body string, precise bool) (bronze, quarantine string) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "input."+format), []byte(header+body), 0o644); err != nil {
					t.Fatal(err)
				}
				p := loadCase(t, dir)
				st := testenv.LocalStore(t)
				landInputs(t, st, p, dir, received)
				s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}, precise: precise}, p.Sources["v"])
				if err != nil {
					t.Fatal(err)
				}
				if !s.Balanced() {
					t.Fatalf("accounting does not hold: %s", s)
				}
				var sel []string
				for _, c := range append([]string{"id"}, corpusCols...) {
					sel = append(sel, "CAST("+c+" AS VARCHAR) AS "+c)
				}
				return tableCSV(t, st, e.DB(), "bronze/v", strings.Join(sel, ", ")),
					tableCSV(t, st, e.DB(), "bronze/_quarantine", `line, column_name, reason`)
			}

			// The whole corpus by the precise path; a blank line in NDJSON
			// is read and skipped.
			var body strings.Builder
			var wantRows []string
			wantQ := map[string]bool{}
			lineNo := 1
			if format == "csv" {
				lineNo = 2
			}
			for k, c := range cases {
				body.WriteString(line(k, c) + "\n")
				if format == "ndjson" && k == 3 {
					body.WriteString("   \n")
					lineNo++
				}
				if c.reason == "" {
					wantRows = append(wantRows, fmt.Sprintf("r%02d\t%s\t%s", k, c.col, c.want))
				} else {
					col := c.col
					if c.wholeLine {
						col = "NULL"
					}
					wantQ[fmt.Sprintf("%d,%s,%s", lineNo, col, csvCell(c.reason))] = true
				}
				lineNo++
			}
			bronze, quarantine := run(t, body.String(), true)
			checkCorpusRows(t, "precise", bronze, wantRows)
			checkCorpusQuarantine(t, "precise", quarantine, wantQ)

			// Each refused value alone, with a good row, by the fast path
			// with its fallback.
			for k, c := range cases {
				if c.reason == "" {
					continue
				}
				text := c.csv
				if format == "ndjson" {
					text = c.json
				}
				t.Run(c.col+"="+text, func(t *testing.T) {
					good := corpusValue{col: "s", csv: "ok", json: `"ok"`, want: "ok"}
					bronze, quarantine := run(t, line(0, good)+"\n"+line(k, c)+"\n", false)
					checkCorpusRows(t, "fast", bronze, []string{"r00\ts\tok"})
					col := c.col
					if c.wholeLine {
						col = "NULL"
					}
					n := 2
					if format == "csv" {
						n = 3
					}
					checkCorpusQuarantine(t, "fast", quarantine, map[string]bool{fmt.Sprintf("%d,%s,%s", n, col, csvCell(c.reason)): true})
				})
			}
		})
	}
}

// csvCell quotes a value as tableCSV does.
func csvCell(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// checkCorpusRows compares the bronze rows (id, then one cell per corpus
// column, NULL but one) with the wanted "id\tcolumn\tvalue" triples.
func checkCorpusRows(t *testing.T, path, table string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	got := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != len(corpusCols)+1 {
			t.Errorf("%s: row %q", path, l)
			continue
		}
		cell := ""
		for i, v := range f[1:] {
			if v != "NULL" {
				cell = corpusCols[i] + "\t" + v
			}
		}
		got[f[0]] = cell
	}
	for _, w := range want {
		id, rest, _ := strings.Cut(w, "\t")
		if got[id] != rest {
			t.Errorf("%s: row %s stored %q, want %q", path, id, got[id], rest)
		}
		delete(got, id)
	}
	for id, v := range got {
		t.Errorf("%s: row %s stored %q, want it quarantined", path, id, v)
	}
}

// checkCorpusQuarantine compares the quarantine rows (line,column,reason)
// with the wanted set.
func checkCorpusQuarantine(t *testing.T, path, table string, want map[string]bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) > 0 && (lines[0] == "(no table)" || lines[0] == "(no rows)") {
		lines = nil
	} else {
		lines = lines[1:]
	}
	for _, l := range lines {
		if !want[l] {
			t.Errorf("%s: unexpected quarantine row %s", path, l)
		}
		delete(want, l)
	}
	for l := range want {
		t.Errorf("%s: missing quarantine row %s", path, l)
	}
}

// TestJSONArrayDecimalDigits: a JSON array file is converted to NDJSON
// before typing; a decimal given as a number whose digits a double loses is
// quarantined there too, at its line in the array file.
func TestJSONArrayDecimalDigits(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	yaml := "lake: file://./lake\nsources:\n  v:\n    format: json\n    schema:\n      id: {type: string, required: true}\n      dec: {type: \"decimal(5,2)\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	body := "[\n" + `{"id":"a","dec":2.5}` + ",\n" + `{"id":"b","dec":0.10000000000000000001}` + ",\n" + `{"id":"c","dec":"1.25"}` + "\n]\n"
	if err := os.WriteFile(filepath.Join(dir, "input.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	st := testenv.LocalStore(t)
	landInputs(t, st, p, dir, received)
	runBronze(t, st, p, e.DB())
	if got, want := tableCSV(t, st, e.DB(), "bronze/v", "id, CAST(dec AS VARCHAR) AS dec"), "id,dec\na,2.50\nc,1.25\n"; got != want {
		t.Errorf("bronze:\n%s\nwant\n%s", got, want)
	}
	q := tableCSV(t, st, e.DB(), "bronze/_quarantine", `line, column_name, reason`)
	if want := "line,column_name,reason\n3,dec,JSON number 0.10000000000000000001 has more digits than a double keeps (DuckDB reads JSON numbers as doubles): send it as a string to keep them\n"; q != want {
		t.Errorf("quarantine:\n%s\nwant\n%s", q, want)
	}
}
