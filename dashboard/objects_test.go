package dashboard

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers/raw"
)

// TestQualityByObject: two objects landed as two HTTP requests would be,
// one with a bad line and one with an undeclared key, show on /quality
// (and /api/quality) with their own counts, each linking to the quarantine
// page filtered by its object.
func TestQualityByObject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bodies := []string{
		// Request 1: its second line has no meter_id (required): quarantined.
		`{"timestamp": "2031-01-01 00:00:00", "meter_id": "a", "energy_usage": 1.5}
{"timestamp": "2031-01-01 00:00:01", "energy_usage": 1.5}
{"timestamp": "2031-01-01 00:00:02", "meter_id": "b", "energy_usage": 2}
`,
		// Request 2: two of its three lines carry a key the source does not declare.
		`{"timestamp": "2031-01-01 00:01:00", "meter_id": "c", "energy_usage": 1, "voltage": 230}
{"timestamp": "2031-01-01 00:01:01", "meter_id": "d", "energy_usage": 1, "voltage": 231}
{"timestamp": "2031-01-01 00:01:02", "meter_id": "e", "energy_usage": 1}
`,
	}
	var keys []string
	for i, b := range bodies {
		m, _, err := raw.Land(ctx, f.store, "meters", "request.ndjson", "ndjson", strings.NewReader(b), time.Now().Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, m.Key)
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
	if len(qj.Objects) != 2 {
		t.Fatalf("%d objects, want 2: %+v", len(qj.Objects), qj.Objects)
	}
	got := map[string]objectQuality{}
	for _, o := range qj.Objects {
		got[o.Object] = o
		if o.Source != "meters" || o.Time.IsZero() {
			t.Errorf("object %s: source %q, time %s", o.Object, o.Source, o.Time)
		}
	}
	for i, want := range []struct{ quarantined, rescued int64 }{{1, 0}, {0, 2}} {
		o, ok := got[keys[i]]
		if !ok {
			t.Errorf("request %d (%s) missing from %+v", i+1, keys[i], qj.Objects)
			continue
		}
		if o.Quarantined != want.quarantined || o.Rescued != want.rescued {
			t.Errorf("request %d: %d quarantined, %d rescued; want %d, %d", i+1, o.Quarantined, o.Rescued, want.quarantined, want.rescued)
		}
	}

	page := get(t, d, "/quality").body
	if !strings.Contains(page, `id="quality-objects"`) {
		t.Fatal("no per-object table on /quality")
	}
	// html/template writes percent escapes in lower case (%2f).
	lower := strings.ToLower(page)
	for _, k := range keys {
		link := `/tables/bronze._quarantine?source_file=` + url.QueryEscape(k)
		if !strings.Contains(lower, strings.ToLower(link)) {
			t.Errorf("no link %s on /quality", link)
		}
	}
	// The link shows that object's quarantined line.
	var qp struct{ Filter quarantineFilter }
	mustJSON(t, get(t, d, "/api/tables/bronze._quarantine?source_file="+url.QueryEscape(keys[0])).body, &qp)
	if qp.Filter.Matches != 1 {
		t.Errorf("quarantine filtered by %s: %d rows, want 1", keys[0], qp.Filter.Matches)
	}
}
