package bronze

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestGoLayoutToStrptime(t *testing.T) {
	cases := []struct {
		layout, want string
		zone         bool
	}{
		{"2006-01-02 15:04:05", "%Y-%m-%d %H:%M:%S", false},
		{"2006-01-02T15:04:05.000Z07:00", "%Y-%m-%dT%H:%M:%S.%g%z", true},
		{"2006-01-02T15:04:05.000000-0700", "%Y-%m-%dT%H:%M:%S.%f%z", true},
		{"01/02/2006 03:04 PM", "%m/%d/%Y %I:%M %p", false},
		{"02 Jan 06 15:04 MST", "%d %b %y %H:%M %Z", true},
		{"Monday, January 2 2006", "%A, %B %-d %Y", false},
		{"2006-01-02T15:04:05Z", "%Y-%m-%dT%H:%M:%SZ", false},
		{"100%", "%-m00%%", false},
	}
	for _, c := range cases {
		got, zone, err := GoLayoutToStrptime(c.layout)
		if err != nil || got != c.want || zone != c.zone {
			t.Errorf("%q: got %q zone=%v err=%v; want %q zone=%v", c.layout, got, zone, err, c.want, c.zone)
		}
	}
	if _, _, err := GoLayoutToStrptime("15:04:05.999"); err == nil {
		t.Error("optional fraction: want an error")
	}
}

func FuzzGoLayoutToStrptime(f *testing.F) {
	for _, s := range []string{"2006-01-02 15:04:05", "Jan _2 15:04:05.000", "%%", "Z07:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, layout string) {
		got, _, err := GoLayoutToStrptime(layout)
		if err != nil {
			return
		}
		// Every '%' in the output starts a specifier or an escaped '%'.
		for i := 0; i < len(got); i++ {
			if got[i] == '%' {
				if i+1 >= len(got) {
					t.Fatalf("%q -> %q: dangling %%", layout, got)
				}
				i++
				if got[i] == '-' {
					i++
				}
			}
		}
	})
}

// FuzzSplitJSON checks the JSON splitter never panics and that every
// element it emits is valid JSON with a line number inside the input.
func FuzzSplitJSON(f *testing.F) {
	f.Add("[{\"a\":1},\n{\"b\":2}]")
	f.Add("{\"a\":1}\n{\"a\":2}\n")
	f.Add("[1,")
	f.Fuzz(func(t *testing.T, in string) {
		maxLine := int64(strings.Count(in, "\n") + 1)
		lines, _, err := splitJSON(strings.NewReader(in), func(raw []byte) error {
			var b bytes.Buffer
			return jsonCompactCheck(&b, raw)
		})
		if err != nil {
			return
		}
		prev := int64(0)
		for _, l := range lines {
			if l < 1 || l > maxLine || l < prev {
				t.Fatalf("line %d out of range 1..%d (prev %d) for %q", l, maxLine, prev, in)
			}
			prev = l
		}
	})
}

// FuzzScanCSVRecords checks the quote-aware record scan: ordinals are
// consecutive and lines increase.
func FuzzScanCSVRecords(f *testing.F) {
	f.Add("a,b\n1,2\n\"x\ny\",3\n")
	f.Fuzz(func(t *testing.T, in string) {
		var lastOrd, lastLine int64
		err := scanCSVRecords(strings.NewReader(in), '"', ',', true, nil, func(ord, line int64, text []byte) bool {
			if ord != lastOrd+1 || line <= lastLine {
				t.Fatalf("ord %d after %d, line %d after %d", ord, lastOrd, line, lastLine)
			}
			lastOrd, lastLine = ord, line
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzScanLines: the line scanner sees every line exactly once.
func FuzzScanLines(f *testing.F) {
	f.Add("a\nb\n\nc")
	f.Fuzz(func(t *testing.T, in string) {
		var got []string
		scanLines(strings.NewReader(in), func(n int64, text []byte) bool {
			got = append(got, string(text))
			return true
		})
		want := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
		if in == "" {
			want = nil
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Fatalf("%q: got %q want %q", in, got, want)
		}
	})
}

// FuzzScanCSVRecordsDiff holds the record scan against encoding/csv: on
// every input the standard reader accepts, both find the same records
// starting on the same lines. The scan only names where a bad value is, but
// a wrong boundary would name the wrong line for every record after it.
func FuzzScanCSVRecordsDiff(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\"x\ny\",3\n4,5\n", "a\r\nb\r\n", "\n\n1\n\n2", "\"a\"\"b\",c\n", "x,\"\n\n\"\ny\n", " \n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(strings.ReplaceAll(in, "\r\n", ""), "\r") {
			// A lone carriage return ends a line for DuckDB (whose records
			// the scan follows) and is data for encoding/csv.
			return
		}
		cr := csv.NewReader(strings.NewReader(in))
		cr.FieldsPerRecord = -1
		var wantLines []int64
		for {
			_, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return // not CSV by the standard's rules: nothing to compare
			}
			line, _ := cr.FieldPos(0)
			wantLines = append(wantLines, int64(line))
		}
		var gotLines []int64
		if err := scanCSVRecords(strings.NewReader(in), '"', ',', false, nil, func(ord, line int64, text []byte) bool {
			gotLines = append(gotLines, line)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotLines, wantLines) {
			t.Fatalf("%q: records start on lines %v, encoding/csv says %v", in, gotLines, wantLines)
		}
	})
}
