package dashboard

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/generate"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// testPipeline is the energy pipeline in small: a source with quarantine,
// one-minute windows with a watermark (so late rows exist), a moving
// average with a spike flag, an SQL model and a (disabled) mirror.
const testPipeline = `
sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05"}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0, unit: kWh}
    dedupe: [meter_id, timestamp]
    on_error: quarantine
silver:
  usage_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 1m
    output: append
    group_by: [meter_id]
    aggregates:
      readings: count(*)
      avg_usage: avg(energy_usage)
      max_usage: max(energy_usage)
gold:
  usage_ma:
    from: usage_1m
    partition_by: [meter_id]
    moving_average: {column: avg_usage, rows: 3}
    flags:
      - {name: spike, when: "avg_usage > ma * 1.2"}
  top_meters:
    sql: SELECT meter_id, avg(avg_usage) AS mean_usage FROM silver.usage_1m GROUP BY meter_id
mirror:
  - table: gold.usage_ma
    to: public.usage_ma
    key: [meter_id, window_start]
`

// fixture is a lake with the test pipeline run over generated readings.
type fixture struct {
	p      *config.Pipeline
	store  lake.Store
	runner *jobs.Runner
	parts  [][]byte // deliveries not landed yet
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureOn(t, nil) }

// newFixtureOn builds the fixture on store (nil: a local directory).
func newFixtureOn(t *testing.T, store lake.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	yaml := "lake: file://" + filepath.Join(dir, "lake") + "\ncache: " + filepath.Join(dir, "cache") + testPipeline
	path := filepath.Join(dir, "medallion.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		if store, err = lake.Open(ctx, p.Lake, lake.S3Options{}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := generate.Write(ctx, &buf, generate.Options{
		Kind: generate.Energy, Rows: 8000, Seed: 3, BadFraction: 0.01, LateFraction: 0.03, LateBy: 3 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &fixture{p: p, store: store, runner: &jobs.Runner{
		Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: filepath.Join(dir, "cache")},
		Log: slog.New(slog.DiscardHandler),
	}}
	// Four deliveries, split on line boundaries.
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	per := (len(lines) + 3) / 4
	for i := 0; i < len(lines); i += per {
		f.parts = append(f.parts, bytes.Join(lines[i:min(i+per, len(lines))], nil))
	}
	return f
}

