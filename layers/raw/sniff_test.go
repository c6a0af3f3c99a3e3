package raw

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckFormat(t *testing.T) {
	long := `{"a":"` + strings.Repeat("x", 100) // an object cut by the head
	for _, tc := range []struct {
		name, format, head string
		complete           bool
		line               int    // 0: accepted
		msg                string // part of the message
	}{
		{"ndjson ok", "ndjson", "{\"a\":1}\n{\"a\":2}\n", true, 0, ""},
		{"ndjson one bad line", "ndjson", "{\"a\":1}\nnope\n{\"a\":2}\n", true, 0, ""},
		{"ndjson blank start", "ndjson", "\n\n{\"a\":1}\n", true, 0, ""},
		{"empty", "ndjson", "", true, 0, ""},
		{"csv into ndjson", "ndjson", "\nid,name\n1,x\n", true, 2, `"id,name" is not a JSON object, nor is any line after it (it looks like CSV)`},
		{"json array into ndjson", "ndjson", "[{\"a\": 1}, {\"a\": 2}]\n", true, 1, "JSON array"},
		{"ndjson cut head", "ndjson", long, false, 0, ""},
		{"ndjson cut after lines", "ndjson", "x,y\n1,2\n" + long, false, 1, "looks like CSV"},
		{"one line not utf-8", "ndjson", "{\"a\":1}\n\xff\xfe\n", true, 0, ""},
		{"utf-16", "csv", "\xff\xfea\x00,\x00b\x00", true, 1, "UTF-16"},
		{"cut rune", "csv", "a,b\n1,\xc3", false, 0, ""},
		{"json ok", "json", " [{\"a\":1}]", true, 0, ""},
		{"csv into json", "json", "a,b\n", true, 1, "is not JSON"},
		{"csv ok", "csv", "a,b\n1,2\n", true, 0, ""},
		{"ndjson into csv", "csv", "{\"a\":1}\n", true, 1, "is JSON, not CSV"},
		{"bom", "ndjson", "\xEF\xBB\xBF{\"a\":1}\n", true, 0, ""},
	} {
		err := CheckFormat([]byte(tc.head), tc.complete, tc.format)
		var fe *FormatError
		switch {
		case tc.line == 0 && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.line != 0 && !errors.As(err, &fe):
			t.Errorf("%s: %v, want a FormatError at line %d", tc.name, err, tc.line)
		case tc.line != 0 && (fe.Line != tc.line || !strings.Contains(fe.Msg, tc.msg)):
			t.Errorf("%s: %v, want line %d saying %q", tc.name, err, tc.line, tc.msg)
		}
	}
}

func FuzzCheckFormat(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n"), true, "ndjson")
	f.Add([]byte("a,b\n1,2\n"), false, "csv")
	f.Add([]byte("[1]"), true, "json")
	f.Fuzz(func(t *testing.T, head []byte, complete bool, format string) {
		err := CheckFormat(head, complete, format)
		var fe *FormatError
		if err != nil && (!errors.As(err, &fe) || fe.Line < 1 || fe.Line > strings.Count(string(head), "\n")+1) {
			t.Fatalf("CheckFormat: %v: want a FormatError with a line in the head", err)
		}
	})
}
