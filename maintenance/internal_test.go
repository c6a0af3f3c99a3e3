package maintenance

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
)

func TestHidden(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"part-1.parquet", false},
		{"day=2026-01-01/part-1.parquet", false},
		{"_col=x/part-1.parquet", false}, // a partition folder, even with a leading _
		{"_delta_log/00000000000000000001.json", true},
		{"_state/tail.parquet", true},
		{"day=1/.part-1.parquet.crc", true},
		{"_tmp/part.parquet", true},
	} {
		if got := hidden(tc.rel); got != tc.want {
			t.Errorf("hidden(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}

func TestRunStart(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	for _, tc := range []struct {
		key  string
		ok   bool
		want time.Time
	}{
		{"_medallion/runs/20260301/1772366400000000005-bronze.meters.json", true, start},
		{"_medallion/runs/20260301/123-bronze.meters.json", false, time.Time{}},
		{"_medallion/runs/20260301/notanumber000000000-x.json", false, time.Time{}},
		{"_medallion/runs/20260301/readme", false, time.Time{}},
	} {
		got, ok := runStart(tc.key)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("runStart(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

// TestMergeStats: counts add up, bounds widen under each type's order, and
// a column some input lacks bounds for gets none.
func TestMergeStats(t *testing.T) {
	schema, err := delta.ParseSchema(`{"type":"struct","fields":[` +
		`{"name":"n","type":"long","nullable":true,"metadata":{}},` +
		`{"name":"d","type":"double","nullable":true,"metadata":{}},` +
		`{"name":"s","type":"string","nullable":true,"metadata":{}},` +
		`{"name":"t","type":"timestamp","nullable":true,"metadata":{}},` +
		`{"name":"day","type":"date","nullable":true,"metadata":{}},` +
		`{"name":"x","type":"long","nullable":true,"metadata":{}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	files := []delta.Add{
		{Stats: `{"numRecords":2,"minValues":{"n":-5,"d":1.5,"s":"b","t":"2026-01-01T00:00:00.000Z","day":"2026-01-02","x":1},"maxValues":{"n":10,"d":2e3,"s":"c","t":"2026-01-02T00:00:00.000Z","day":"2026-01-03","x":1},"nullCount":{"n":0,"s":1}}`},
		{Stats: `{"numRecords":3,"minValues":{"n":-7,"d":-0.25,"s":"a","t":"2025-12-31T23:00:00+00:00","day":"2026-01-01"},"maxValues":{"n":9,"d":10,"s":"cc","t":"2026-01-03T00:00:00.000Z","day":"2026-01-02"},"nullCount":{"n":2,"s":0}}`},
	}
	st, ok := mergeStats(files, schema)
	if !ok || st.NumRecords != 5 {
		t.Fatalf("mergeStats: %+v %v", st, ok)
	}
	want := `{"numRecords":5,"minValues":{"d":-0.25,"day":"2026-01-01","n":-7,"s":"a","t":"2025-12-31T23:00:00+00:00"},"maxValues":{"d":2e3,"day":"2026-01-03","n":10,"s":"cc","t":"2026-01-03T00:00:00.000Z"},"nullCount":{"n":2,"s":1}}`
	var a, b any
	_ = json.Unmarshal([]byte(st.String()), &a)
	_ = json.Unmarshal([]byte(want), &b)
	if ja, _ := json.Marshal(a); string(ja) != mustJSON(b) {
		t.Errorf("merged stats:\n%s\nwant\n%s", st.String(), want)
	}
	if _, ok := mergeStats([]delta.Add{{Stats: ""}}, schema); ok {
		t.Error("a file without stats merged")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzMergeStats: any two stats strings merge without panicking, and the
// merged bounds are the inputs' own values.
func FuzzMergeStats(f *testing.F) {
	f.Add(`{"numRecords":2,"minValues":{"n":1,"s":"a"},"maxValues":{"n":3,"s":"b"}}`, `{"numRecords":1,"minValues":{"n":-1,"s":"c"},"maxValues":{"n":0,"s":"d"}}`)
	f.Add(`{"numRecords":1,"minValues":{"n":"x"},"maxValues":{"n":{}}}`, `{}`)
	schema, _ := delta.ParseSchema(`{"type":"struct","fields":[{"name":"n","type":"long","nullable":true,"metadata":{}},{"name":"s","type":"string","nullable":true,"metadata":{}}]}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		st, ok := mergeStats([]delta.Add{{Stats: a}, {Stats: b}}, schema)
		if !ok {
			return
		}
		for col, v := range st.MinValues {
			sa, _ := delta.ParseStats(a)
			sb, _ := delta.ParseStats(b)
			if string(v) != string(sa.MinValues[col]) && string(v) != string(sb.MinValues[col]) {
				t.Fatalf("min of %s is %s, neither input's", col, v)
			}
		}
	})
}