// deliver lands the next delivery and runs the whole pipeline.
func (f *fixture) deliver(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if len(f.parts) == 0 {
		t.Fatal("no delivery left")
	}
	part := f.parts[0]
	f.parts = f.parts[1:]
	if _, _, err := raw.Land(ctx, f.store, "meters", "part.ndjson", "ndjson", bytes.NewReader(part), time.Now()); err != nil {
		t.Fatal(err)
	}
	plan, err := jobs.Plan(f.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.Run(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}
}

// count runs a query on a fresh engine over the lake's latest versions.
func (f *fixture) count(t *testing.T, ref layers.TableRef, q string) int64 {
	t.Helper()
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := warehouse.Attach(ctx, eng, f.store, f.runner.Cache, []warehouse.TableRef{jobs.WarehouseRef(ref)}, warehouse.Latest()); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := eng.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func newDashboard(t *testing.T, f *fixture, token string) *Dashboard {
	t.Helper()
	d, err := New(context.Background(), Options{
		Store: f.store, Pipeline: f.p, Cache: f.runner.Cache, Engine: DefaultEngineOptions(), Token: token,
		SnapshotTTL: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return response{w.Code, w.Result().Header, w.Body.String()}
}

func get(t *testing.T, h http.Handler, target string) response {
	t.Helper()
	r := do(t, h, http.MethodGet, target, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", target, r.code, r.body)
	}
	return r
}

func countMatches(s, re string) int { return len(regexp.MustCompile(re).FindAllStringIndex(s, -1)) }

// svgAttr reads attribute a of the element with the given id.
func svgAttr(t *testing.T, body, id, a string) string {
	t.Helper()
	m := regexp.MustCompile(`<[a-z]+ id="` + id + `"[^>]*?\s` + a + `="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s attribute on #%s", a, id)
	}
	return m[1]
}

func TestDashboardPages(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	f.deliver(t)
	d := newDashboard(t, f, "")

	for _, path := range []string{"/", "/quality", "/runs", "/tables/gold.usage_ma", "/tables/bronze.meters", "/tables/silver._late", "/login"} {
		r := get(t, d, path)
		if !regexp.MustCompile(`<title>medallion`).MatchString(r.body) {
			t.Errorf("%s: title does not start with medallion", path)
		}
		for _, link := range []string{`href="/"`, `href="/quality"`, `href="/runs"`} {
			if !strings.Contains(r.body, link) {
				t.Errorf("%s: nav has no %s", path, link)
			}
		}
		if strings.Contains(r.body, "http://") || strings.Contains(r.body, "https://") {
			t.Errorf("%s: references an external URL", path)
		}
	}

	home := get(t, d, "/").body
	if !strings.Contains(home, `<table id="tables"`) || !strings.Contains(home, `<svg id="lineage"`) {
		t.Fatal("pipeline page lacks #tables or #lineage")
	}
	for _, ref := range layers.Tables(f.p) {
		row := regexp.MustCompile(`(?s)<tr data-table="` + regexp.QuoteMeta(ref.String()) + `"[^>]*>(.*?)</tr>`).FindStringSubmatch(home)
		if row == nil {
			t.Errorf("no row for %s", ref)
			continue
		}
		for _, c := range []string{"layer", "rows", "files", "size", "version", "last-commit", "freshness"} {
			if !regexp.MustCompile(`<td class="` + c + `[ "]`).MatchString(row[1]) {
				t.Errorf("%s: no td.%s", ref, c)
			}
		}
		if !strings.Contains(row[1], `href="/tables/`+ref.String()+`"`) {
			t.Errorf("%s: name does not link to its page", ref)
		}
		if !regexp.MustCompile(`class="freshness[^"]*"[^>]*>\d+ (s|min) ago<`).MatchString(row[1]) {
			t.Errorf("%s: freshness is not 'N s ago': %s", ref, row[1])
		}
	}
	nodes := []string{"raw.meters", "bronze.meters", "silver.usage_1m", "gold.usage_ma", "gold.top_meters", "postgres.public.usage_ma"}
	for _, n := range nodes {
		if !strings.Contains(home, `data-node="`+n+`"`) {
			t.Errorf("lineage has no node %s", n)
		}
	}
	if got := countMatches(home, `<g class="node `); got != len(nodes) {
		t.Errorf("lineage has %d nodes, want %d", got, len(nodes))
	}
	edges := [][2]string{
		{"raw.meters", "bronze.meters"}, {"bronze.meters", "silver.usage_1m"}, {"silver.usage_1m", "gold.usage_ma"},
		{"silver.usage_1m", "gold.top_meters"}, {"gold.usage_ma", "postgres.public.usage_ma"},
	}
	for _, e := range edges {
		if !strings.Contains(home, `class="edge" data-from="`+e[0]+`" data-to="`+e[1]+`"`) {
			t.Errorf("lineage has no edge %s -> %s", e[0], e[1])
		}
	}
	if got := countMatches(home, `class="edge"`); got != len(edges) {
		t.Errorf("lineage has %d edges, want %d", got, len(edges))
	}

	gold := get(t, d, "/tables/gold.usage_ma").body
	for _, id := range []string{"schema", "history", "sample"} {
		if !strings.Contains(gold, `<table id="`+id+`"`) {
			t.Errorf("table page lacks #%s", id)
		}
	}
	if !strings.Contains(gold, `<select id="measure"`) || !strings.Contains(gold, `<option value="ma" selected>`) {
		t.Error("measure select missing or ma not the default")
	}
	if got := countMatches(gold, `<path class="series" data-group="meter-\d+"`); got != 8 {
		t.Errorf("%d series, want 8 (one per meter)", got)
	}
	// Sample: 50 rows, newest window first.
	sample := regexp.MustCompile(`(?s)<table id="sample".*?</table>`).FindString(gold)
	if got := countMatches(sample, `<tr>`) - 1; got != sampleRows {
		t.Errorf("sample has %d rows, want %d", got, sampleRows)
	}
	// History: newest first.
	hist := regexp.MustCompile(`(?s)<table id="history".*?</table>`).FindString(gold)
	vs := regexp.MustCompile(`<tr><td class="num">(\d+)</td>`).FindAllStringSubmatch(hist, -1)
	for i := 1; i < len(vs); i++ {
		a, _ := strconv.Atoi(vs[i-1][1])
		b, _ := strconv.Atoi(vs[i][1])
		if a <= b {
			t.Errorf("history not newest first: %v", vs)
		}
	}
	if len(vs) < 2 {
		t.Errorf("history has %d commits, want several", len(vs))
	}

	// A table without window_start: no chart.
	top := get(t, d, "/tables/gold.top_meters").body
	if strings.Contains(top, `id="chart"`) || strings.Contains(top, `id="measure"`) {
		t.Error("gold.top_meters is not a time series but has a chart")
	}
	if !strings.Contains(top, `<table id="sample"`) {
		t.Error("gold.top_meters has no sample")
	}

	// Quality: runs with links to their rows; the filtered page shows
	// exactly that batch.
	q := get(t, d, "/quality").body
	for _, id := range []string{"quality-runs", "quality-reasons"} {
		if !strings.Contains(q, `<table id="`+id+`"`) {
			t.Errorf("quality page lacks #%s", id)
		}
	}
	qlinks := regexp.MustCompile(`href="/tables/bronze\._quarantine\?batch=([0-9a-f]+)">([\d,]+)<`).FindAllStringSubmatch(q, -1)
	llinks := regexp.MustCompile(`href="/tables/silver\._late\?batch=(\d+)">([\d,]+)<`).FindAllStringSubmatch(q, -1)
	if len(qlinks) == 0 || len(llinks) == 0 {
		t.Fatalf("quality page: %d quarantine links, %d late links; want some of each", len(qlinks), len(llinks))
	}
	if got, want := countMatches(q, `<tr class="run"`), len(qlinks)+len(llinks); got != want {
		t.Errorf("%d runs, want %d", got, want)
	}
	batch, shown := qlinks[0][1], qlinks[0][2]
	want := f.count(t, layers.Quarantine(), "SELECT count(*) FROM bronze._quarantine WHERE batch_id = "+warehouse.QuoteString(batch))
	if shown != groupDigits(want) {
		t.Errorf("run %s: page says %s quarantined rows, DuckDB counts %d", batch, shown, want)
	}
	filtered := get(t, d, "/tables/bronze._quarantine?batch="+url.QueryEscape(batch)).body
	sample = regexp.MustCompile(`(?s)<table id="sample".*?</table>`).FindString(filtered)
	if got := int64(countMatches(sample, `<tr>`) - 1); got != min(want, sampleRows) {
		t.Errorf("filtered sample has %d rows, want %d", got, min(want, sampleRows))
	}
	if got := countMatches(sample, ">"+batch+"<"); int64(got) != min(want, sampleRows) { // cell text, not its title
		t.Errorf("filtered sample shows batch %s %d times, want %d", batch, got, min(want, sampleRows))
	}
	late := get(t, d, "/tables/silver._late?batch="+llinks[0][1]).body
	if !strings.Contains(late, `<table id="sample"`) {
		t.Error("late rows page has no sample")
	}

	// The JSON APIs answer with the same data.
	var pj struct {
		Tables []tableSummary `json:"tables"`
	}
	mustJSON(t, get(t, d, "/api/pipeline").body, &pj)
	if len(pj.Tables) != len(layers.Tables(f.p)) {
		t.Errorf("/api/pipeline: %d tables", len(pj.Tables))
	}
	var qj qualityPage
	mustJSON(t, get(t, d, "/api/quality").body, &qj)
	if len(qj.Runs) != len(qlinks)+len(llinks) || len(qj.Reasons) == 0 {
		t.Errorf("/api/quality: %d runs, %d reasons", len(qj.Runs), len(qj.Reasons))
	}
	var tj map[string]any
	mustJSON(t, get(t, d, "/api/tables/silver.usage_1m").body, &tj)
	if tj["time_series"] != true || tj["measure"] != "avg_usage" {
		t.Errorf("/api/tables/silver.usage_1m: time_series %v measure %v", tj["time_series"], tj["measure"])
	}
}

func mustJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
}

