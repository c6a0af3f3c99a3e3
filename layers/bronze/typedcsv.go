package bronze

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/medallion-dev/medallion/warehouse"
)

// The typed CSV read (docs/bronze-csv-profile.md, decision 8) is the CSV
// fast path with DuckDB's reader typing the integer, decimal, double and
// formatted timestamp columns itself (read_csv(columns={…: 'BIGINT'})),
// instead of reading every field as text and casting it in SQL: the
// typing statement then costs about what DuckDB's own typed read does.
// DuckDB's reader is looser than bronze's casts ("1.5" read as BIGINT is
// 2, "1.239" as DECIMAL(10,2) is 1.24, " 42" may be 42), and a string it
// reads is not trimmed, so an object takes the typed read only when a scan
// of its bytes proves that every field of a typed column is text both
// read the same way: plain digits for an integer, at most the scale's
// places for a decimal, plain notation for a double, the format's exact
// shape for a timestamp, and no space at either end of a string (bronze
// trims it). A bad value the shape lets through (a 13th month, a decimal
// too large for its type) is a reader error, which refuses the batch as a
// failing rule does; the batch is then typed by the text fast path and,
// if that refuses it too, by the precise path, which names each bad
// value's line and column. The typed read accepts only what the text path
// accepts, with the same values, so it decides only speed.

// csvKind is what the typed CSV scan proves of a column's fields.
type csvKind uint8

const (
	csvAny     csvKind = iota // not typed by the reader: no check
	csvText                   // a string bronze trims: no space at either end, not quoted empty
	csvInt                    // -?[1-9][0-9]{0,17} or 0
	csvDecimal                // an integer part of at most digits, at most scale places
	csvDouble                 // plain or exponent notation, no sign but a leading minus
	csvTime                   // the format's shape, byte for byte
)

// fieldCheck is the typed CSV scan's check of one column's fields.
type fieldCheck struct {
	kind   csvKind
	digits int    // csvDecimal: digits before the point, at most
	scale  int    // csvDecimal: digits after the point, at most
	shape  []byte // csvTime: the format's text, shapeDigit where a digit goes
}

// shapeDigit marks a digit in a timestamp shape (formats hold no NUL).
const shapeDigit = 0

// csvTyping is how the typed CSV read takes one declared column.
type csvTyping struct {
	reader string // the reader's DuckDB type; "" reads it as text (bronze casts it)
	check  fieldCheck
}

// csvTypings is how the typed CSV read takes each declared column, and the
// timestamp format the reader is given (it takes one: timestamp columns of
// another format stay text).
func (j *job) csvTypings() ([]csvTyping, string) {
	out := make([]csvTyping, len(j.plan.cols))
	format := ""
	for i, c := range j.plan.cols {
		if !c.trim || !c.emptyNil {
			continue
		}
		switch c.typ {
		case "string":
			out[i] = csvTyping{reader: "VARCHAR", check: fieldCheck{kind: csvText}}
		case "int64":
			out[i] = csvTyping{reader: "BIGINT", check: fieldCheck{kind: csvInt}}
		case "double":
			if !c.allowNaN {
				out[i] = csvTyping{reader: "DOUBLE", check: fieldCheck{kind: csvDouble}}
			}
		case "timestamp":
			shape, ok := timeShape(c.format)
			if ok && !c.hasZone && (format == "" || format == c.format) {
				format = c.format
				out[i] = csvTyping{reader: "TIMESTAMP", check: fieldCheck{kind: csvTime, shape: shape}}
			}
		default:
			if strings.HasPrefix(c.typ, "decimal") && c.precision > c.scale && c.precision <= 18 {
				out[i] = csvTyping{reader: c.sqlType, check: fieldCheck{kind: csvDecimal, digits: c.precision - c.scale, scale: c.scale}}
			}
		}
	}
	return out, format
}

// csvTypedApplies reports whether the source can take the typed CSV read:
// a one-byte delimiter and quote (the scan's), and a column the reader
// types.
func (j *job) csvTypedApplies() bool {
	delim, quote := j.csvDialect()
	if len(delim) != 1 || len(quote) != 1 || delim == quote {
		return false
	}
	typings, _ := j.csvTypings()
	for _, t := range typings {
		if t.reader != "" {
			return true
		}
	}
	return false
}

// timeShape is the shape of the text a strptime format of fixed-width
// numeric fields parses (%Y-%m-%d %H:%M:%S: 19 bytes); ok is false for
// any other format (names, fractions, zones, padding flags).
func timeShape(format string) ([]byte, bool) {
	var s []byte
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			if c >= '0' && c <= '9' || c < 0x20 || c >= 0x7f {
				return nil, false
			}
			s = append(s, c)
			continue
		}
		if i++; i == len(format) {
			return nil, false
		}
		switch format[i] {
		case 'Y':
			s = append(s, shapeDigit, shapeDigit, shapeDigit, shapeDigit)
		case 'm', 'd', 'H', 'M', 'S', 'y':
			s = append(s, shapeDigit, shapeDigit)
		default:
			return nil, false
		}
	}
	return s, len(s) > 0
}

