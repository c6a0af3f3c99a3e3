package bronze

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/medallion-dev/medallion/warehouse"
)

// ndjsonScan is what a pass over an NDJSON object finds that DuckDB's line
// reader does not report: blank lines, which are read and skipped (counted
// in Stats.Blank), and lines DuckDB's JSON parser takes although they are
// not JSON: it accepts bare NaN, Infinity and inf literals (any case),
// which JSON has not, and which would become a double or a string.
type ndjsonScan struct {
	blank int64
	// invalid maps the text of such a line (without a trailing '\r') to
	// the _err it is refused with (column, errSep, reason).
	invalid map[string]string
}

// scanNDJSON reads an NDJSON file once for the precise path. dec maps the
// normalised source names of decimal columns to their bronze names: their
// JSON numbers are checked for digits DuckDB's reader would lose
// (inexactNumbers).
func scanNDJSON(path string, dec map[string]string) (ndjsonScan, error) {
	var sc ndjsonScan
	f, err := os.Open(path)
	if err != nil {
		return sc, err
	}
	defer f.Close()
	err = scanLines(f, func(_ int64, text []byte) bool {
		if isBlankLine(text) {
			sc.blank++
			return true
		}
		if off := bareLiteral(text); off >= 0 {
			if sc.invalid == nil {
				sc.invalid = map[string]string{}
			}
			sc.invalid[strings.TrimRight(string(text), "\r")] = errSep + bareLiteralReason(text, off)
			return true
		}
		if len(dec) > 0 {
			if e := inexactNumbers(text, dec); e != "" {
				if sc.invalid == nil {
					sc.invalid = map[string]string{}
				}
				sc.invalid[strings.TrimRight(string(text), "\r")] = e
			}
		}
		return true
	})
	return sc, err
}

// isBlankLine reports whether a line holds only spaces, tabs and a '\r':
// the lines both NDJSON readers skip.
func isBlankLine(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false // most lines: at the first byte
		}
	}
	return true
}

// bareLiteral returns the offset in a JSON line of a letter outside any
// string that can only start a NaN or Infinity literal (JSON's only bare
// words are true, false and null, and 'e' in numbers), or -1.
func bareLiteral(line []byte) int {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			end := stringEnd(line, i)
			if end < 0 {
				return -1
			}
			i = end
		case 'N', 'I', 'i':
			return i
		case 'n':
			if !bytes.HasPrefix(line[i:], []byte("null")) {
				return i
			}
			i += 3
		}
	}
	return -1
}

// stringEnd returns the offset of the quote closing the JSON string opened
// at start, or -1 when it is not closed on the line.
func stringEnd(line []byte, start int) int {
	j := start + 1
	for {
		k := bytes.IndexByte(line[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		backslashes := 0
		for m := j - 1; m > start && line[m] == '\\'; m-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return j
		}
		j++
	}
}

// bareLiteralReason words the refusal of a line with a bare literal at off:
// "invalid JSON at column 7: NaN is not a JSON value ...".
func bareLiteralReason(line []byte, off int) string {
	start := off
	if start > 0 && (line[start-1] == '-' || line[start-1] == '+') {
		start--
	}
	end := off
	for end < len(line) && (line[end] >= 'a' && line[end] <= 'z' || line[end] >= 'A' && line[end] <= 'Z') {
		end++
	}
	col := utf8.RuneCount(line[:start]) + 1
	return fmt.Sprintf("invalid JSON at column %d: %s is not a JSON value (JSON has no NaN or Infinity; send null, or a string for an allow_nan column)", col, line[start:end])
}

// invalidLinesTable loads the lines scanNDJSON refused into a temp table
// (line, reason) for the precise path's reader to join; batched, since a
// file may have many.
func invalidLinesTable(ctx context.Context, conn *sql.Conn, name string, invalid map[string]string) error {
	ins, err := newValuesTable(ctx, conn, name, "line VARCHAR, reason VARCHAR")
	if err != nil {
		return err
	}
	for line, reason := range invalid {
		if err := ins.add(line, reason); err != nil {
			return err
		}
	}
	return ins.flush()
}

// valuesTable fills a new temp table of VARCHAR columns by multi-row
// INSERTs of a few hundred rows each: one statement per row would cost a
// DuckDB round trip each, one statement for all could be huge.
type valuesTable struct {
	ctx  context.Context
	conn *sql.Conn
	name string
	vals []string
}

// newValuesTable creates (or replaces) temp table name with columns cols.
func newValuesTable(ctx context.Context, conn *sql.Conn, name, cols string) (*valuesTable, error) {
	if err := exec(ctx, conn, "CREATE OR REPLACE TEMP TABLE "+name+" ("+cols+")"); err != nil {
		return nil, err
	}
	return &valuesTable{ctx: ctx, conn: conn, name: name}, nil
}

// add queues one row, inserting the queue when it is full.
func (t *valuesTable) add(fields ...string) error {
	q := make([]string, len(fields))
	for i, f := range fields {
		q[i] = warehouse.QuoteString(f)
	}
	t.vals = append(t.vals, "("+strings.Join(q, ", ")+")")
	if len(t.vals) == 500 {
		return t.flush()
	}
	return nil
}

// flush inserts the queued rows.
func (t *valuesTable) flush() error {
	if len(t.vals) == 0 {
		return nil
	}
	err := exec(t.ctx, t.conn, "INSERT INTO "+t.name+" VALUES "+strings.Join(t.vals, ", "))
	t.vals = t.vals[:0]
	return err
}

// inexactNumbers returns the _err refusing a line when a decimal column's
// value is a JSON number with a fraction or exponent whose digits do not
// survive a double: DuckDB's JSON reader parses such numbers as doubles and
// hands over the double's shortest text ("0.10000000000000000001" becomes
// "0.1"), which the decimal rules could then accept, changed. Integers are
// handed over as written.
func inexactNumbers(line []byte, dec map[string]string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return "" // not an object: the reader refuses the line
	}
	for k, v := range obj {
		col, ok := dec[normName(k)]
		if !ok || len(v) == 0 || v[0] == '"' || !bytes.ContainsAny(v, ".eE") {
			continue
		}
		text := string(v)
		f, err := strconv.ParseFloat(text, 64)
		exact := err == nil
		if exact {
			a, ok1 := new(big.Rat).SetString(text)
			b, ok2 := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
			exact = ok1 && ok2 && a.Cmp(b) == 0
		}
		if !exact {
			return col + errSep + fmt.Sprintf("JSON number %s has more digits than a double keeps (DuckDB reads JSON numbers as doubles): send it as a string to keep them", text)
		}
	}
	return ""
}