// The chart plots exactly the rows it should: the 8 groups with the most
// recent window, each one's last 500 windows with a value.
func TestDashboardChartMatchesDuckDB(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	ref := layers.TableRef{Layer: layers.Gold, Name: "usage_ma"}
	const plotted = `FROM (SELECT *, row_number() OVER (PARTITION BY meter_id ORDER BY window_start DESC) AS rn
		FROM gold.usage_ma WHERE ma IS NOT NULL AND window_start IS NOT NULL
		AND meter_id IN (SELECT meter_id FROM gold.usage_ma GROUP BY meter_id ORDER BY max(window_start) DESC, meter_id LIMIT 8))
		WHERE rn <= 500`
	wantPoints := f.count(t, ref, "SELECT count(*) "+plotted)
	wantFlagged := f.count(t, ref, "SELECT count(*) FILTER (WHERE spike) "+plotted)
	if wantPoints == 0 || wantFlagged == 0 {
		t.Fatalf("fixture has %d points, %d spikes: want some of each", wantPoints, wantFlagged)
	}

	body := get(t, d, "/tables/gold.usage_ma").body
	points, _ := strconv.ParseInt(svgAttr(t, body, "chart", "data-points"), 10, 64)
	circles := countMatches(body, `<circle class="point`)
	flagged := countMatches(body, `<circle class="point flagged"[^>]*><title>[^<]+</title></circle>`)
	if points != wantPoints || int64(circles) != wantPoints {
		t.Errorf("data-points %d, %d circles; DuckDB counts %d rows to plot", points, circles, wantPoints)
	}
	if int64(flagged) != wantFlagged {
		t.Errorf("%d flagged circles; DuckDB counts %d spikes", flagged, wantFlagged)
	}
	if m := svgAttr(t, body, "chart", "data-measure"); m != "ma" {
		t.Errorf("data-measure %q, want ma", m)
	}

	// The API's points are the same rows.
	var sd struct {
		Table, Measure string
		Version        int64
		Groups         []struct {
			Group  string
			Points []struct {
				T       string
				V       float64
				Flagged bool
			}
		}
	}
	mustJSON(t, get(t, d, "/api/tables/gold.usage_ma/series?measure=ma").body, &sd)
	var n, nf int64
	for _, g := range sd.Groups {
		for _, p := range g.Points {
			if _, err := time.Parse(time.RFC3339, p.T); err != nil {
				t.Fatalf("point time %q: %v", p.T, err)
			}
			n++
			if p.Flagged {
				nf++
			}
		}
	}
	if sd.Table != "gold.usage_ma" || sd.Measure != "ma" || n != wantPoints || nf != wantFlagged {
		t.Errorf("series API: table %s measure %s, %d points %d flagged; want %d and %d", sd.Table, sd.Measure, n, nf, wantPoints, wantFlagged)
	}
	if v := svgAttr(t, body, "chart", "data-version"); v != strconv.FormatInt(sd.Version, 10) {
		t.Errorf("data-version %s, API version %d", v, sd.Version)
	}

	// Another measure, and a bad one.
	other := get(t, d, "/tables/gold.usage_ma?measure=max_usage").body
	if m := svgAttr(t, other, "chart", "data-measure"); m != "max_usage" {
		t.Errorf("data-measure %q, want max_usage", m)
	}
	if r := do(t, d, http.MethodGet, "/api/tables/gold.usage_ma/series?measure=meter_id", nil); r.code != http.StatusBadRequest || !strings.Contains(r.body, "max_usage") {
		t.Errorf("bad measure: %d %s", r.code, r.body)
	}
}

