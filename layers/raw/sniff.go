package raw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// SniffSize is how much of the start of a file CheckFormat needs: enough
// lines to tell a CSV file from NDJSON without reading a large file twice.
const SniffSize = 64 << 10

// FormatError says that a file is not in its source's format, naming the
// line (1-based) that shows it.
type FormatError struct {
	Line int
	Msg  string
}

func (e *FormatError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// CheckFormat looks at the first bytes of a file (head; complete when it is
// the whole file) and refuses one that cannot be in format (csv, json or
// ndjson) at all: UTF-16 text, NDJSON none of whose lines is a JSON object,
// JSON that starts with neither '[' nor '{', CSV that is JSON. A bad line
// among good ones (one that is not UTF-8 too) is not refused: bronze
// quarantines it with its line.
func CheckFormat(head []byte, complete bool, format string) error {
	head = bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF})
	if !complete {
		// The last line may be cut anywhere, in a rune too.
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1]
		}
	}
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return &FormatError{Line: 1, Msg: "UTF-16 text (save it as UTF-8)"}
	}
	line, first := firstLine(head)
	if first == nil {
		return nil // empty: nothing to land wrongly
	}
	switch format {
	case "ndjson":
		return checkNDJSON(head, complete, line, first)
	case "json":
		if c := first[0]; c != '[' && c != '{' {
			return &FormatError{Line: line, Msg: fmt.Sprintf("%s is not JSON (a json source takes an array of objects or objects)%s", quoteStart(first), looksLike(first))}
		}
	case "csv":
		if isJSONObject(first) || first[0] == '[' && json.Valid(first) {
			return &FormatError{Line: line, Msg: fmt.Sprintf("%s is JSON, not CSV", quoteStart(first))}
		}
	}
	return nil
}

// checkNDJSON refuses head when none of its lines is a JSON object. A
// head that is one line cut short (an object over SniffSize) is taken if it
// starts like an object.
func checkNDJSON(head []byte, complete bool, line int, first []byte) error {
	for _, l := range bytes.Split(head, []byte{'\n'}) {
		if isJSONObject(bytes.TrimSpace(l)) {
			return nil
		}
	}
	if !complete && first[0] == '{' && !bytes.Contains(head, []byte{'\n'}) {
		return nil
	}
	return &FormatError{Line: line, Msg: fmt.Sprintf("%s is not a JSON object, nor is any line after it%s: an ndjson source takes one JSON object per line",
		quoteStart(first), looksLike(first))}
}

func isJSONObject(l []byte) bool {
	return len(l) > 0 && l[0] == '{' && json.Valid(l)
}

// looksLike names the format a refused line seems to be in.
func looksLike(l []byte) string {
	switch {
	case l[0] == '[' || l[0] == '{':
		return " (it looks like a JSON array or a multi-line JSON document)"
	case bytes.ContainsAny(l, ",;\t|"):
		return " (it looks like CSV)"
	}
	return ""
}

// firstLine returns the first non-blank line, trimmed, and its number.
func firstLine(head []byte) (int, []byte) {
	for n, l := range bytes.Split(head, []byte{'\n'}) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			return n + 1, l
		}
	}
	return 0, nil
}

// quoteStart quotes the start of a line for an error message.
func quoteStart(l []byte) string {
	s := string(l)
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return fmt.Sprintf("%q", strings.TrimSpace(s))
}
