package bronze

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/medallion-dev/medallion/warehouse"
)

// The typed NDJSON read (docs/bronze-profile.md) is the fast path with
// DuckDB's typed read_json(columns=…) instead of a MAP of text values and
// bronze's own casts: it costs about a third of the CPU. DuckDB's typed
// reader is looser than bronze's casts (a JSON true read as DOUBLE is 1.0,
// 1.5 read as BIGINT is 2), and it drops keys it is not asked for, so it
// is taken only for objects a scan of their bytes proves it types exactly
// as the MAP path would: every line a JSON object, only declared keys,
// none twice in a line, and each column's values of the JSON kinds whose
// typed read is the same as bronze's cast of their text. The rules are
// checked over the typed columns inside the statement, as in the fast
// path; a failing row, or an error from the reader (a value its format
// does not parse), refuses the batch, which is then typed by the MAP fast
// path and, if that refuses it too, by the precise path, which names each
// bad value's line and column. The typed read accepts only what the MAP
// path accepts, with the same values, so it decides only speed.

// JSON value kinds seen by typedScan, as bits.
const (
	kindString = 1 << iota
	kindNumber
	kindNull
	kindOther // true, false, an object, an array, anything else
	// kindPlain marks a column whose string values must be plain: no
	// escape and no control character (a timestamp: DuckDB's reader
	// skips a tab before one, bronze's trim does not).
	kindPlain
)

// typedKinds is the JSON kinds a column's typed read takes exactly like
// bronze's cast of the value's text; 0 when the column type has none (the
// typed read does not apply to the source).
func (c colPlan) typedKinds() int {
	if !c.trim || !c.emptyNil || c.allowNaN {
		return 0
	}
	switch c.typ {
	case "string":
		return kindString | kindNull
	case "double":
		return kindNumber | kindNull
	case "timestamp":
		if c.format != "" && !c.hasZone {
			return kindString | kindNull | kindPlain
		}
	}
	return 0
}

// typedApplies reports whether the source's columns allow the typed read.
// For NDJSON: each column's type has kinds the typed read takes exactly,
// the source names are distinct, and the timestamp columns share one
// format (the reader takes one); for CSV, csvTypedApplies.
func (j *job) typedApplies() bool {
	switch strings.ToLower(j.src.Format) {
	case "csv":
		return j.csvTypedApplies()
	case "ndjson", "":
	default:
		return false
	}
	format := ""
	for _, c := range j.plan.cols {
		if c.typedKinds() == 0 {
			return false
		}
		if c.typ == "timestamp" {
			if format != "" && format != c.format {
				return false
			}
			format = c.format
		}
	}
	return len(j.plan.cols) > 0
}

// typedFits reports whether the typed read types the NDJSON object at
// path (its bytes data, when held) exactly as the MAP path: every
// non-blank line is a JSON object whose top-level keys are declared
// source names, none twice in the line, with values of the kinds its
// column's typed read takes. It scans the bytes once: strings are skipped
// by their quotes and escapes, nesting by a depth count; a key is a string
// at depth 1 followed by a colon. It does not validate the JSON (the
// reader does, and refuses the batch on an error).
func (j *job) typedFits(path string, data []byte) (bool, error) {
	if data != nil {
		return j.typedFitsIn(bytes.NewReader(data), int64(len(data)), path)
	}
	return scanFile(path, func(r io.Reader, size int64, _ bool) (bool, error) {
		return j.typedFitsIn(r, size, path)
	})
}

// scanFile runs scan over the file at path: in pieces cut at line ends,
// one per core, from parallelScanMin bytes on (scanPieces), else whole.
func scanFile(path string, scan func(r io.Reader, size int64, first bool) (bool, error)) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if n := runtime.GOMAXPROCS(0); n > 1 && fi.Size() >= parallelScanMin {
		return scanPieces(f, fi.Size(), n, path, scan)
	}
	return scan(f, fi.Size(), true)
}

