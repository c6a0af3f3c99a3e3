package bronze

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/layers/raw"
)

// TestWriteJoined: a joined file wraps each non-blank line of the objects
// with its object's key and received time; an object with a line that is
// not one JSON object on its own (which wrapping could turn into a valid
// object), or whose bytes are not in memory, makes writeJoined decline.
func TestWriteJoined(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456000, time.UTC)
	obj := func(key string) manifest {
		return manifest{raw.Manifest{Source: "m", SHA256: key, Key: "raw/m/" + key + ".ndjson", ReceivedAt: at}}
	}
	cases := []struct {
		name string
		data map[string]string // by object; an object missing here has no bytes in memory
		objs []string
		ok   bool
		want string
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := &job{fetchedData: map[string][]byte{}}
			var ms []manifest
			for _, o := range c.objs {
				ms = append(ms, obj(o))
				if d, ok := c.data[o]; ok {
					j.fetchedData[o] = []byte(d)
				}
			}
			path := filepath.Join(t.TempDir(), "joined.ndjson")
			ok, err := j.writeJoined(ms, path)
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
		})
	}
}