// csvFastSource is csvSource for the fast path. With the typed read on,
// the reader types each typed column whose fields the scan proves it
// reads as bronze's casts would (typed reports whether any is); the
// others, and every column when the scan refuses the object's layout,
// are read as text and cast by bronze.
func (j *job) csvFastSource(path string) (src string, in []colInput, rescued []string, typed bool, err error) {
	if !j.typedRead {
		src, in, rescued, err = j.csvSource(path, "")
		return src, in, rescued, false, err
	}
	delim, quote := j.csvDialect()
	header, err := j.csvHeader(path, delim, quote)
	if err != nil {
		return "", nil, nil, false, err
	}
	cols := j.csvColumns(header)
	typings, format := j.csvTypings()
	checks := make([]fieldCheck, len(header))
	for k, i := range cols {
		if i >= 0 {
			checks[k] = typings[i].check
		}
	}
	fits, bad, err := csvTypedFits(path, j.hasHeader(), delim[0], quote[0], checks, j.maxLine)
	if err != nil {
		return "", nil, nil, false, err
	}
	var readerTyped []string
	for k, i := range cols {
		switch {
		case i < 0:
		case bad[k]:
			typings[i] = csvTyping{}
		case typings[i].reader != "":
			readerTyped = append(readerTyped, j.plan.cols[i].name)
		}
	}
	if fits && len(readerTyped) > 0 {
		j.log.Debug("typed CSV read", "object", path, "reader_typed", readerTyped)
	} else {
		typings, format = nil, "" // every column as text
	}
	src, in, rescued, err = j.csvSourceOf(path, "", header, typings, format)
	return src, in, rescued, err == nil && typings != nil, err
}

// csvTypedFits scans the CSV file at path (its header first when header
// is set): fits reports whether every record is one line of len(checks)
// fields, and bad which fields (by position) failed their check at least
// once. Over-long lines, blank lines and a carriage return anywhere but
// before a line end refuse the object (fits false). A file of
// parallelScanMin bytes or more is scanned in pieces, one per core: a
// quoted field spanning lines leaves its opening line unclosed, which
// refuses the object whichever piece holds it.
func csvTypedFits(path string, header bool, delim, quote byte, checks []fieldCheck, maxLine int) (fits bool, bad []bool, err error) {
	var mu sync.Mutex
	bad = make([]bool, len(checks))
	fits, err = scanFile(path, func(r io.Reader, size int64, first bool) (bool, error) {
		fits, b, err := csvTypedFitsIn(r, size, first && header, delim, quote, checks, maxLine, path)
		mu.Lock()
		for k := range b {
			bad[k] = bad[k] || b[k]
		}
		mu.Unlock()
		return fits, err
	})
	return fits, bad, err
}

// csvTypedFitsIn is csvTypedFits over the size bytes r reads; skipHeader
// says its first line is the header (only its quotes are checked).
func csvTypedFitsIn(r io.Reader, size int64, skipHeader bool, delim, quote byte, checks []fieldCheck, maxLine int, path string) (fits bool, bad []bool, err error) {
	br := bufio.NewReaderSize(r, int(min(int64(maxLine)+1, size+1)))
	// A field that failed is not checked again: its column is read as text.
	checks = slices.Clone(checks)
	bad = make([]bool, len(checks))
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return false, bad, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, bad, fmt.Errorf("read %s: %w", path, err)
		}
		if err != nil && len(line) == 0 {
			return true, bad, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case skipHeader:
			// A header with a quoted line end spans lines.
			if bytes.Count(line, []byte{quote})%2 != 0 {
				return false, bad, nil
			}
			skipHeader = false
		case len(line) == 0 || !csvLineFits(line, delim, quote, checks, bad):
			return false, bad, nil
		}
		if err != nil {
			return true, bad, nil
		}
	}
}

