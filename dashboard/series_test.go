package dashboard

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// bigReadings makes bronze.big in DuckDB: rows readings one a second
// from 2026-01-01 for 4 meters (rows/4 each), values 10..20, with a
// one-row spike of 5000 per meter, a boolean anomaly on it, and an hour
// with no readings in the middle (a gap).
func bigReadings(t *testing.T, rows int) (*warehouse.Engine, *tableInfo) {
	t.Helper()
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	q := `CREATE SCHEMA bronze;
CREATE TABLE bronze.big AS
SELECT TIMESTAMP '2026-01-01' + to_seconds(i // 4 + CASE WHEN i // 4 >= $half THEN 3600 ELSE 0 END) AS ts,
  'meter-' || (i % 4) AS meter_id,
  CASE WHEN i // 4 = $spike THEN 5000.0 ELSE 10 + (i * 7919 % 1000) / 100.0 END AS energy_usage,
  (i // 4 = $spike) AS anomaly,
  TIMESTAMP '2026-06-01' AS _ingested_at
FROM range($rows) t(i)`
	q = strings.NewReplacer("$half", strconv.Itoa(rows/8), "$spike", strconv.Itoa(rows/4/3), "$rows", strconv.Itoa(rows)).Replace(q)
	if _, err := eng.DB().ExecContext(ctx, q); err != nil {
		t.Fatal(err)
	}
	schema := &delta.Schema{Fields: []delta.Field{
		{Name: "ts", Type: delta.DataType{Name: delta.TypeTimestamp}},
		{Name: "meter_id", Type: delta.DataType{Name: delta.TypeString}},
		{Name: "energy_usage", Type: delta.DataType{Name: delta.TypeDouble}},
		{Name: "anomaly", Type: delta.DataType{Name: delta.TypeBoolean}},
		{Name: "_ingested_at", Type: delta.DataType{Name: delta.TypeTimestamp}},
	}}
	ti := newTableInfo(newFixture(t).p, layers.TableRef{Layer: layers.Bronze, Name: "big"}, schema)
	return eng, ti
}

// The series of a million raw rows (no window_start): the time column is
// found, every meter's spike survives downsampling as a flagged point at
// its value, the hour without readings is a gap, and the answer is small.
func TestSeriesDownsamplesRawRows(t *testing.T) {
	const rows = 1_000_000
	eng, ti := bigReadings(t, rows)
	if !ti.series || ti.timeCol != "ts" || len(ti.timeCols) != 2 || ti.measure != "energy_usage" {
		t.Fatalf("table info: series %v time %q of %v measure %q", ti.series, ti.timeCol, ti.timeCols, ti.measure)
	}
	if len(ti.flags) != 1 || ti.flags[0] != "anomaly" {
		t.Fatalf("flags %v, want [anomaly]", ti.flags)
	}
	ctx := context.Background()
	sq, err := parseSeriesQuery(ti, url.Values{"width": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sd, err := readSeries(ctx, eng.DB(), ti, sq)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if sd.Rows != rows || len(sd.Groups) != 4 || len(sd.GroupNames) != 4 {
		t.Fatalf("rows %d groups %d names %v", sd.Rows, len(sd.Groups), sd.GroupNames)
	}
	for _, g := range sd.Groups {
		var spikes, gaps int
		for _, p := range g.Points {
			if p.V == 5000 {
				spikes++
				if !p.Flagged || len(p.Why) != 1 || p.Why[0] != "anomaly" {
					t.Errorf("%s: spike at %s not flagged (%v)", g.Group, p.T, p.Why)
				}
			}
			if p.Gap {
				gaps++
			}
		}
		if spikes != 1 {
			t.Errorf("%s: %d spikes of 5000 in %d points, want 1", g.Group, spikes, len(g.Points))
		}
		if gaps != 1 {
			t.Errorf("%s: %d gaps, want 1 (the hour without readings)", g.Group, gaps)
		}
		if len(g.Points) > 2*sd.Width+1 {
			t.Errorf("%s: %d points for width %d", g.Group, len(g.Points), sd.Width)
		}
	}
	body, _ := json.Marshal(sd)
	t.Logf("1M rows, 4 groups, width 1000: %d points, %d bytes of JSON, %s", countPoints(sd), len(body), took)
	if len(body) > 400<<10 {
		t.Errorf("answer is %d bytes, want at most 400 KiB", len(body))
	}

	// One meter at the default width, as a table page first asks.
	sq, _ = parseSeriesQuery(ti, url.Values{"groups": {"meter-2"}})
	one, err := readSeries(ctx, eng.DB(), ti, sq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(one)
	t.Logf("1M rows, one meter (250k rows), width %d: %d points, %d bytes of JSON", one.Width, countPoints(one), len(body))
	if len(body) > 64<<10 || one.Rows != rows/4 {
		t.Errorf("one meter: %d bytes (want at most 64 KiB), %d rows (want %d)", len(body), one.Rows, rows/4)
	}

	// A zoom: the last 15 minutes hold 15*60 readings per meter, fewer than
	// the buckets, so every reading is drawn.
	sq, _ = parseSeriesQuery(ti, url.Values{"range": {"15m"}, "width": {"2000"}, "groups": {"meter-1"}})
	sd, err = readSeries(ctx, eng.DB(), ti, sq)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Groups) != 1 || sd.Groups[0].Group != "meter-1" || len(sd.Groups[0].Points) != 15*60+1 {
		t.Errorf("15 minutes of meter-1: %d groups, %d points, want 901", len(sd.Groups), countPoints(sd))
	}
}

// Ranking picks the groups by a measure; a bad parameter names itself.
func TestSeriesGroupsAndParams(t *testing.T) {
	eng, ti := bigReadings(t, 4000)
	ctx := context.Background()
	sq, err := parseSeriesQuery(ti, url.Values{"top": {"2"}, "rank": {"rows"}, "width": {"50"}})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := readSeries(ctx, eng.DB(), ti, sq)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Groups) != 2 || len(sd.GroupNames) != 4 {
		t.Errorf("top 2: %d groups, %d names", len(sd.Groups), len(sd.GroupNames))
	}
	for _, g := range sd.Groups {
		if len(g.Points) > 2*50+1 {
			t.Errorf("%s: %d points for 50 buckets", g.Group, len(g.Points))
		}
	}
	for _, bad := range []url.Values{
		{"time": {"meter_id"}}, {"range": {"2w"}}, {"width": {"x"}}, {"top": {"0"}}, {"rank": {"best"}}, {"from": {"yesterday"}},
	} {
		if _, err := parseSeriesQuery(ti, bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	sq, _ = parseSeriesQuery(ti, url.Values{"width": {"999999"}, "time": {"_ingested_at"}})
	if sq.width != maxWidth || sq.timeCol != "_ingested_at" {
		t.Errorf("width %d time %s", sq.width, sq.timeCol)
	}
}

func TestTickLabels(t *testing.T) {
	for _, c := range []struct {
		v, step float64
		want    string
	}{{50_000_000, 10_000_000, "50M"}, {1200, 100, "1.2k"}, {0.25, 0.05, "0.25"}, {0, 1e6, "0"}, {1_500_000, 500_000, "1.5M"}, {40, 10, "40"}} {
		if got := tickLabel(c.v, c.step); got != c.want {
			t.Errorf("tickLabel(%g, %g) = %q, want %q", c.v, c.step, got, c.want)
		}
	}
}

func countPoints(sd *seriesData) int {
	n := 0
	for _, g := range sd.Groups {
		n += len(g.Points)
	}
	return n
}
