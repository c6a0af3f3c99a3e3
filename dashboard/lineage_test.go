package dashboard

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/layers"
)

// TestLineageQuality: the lineage shows each bronze node's quarantined
// rows and each silver node's late rows as the lake counts them, and its
// freshness.
func TestLineageQuality(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	home := get(t, d, "/").body

	node := func(id string) string {
		m := regexp.MustCompile(`(?s)<g class="node [^"]*" data-node="` + regexp.QuoteMeta(id) + `"[^>]*>.*?</g>`).FindString(home)
		if m == "" {
			t.Fatalf("lineage has no node %s", id)
		}
		return m
	}
	attr := func(n, a string) int64 {
		m := regexp.MustCompile(a + `="(\d+)"`).FindStringSubmatch(n)
		if m == nil {
			t.Fatalf("node has no %s: %s", a, n)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	bronze := node("bronze.meters")
	wantQ := f.count(t, layers.Quarantine(), "SELECT count(*) FROM bronze._quarantine WHERE source = 'meters'")
	if got := attr(bronze, "data-quarantined"); got != wantQ || wantQ == 0 {
		t.Errorf("bronze.meters: data-quarantined %d, DuckDB counts %d (want some)", got, wantQ)
	}
	if !strings.Contains(bronze, `class="quality bad"`) || !strings.Contains(bronze, groupDigits(wantQ)+" quarantined<") {
		t.Errorf("bronze.meters does not say %d quarantined in red: %s", wantQ, bronze)
	}
	silver := node("silver.usage_1m")
	wantL := f.count(t, layers.Late(), "SELECT count(*) FROM silver._late")
	if got := attr(silver, "data-late"); got != wantL || wantL == 0 {
		t.Errorf("silver.usage_1m: data-late %d, DuckDB counts %d (want some)", got, wantL)
	}
	if !strings.Contains(silver, groupDigits(wantL)+" late<") {
		t.Errorf("silver.usage_1m does not say %d late: %s", wantL, silver)
	}
	for _, id := range []string{"bronze.meters", "silver.usage_1m", "gold.usage_ma"} {
		if n := node(id); !regexp.MustCompile(`class="node \w+ fresh"`).MatchString(n) || !strings.Contains(n, `class="fresh-dot"`) {
			t.Errorf("%s was just committed but is not drawn fresh: %s", id, n)
		}
	}
	gold := node("gold.usage_ma")
	if strings.Contains(gold, "data-quarantined") || strings.Contains(gold, "data-late") {
		t.Errorf("a gold node counts quarantined or late rows: %s", gold)
	}
}

// TestLineageFullNames: long names are shown whole, in boxes (and
// columns) wide enough for them.
func TestLineageFullNames(t *testing.T) {
	long := "bronze.turnstile_entries_by_station_and_fare_type_every_minute"
	lg := &lineage{Nodes: []*lineNode{
		{ID: "raw.a", Layer: "raw", Label: "raw.a", Detail: "ndjson objects"},
		{ID: long, Layer: "bronze", Label: long, Detail: "1,000,000 rows · 3 s ago", Quality: "12 quarantined"},
		{ID: "bronze.b", Layer: "bronze", Label: "bronze.b", Detail: "5 rows · 3 s ago"},
		{ID: "silver.c", Layer: "silver", Label: "silver.c", Detail: "5 rows · 3 s ago"},
	}, Edges: []*lineEdge{{From: "raw.a", To: long}, {From: long, To: "silver.c"}}}
	lg.layout()
	n, b, s := lg.Nodes[1], lg.Nodes[2], lg.Nodes[3]
	if need := int(12 + 7.3*float64(len(long))); n.W < need {
		t.Errorf("%d units wide for a %d-character name, want at least %d", n.W, len(long), need)
	}
	if b.W != n.W {
		t.Errorf("a column's boxes differ in width: %d and %d", b.W, n.W)
	}
	if s.X < n.X+n.W+colGap {
		t.Errorf("the silver column starts at %d, inside the wide bronze column (%d..%d)", s.X, n.X, n.X+n.W)
	}
	if lg.Width < s.X+s.W {
		t.Errorf("svg width %d cuts the last column at %d", lg.Width, s.X+s.W)
	}
}