// parallelScanMin is the object size from which typedFits scans pieces of
// the object at once, one per core: a serial scan of case 2's 10M-row
// object took about a second before DuckDB could start typing it. A
// variable so that tests can scan small inputs in pieces.
var parallelScanMin int64 = 16 << 20

// scanPieces runs scan over the file f of size bytes cut into about n
// pieces at line ends, each on its own goroutine, and reports whether
// every piece fits. It serves scans whose whole unit is a line (nothing
// carries from one line to the next); first tells scan its piece starts
// the file.
func scanPieces(f *os.File, size int64, n int, path string, scan func(r io.Reader, size int64, first bool) (bool, error)) (bool, error) {
	cuts, err := lineCuts(f, size, n)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	fits := make([]bool, len(cuts)-1)
	errs := make([]error, len(cuts)-1)
	var wg sync.WaitGroup
	for i := range fits {
		wg.Go(func() {
			length := cuts[i+1] - cuts[i]
			fits[i], errs[i] = scan(io.NewSectionReader(f, cuts[i], length), length, i == 0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return !slices.Contains(fits, false), nil
}

// lineCuts cuts the size bytes of f into at most n pieces that each end
// just after a line end (the last one at the end of the file): the
// offsets where the pieces start, then size.
func lineCuts(f io.ReaderAt, size int64, n int) ([]int64, error) {
	cuts := []int64{0}
	buf := make([]byte, 64<<10)
	for i := 1; i < n; i++ {
		off := max(size*int64(i)/int64(n), cuts[len(cuts)-1])
		cut := int64(-1)
		for cut < 0 && off < size {
			m, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
			if k := bytes.IndexByte(buf[:m], '\n'); k >= 0 {
				cut = off + int64(k) + 1
			}
			off += int64(m)
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			if m == 0 {
				break
			}
		}
		if cut < 0 || cut >= size {
			break // no line end after this point: the rest is the last piece
		}
		cuts = append(cuts, cut)
	}
	return append(cuts, size), nil
}

// typedFitsIn is typedFits over the size bytes r reads.
func (j *job) typedFitsIn(r io.Reader, size int64, path string) (bool, error) {
	// Lines are at most maxLine long (ndjsonFits); a longer one is left
	// to the other paths.
	br := bufio.NewReaderSize(r, int(min(int64(j.maxLine)+1, size+1)))
	allowed := map[string]int{}
	for _, c := range j.plan.cols {
		allowed[c.srcName] = c.typedKinds()
	}
	var lineKeys [][]byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return false, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
		if err != nil && len(line) == 0 {
			return true, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			return false, nil
		}
		lineKeys = lineKeys[:0]
		depth := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			case '"':
				start := i + 1
				for i++; i < len(line) && line[i] != '"'; i++ {
					if line[i] == '\\' {
						i++
					}
				}
				if depth != 1 || i >= len(line) {
					continue
				}
				k := line[start:i]
				v := skipBlanks(line[i+1:])
				if len(v) == 0 || v[0] != ':' {
					continue // a string value, not a key
				}
				if bytes.IndexByte(k, '\\') >= 0 {
					return false, nil // an escaped key: compare it unescaped the precise way
				}
				want, ok := allowed[string(k)]
				if !ok {
					return false, nil
				}
				for _, o := range lineKeys {
					if bytes.Equal(o, k) {
						return false, nil
					}
				}
				lineKeys = append(lineKeys, k)
				val := skipBlanks(v[1:])
				kind := jsonKind(val)
				if kind&want == 0 {
					return false, nil
				}
				if kind == kindString && want == kindString|kindNull|kindPlain && (!plainString(val) || isSpecialTimeWord(stringText(val))) {
					return false, nil
				}
			}
		}
		if err != nil {
			return true, nil
		}
	}
}

// skipBlanks is bytes.TrimLeft(b, " \t") without building the cutset's
// set on every call: it ran for every string of every line, and took half
// of typedFits' CPU on a 10M-row object (0.86 of 1.82 s).
func skipBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// jsonKind is the kind of the JSON value v starts with. A number is a
// digit, or a minus and a digit (not a bare NaN or Infinity, which
// DuckDB's reader takes); null is the literal followed by a delimiter.
func jsonKind(v []byte) int {
	if len(v) == 0 {
		return kindOther
	}
	switch c := v[0]; {
	case c == '"':
		return kindString
	case c >= '0' && c <= '9':
		return kindNumber
	case c == '-' && len(v) > 1 && v[1] >= '0' && v[1] <= '9':
		return kindNumber
	case bytes.HasPrefix(v, []byte("null")) && (len(v) == 4 || strings.IndexByte(",} \t", v[4]) >= 0):
		return kindNull
	}
	return kindOther
}

// ndjsonTypedSelect is the typed read's rows of the NDJSON objects ms
// (local files paths), typed, checked and with lineage, as
// ndjsonFastSelect's.
func (j *job) ndjsonTypedSelect(ms []manifest, paths []string, lin lineage) string {
	src, in := j.ndjsonTypedSource(fileList(paths), nil, ", filename=true", "filename AS _obj")
	return j.groupSelect(j.plan.typedQueryPass(src, in, ", _obj"), ms, paths, lin, "CASE WHEN _err IS NULL THEN true ELSE error(_err) END")
}

// ndjsonTypedSource is the typed read's FROM item over files (a DuckDB
// string or list of strings) and its column inputs: the declared columns
// typed by the reader, with the reader's extra columns (DuckDB column
// definitions, e.g. '_f': 'VARCHAR') and options (opts, each after a
// comma), and lineage selecting each row's object (_obj, and _at).
func (j *job) ndjsonTypedSource(files string, extra []string, opts, lineage string) (string, []colInput) {
	var cols, sel, blanks []string
	format := ""
	in := make([]colInput, len(j.plan.cols))
	for i, c := range j.plan.cols {
		typ := c.sqlType
		expr := warehouse.QuoteIdent(c.srcName)
		if c.typ == "timestamp" {
			typ, format = "TIMESTAMP", c.format
			expr = c.zoned(expr)
		}
		if c.typ == "string" {
			// The MAP path trims a value with blanks at either end and
			// reads an empty one as NULL: such a row refuses the batch.
			blanks = append(blanks, expr+" = '' OR starts_with("+expr+", ' ') OR ends_with("+expr+", ' ')")
		}
		cols = append(cols, warehouse.QuoteString(c.srcName)+": "+warehouse.QuoteString(typ))
		sel = append(sel, expr+" AS "+warehouse.QuoteIdent(fmt.Sprintf("_c%d", i)))
		in[i] = colInput{expr: warehouse.QuoteIdent(fmt.Sprintf("_c%d", i)), typed: true}
	}
	cols = append(cols, extra...)
	if format != "" {
		opts += ", timestampformat=" + warehouse.QuoteString(format)
	}
	if j.maxLine > 16<<20-(64<<10) {
		opts += fmt.Sprintf(", maximum_object_size=%d", j.maxLine+64<<10)
	}
	reader := "read_json(" + files + ", format='newline_delimited', columns={" + strings.Join(cols, ", ") + "}" + opts + ")"
	pre := "CAST(NULL AS VARCHAR)"
	if len(blanks) > 0 {
		pre = "CASE WHEN " + strings.Join(blanks, " OR ") + " THEN " + warehouse.QuoteString(errSep+"a value with blanks at an end, or empty") + " END"
	}
	return "(SELECT " + strings.Join(sel, ", ") + ", " + pre + " AS _pre_err, CAST(NULL AS VARCHAR) AS _line, CAST(NULL AS VARCHAR) AS _resc, " + lineage + " FROM " + reader + ")", in
}

// stringText is the text between the quotes of the plain JSON string v
// starts with (plainString holds).
func stringText(v []byte) []byte {
	if end := bytes.IndexByte(v[1:], '"'); end >= 0 {
		return v[1 : 1+end]
	}
	return nil
}

// plainString reports whether the JSON string v starts with (its opening
// quote first) has no escape and no control character before its closing
// quote.
func plainString(v []byte) bool {
	for _, c := range v[1:] {
		switch {
		case c == '"':
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}
