package bronze

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/layers/raw"
)

// TestWriteJoined: a joined file wraps each non-blank line of the objects
// with its object's key and received time; an object with a line that is
// not one JSON object on its own (which wrapping could turn into a valid
// object), or whose bytes are not in memory, makes writeJoined decline.
// The typed read's layout merges the two keys into the line's object, and
// declines a line that is not a valid object alone the same way.
func TestWriteJoined(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456000, time.UTC)
	obj := func(key string) manifest {
		return manifest{raw.Manifest{Source: "m", SHA256: key, Key: "raw/m/" + key + ".ndjson", ReceivedAt: at}}
	}
	cases := []struct {
		name  string
		typed bool              // the joinMerge layout, for the typed read
		data  map[string]string // by object; an object missing here has no bytes in memory
		objs  []string
		ok    bool
		want  string
	}{
		{name: "lines and blanks", objs: []string{"a", "b"}, ok: true,
			data: map[string]string{"a": "{\"x\":1}\n\n  \r\n{\"x\":2}\r\n", "b": " {\"y\":\"s\"}"},
			want: `{"_f":"raw/m/a.ndjson","_r":"2026-12-06 10:00:00.123456+00","j":{"x":1}}` + "\n" +
				`{"_f":"raw/m/a.ndjson","_r":"2026-12-06 10:00:00.123456+00","j":{"x":2}}` + "\n" +
				`{"_f":"raw/m/b.ndjson","_r":"2026-12-06 10:00:00.123456+00","j":{"y":"s"}}` + "\n"},
		{name: "empty object", objs: []string{"a"}, ok: true, data: map[string]string{"a": ""}},
		{name: "a line that wrapping would make valid", objs: []string{"a"},
			data: map[string]string{"a": "{\"x\":1}, \"_f\": \"other\"\n"}},
		{name: "two objects on a line", objs: []string{"a"}, data: map[string]string{"a": "{\"x\":1} {\"x\":2}\n"}},
		{name: "not an object", objs: []string{"a"}, data: map[string]string{"a": "[1, 2]\n"}},
		{name: "invalid JSON", objs: []string{"a"}, data: map[string]string{"a": "{\"x\":\n"}},
		{name: "a blank JSON does not know", objs: []string{"a"}, data: map[string]string{"a": "\u00a0{\"x\":1}\n"}},
		{name: "bytes not in memory", objs: []string{"a", "b"}, data: map[string]string{"a": "{\"x\":1}\n"}},
		{name: "merged", typed: true, objs: []string{"a", "b"}, ok: true,
			data: map[string]string{"a": "{\"x\":1}\n\n{ }\r\n{}\n", "b": " { \"y\" : \"s\" } "},
			want: `{"_f":"raw/m/a.ndjson","_r":"2026-12-06 10:00:00.123456+00","x":1}` + "\n" +
				`{"_f":"raw/m/a.ndjson","_r":"2026-12-06 10:00:00.123456+00" }` + "\n" +
				`{"_f":"raw/m/a.ndjson","_r":"2026-12-06 10:00:00.123456+00"}` + "\n" +
				`{"_f":"raw/m/b.ndjson","_r":"2026-12-06 10:00:00.123456+00", "y" : "s" }` + "\n"},
		{name: "merged: a line that merging would make valid", typed: true, objs: []string{"a"},
			data: map[string]string{"a": "{\"x\":1}, \"_f\": \"other\"}\n"}},
		{name: "merged: a line missing its opening member", typed: true, objs: []string{"a"},
			data: map[string]string{"a": "{,\"x\":1}\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := &job{fetchedData: map[string][]byte{}, plan: &sourcePlan{cols: []colPlan{{srcName: "x"}, {srcName: "y"}}}}
			var ms []manifest
			for _, o := range c.objs {
				ms = append(ms, obj(o))
				if d, ok := c.data[o]; ok {
					j.fetchedData[o] = []byte(d)
				}
			}
			path := filepath.Join(t.TempDir(), "joined.ndjson")
			layout := joinWrap
			if c.typed {
				layout = joinMerge
			}
			ok, err := j.writeJoined(ms, path, layout)
			if err != nil {
				t.Fatal(err)
			}
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("joined file\n--- got\n%s--- want\n%s", got, c.want)
			}
			for _, l := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
				if l != "" && !json.Valid([]byte(l)) {
					t.Errorf("joined line %s is not valid JSON", l)
				}
			}
		})
	}
}
