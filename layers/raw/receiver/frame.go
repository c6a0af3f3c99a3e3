package receiver

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/medallion-dev/medallion/internal/config"
)

// bodyKind is how a request body is framed, from its Content-Type.
type bodyKind int

const (
	kindNDJSON  bodyKind = iota // one JSON object per line
	kindJSONSeq                 // RFC 7464: each JSON text after an RS (0x1E)
	kindJSON                    // a JSON array of objects, one object, or a stream of objects
	kindCSV                     // CSV in the source's dialect
)

// mediaTypes maps accepted Content-Types to body kinds.
var mediaTypes = map[string]bodyKind{
	"application/x-ndjson":    kindNDJSON,
	"application/ndjson":      kindNDJSON,
	"application/jsonl":       kindNDJSON,
	"application/x-jsonl":     kindNDJSON,
	"application/jsonlines":   kindNDJSON,
	"application/x-jsonlines": kindNDJSON,
	"application/json-seq":    kindJSONSeq,
	"application/json":        kindJSON,
	"text/csv":                kindCSV,
	"application/csv":         kindCSV,
}

// acceptedTypes says which Content-Types a source of the given format takes.
func acceptedTypes(format string) string {
	if format == "csv" {
		return "text/csv"
	}
	return "application/x-ndjson (or application/jsonl), application/json, application/json-seq"
}

// kindFor resolves a Content-Type for a source of the given format. ok is
// false for a type the source does not take (415).
func kindFor(contentType, format string) (bodyKind, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") && !strings.EqualFold(cs, "us-ascii") {
		return 0, false
	}
	k, ok := mediaTypes[mt]
	if !ok {
		return 0, false
	}
	if (k == kindCSV) != (format == "csv") {
		return 0, false
	}
	return k, true
}

// chunk is one request's rows framed for the source's raw object: complete
// lines, each ending in '\n'; for CSV without the header line.
type chunk struct {
	data       []byte
	rows       int64    // rows (lines, but for CSV fields holding line breaks) carried, bad ones included
	bad        int64    // of those, lines bronze will quarantine: not a JSON object, wrong CSV column count
	header     []string // CSV with a header: its fields (nil otherwise)
	headerLine []byte   // CSV with a header: the line as received, ending in '\n'
	// held is the memory budget this chunk's arrays took (HTTP); the batch
	// that keeps them gives it back once landed.
	held int64
}

// size is what the chunk adds to a batch (the header only if it starts one).
func (c *chunk) size(startsBatch bool) int64 {
	if startsBatch {
		return int64(len(c.headerLine) + len(c.data))
	}
	return int64(len(c.data))
}

// FrameError is a malformed request body; it names the line (or the JSON
// array element, or the json-seq record) a sender must fix.
type FrameError struct {
	Line int64  // 1-based line in the body
	What string // "line", or "record" for json-seq
	Msg  string
}

func (e *FrameError) Error() string { return fmt.Sprintf("%s %d: %s", e.What, e.Line, e.Msg) }

var bom = []byte{0xEF, 0xBB, 0xBF}

// frame checks the framing of body and converts it to lines for the raw
// object. Types and values are not checked: that is bronze's job.
func frame(body []byte, k bodyKind, src *config.Source) (chunk, error) {
	body = bytes.TrimPrefix(body, bom)
	switch k {
	case kindNDJSON:
		return frameNDJSON(body)
	case kindJSONSeq:
		return frameJSONSeq(body)
	case kindJSON:
		return frameJSON(body)
	default:
		if !utf8.Valid(body) {
			return chunk{}, notUTF8(body)
		}
		return frameCSV(body, src.CSV)
	}
}

// notUTF8 names the line of the first byte of body that is not UTF-8: a
// body in another encoding cannot be framed into lines bronze can read.
func notUTF8(body []byte) *FrameError {
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return &FrameError{Line: int64(bytes.Count(body[:off], []byte{'\n'})) + 1, What: "line",
		Msg: "not UTF-8 text (send UTF-8; charset other than utf-8 is refused)"}
}