// The series ETag is the table version and the measure: 304 while nothing
// changed, a new tag once a commit lands.
func TestDashboardSeriesETag(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	const u = "/api/tables/gold.usage_ma/series?measure=ma"
	first := get(t, d, u)
	tag := first.header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	r := do(t, d, http.MethodGet, u, map[string]string{"If-None-Match": tag})
	if r.code != http.StatusNotModified || r.body != "" {
		t.Fatalf("same version: %d, want 304 with no body", r.code)
	}
	if r := do(t, d, http.MethodGet, "/api/tables/gold.usage_ma/series?measure=avg_usage", map[string]string{"If-None-Match": tag}); r.code != http.StatusOK {
		t.Errorf("other measure with the old tag: %d, want 200", r.code)
	}

	f.deliver(t)
	time.Sleep(5 * time.Millisecond) // past the snapshot ttl
	r = do(t, d, http.MethodGet, u, map[string]string{"If-None-Match": tag})
	if r.code != http.StatusOK {
		t.Fatalf("after a commit: %d, want 200", r.code)
	}
	if r.header.Get("ETag") == tag {
		t.Errorf("ETag %s did not change after a commit", tag)
	}
	var a, b struct{ Version int64 }
	mustJSON(t, first.body, &a)
	mustJSON(t, r.body, &b)
	if b.Version <= a.Version {
		t.Errorf("version %d after a commit, was %d", b.Version, a.Version)
	}
	// The page follows: its chart carries the new version.
	page := get(t, d, "/tables/gold.usage_ma").body
	if v := svgAttr(t, page, "chart", "data-version"); v != strconv.FormatInt(b.Version, 10) {
		t.Errorf("page data-version %s, want %d", v, b.Version)
	}
}

