package dashboard

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// TestQualityTrends: the quality page draws rescued rows per bronze run
// and late rows per silver run, with the counts DuckDB finds in the lake.
func TestQualityTrends(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	f.deliver(t)
	// A delivery with schema drift: 5 of its 8 rows carry a column the
	// source does not declare, which bronze keeps in _rescued.
	var b strings.Builder
	for i := range 8 {
		extra := ""
		if i < 5 {
			extra = `, "voltage": 230`
		}
		fmt.Fprintf(&b, `{"timestamp": "2031-01-01 00:00:%02d", "meter_id": "drift-%d", "energy_usage": 1.5%s}`+"\n", i, i, extra)
	}
	ctx := context.Background()
	if _, _, err := raw.Land(ctx, f.store, "meters", "drift.ndjson", "ndjson", strings.NewReader(b.String()), time.Now()); err != nil {
		t.Fatal(err)
	}
	plan, err := jobs.Plan(f.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.Run(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}
	d := newDashboard(t, f, "")

	var qj qualityPage
	mustJSON(t, get(t, d, "/api/quality").body, &qj)
	rs := qj.Rescued.Points
	if len(rs) != 3 {
		t.Fatalf("rescued trend: %d runs, want 3 (one per bronze batch): %+v", len(rs), rs)
	}
	for i, want := range []int64{0, 0, 5} {
		if rs[i].Count != want || rs[i].Where != "meters" {
			t.Errorf("rescued run %d: %d rows in %s, want %d in meters", i, rs[i].Count, rs[i].Where, want)
		}
	}
	drift := f.count(t, layers.TableRef{Layer: layers.Bronze, Name: "meters"}, "SELECT count(*) FROM bronze.meters WHERE _rescued IS NOT NULL")
	if qj.Rescued.Total != drift || drift != 5 {
		t.Errorf("rescued total %d, DuckDB counts %d rows with _rescued, want 5", qj.Rescued.Total, drift)
	}

	lt := qj.LateTrend.Points
	if len(lt) != 3 {
		t.Fatalf("late trend: %d runs, want 3 (one per silver batch): %+v", len(lt), lt)
	}
	late := f.count(t, layers.Late(), "SELECT count(*) FROM silver._late")
	if qj.LateTrend.Total != late || late == 0 {
		t.Errorf("late trend total %d, silver._late has %d rows (want some)", qj.LateTrend.Total, late)
	}
	for i := 1; i < len(lt); i++ {
		if lt[i].Time.Before(lt[i-1].Time) {
			t.Errorf("late trend not oldest first: %s before %s", lt[i-1].Time, lt[i].Time)
		}
	}

	// The page draws one bar per run, its height the count.
	page := get(t, d, "/quality").body
	for id, tr := range map[string]*trend{"trend-rescued": qj.Rescued, "trend-late": qj.LateTrend} {
		svg := regexp.MustCompile(`(?s)<svg id="` + id + `".*?</svg>`).FindString(page)
		bars := regexp.MustCompile(`<rect class="bar[^"]*" data-run="[^"]*" data-count="(\d+)"`).FindAllStringSubmatch(svg, -1)
		if len(bars) != len(tr.Points) {
			t.Fatalf("#%s: %d bars, want %d", id, len(bars), len(tr.Points))
		}
		for i, m := range bars {
			if n, _ := strconv.ParseInt(m[1], 10, 64); n != tr.Points[i].Count {
				t.Errorf("#%s bar %d: %d, want %d", id, i, n, tr.Points[i].Count)
			}
		}
	}
	if !strings.Contains(page, `class="bar zero"`) {
		t.Error("a run with nothing rescued draws no zero stub")
	}
}

func TestDrawTrendEmpty(t *testing.T) {
	if svg := string(drawTrend(nil, "late")); !strings.Contains(svg, "no runs yet") {
		t.Errorf("empty trend: %s", svg)
	}
}
