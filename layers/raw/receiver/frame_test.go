package receiver

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
)

func TestKindFor(t *testing.T) {
	for _, tc := range []struct {
		ct, format string
		want       bodyKind
		ok         bool
	}{
		{"application/x-ndjson", "ndjson", kindNDJSON, true},
		{"application/jsonl; charset=utf-8", "json", kindNDJSON, true},
		{"application/json", "ndjson", kindJSON, true},
		{"Application/JSON", "json", kindJSON, true},
		{"application/json-seq", "ndjson", kindJSONSeq, true},
		{"text/csv", "csv", kindCSV, true},
		{"text/csv; charset=latin1", "csv", 0, false},
		{"text/csv", "ndjson", 0, false},
		{"application/json", "csv", 0, false},
		{"text/plain", "ndjson", 0, false},
		{"", "ndjson", 0, false},
	} {
		got, ok := kindFor(tc.ct, tc.format)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("kindFor(%q, %q) = %v, %v; want %v, %v", tc.ct, tc.format, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFrame(t *testing.T) {
	csvSrc := &config.Source{Format: "csv", CSV: config.CSVOptions{Delimiter: ",", Quote: `"`, Header: true}}
	for _, tc := range []struct {
		name   string
		kind   bodyKind
		src    *config.Source
		body   string
		data   string
		rows   int64
		bad    int64
		header string
		err    string
	}{
		{name: "ndjson", kind: kindNDJSON, body: "\xEF\xBB\xBF{\"a\":1}\r\n\n  \n{\"a\": 2}", data: "{\"a\":1}\n{\"a\": 2}\n", rows: 2},
		{name: "ndjson kept as it is", kind: kindNDJSON, body: "{\"a\":1}\n{\"a\": 2}\n", data: "{\"a\":1}\n{\"a\": 2}\n", rows: 2},
		{name: "ndjson no final newline", kind: kindNDJSON, body: "{\"a\":1}\n{\"a\":2}", data: "{\"a\":1}\n{\"a\":2}\n", rows: 2},
		{name: "ndjson crlf after clean lines", kind: kindNDJSON, body: "{\"a\":1}\n{\"a\":2}\r\n{\"a\":3}\n", data: "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", rows: 3},
		{name: "ndjson blank line after clean lines", kind: kindNDJSON, body: "{\"a\":1}\n\t\n{\"a\":2}\n", data: "{\"a\":1}\n{\"a\":2}\n", rows: 2},
		{name: "ndjson only blank lines", kind: kindNDJSON, body: "\n \r\n", data: "", rows: 0},
		{name: "ndjson bad line kept", kind: kindNDJSON, body: "{\"a\":1}\n\n{\"a\":\n", data: "{\"a\":1}\n{\"a\":\n", rows: 2, bad: 1},
		{name: "ndjson not object kept", kind: kindNDJSON, body: "{\"a\":1}\n[1]\n", data: "{\"a\":1}\n[1]\n", rows: 2, bad: 1},
		{name: "ndjson no object at all", kind: kindNDJSON, body: "a,b\n1,2\n", err: "line 1: invalid JSON"},
		{name: "ndjson two values on a line", kind: kindNDJSON, body: "{\"a\":1} {\"a\":2}\n", err: "line 1: invalid JSON"},
		{name: "ndjson not UTF-8", kind: kindNDJSON, body: "{\"a\":1}\n\xff\xfe\n", err: "line 2: not UTF-8 text"},
		{name: "json array", kind: kindJSON, body: "[\n {\"a\": 1},\n {\"b\": [1, 2]}\n]\n", data: "{\"a\":1}\n{\"b\":[1,2]}\n", rows: 2},
		{name: "json empty array", kind: kindJSON, body: " [ ] ", rows: 0},
		{name: "json empty", kind: kindJSON, body: "  ", rows: 0},
		{name: "json object", kind: kindJSON, body: "{\"a\":\n 1}", data: "{\"a\":1}\n", rows: 1},
		{name: "json object stream", kind: kindJSON, body: "{\"a\":1}\n{\"a\":2}", data: "{\"a\":1}\n{\"a\":2}\n", rows: 2},
		{name: "json bad element", kind: kindJSON, body: "[\n{\"a\":1},\n{\"a\" 2}\n]", err: "line 3: element 2: invalid JSON"},
		{name: "json element not object kept", kind: kindJSON, body: "[\n{\"a\":1},\n7]", data: "{\"a\":1}\n7\n", rows: 2, bad: 1},
		{name: "json truncated", kind: kindJSON, body: "[{\"a\":1},\n", err: "line 2: element 2: invalid JSON: unexpected end"},
		{name: "json trailing", kind: kindJSON, body: "[{\"a\":1}]\n]", err: "line 2: unexpected data after the JSON array"},
		{name: "json scalar", kind: kindJSON, body: "42", err: "line 1: the body is not a JSON object"},
		{name: "json-seq", kind: kindJSONSeq, body: "\x1e{\"a\":\n1}\n\x1e{\"b\":2}\n", data: "{\"a\":1}\n{\"b\":2}\n", rows: 2},
		{name: "json-seq bad kept", kind: kindJSONSeq, body: "\x1e{\"a\":1}\n\x1e{\"b\"\n", data: "{\"a\":1}\n{\"b\"\n", rows: 2, bad: 1},
		{name: "json-seq bad on two lines", kind: kindJSONSeq, body: "\x1e{\"a\":1}\n\x1e{\"b\"\n:}\n", err: "record 2: invalid JSON"},
		{name: "csv", kind: kindCSV, src: csvSrc, body: "\xEF\xBB\xBFuser,n\r\n\r\nu1,1\r\n\"u\n2\",2\n\nu3,3", data: "u1,1\n\"u\n2\",2\nu3,3\n", rows: 3, header: "user,n\n"},
		{name: "csv header only", kind: kindCSV, src: csvSrc, body: "user,n", rows: 0, header: "user,n\n"},
		{name: "csv columns kept", kind: kindCSV, src: csvSrc, body: "user,n\nu1,1\n\nu2,2,9\n", data: "u1,1\nu2,2,9\n", rows: 2, bad: 1, header: "user,n\n"},
		{name: "csv latin-1", kind: kindCSV, src: csvSrc, body: "user,n\nu1,1\nJos\xe9,2\n", err: "line 3: not UTF-8 text"},
		{name: "csv no header", kind: kindCSV, src: &config.Source{Format: "csv", CSV: config.CSVOptions{Delimiter: ";", Quote: `"`}}, body: "a;1\nb;2\n", data: "a;1\nb;2\n", rows: 2},
		{name: "csv other quote", kind: kindCSV, src: &config.Source{Format: "csv", CSV: config.CSVOptions{Delimiter: ",", Quote: "'", Header: true}}, body: "x,y\n\n'a',1\n'b',2", data: "'a',1\n'b',2\n", rows: 2, header: "x,y\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if src == nil {
				src = &config.Source{Format: "ndjson"}
			}
			c, err := frame([]byte(tc.body), tc.kind, src)
			if tc.err != "" {
				var fe *FrameError
				if err == nil || !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("err = %v; want a FrameError starting %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.data) != tc.data || c.rows != tc.rows || c.bad != tc.bad || string(c.headerLine) != tc.header {
				t.Errorf("got data %q rows %d (%d bad) header %q; want %q %d (%d bad) %q", c.data, c.rows, c.bad, c.headerLine, tc.data, tc.rows, tc.bad, tc.header)
			}
		})
	}
}

// FuzzFrame checks that framing never panics and that what it accepts is
// what the raw object needs: complete lines, one per row, each a JSON
// object for JSON bodies but the ones it counts as bad (bronze quarantines
// those).
func FuzzFrame(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n{\"b\":2}", "[{\"a\":1},{\"a\":2}]", "a,b\n1,2\n\"x\ny\",3", "\x1e{\"a\":1}\n", "", "\n\n", "[", "a,b\n1"} {
		for k := kindNDJSON; k <= kindCSV; k++ {
			f.Add([]byte(s), uint8(k))
		}
	}
	src := &config.Source{Format: "csv", CSV: config.CSVOptions{Delimiter: ",", Quote: `"`, Header: true}}
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := bodyKind(k % 4)
		c, err := frame(body, kind, src)
		if err != nil {
			return
		}
		if len(c.data) > 0 && c.data[len(c.data)-1] != '\n' {
			t.Fatalf("data does not end in a newline: %q", c.data)
		}
		if kind != kindCSV {
			lines := bytes.Split(bytes.TrimSuffix(c.data, []byte{'\n'}), []byte{'\n'})
			if len(c.data) == 0 {
				lines = nil
			}
			if int64(len(lines)) != c.rows {
				t.Fatalf("%d lines for %d rows: %q", len(lines), c.rows, c.data)
			}
			var bad int64
			for _, l := range lines {
				if checkObject(l) != nil {
					bad++
				}
			}
			if bad != c.bad || (bad > 0 && bad == c.rows) {
				t.Fatalf("%d lines are not an object, %d counted bad of %d: %q", bad, c.bad, c.rows, c.data)
			}
		}
	})
}