// On S3 (a real MinIO) the views read through the cache, and the chart and
// its ETag behave the same.
func TestDashboardS3(t *testing.T) {
	st, _, _ := testenv.S3Store(t)
	f := newFixtureOn(t, st)
	f.deliver(t)
	d := newDashboard(t, f, "")
	get(t, d, "/")
	get(t, d, "/quality")
	body := get(t, d, "/tables/gold.usage_ma").body
	want := f.count(t, layers.TableRef{Layer: layers.Gold, Name: "usage_ma"}, "SELECT count(*) FROM gold.usage_ma")
	if got := svgAttr(t, body, "chart", "data-points"); got != strconv.FormatInt(want, 10) {
		t.Errorf("data-points %s, DuckDB counts %d", got, want)
	}
	const u = "/api/tables/gold.usage_ma/series"
	tag := get(t, d, u).header.Get("ETag")
	if r := do(t, d, http.MethodGet, u, map[string]string{"If-None-Match": tag}); r.code != http.StatusNotModified {
		t.Errorf("unchanged table: %d, want 304", r.code)
	}
}

func TestDashboardUnknownTable(t *testing.T) {
	f := newFixture(t)
	d := newDashboard(t, f, "")
	r := do(t, d, http.MethodGet, "/tables/gold.nope", nil)
	if r.code != http.StatusNotFound || !strings.Contains(r.body, "gold.nope") || !strings.Contains(r.body, `href="/tables/gold.usage_ma"`) {
		t.Errorf("unknown table: %d\n%s", r.code, r.body)
	}
	if r := do(t, d, http.MethodGet, "/api/tables/gold.nope/series", nil); r.code != http.StatusNotFound {
		t.Errorf("unknown table series: %d", r.code)
	}
	// Declared but never run: the pages say so.
	home := get(t, d, "/").body
	if !strings.Contains(home, "not created yet") {
		t.Error("an empty lake's tables are not 'not created yet'")
	}
	get(t, d, "/tables/gold.usage_ma")
	get(t, d, "/quality")
	get(t, d, "/runs")
}