// frameNDJSON keeps each non-blank line as it is (without a trailing '\r'),
// after checking that it is one JSON object. When every line is kept
// byte for byte (the usual body: no blank line, no '\r', a final '\n'),
// the chunk's data is body itself, with no copy.
//
// A line that is not one JSON object is kept too (bronze quarantines it);
// a body none of whose lines is an object is not NDJSON, and refused.
func frameNDJSON(body []byte) (chunk, error) {
	var c chunk
	var firstBad *FrameError
	var out []byte // nil while body so far is kept as it is
	rest := body
	var line int64
	for len(rest) > 0 {
		line++
		start := len(body) - len(rest)
		l, hadNL := rest, false
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest, hadNL = rest[:i], rest[i+1:], true
		} else {
			rest = nil
		}
		t := bytes.TrimSuffix(l, []byte{'\r'})
		blank := len(bytes.TrimSpace(t)) == 0
		if !blank {
			if err := checkObject(t); err != nil {
				// Landed as it is: bronze quarantines it with its line,
				// as it does a file's. Only bytes that are not text at
				// all refuse the request.
				if !utf8.Valid(t) {
					return chunk{}, &FrameError{Line: line, What: "line", Msg: "not UTF-8 text"}
				}
				if c.bad == 0 {
					firstBad = &FrameError{Line: line, What: "line", Msg: err.Error()}
				}
				c.bad++
			}
			c.rows++
		}
		if out == nil && (blank || !hadNL || len(t) != len(l)) {
			out = make([]byte, start, len(body)+1)
			copy(out, body[:start])
		}
		if out != nil && !blank {
			out = append(out, t...)
			out = append(out, '\n')
		}
	}
	if c.bad > 0 && c.bad == c.rows {
		firstBad.Msg += " (no line of the body is a JSON object: is it NDJSON?)"
		return chunk{}, firstBad
	}
	c.data = body
	if out != nil {
		c.data = out
	}
	return c, nil
}

// frameJSONSeq takes RFC 7464 records (RS, a JSON text, LF), compacting
// each to one line.
func frameJSONSeq(body []byte) (chunk, error) {
	var c chunk
	var firstBad *FrameError
	var buf bytes.Buffer
	buf.Grow(len(body) + 1) // compact lines never outgrow the body: one array, counted by the caller
	recs := bytes.Split(body, []byte{0x1E})
	var n int64
	for i, r := range recs {
		r = bytes.TrimSpace(r)
		if i == 0 && len(r) == 0 {
			continue // before the first RS
		}
		n++
		if len(r) == 0 {
			continue // an empty record is skipped, as RFC 7464 allows
		}
		if err := checkObject(r); err != nil {
			if bytes.ContainsAny(r, "\r\n") || !utf8.Valid(r) {
				return chunk{}, &FrameError{Line: n, What: "record", Msg: err.Error()}
			}
			if c.bad == 0 {
				firstBad = &FrameError{Line: n, What: "record", Msg: err.Error()}
			}
			buf.Write(r) // one line: landed, bronze quarantines it
			buf.WriteByte('\n')
			c.rows++
			c.bad++
			continue
		}
		if err := json.Compact(&buf, r); err != nil {
			return chunk{}, &FrameError{Line: n, What: "record", Msg: "invalid JSON: " + err.Error()}
		}
		buf.WriteByte('\n')
		c.rows++
	}
	if c.bad > 0 && c.bad == c.rows {
		firstBad.Msg += " (no record of the body is a JSON object)"
		return chunk{}, firstBad
	}
	c.data = buf.Bytes()
	return c, nil
}

// checkObject reports whether b (trimmed of nothing) is exactly one JSON object.
func checkObject(b []byte) error {
	t := bytes.TrimLeft(b, " \t\r\n")
	if !json.Valid(b) {
		var v json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("invalid JSON: %v", err)
		}
		return errors.New("invalid JSON")
	}
	if len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object (want one object per line)")
	}
	return nil
}

// frameJSON takes a JSON array of objects, or one or more objects one after
// the other, and writes each object compacted on its own line.
func frameJSON(body []byte) (chunk, error) {
	start := len(body) - len(bytes.TrimLeft(body, " \t\r\n"))
	if start == len(body) {
		return chunk{}, nil // empty: no rows
	}
	fr := &jsonFramer{body: body, start: start, dec: json.NewDecoder(bytes.NewReader(body[start:]))}
	fr.buf.Grow(len(body) + 1) // as in frameJSONSeq
	var err error
	if body[start] == '[' {
		err = fr.array()
	} else {
		err = fr.objects()
	}
	if err != nil {
		return chunk{}, err
	}
	fr.c.data = fr.buf.Bytes()
	return fr.c, nil
}

// jsonFramer is frameJSON's state: the body, where its JSON starts, the
// decoder over it and the lines written so far.
type jsonFramer struct {
	body  []byte
	start int
	dec   *json.Decoder
	buf   bytes.Buffer
	c     chunk
}

// lineAt is the body's line (from 1) holding byte off.
func (fr *jsonFramer) lineAt(off int64) int64 {
	if off > int64(len(fr.body)) {
		off = int64(len(fr.body))
	}
	return int64(bytes.Count(fr.body[:off], []byte{'\n'})) + 1
}

// fail turns a decoding error into a FrameError naming its line and, when
// elem > 0, the array element.
func (fr *jsonFramer) fail(err error, elem int) error {
	off := int64(fr.start) + fr.dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int64(fr.start) + se.Offset
	}
	msg := "invalid JSON: " + err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "invalid JSON: unexpected end of the body"
		off = int64(len(fr.body))
	}
	if elem > 0 {
		msg = fmt.Sprintf("element %d: %s", elem, msg)
	}
	return &FrameError{Line: fr.lineAt(off), What: "line", Msg: msg}
}

