package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestMirrorColumnKeys: columns:, exclude: and names: of a mirror are read
// and checked against the table's columns and key.
func TestMirrorColumnKeys(t *testing.T) {
	base, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const key = "    key: [meter_id, window_start]"
	if !strings.Contains(string(base), key) {
		t.Fatal("base.yaml changed: no mirror key line")
	}
	parse := func(extra string) (*Pipeline, error) {
		src := strings.Replace(string(base), key, key+"\n"+extra, 1)
		return Parse("medallion.yaml", []byte(src), func(string) (string, bool) { return "", false })
	}
	p, err := parse("    columns: [meter_id, window_start, ma]\n    names: lower")
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Mirror[0]; !slices.Equal(m.Columns, []string{"meter_id", "window_start", "ma"}) || m.Names != MirrorNamesLower {
		t.Errorf("mirror: %+v", m)
	}
	if p, err = parse("    exclude: [readings]"); err != nil || p.Mirror[0].Names != MirrorNamesAsDeclared || p.Mirror[0].Exclude[0] != "readings" {
		t.Errorf("exclude: %v %+v", err, p)
	}
	for _, tc := range []struct{ extra, want string }{
		{"    columns: [ma]", `mirror[0].columns: lacks key column "meter_id": a mirror always copies its key`},
		{"    exclude: [window_start]", `mirror[0].exclude[0]: column "window_start" is in key:`},
		{"    exclude: [avg_usag]", `mirror[0].exclude[0]: no column "avg_usag" in gold.meter_usage_ma (did you mean "avg_usage"?)`},
		{"    columns: [meter_id, window_start]\n    exclude: [ma]", `mirror[0].exclude: give columns: (what to copy) or exclude: (what to leave out), not both`},
		{"    names: upper", `mirror[0].names: unknown value "upper": want lower or as_declared`},
		{"    names: lowr", `did you mean "lower"?`},
	} {
		_, err := parse(tc.extra)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.extra, err, tc.want)
		}
	}
}