func TestDashboardAuth(t *testing.T) {
	f := newFixture(t)
	const token = "s3cret-token"
	d := newDashboard(t, f, token)
	for _, path := range []string{"/", "/quality", "/runs", "/tables/gold.usage_ma", "/api/pipeline", "/api/runs"} {
		if r := do(t, d, http.MethodGet, path, nil); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d, want 401", path, r.code)
		}
		if r := do(t, d, http.MethodGet, path, map[string]string{"Authorization": "Bearer wrong"}); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, r.code)
		}
		if r := do(t, d, http.MethodGet, path, map[string]string{"Authorization": "Bearer " + token}); r.code != http.StatusOK {
			t.Errorf("GET %s with the bearer token: %d, want 200", path, r.code)
		}
		// The token itself is no session, under the old cookie name or the new.
		for _, c := range []string{CookieName + "=" + token, "medallion_token=" + token} {
			if r := do(t, d, http.MethodGet, path, map[string]string{"Cookie": c}); r.code != http.StatusUnauthorized {
				t.Errorf("GET %s with the token as cookie %s: %d, want 401", path, c, r.code)
			}
		}
	}
	r := do(t, d, http.MethodGet, "/", nil)
	if !strings.Contains(r.body, `<form method="post" action="/login"`) {
		t.Error("401 page has no login form")
	}

	// A session cookie: never the token, HttpOnly, SameSite=Strict, ending
	// after DefaultSessionTTL, and it opens every page.
	checkCookie := func(what string, r response) {
		t.Helper()
		c := (&http.Response{Header: r.header}).Cookies()
		if len(c) != 1 || c[0].Name != CookieName || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode ||
			c[0].MaxAge != int(DefaultSessionTTL/time.Second) || c[0].Secure {
			t.Fatalf("%s: cookies %v, want %s HttpOnly SameSite=Strict Max-Age=%d, not Secure over HTTP", what, c, CookieName, int(DefaultSessionTTL/time.Second))
		}
		if strings.Contains(c[0].Value, token) || strings.Contains(r.header.Get("Set-Cookie"), token) {
			t.Errorf("%s: the cookie holds the token: %s", what, r.header.Get("Set-Cookie"))
		}
		for _, path := range []string{"/", "/api/pipeline"} {
			if r := do(t, d, http.MethodGet, path, map[string]string{"Cookie": c[0].Name + "=" + c[0].Value}); r.code != http.StatusOK {
				t.Errorf("%s: GET %s with the session cookie: %d, want 200", what, path, r.code)
			}
			if r := do(t, d, http.MethodGet, path, map[string]string{"Cookie": c[0].Name + "=" + c[0].Value + "x"}); r.code != http.StatusUnauthorized {
				t.Errorf("%s: GET %s with a forged session cookie: %d, want 401", what, path, r.code)
			}
		}
	}
	// A session that ended, or one signed for another token, is refused.
	for what, v := range map[string]string{
		"ended":           sessionValue(sessionKey(token), time.Now().Add(-time.Minute)),
		"another token's": sessionValue(sessionKey(token+"x"), time.Now().Add(time.Hour)),
	} {
		if r := do(t, d, http.MethodGet, "/", map[string]string{"Cookie": CookieName + "=" + v}); r.code != http.StatusUnauthorized {
			t.Errorf("a session %s: %d, want 401", what, r.code)
		}
	}
	// Over TLS (or behind a proxy that terminated it) the cookie is Secure.
	for what, mod := range map[string]func(*http.Request){
		"TLS":               func(r *http.Request) { r.TLS = &tls.ConnectionState{} },
		"X-Forwarded-Proto": func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") },
	} {
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token="+url.QueryEscape(token)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mod(req)
		w := httptest.NewRecorder()
		d.ServeHTTP(w, req)
		if c := w.Result().Cookies(); len(c) != 1 || !c[0].Secure {
			t.Errorf("login over %s: cookies %v, want Secure", what, c)
		}
	}
	// POST /login sets the cookie and redirects to /.
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token="+url.QueryEscape(token)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	d.ServeHTTP(w, req)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Errorf("POST /login: %d to %q", w.Code, w.Header().Get("Location"))
	}
	checkCookie("POST /login", response{w.Code, w.Result().Header, ""})
	req = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token=nope"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	d.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Errorf("POST /login with a wrong token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	// GET /?token= sets it too, and drops the token from the URL.
	r = do(t, d, http.MethodGet, "/?token="+token, nil)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Errorf("GET /?token=: %d to %q", r.code, r.header.Get("Location"))
	}
	checkCookie("GET /?token=", r)
	if r := do(t, d, http.MethodGet, "/?token=wrong", nil); r.code != http.StatusUnauthorized {
		t.Errorf("GET /?token=wrong: %d", r.code)
	}
	// The login form and the stylesheet need no token.
	get(t, d, "/login")
	get(t, d, "/static/app.css")
}

// The dashboard is read-only: every other method is 405.
func TestDashboardReadOnly(t *testing.T) {
	f := newFixture(t)
	d := newDashboard(t, f, "")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/"}, {http.MethodPost, "/tables/gold.usage_ma"}, {http.MethodPut, "/api/pipeline"},
		{http.MethodDelete, "/runs"}, {http.MethodPatch, "/quality"}, {http.MethodPost, "/api/tables/gold.usage_ma/series"},
	} {
		r := do(t, d, c.method, c.path, nil)
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: %d (Allow %q), want 405", c.method, c.path, r.code, r.header.Get("Allow"))
		}
	}
	if r := do(t, d, http.MethodHead, "/", nil); r.code != http.StatusOK || r.body != "" {
		t.Errorf("HEAD /: %d with %d bytes", r.code, len(r.body))
	}
}

