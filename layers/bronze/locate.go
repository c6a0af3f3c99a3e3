package bronze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
)

// scanLines calls fn with every line of r (1-based number, text without the
// '\n'), however long, until fn returns false.
func scanLines(r io.Reader, fn func(lineNo int64, text []byte) bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var buf []byte
	var n int64
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(buf) > 0 {
			n++
			if !fn(n, bytes.TrimSuffix(buf, []byte{'\n'})) {
				return nil
			}
		}
		if err != nil {
			return nil
		}
		buf = buf[:0]
	}
}

// scanCSVRecords walks the records of a CSV file with quote-awareness and
// calls fn with each data record's ordinal (1-based, counting only records
// DuckDB returns: not the header, not blank lines, not records starting on
// a rejected line), its first line number and its text. Quotes are read as
// DuckDB's reader reads them: a quote opens a quoted field only at the
// start of a field (which may then span lines; a doubled quote inside is
// an escaped quote); a quote inside an unquoted value (a stray inch mark:
// 'B5" tall') opens nothing, so that record ends at its line end, as in
// DuckDB, and the records after it keep their ordinals.
func scanCSVRecords(r io.Reader, quote, delim byte, header bool, rejected map[int64]bool, fn func(ord, line int64, text []byte) bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var (
		rec        []byte
		line       int64 = 1 // current line
		start      int64 = 1 // first line of the current record
		inQuote    bool
		closing    bool // a quote in a quoted field: the end, or an escape
		fieldStart = true
		ord        int64
		seenFirst  bool
	)
	emit := func() bool {
		text := bytes.TrimRight(rec, "\r\n")
		defer func() { rec = rec[:0] }()
		if !seenFirst && header {
			seenFirst = true
			return true
		}
		seenFirst = true
		if len(text) == 0 || rejected[start] {
			return true
		}
		ord++
		return fn(ord, start, text)
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(rec) > 0 {
					emit()
				}
				return nil
			}
			return err
		}
		rec = append(rec, b)
		if closing {
			closing = false
			if b == quote {
				continue // an escaped quote: still in the field
			}
			inQuote = false
		}
		switch {
		case inQuote && b == quote:
			closing = true
		case inQuote:
			if b == '\n' {
				line++
			}
		case b == quote && fieldStart:
			inQuote, fieldStart = true, false
		case b == delim:
			fieldStart = true
		case b == '\n':
			line++
			if !emit() {
				return nil
			}
			start, fieldStart = line, true
		default:
			fieldStart = false
		}
	}
}

// jsonError is a syntax error in a JSON array file: the rest of the file
// cannot be split into elements.
type jsonError struct {
	line int64
	msg  string
	raw  string
}

// convertJSON rewrites a JSON file holding one array of values (or a stream
// of values, e.g. one object per line) as NDJSON at dst, one compact value
// per line, and returns the source line where each element starts. A syntax
// error stops the conversion: what was converted stays, and the error names
// its line.
func convertJSON(src, dst string) ([]int64, *jsonError, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return nil, nil, err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	lines, jerr, err := splitJSON(in, func(raw []byte) error {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return lines, jerr, err
}

// splitJSON streams the elements of a JSON array (or a stream of values,
// such as one object per line) to emit and returns each element's first line.
func splitJSON(r io.Reader, emit func(raw []byte) error) ([]int64, *jsonError, error) {
	lc := &lineCounter{r: r}
	br := bufio.NewReader(lc)
	var skipped int64
	array := false
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == 0xEF || b == 0xBB || b == 0xBF {
			skipped++
			continue
		}
		array = b == '['
		if err := br.UnreadByte(); err != nil {
			return nil, nil, err
		}
		break
	}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	if array {
		if _, err := dec.Token(); err != nil {
			return nil, nil, err
		}
	}
	var lines []int64
	at := func() int64 { return lc.lineAt(skipped + dec.InputOffset()) }
	for {
		if array && !dec.More() {
			break
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if !array && errors.Is(err, io.EOF) {
			return lines, nil, nil
		}
		if err != nil {
			return lines, &jsonError{line: at(), msg: "invalid JSON: " + err.Error() + " (the rest of the file is skipped)"}, nil
		}
		startOff := skipped + dec.InputOffset() - int64(len(raw))
		lines = append(lines, lc.lineAt(startOff))
		if err := emit(raw); err != nil {
			return lines, nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return lines, &jsonError{line: at(), msg: "invalid JSON: unterminated array: " + err.Error()}, nil
	}
	return lines, nil, nil
}

// lineCounter turns offsets of what was read into line numbers, for offsets
// asked in non-decreasing order; it keeps only the line starts read ahead.
type lineCounter struct {
	r      io.Reader
	off    int64
	base   int64   // lines before starts[0]
	starts []int64 // offsets of line starts not yet passed
}

func (l *lineCounter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.starts = append(l.starts, l.off+int64(i)+1)
		}
	}
	l.off += int64(n)
	return n, err
}

// lineAt returns the 1-based line holding offset off.
func (l *lineCounter) lineAt(off int64) int64 {
	i := 0
	for i < len(l.starts) && l.starts[i] <= off {
		i++
	}
	l.base += int64(i)
	l.starts = l.starts[i:]
	return l.base + 1
}

// jsonCompactCheck compacts raw into b, failing on invalid JSON.
func jsonCompactCheck(b *bytes.Buffer, raw []byte) error { return json.Compact(b, raw) }
