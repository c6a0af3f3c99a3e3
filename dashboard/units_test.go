package dashboard

import (
	"regexp"
	"testing"

	"github.com/medallion-dev/medallion/layers"
)

// TestUnits: a source column's `unit:` follows it into the aggregates and
// moving averages that keep it, and titles the chart's y axis.
func TestUnits(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	for _, c := range []struct {
		table, measure, unit string
	}{
		{"bronze.meters", "energy_usage", "kWh"},
		{"silver.usage_1m", "avg_usage", "kWh"},
		{"silver.usage_1m", "max_usage", "kWh"},
		{"silver.usage_1m", "readings", ""}, // a count has no unit
		{"gold.usage_ma", "avg_usage", "kWh"},
		{"gold.usage_ma", "ma", "kWh"},
		{"gold.top_meters", "mean_usage", ""}, // an SQL model says nothing
	} {
		ref, err := layers.ParseTableRef(c.table, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := unitOf(f.p, ref, c.measure); got != c.unit {
			t.Errorf("unitOf(%s, %s) = %q, want %q", c.table, c.measure, got, c.unit)
		}
		if c.table == "gold.top_meters" {
			continue // no timestamp: no chart
		}
		var sd seriesData
		mustJSON(t, get(t, d, "/api/tables/"+c.table+"/series?measure="+c.measure).body, &sd)
		if sd.Unit != c.unit {
			t.Errorf("%s series of %s: unit %q, want %q", c.table, c.measure, sd.Unit, c.unit)
		}
		page := get(t, d, "/tables/"+c.table+"?measure="+c.measure).body
		title := regexp.MustCompile(`<text class="axis-title" x="14"[^>]*>([^<]*)</text>`).FindStringSubmatch(page)
		if title == nil {
			t.Errorf("%s: the chart has no y-axis title", c.table)
			continue
		}
		if want := axisTitle(c.measure, c.unit); title[1] != want {
			t.Errorf("%s: y-axis title %q, want %q", c.table, title[1], want)
		}
	}
}