// The runs page lists recorded runs newest first and the lease holders.
func TestDashboardRuns(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Minute).UTC()
	for i, res := range []string{jobs.ResultOK, jobs.ResultFailed} {
		rec := jobs.RunRecord{Job: "silver", Start: start.Add(time.Duration(i) * time.Second), End: start.Add(time.Duration(i)*time.Second + 1500*time.Millisecond),
			RowsIn: 10, RowsOut: 5, Result: res, Owner: "host-1-abc", Generation: int64(3 + i)}
		if res == jobs.ResultFailed {
			rec.Error = "boom <b>"
		}
		if err := jobs.RecordRun(ctx, f.store, rec); err != nil {
			t.Fatal(err)
		}
	}
	held, err := jobs.Acquire(ctx, f.store, "gold", "host-2-def", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	d := newDashboard(t, f, "")
	body := get(t, d, "/runs").body
	rows := regexp.MustCompile(`<tr class="run (\w+)">`).FindAllStringSubmatch(body, -1)
	if len(rows) != 2 || rows[0][1] != jobs.ResultFailed || rows[1][1] != jobs.ResultOK {
		t.Errorf("runs %v, want failed then ok", rows)
	}
	if !strings.Contains(body, "boom &lt;b&gt;") || !strings.Contains(body, "1.5 s") {
		t.Error("run error (escaped) or duration missing")
	}
	leases := regexp.MustCompile(`(?s)<table id="leases".*?</table>`).FindString(body)
	if !strings.Contains(leases, "host-2-def") || !strings.Contains(leases, `<tr class="lease held"><td class="name">gold</td>`) {
		t.Errorf("leases table lacks the gold holder:\n%s", leases)
	}
	var rj struct {
		Runs   []jobs.RunRecord `json:"runs"`
		Leases []jobs.LeaseInfo `json:"leases"`
	}
	mustJSON(t, get(t, d, "/api/runs").body, &rj)
	if len(rj.Runs) != 2 || len(rj.Leases) != 1 || rj.Leases[0].Generation != held.Generation() {
		t.Errorf("/api/runs: %+v", rj)
	}
}

// TestDashboardRecentRuns: runs kept in memory (stream mode's) are merged
// with the lake's history, newest first.
func TestDashboardRecentRuns(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-time.Minute).UTC()
	if err := jobs.RecordRun(t.Context(), f.store, jobs.RunRecord{Job: "bronze", Start: start, End: start, Result: jobs.ResultOK}); err != nil {
		t.Fatal(err)
	}
	recent := jobs.NewRecentRuns(10)
	recent.Add(jobs.RunRecord{Job: "gold.meter_usage_ma", Start: start.Add(time.Second), End: start.Add(time.Second), Result: jobs.ResultOK})
	recent.Add(jobs.RunRecord{Job: "silver.meter_usage_1m", Start: start.Add(-time.Second), End: start, Result: jobs.ResultOK})
	d, err := New(t.Context(), Options{Store: f.store, Pipeline: f.p, Cache: f.runner.Cache, Engine: DefaultEngineOptions(), Recent: recent})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rj struct {
		Runs []jobs.RunRecord `json:"runs"`
	}
	mustJSON(t, get(t, d, "/api/runs").body, &rj)
	var got []string
	for _, r := range rj.Runs {
		got = append(got, r.Job)
	}
	if want := []string{"gold.meter_usage_ma", "bronze", "silver.meter_usage_1m"}; !slices.Equal(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
}

func TestDashboardHumanFormats(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct{ got, want string }{
		{ago(now, now.Add(-12*time.Second)), "12 s ago"},
		{ago(now, now.Add(-3*time.Minute)), "3 min ago"},
		{ago(now, now.Add(-5*time.Hour)), "5 h ago"},
		{ago(now, now.Add(-72*time.Hour)), "3 d ago"},
		{groupDigits(1234567), "1,234,567"},
		{groupDigits(-1000), "-1,000"},
		{humanize.Bytes(1536), "1.5 KiB"},
		{cellText(1.23456789), "1.2346"},
		{cellText(nil), "NULL"},
		{fmt.Sprint(niceStep(0.37)), "0.5"},
		{tickLabel(0.30000000000000004, 0.1), "0.3"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