// csvLineFits reports whether line (a record without its line end) has
// exactly len(checks) fields; a field failing its check is marked in bad
// and its check dropped. A quoted field must close on the line and be
// followed by the delimiter or the line end; a quote inside an unquoted
// field, or a carriage return, refuses the line.
func csvLineFits(line []byte, delim, quote byte, checks []fieldCheck, bad []bool) bool {
	if bytes.IndexByte(line, '\r') >= 0 {
		return false
	}
	k := 0
	field := func(f []byte, quoted bool) bool {
		if k == len(checks) {
			return false
		}
		if !checks[k].fits(f, quoted) {
			bad[k], checks[k] = true, fieldCheck{}
		}
		k++
		return true
	}
	if bytes.IndexByte(line, quote) < 0 {
		// No quote: the delimiters cut the fields.
		for {
			i := bytes.IndexByte(line, delim)
			f := line
			if i >= 0 {
				f = line[:i]
			}
			if !field(f, false) {
				return false
			}
			if i < 0 {
				return k == len(checks)
			}
			line = line[i+1:]
		}
	}
	for {
		var f []byte
		quoted := len(line) > 0 && line[0] == quote
		if quoted {
			end := 1
			for {
				n := bytes.IndexByte(line[end:], quote)
				if n < 0 {
					return false // closes on a later line, or never
				}
				end += n
				if end+1 < len(line) && line[end+1] == quote {
					end += 2 // a doubled quote: one quote of the value
					continue
				}
				break
			}
			f, line = line[1:end], line[end+1:]
			if len(line) > 0 && line[0] != delim {
				return false
			}
		} else {
			i := bytes.IndexByte(line, delim)
			f = line
			if i >= 0 {
				f = line[:i]
			}
			if bytes.IndexByte(f, quote) >= 0 {
				return false
			}
			line = line[len(f):]
		}
		if !field(f, quoted) {
			return false
		}
		if len(line) == 0 {
			return k == len(checks)
		}
		line = line[1:] // the delimiter: another field follows, maybe empty
	}
}

// fits reports whether the field v (unquoted text, or a quoted field's
// text between its quotes) is read by DuckDB's typed reader as bronze's
// cast reads it. An empty unquoted field is NULL on both.
func (c *fieldCheck) fits(v []byte, quoted bool) bool {
	switch c.kind {
	case csvAny:
		return true
	case csvText:
		if len(v) == 0 {
			return !quoted
		}
		return v[0] != ' ' && v[len(v)-1] != ' '
	}
	if quoted {
		return false
	}
	if len(v) == 0 {
		return true
	}
	switch c.kind {
	case csvInt:
		return intText(v, 18)
	case csvDecimal:
		return plainDecimal(v, c.digits, c.scale)
	case csvDouble:
		return doubleText(v)
	case csvTime:
		return shapeText(v, c.shape)
	}
	return false
}

// intText reports whether v is an integer of at most max digits written
// plainly: an optional minus, no leading zero (0 alone aside), no plus.
func intText(v []byte, max int) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	n := digitRun(v)
	return n == len(v) && n >= 1 && n <= max && (v[0] != '0' || n == 1)
}

// plainDecimal reports whether v is a decimal with an integer part of at
// most digits (intText) and, after a point, between 1 and scale places.
func plainDecimal(v []byte, digits, scale int) bool {
	i := bytes.IndexByte(v, '.')
	if i < 0 {
		return intText(v, digits)
	}
	frac := v[i+1:]
	n := digitRun(frac)
	return intText(v[:i], digits) && n == len(frac) && n >= 1 && n <= scale
}

// doubleText reports whether v is a number in plain or exponent notation
// (-12.5, 3e-7): digits on both sides of a point, an exponent of at most
// three digits, no plus sign before the number.
func doubleText(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	n := digitRun(v)
	if n == 0 || n > 17 {
		return false
	}
	v = v[n:]
	if len(v) > 0 && v[0] == '.' {
		n = digitRun(v[1:])
		if n == 0 || n > 17 {
			return false
		}
		v = v[1+n:]
	}
	if len(v) == 0 {
		return true
	}
	if v[0] != 'e' && v[0] != 'E' {
		return false
	}
	v = v[1:]
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		v = v[1:]
	}
	n = digitRun(v)
	return n == len(v) && n >= 1 && n <= 3
}

// shapeText reports whether v has shape's length, a digit wherever shape
// has shapeDigit and shape's byte everywhere else.
func shapeText(v, shape []byte) bool {
	if len(v) != len(shape) {
		return false
	}
	for i, s := range shape {
		if s == shapeDigit {
			if v[i] < '0' || v[i] > '9' {
				return false
			}
		} else if v[i] != s {
			return false
		}
	}
	return true
}

// digitRun is the number of ASCII digits v starts with.
func digitRun(v []byte) int {
	for i, c := range v {
		if c < '0' || c > '9' {
			return i
		}
	}
	return len(v)
}

// csvTypedInput is the typed query's input of declared column i read by
// the reader as t says, from reader column col (a timestamp becomes the
// column's TIMESTAMPTZ as castExpr makes it); ok is false for a column
// read as text.
func (j *job) csvTypedInput(t csvTyping, i int, col string) (colInput, bool) {
	if t.reader == "" {
		return colInput{}, false
	}
	expr := col
	if j.plan.cols[i].typ == "timestamp" {
		expr = j.plan.cols[i].zoned(col)
	}
	return colInput{expr: expr, typed: true}, true
}

// timestampOption is the reader option giving format to its timestamp
// columns ("" when there is none).
func timestampOption(format string) string {
	if format == "" {
		return ""
	}
	return "timestampformat=" + warehouse.QuoteString(format) + ", "
}
