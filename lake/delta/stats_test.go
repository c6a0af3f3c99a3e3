package delta

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseStats(t *testing.T) {
	cases := []struct {
		name, in string
		err      bool
		noStats  bool
		want     FileStats
	}{
		{name: "empty", in: "", noStats: true},
		{name: "numRecords only (older writers)", in: `{"numRecords":42}`, want: FileStats{NumRecords: 42}},
		{name: "full", in: `{"numRecords":2,"minValues":{"id":"a","n":-1,"ts":"2024-01-01T00:00:00.000Z","nested":{"x":1}},` +
			`"maxValues":{"id":"b","n":7.5,"ts":"2024-01-01T00:00:01.000Z","nested":{"x":2}},"nullCount":{"id":0,"n":1,"nested":{"x":0}},"tightBounds":true}`,
			want: FileStats{NumRecords: 2,
				MinValues: map[string]json.RawMessage{"id": json.RawMessage(`"a"`), "n": json.RawMessage(`-1`), "ts": json.RawMessage(`"2024-01-01T00:00:00.000Z"`)},
				MaxValues: map[string]json.RawMessage{"id": json.RawMessage(`"b"`), "n": json.RawMessage(`7.5`), "ts": json.RawMessage(`"2024-01-01T00:00:01.000Z"`)},
				NullCount: map[string]int64{"id": 0, "n": 1}}},
		{name: "null bound", in: `{"numRecords":1,"minValues":{"a":null},"maxValues":{"a":null}}`, want: FileStats{NumRecords: 1}},
		{name: "no numRecords", in: `{"minValues":{}}`, err: true},
		{name: "not JSON", in: `{numRecords:1}`, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStats(tc.in)
			if tc.noStats {
				if !errors.Is(err, ErrNoStats) {
					t.Fatalf("err %v, want ErrNoStats", err)
				}
				return
			}
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if got.NumRecords != tc.want.NumRecords || !sameRaw(got.MinValues, tc.want.MinValues) || !sameRaw(got.MaxValues, tc.want.MaxValues) ||
				len(got.NullCount) != len(tc.want.NullCount) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want.NullCount {
				if got.NullCount[k] != v {
					t.Fatalf("nullCount[%s] = %d, want %d", k, got.NullCount[k], v)
				}
			}
		})
	}
}

func sameRaw(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// TestFileStatsString checks the stats string's shape: numRecords first,
// empty maps left out, a round trip through ParseStats.
func TestFileStatsString(t *testing.T) {
	if got := (FileStats{NumRecords: 3}).String(); got != `{"numRecords":3}` {
		t.Errorf("got %s", got)
	}
	fs := FileStats{NumRecords: 2, MinValues: map[string]json.RawMessage{"a": json.RawMessage(`1`)},
		MaxValues: map[string]json.RawMessage{"a": json.RawMessage(`5`)}, NullCount: map[string]int64{"a": 0, "b": 2}}
	s := fs.String()
	if want := `{"numRecords":2,"minValues":{"a":1},"maxValues":{"a":5},"nullCount":{"a":0,"b":2}}`; s != want {
		t.Errorf("got %s, want %s", s, want)
	}
	back, err := ParseStats(s)
	if err != nil || back.String() != s {
		t.Errorf("round trip: %s, %v", back.String(), err)
	}
}

// TestStatTime checks the millisecond rounding that keeps bounds bounds,
// and that what StatTime writes ParseStatTime reads back.
func TestStatTime(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ny := time.FixedZone("EST", -5*3600)
	cases := []struct {
		in       time.Time
		up, ntz  bool
		want     string
		readBack string // what ParseStatTime returns, RFC 3339 in UTC
	}{
		{at("2024-01-01T00:00:00.000400Z"), false, false, `"2024-01-01T00:00:00.000Z"`, "2024-01-01T00:00:00Z"},
		{at("2024-01-01T00:00:00.000400Z"), true, false, `"2024-01-01T00:00:00.001Z"`, "2024-01-01T00:00:00.001Z"},
		{at("2024-01-01T00:00:00.002Z"), true, false, `"2024-01-01T00:00:00.002Z"`, "2024-01-01T00:00:00.002Z"},
		{at("2023-12-31T23:59:59.999999Z"), true, false, `"2024-01-01T00:00:00.000Z"`, "2024-01-01T00:00:00Z"},
		{at("1969-12-31T23:59:59.999500Z"), false, false, `"1969-12-31T23:59:59.999Z"`, "1969-12-31T23:59:59.999Z"},
		{at("2024-01-01T00:00:00Z").In(ny), false, false, `"2024-01-01T00:00:00.000Z"`, "2024-01-01T00:00:00Z"},
		{time.Date(2024, 1, 1, 10, 0, 0, 1000, time.UTC), true, true, `"2024-01-01T10:00:00.001"`, "2024-01-01T10:00:00.001Z"},
	}
	for _, tc := range cases {
		got := StatTime(tc.in, tc.up, tc.ntz)
		if string(got) != tc.want {
			t.Errorf("StatTime(%s, up=%v, ntz=%v) = %s, want %s", tc.in, tc.up, tc.ntz, got, tc.want)
		}
		back, err := ParseStatTime(got)
		if err != nil || back.UTC().Format(time.RFC3339Nano) != tc.readBack {
			t.Errorf("ParseStatTime(%s) = %s, %v; want %s", got, back.UTC().Format(time.RFC3339Nano), err, tc.readBack)
		}
	}
	// Other writers' forms.
	for in, want := range map[string]string{
		`"2024-01-01T01:00:00.000+01:00"`: "2024-01-01T00:00:00Z",
		`"2024-01-01T00:00:00Z"`:          "2024-01-01T00:00:00Z",
		`"2024-01-01T00:00:00.123456"`:    "2024-01-01T00:00:00.123456Z",
	} {
		back, err := ParseStatTime(json.RawMessage(in))
		if err != nil || back.UTC().Format(time.RFC3339Nano) != want {
			t.Errorf("ParseStatTime(%s) = %s, %v; want %s", in, back.UTC().Format(time.RFC3339Nano), err, want)
		}
	}
	for _, bad := range []string{`12`, `"yesterday"`, `"2024-01-01"`} {
		if _, err := ParseStatTime(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseStatTime(%s): no error", bad)
		}
	}
}
