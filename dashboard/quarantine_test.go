package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/layers"
)

// The quarantine page filters by reason, column, file, text and time; the
// counts match DuckDB's, and every sample row passes the filter.
func TestQuarantineFilter(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	var pg struct {
		Sample struct {
			Columns []string
			Rows    [][]any
		}
		Filter quarantineFilter
	}
	mustJSON(t, get(t, d, "/api/tables/bronze._quarantine").body, &pg)
	if len(pg.Filter.Reasons) == 0 || len(pg.Filter.Files) == 0 || pg.Filter.Active {
		t.Fatalf("filter choices: %+v", pg.Filter)
	}
	reason := pg.Filter.Reasons[len(pg.Filter.Reasons)-1] // the rarest
	ref := layers.Quarantine()
	want := f.count(t, ref, "SELECT count(*) FROM bronze._quarantine WHERE reason = '"+strings.ReplaceAll(reason, "'", "''")+"'")
	mustJSON(t, get(t, d, "/api/tables/bronze._quarantine?reason="+url.QueryEscape(reason)).body, &pg)
	if pg.Filter.Matches != want || want == 0 || !pg.Filter.Active {
		t.Errorf("reason %q: %d matches, DuckDB counts %d", reason, pg.Filter.Matches, want)
	}
	col := -1
	for i, c := range pg.Sample.Columns {
		if c == "reason" {
			col = i
		}
	}
	for _, r := range pg.Sample.Rows {
		if r[col] != reason {
			t.Errorf("row with reason %v in a sample filtered on %q", r[col], reason)
		}
	}
	if int64(len(pg.Sample.Rows)) != min(want, sampleRows) {
		t.Errorf("%d sample rows, want %d", len(pg.Sample.Rows), min(want, sampleRows))
	}

	// A search nothing matches, a time range that holds everything, and a
	// bad time.
	mustJSON(t, get(t, d, "/api/tables/bronze._quarantine?q=no-such-text-anywhere").body, &pg)
	if pg.Filter.Matches != 0 || len(pg.Sample.Rows) != 0 {
		t.Errorf("search for nothing: %d matches, %d rows", pg.Filter.Matches, len(pg.Sample.Rows))
	}
	all := f.count(t, ref, "SELECT count(*) FROM bronze._quarantine")
	mustJSON(t, get(t, d, "/api/tables/bronze._quarantine?since=2000-01-01T00:00&until=2100-01-01T00:00").body, &pg)
	if pg.Filter.Matches != all {
		t.Errorf("all time: %d matches, want %d", pg.Filter.Matches, all)
	}
	if r := do(t, d, http.MethodGet, "/api/tables/bronze._quarantine?since=yesterday", nil); r.code != http.StatusBadRequest || !strings.Contains(r.body, "since") {
		t.Errorf("bad since: %d %s", r.code, r.body)
	}

	// The page: the form with its choices, and long values behind a click.
	body := get(t, d, "/tables/bronze._quarantine?reason="+url.QueryEscape(reason)).body
	if !strings.Contains(body, `id="quarantine-filter"`) || !strings.Contains(body, "selected>"+strings.ReplaceAll(reason, "'", "&#39;")) {
		t.Errorf("the page has no filter form with the reason selected")
	}
	if !strings.Contains(body, `<details class="cell">`) {
		t.Errorf("no long value behind a <details>")
	}
	if strings.Contains(body, `id="chart"`) {
		t.Errorf("the quarantine page draws a chart of line numbers")
	}
}