// add writes one value compacted on its own line. A non-object element of
// an array is written and counted bad (bronze quarantines it); a
// non-object outside an array is an error.
func (fr *jsonFramer) add(raw json.RawMessage, elem int) error {
	if raw[0] != '{' && elem > 0 {
		// A valid JSON value, not an object: one line bronze quarantines.
		fr.c.bad++
	} else if raw[0] != '{' {
		where := "the body is"
		if elem > 0 {
			where = fmt.Sprintf("element %d is", elem)
		}
		return &FrameError{Line: fr.lineAt(int64(fr.start) + fr.dec.InputOffset() - int64(len(raw))), What: "line",
			Msg: where + " not a JSON object (want an array of objects, or an object)"}
	}
	if err := json.Compact(&fr.buf, raw); err != nil {
		return fr.fail(err, elem)
	}
	fr.buf.WriteByte('\n')
	fr.c.rows++
	return nil
}

// array frames a body that is one JSON array, and nothing after it.
func (fr *jsonFramer) array() error {
	dec := fr.dec
	if _, err := dec.Token(); err != nil {
		return fr.fail(err, 0)
	}
	for elem := 1; dec.More(); elem++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fr.fail(err, elem)
		}
		if err := fr.add(raw, elem); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return fr.fail(err, 0)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FrameError{Line: fr.lineAt(int64(fr.start) + dec.InputOffset()), What: "line", Msg: "unexpected data after the JSON array"}
	}
	return nil
}

// objects frames a body of objects one after the other.
func (fr *jsonFramer) objects() error {
	for {
		var raw json.RawMessage
		err := fr.dec.Decode(&raw)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fr.fail(err, 0)
		}
		if err := fr.add(raw, 0); err != nil {
			return err
		}
	}
}

// frameCSV checks that every record has the header's column count and keeps
// the records' bytes as received, without blank lines, each ended by '\n'
// (a batch mixing "\r\n" and "\n" endings would confuse CSV readers; line
// breaks inside quoted fields are kept). With a header, the header line is
// returned separately so a batch keeps only one.
func frameCSV(body []byte, o config.CSVOptions) (chunk, error) {
	delim, quote := o.Delimiter, o.Quote
	if delim == "" {
		delim = ","
	}
	if quote == "" {
		quote = `"`
	}
	comma, n := utf8.DecodeRuneInString(delim)
	if quote != `"` || n != len(delim) || comma == '"' || comma == '\r' || comma == '\n' {
		return frameCSVLines(body, delim, o.Header), nil
	}
	var c chunk
	out := make([]byte, 0, len(body)+1)
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = comma
	r.LazyQuotes = true // quoting is the reader's (bronze's) business; we count columns
	r.ReuseRecord = true
	var prev int64
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil && errors.Is(err, csv.ErrFieldCount) && !first {
			c.bad++ // kept: bronze quarantines it with its line
			err = nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				msg := pe.Err.Error()
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					what := "the header has"
					if !o.Header {
						what = "the first row has"
					}
					msg = fmt.Sprintf("%d columns, %s %d", len(rec), what, r.FieldsPerRecord)
				}
				return chunk{}, &FrameError{Line: int64(pe.StartLine), What: "line", Msg: msg}
			}
			return chunk{}, err
		}
		end := r.InputOffset()
		seg := trimBlankLines(body[prev:end])
		prev = end
		seg = bytes.TrimSuffix(bytes.TrimSuffix(seg, []byte{'\n'}), []byte{'\r'})
		if first && o.Header {
			first = false
			c.header = slices.Clone(rec)
			c.headerLine = append(seg[:len(seg):len(seg)], '\n')
			continue
		}
		first = false
		out = append(out, seg...)
		out = append(out, '\n')
		c.rows++
	}
	c.data = out
	return c, nil
}

// frameCSVLines frames a CSV dialect encoding/csv cannot read (another quote
// character) by lines, without checking columns.
func frameCSVLines(body []byte, delim string, header bool) chunk {
	var c chunk
	out := make([]byte, 0, len(body)+1)
	for len(body) > 0 {
		l := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i+1], body[i+1:]
		} else {
			body = nil
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(l) == 0 {
			continue
		}
		if header && c.header == nil {
			c.header = strings.Split(string(l), delim)
			c.headerLine = append(l[:len(l):len(l)], '\n')
			continue
		}
		out = append(out, l...)
		out = append(out, '\n')
		c.rows++
	}
	c.data = out
	return c
}

// trimBlankLines drops the empty lines csv.Reader skipped before a record.
func trimBlankLines(seg []byte) []byte {
	for len(seg) > 0 && (seg[0] == '\n' || (seg[0] == '\r' && len(seg) > 1 && seg[1] == '\n')) {
		if seg[0] == '\r' {
			seg = seg[1:]
		}
		seg = seg[1:]
	}
	return seg
}
