package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
)

// The browser tests drive the dashboard of `medallion serve` in a headless
// Chromium and check the DOM contract the UI promises (ids, classes, data-
// attributes, URLs) against what `medallion query` says about the same
// lake. They fail on any console error or uncaught exception, and save a
// full-page screenshot of every page (see artifactDir).

// chromiumPath returns the Chromium the browser tests use, or "" when there
// is none (the tests are then skipped, saying how to install it).
func chromiumPath() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// needChromium skips the test in -short mode and fails it when Chromium is
// absent: make test installs one, so a missing browser is a broken setup.
func needChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	p := chromiumPath()
	if p == "" {
		t.Fatal("browser test: no Chromium (/usr/bin/chromium or chromium on PATH); install it with `sudo apt-get install chromium` or run `make chromium` (make test does)")
	}
	return p
}

// browser is one headless Chromium tab and the errors its pages reported.
type browser struct {
	t   *testing.T
	ctx context.Context // chromedp context of the tab

	mu     sync.Mutex
	closed bool     // the test is ending: chromedp must not log to it any more
	page   string   // what the test is looking at, to say where an error came from
	errs   []string // console errors, uncaught exceptions, browser-log errors
	ignore func(source, text string) bool
}

// newBrowser starts Chromium with the flags this sandbox needs (root, no
// network): headless, no sandbox, no GPU, nothing fetched in the
// background, a fresh profile. The browser is stopped when the test ends.
func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	b := &browser{t: t}
	// chromedp's own errors go to the test log, but never after the test
	// ended (testing panics on that).
	logf := func(format string, args ...any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.closed {
			t.Logf("chromedp: "+format, args...)
		}
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	b.ctx = ctx
	// Registered after t.TempDir: cleanups run last-in first-out, so the
	// browser has exited before its profile directory is removed.
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout on its life
		t.Fatalf("start %s: %v", chromium, err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.report("exception", "uncaught exception: "+exceptionText(ev.ExceptionDetails))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					var str string
					if a.Value != nil && json.Unmarshal(a.Value, &str) == nil {
						parts = append(parts, str)
					} else if a.Value != nil {
						parts = append(parts, string(a.Value))
					} else {
						parts = append(parts, a.Description)
					}
				}
				b.report("console", "console.error: "+strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if ev.Entry != nil && ev.Entry.Level == log.EntryLevelError {
				b.report(string(ev.Entry.Source), fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "?"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d:%d)", s, d.URL, d.LineNumber+1, d.ColumnNumber+1)
}

// report runs on chromedp's event loop: it only records.
func (b *browser) report(source, msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ignore != nil && b.ignore(source, msg) {
		return
	}
	b.errs = append(b.errs, b.page+": "+msg)
}

// takeErrors returns the errors reported so far and forgets them.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errs
	b.errs = nil
	return errs
}

// checkErrors fails the test for every error the pages reported so far.
func (b *browser) checkErrors() {
	b.t.Helper()
	for _, e := range b.takeErrors() {
		b.t.Errorf("JS/console error: %s", e)
	}
}

// at names what the test looks at now, for the error messages.
func (b *browser) at(name, url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.page = name + " (" + url + ")"
}

// open loads url (waiting for its load event) and names it for errors.
func (b *browser) open(name, url string) int64 {
	b.t.Helper()
	b.checkErrors()
	b.at(name, url)
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	return resp.Status
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil {
		b.t.Fatalf("on %s: evaluate %s: %v", b.page, js, err)
	}
	return v
}

// count returns how many elements match the CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf("document.querySelectorAll(%s).length", jsString(sel)))
}

// waitFor polls the JavaScript predicate in the page until it is true.
func (b *browser) waitFor(what, js string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.t.Fatalf("on %s: waiting %s for %s (%s): %v", b.page, timeout, what, js, err)
	}
}

// screenshot saves a full-page PNG of the current page in artifactDir.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot of %s: %v", b.page, err)
	}
	dir := artifactDir(b.t)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("write screenshot: %v", err)
	}
	b.t.Logf("screenshot of %s: %s", b.page, path)
}

// artifactDir is where screenshots go: $MEDALLION_ARTIFACTS, else
// .artifacts/screenshots/ at the repository root (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MEDALLION_ARTIFACTS")
	if dir == "" {
		root, err := testenv.FindRepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// digits parses the integer in a table cell, ignoring thousands separators
// and units ("1,081" and "1081 rows" are 1081); -1 when there is none.
func digits(s string) int64 {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	n, err := strconv.ParseInt(b.String(), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// TestBrowserHarnessSeesErrors: the error collector the dashboard tests
// rely on does catch an uncaught exception, a console.error and a failed
// resource, so a clean dashboard run means something.
func TestBrowserHarnessSeesErrors(t *testing.T) {
	chromium := needChromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title><link rel="icon" href="data:,">
<img src="/missing.png">
<script>console.error("bad", 42); setTimeout(() => { throw new Error("boom") }, 0);</script>`)
	}))
	defer srv.Close()
	b := newBrowser(t, chromium)
	b.open("harness page", srv.URL+"/")
	// Events arrive asynchronously: wait for all three.
	deadline := time.Now().Add(5 * time.Second)
	var all []string
	for time.Now().Before(deadline) {
		all = append(all, b.takeErrors()...)
		joined := strings.Join(all, "\n")
		if strings.Contains(joined, "boom") && strings.Contains(joined, "bad 42") && strings.Contains(joined, "404") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the collector missed errors; it saw:\n%s", strings.Join(all, "\n"))
}

// browserPipeline is the energy pipeline the dashboard is tested on:
// bronze with quarantine, 1-minute silver windows updated as data arrives
// (so late rows have something to be late for), a moving average with a
// spike flag, and stream mode so posted rows reach gold in about a second.
const browserPipeline = `sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0, unit: kWh}
    dedupe: [meter_id, timestamp]
    on_error: quarantine
silver:
  usage_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 2m
    output: update
    group_by: [meter_id]
    aggregates:
      readings: count(*)
      avg_usage: avg(energy_usage)
      max_usage: max(energy_usage)
gold:
  usage_ma:
    from: usage_1m
    partition_by: [meter_id]
    order_by: window_start
    moving_average: {column: avg_usage, rows: 5}
    flag: {name: spike, when: "avg_usage > ma * 1.5"}
stream:
  trigger: 1s
`

// browserMeters are the meters of the generated readings.
var browserMeters = []string{"meter-a", "meter-b", "meter-c"}

// browserT0 is the event time of the first generated reading.
var browserT0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// meterReadings returns NDJSON readings every 10 s for minutes [from, to)
// of every meter: a steady, slightly wobbling usage per meter, five times
// higher during the spike minutes (meter index -> minute).
func meterReadings(from, to int, spikes map[int]int) string {
	var b strings.Builder
	for m, meter := range browserMeters {
		for minute := from; minute < to; minute++ {
			for s := 0; s < 60; s += 10 {
				usage := 1.5 + 0.75*float64(m) + 0.1*float64((minute*3+s/10+m)%7)
				if spm, ok := spikes[m]; ok && spm == minute {
					usage *= 5
				}
				ts := browserT0.Add(time.Duration(minute)*time.Minute + time.Duration(s)*time.Second)
				fmt.Fprintf(&b, `{"timestamp":%q,"meter_id":%q,"energy_usage":%s}`+"\n",
					ts.Format(time.DateTime), meter, strconv.FormatFloat(math.Round(usage*1000)/1000, 'f', -1, 64))
			}
		}
	}
	return b.String()
}

// badReadings fail bronze's checks one way each; the markers are how the
// quarantine page is searched for them.
var badReadings = []struct{ line, marker string }{
	{`{"timestamp":"2024-03-01 00:30:07","meter_id":"meter-a","energy_usage":-5.25}`, "-5.25"},
	{`{"timestamp":"2024-03-01 00:31:07","energy_usage":7.77}`, "7.77"},
	{`{"timestamp":"not a time","meter_id":"meter-b","energy_usage":3.5}`, "not a time"},
}

// ingest POSTs an NDJSON body to the serve's ingest endpoint.
func ingest(t *testing.T, base, token, body string) {
	t.Helper()
	ingestTo(t, base, "meters", token, body)
}

// ingestTo POSTs an NDJSON body for source.
func ingestTo(t *testing.T, base, source, token, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/ingest/"+source, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/ingest/%s: %v", source, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /v1/ingest/%s: %s", source, resp.Status)
	}
}

// count runs a one-number query (its column named n); -1 while it fails
// (e.g. the table does not exist yet).
func (l *testLake) count(t *testing.T, sql string) int64 {
	t.Helper()
	out, _, err := l.exec(t, nil, "query", "--format", "csv", sql)
	if err != nil {
		return -1
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return -1
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// waitCount waits until the query's count is want.
func (l *testLake) waitCount(t *testing.T, what, sql string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := l.count(t, sql)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s gives %d, want %d", what, sql, n, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitReady waits until the serve's /readyz answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	waitFor(t, "/readyz", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// chartCounts is what the chart of gold.usage_ma should draw, from the lake:
// the 8 groups with the most recent windows, each group's 500 most recent
// windows.
const chartCounts = `WITH g AS (
  SELECT meter_id, max(window_start) AS last FROM gold.usage_ma GROUP BY meter_id ORDER BY last DESC, meter_id LIMIT 8
), r AS (
  SELECT t.*, row_number() OVER (PARTITION BY t.meter_id ORDER BY t.window_start DESC) AS rn
  FROM gold.usage_ma t JOIN g USING (meter_id)
)
SELECT count(*) AS points, count(*) FILTER (WHERE spike) AS flagged, count(DISTINCT meter_id) AS groups FROM r WHERE rn <= 500`

// TestBrowserDashboard drives every page of the dashboard of a running
// `medallion serve` in stream mode, with rows posted to its ingest endpoint.
func TestBrowserDashboard(t *testing.T) {
	chromium := needChromium(t)
	start := time.Now()
	l := newTestLake(t, "local")
	l.writePipeline(t, browserPipeline)
	srv := startServe(t, l)
	defer func() {
		if t.Failed() {
			t.Logf("serve output:\n%s", srv.out)
		}
	}()
	waitReady(t, srv.base)
	t.Logf("serve ready after %s (includes building the binary)", time.Since(start).Round(time.Millisecond))

	// An hour of readings from 3 meters with one spike minute each, and
	// three rows bronze must quarantine.
	spikes := map[int]int{0: 20, 1: 35, 2: 50}
	body := meterReadings(0, 60, spikes)
	for _, bad := range badReadings {
		body += bad.line + "\n"
	}
	ingest(t, srv.base, "", body)
	const good = 3 * 60 * 6
	l.waitCount(t, "gold", "SELECT count(*) AS n FROM gold.usage_ma", 3*60)
	l.waitCount(t, "the quarantine", "SELECT count(*) AS n FROM bronze._quarantine", int64(len(badReadings)))
	// A reading from minute 3, long final by now: silver._late.
	ingest(t, srv.base, "", `{"timestamp":"2024-03-01 00:03:05","meter_id":"meter-c","energy_usage":2.5}`+"\n")
	l.waitCount(t, "the late row", "SELECT count(*) AS n FROM silver._late", 1)
	l.waitCount(t, "bronze", "SELECT count(*) AS n FROM bronze.meters", good+1)
	t.Logf("data landed and promoted %s after the start", time.Since(start).Round(time.Millisecond))

	b := newBrowser(t, chromium)

	t.Run("pipeline", func(t *testing.T) { checkPipelinePage(t, b, l, srv.base) })
	t.Run("gold table", func(t *testing.T) { checkGoldPage(t, b, l, srv.base) })
	t.Run("polling fallback", func(t *testing.T) { checkPollingFallback(t, b, l, srv.base) })
	t.Run("bronze table", func(t *testing.T) { checkBronzePage(t, b, srv.base) })
	t.Run("quality", func(t *testing.T) { checkQualityPage(t, b, l, srv.base) })
	t.Run("runs", func(t *testing.T) { checkRunsPage(t, b, l, srv.base, "07-runs-stream") })
	b.on(t).checkErrors()
	t.Logf("whole test: %s", time.Since(start).Round(time.Millisecond))
}

// Each page check uses the subtest's t for its assertions (so a failure
// names the page) and the shared browser.
func (b *browser) on(t *testing.T) *browser {
	b.t = t
	return b
}

func checkPipelinePage(t *testing.T, b *browser, l *testLake, base string) {
	b = b.on(t)
	if st := b.open("pipeline page", base+"/"); st != http.StatusOK {
		t.Fatalf("GET / answered %d", st)
	}
	b.screenshot("01-pipeline")
	if title := eval[string](b, "document.title"); !strings.HasPrefix(title, "medallion") {
		t.Errorf("<title> %q does not start with medallion", title)
	}
	for _, href := range []string{"/", "/quality", "/runs"} {
		if b.count(fmt.Sprintf(`nav a[href=%q]`, href)) == 0 {
			t.Errorf("no nav link to %s", href)
		}
	}
	tables := []string{"bronze.meters", "bronze._quarantine", "silver.usage_1m", "silver._late", "gold.usage_ma"}
	for _, tbl := range tables {
		if n := b.count(fmt.Sprintf(`table#tables tr[data-table=%q]`, tbl)); n != 1 {
			t.Errorf("table#tables has %d rows for %s, want 1", n, tbl)
		}
		if b.count(fmt.Sprintf(`table#tables tr[data-table=%q] a[href=%q]`, tbl, "/tables/"+tbl)) == 0 {
			t.Errorf("%s has no link to /tables/%s", tbl, tbl)
		}
	}
	for _, tbl := range []string{"bronze.meters", "gold.usage_ma", "bronze._quarantine"} {
		cell := eval[string](b, fmt.Sprintf(`(document.querySelector(%s) || {textContent: "(no td.rows)"}).textContent`,
			jsString(fmt.Sprintf(`table#tables tr[data-table=%q] td.rows`, tbl))))
		want := l.count(t, "SELECT count(*) AS n FROM "+tbl)
		if got := digits(cell); got != want {
			t.Errorf("%s: td.rows says %q, medallion query counts %d", tbl, cell, want)
		}
	}
	for _, node := range []string{"raw.meters", "bronze.meters", "silver.usage_1m", "gold.usage_ma"} {
		if n := b.count(fmt.Sprintf(`svg#lineage g.node[data-node=%q]`, node)); n != 1 {
			t.Errorf("svg#lineage has %d nodes %s, want 1", n, node)
		}
	}
	for _, e := range [][2]string{{"raw.meters", "bronze.meters"}, {"bronze.meters", "silver.usage_1m"}, {"silver.usage_1m", "gold.usage_ma"}} {
		if n := b.count(fmt.Sprintf(`svg#lineage path.edge[data-from=%q][data-to=%q]`, e[0], e[1])); n != 1 {
			t.Errorf("svg#lineage has %d edges %s -> %s, want 1", n, e[0], e[1])
		}
	}
	checkLineageQuality(t, b, l)
	b.checkErrors()
}

// lineageNode is what the browser drew of one lineage node.
type lineageNode struct {
	ID          string  `json:"id"`
	Label       string  `json:"label"`
	LabelWidth  float64 `json:"labelWidth"` // rendered text length
	BoxWidth    float64 `json:"boxWidth"`
	Quality     string  `json:"quality"`
	QualityFill string  `json:"qualityFill"`
	Quarantined string  `json:"quarantined"`
	Late        string  `json:"late"`
	Fresh       bool    `json:"fresh"`
}

// checkLineageNames: every node's name is drawn whole, inside its box.
func checkLineageNames(t *testing.T, nodes []lineageNode) {
	t.Helper()
	if len(nodes) == 0 {
		t.Error("svg#lineage has no nodes")
	}
	for _, n := range nodes {
		if n.Label != n.ID {
			t.Errorf("node %s is labelled %q: want its full name", n.ID, n.Label)
		}
		if n.LabelWidth+12 > n.BoxWidth {
			t.Errorf("node %s: its name is %.0f px long, its box %.0f px wide", n.ID, n.LabelWidth, n.BoxWidth)
		}
	}
}

// lineageNodesJS reads the lineage's nodes as lineageNode.
const lineageNodesJS = `[...document.querySelectorAll("svg#lineage g.node")].map(g => {
  const q = g.querySelector("text.quality");
  return {id: g.dataset.node, label: g.querySelector("text.label").textContent,
    labelWidth: g.querySelector("text.label").getComputedTextLength(), boxWidth: g.querySelector("rect").width.baseVal.value,
    quality: q ? q.textContent : "", qualityFill: q ? getComputedStyle(q).fill : "",
    quarantined: g.dataset.quarantined || "", late: g.dataset.late || "", fresh: g.classList.contains("fresh")} })`

// checkLineageQuality: every node's name is drawn whole inside its box;
// bronze says its quarantined rows (in red when some) and silver its late
// rows, as the lake counts them; a table just committed is fresh.
func checkLineageQuality(t *testing.T, b *browser, l *testLake) {
	nodes := eval[[]lineageNode](b, lineageNodesJS)
	byID := map[string]lineageNode{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	checkLineageNames(t, nodes)
	q := l.count(t, "SELECT count(*) AS n FROM bronze._quarantine WHERE source = 'meters'")
	if n := byID["bronze.meters"]; n.Quarantined != fmt.Sprint(q) || digits(n.Quality) != q || n.QualityFill != "rgb(209, 52, 59)" {
		t.Errorf("bronze.meters: data-quarantined %q, says %q in %s; the lake has %d quarantined (want them in red)", n.Quarantined, n.Quality, n.QualityFill, q)
	}
	late := l.count(t, "SELECT count(*) AS n FROM silver._late WHERE \"table\" LIKE '%usage_1m'")
	if n := byID["silver.usage_1m"]; n.Late != fmt.Sprint(late) || digits(n.Quality) != late || !strings.HasSuffix(n.Quality, " late") {
		t.Errorf("silver.usage_1m: data-late %q, says %q; the lake has %d late", n.Late, n.Quality, late)
	}
	for _, id := range []string{"bronze.meters", "silver.usage_1m", "gold.usage_ma"} {
		if !byID[id].Fresh {
			t.Errorf("%s was committed in the last minutes but is not drawn fresh", id)
		}
	}
}

// chart is the state of svg#chart.
type chart struct {
	Exists  bool   `json:"exists"`
	Points  string `json:"points"`  // data-points
	Version string `json:"version"` // data-version
	Measure string `json:"measure"` // data-measure
	Circles int    `json:"circles"`
	Flagged int    `json:"flagged"`
	Series  int    `json:"series"`
}

const chartJS = `(() => {
  const c = document.querySelector("svg#chart");
  if (!c) return {exists: false};
  return {exists: true, points: c.getAttribute("data-points") || "", version: c.getAttribute("data-version") || "",
    measure: c.getAttribute("data-measure") || "",
    circles: c.querySelectorAll("circle.point").length, flagged: c.querySelectorAll("circle.point.flagged").length,
    series: c.querySelectorAll("path.series").length};
})()`

func checkGoldPage(t *testing.T, b *browser, l *testLake, base string) {
	b = b.on(t)
	const tbl = "gold.usage_ma"
	if st := b.open("gold table page", base+"/tables/"+tbl); st != http.StatusOK {
		t.Fatalf("GET /tables/%s answered %d", tbl, st)
	}
	for _, id := range []string{"table#schema", "table#history", "table#sample", "select#measure", "svg#chart"} {
		if b.count(id) != 1 {
			t.Errorf("no %s", id)
		}
	}
	// The chart may be drawn by the page's script after load.
	b.waitFor("the chart", `(() => { const c = document.querySelector("svg#chart[data-points]");
	  return !!c && c.querySelectorAll("circle.point").length === +c.getAttribute("data-points") })()`, 10*time.Second)
	b.screenshot("02-table-gold")
	want := csvRow(t, l.query(t, chartCounts))
	c := eval[chart](b, chartJS)
	if !c.Exists {
		t.Fatal("no svg#chart")
	}
	if strconv.Itoa(c.Circles) != c.Points {
		t.Errorf("svg#chart data-points=%q but %d circle.point", c.Points, c.Circles)
	}
	if c.Points != want["points"] {
		t.Errorf("chart draws %s points, gold has %s rows to plot (3 meters x 60 windows)", c.Points, want["points"])
	}
	if strconv.Itoa(c.Flagged) != want["flagged"] || c.Flagged == 0 {
		t.Errorf("chart flags %d points, gold has %s rows with spike", c.Flagged, want["flagged"])
	}
	if strconv.Itoa(c.Series) != want["groups"] {
		t.Errorf("chart has %d path.series, want one per meter (%s)", c.Series, want["groups"])
	}
	if c.Version == "" {
		t.Error("svg#chart has no data-version")
	}
	if b.count("svg#chart circle.point.flagged title") != c.Flagged {
		t.Error("flagged points have no <title> tooltip")
	}
	b.checkErrors()

	// Live refresh: five more minutes of readings reach gold, and the open
	// page redraws without a reload.
	eval[bool](b, "(window.__notReloaded = true)")
	ingest(t, base, "", meterReadings(60, 65, nil))
	b.waitFor("the chart to refresh", fmt.Sprintf(`(() => { const c = document.querySelector("svg#chart");
	  return !!c && +c.getAttribute("data-points") > %s && c.getAttribute("data-version") !== %s })()`, c.Points, jsString(c.Version)), 20*time.Second)
	if !eval[bool](b, "window.__notReloaded === true") {
		t.Error("the page reloaded instead of refreshing the chart")
	}
	l.waitCount(t, "gold after the new readings", "SELECT count(*) AS n FROM gold.usage_ma", 3*65)
	// The page may have drawn an intermediate version (bronze -> gold
	// commits); wait for the one with every new window.
	b.waitFor("the chart to show the new windows", `+document.querySelector("svg#chart").getAttribute("data-points") === 195`, 20*time.Second)
	after := eval[chart](b, chartJS)
	if strconv.Itoa(after.Circles) != after.Points {
		t.Errorf("after refresh: data-points=%q but %d circle.point", after.Points, after.Circles)
	}
	b.screenshot("03-table-gold-refreshed")
	// The refresh was pushed (server-sent events), and the header and
	// history were swapped in too, not just the chart.
	if mode := eval[string](b, "document.documentElement.dataset.live || ''"); mode != "push" {
		t.Errorf("live mode %q, want push (the /api/events stream)", mode)
	}
	b.waitFor("the header to show the chart's version", `document.getElementById("table-version").textContent === document.querySelector("svg#chart").dataset.version`, 10*time.Second)
	b.waitFor("the history to list the chart's version", `document.querySelector("table#history tbody td.num").textContent === document.querySelector("svg#chart").dataset.version`, 10*time.Second)
	b.checkErrors()
	checkGroupPicker(t, b)
}

// checkPollingFallback opens the gold page through a proxy that refuses
// /api/events (as some proxies cut streams): the page falls back to
// polling and still shows new readings without a reload.
func checkPollingFallback(t *testing.T, b *browser, l *testLake, base string) {
	b = b.on(t)
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" {
			http.Error(w, "streams are not allowed here", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	b.mu.Lock()
	b.ignore = func(source, msg string) bool {
		return strings.Contains(msg, "/api/events") || strings.Contains(msg, "502")
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.ignore = nil
		b.mu.Unlock()
	}()
	if st := b.open("gold table page behind a proxy without streams", proxy.URL+"/tables/gold.usage_ma"); st != http.StatusOK {
		t.Fatalf("GET through the proxy answered %d", st)
	}
	b.waitFor("the page to poll", `document.documentElement.dataset.live === "poll"`, 10*time.Second)
	before := eval[int](b, `+document.querySelector("svg#chart").dataset.points`)
	eval[bool](b, "(window.__notReloaded = true)")
	ingest(t, base, "", meterReadings(65, 67, nil))
	b.waitFor("the polled chart to show the new windows", fmt.Sprintf(`+document.querySelector("svg#chart").dataset.points >= %d`, before+6), 30*time.Second)
	b.waitFor("the polled header", `document.getElementById("table-version").textContent === document.querySelector("svg#chart").dataset.version`, 10*time.Second)
	if !eval[bool](b, "window.__notReloaded === true") {
		t.Error("the page reloaded instead of polling")
	}
	if s := eval[string](b, `document.getElementById("chart-status").textContent`); !strings.Contains(s, "polling") {
		t.Errorf("chart status %q does not say it polls", s)
	}
	b.screenshot("03c-table-gold-polling")
	b.checkErrors()
}

// checkGroupPicker picks a subset of the meters, searches the list, and
// adds a small multiple of another measure.
func checkGroupPicker(t *testing.T, b *browser) {
	eval[bool](b, `(document.getElementById("group-picker").open = true)`)
	b.waitFor("the group list", `document.querySelectorAll("#group-list input.group-pick").length === 3`, 10*time.Second)
	eval[bool](b, `(() => { const s = document.getElementById("group-search"); s.value = "meter-c"; s.dispatchEvent(new Event("input")); return true })()`)
	if n := eval[int](b, `[...document.querySelectorAll("#group-list label.group-item")].filter(l => !l.hidden).length`); n != 1 {
		t.Errorf("search meter-c shows %d groups, want 1", n)
	}
	eval[bool](b, `(() => { const cb = document.querySelector('#group-list input.group-pick[value="meter-b"]'); cb.click(); return true })()`)
	b.waitFor("the chart without meter-b", `(() => { const c = document.querySelector("svg#chart");
	  return c.querySelectorAll("path.series").length === 2 && !c.querySelector('path.series[data-group="meter-b"]') })()`, 10*time.Second)
	if q := eval[string](b, "location.search"); !strings.Contains(q, "groups=meter-a%2Cmeter-c") {
		t.Errorf("the page URL %q does not keep the picked groups", q)
	}
	eval[bool](b, `(() => { const cb = document.querySelector('input.also-measure[value="max_usage"]'); document.getElementById("more-measures").open = true; cb.click(); return true })()`)
	b.waitFor("a small multiple of max_usage", `(() => { const c = document.querySelector('#multiples svg.chart.small[data-measure="max_usage"]');
	  return !!c && +c.dataset.points > 0 && c.querySelectorAll("path.series").length === 2 })()`, 10*time.Second)
	b.screenshot("03b-table-gold-groups-multiples")
	b.checkErrors()
}

func checkBronzePage(t *testing.T, b *browser, base string) {
	b = b.on(t)
	if st := b.open("bronze table page", base+"/tables/bronze.meters"); st != http.StatusOK {
		t.Fatalf("GET /tables/bronze.meters answered %d", st)
	}
	for _, id := range []string{"table#schema", "table#history", "table#sample"} {
		if b.count(id) != 1 {
			t.Errorf("no %s", id)
		}
	}
	if n := b.count("table#sample td"); n == 0 {
		t.Error("table#sample has no cells")
	}
	// Bronze has no window_start: its raw readings are charted over their
	// own timestamp, downsampled by the server.
	b.waitFor("the bronze chart", `(() => { const c = document.querySelector("svg#chart[data-rows]");
	  return !!c && +c.dataset.points > 0 && c.querySelectorAll("circle.point").length === +c.dataset.points })()`, 10*time.Second)
	if tc := eval[string](b, `document.querySelector("svg#chart").dataset.time`); tc != "timestamp" {
		t.Errorf("bronze chart runs along %q, want timestamp", tc)
	}
	if n := b.count("svg#chart text.axis-title"); n != 2 {
		t.Errorf("%d axis titles, want 2", n)
	}
	// The declared unit (unit: kWh) titles the y axis as chart.js drew it.
	if y := eval[string](b, `document.querySelector("svg#chart text.axis-title[transform]").textContent`); y != "energy_usage (kWh)" {
		t.Errorf("y-axis title %q, want %q", y, "energy_usage (kWh)")
	}
	// The spikes (five times the usage) survive downsampling: the highest
	// point drawn is the highest reading.
	top := eval[float64](b, `Math.max(...document.querySelector("svg#chart").__sd.groups.flatMap(g => g.points.map(p => p.v)))`)
	if top < 10 {
		t.Errorf("highest bronze point %g: the spikes (> 10) are lost", top)
	}
	all := eval[int](b, `+document.querySelector("svg#chart").dataset.points`)
	b.screenshot("04-table-bronze")

	// The last 15 minutes: fewer points, all within the range.
	eval[bool](b, `(document.querySelector('button.range[data-range="15m"]').click(), true)`)
	b.waitFor("the 15-minute range", fmt.Sprintf(`(() => { const c = document.querySelector("svg#chart");
	  return +c.dataset.points > 0 && +c.dataset.points < %d && location.search.includes("range=15m") })()`, all), 10*time.Second)
	span := eval[float64](b, `(() => { const sd = document.querySelector("svg#chart").__sd;
	  const ts = sd.groups.flatMap(g => g.points.map(p => Date.parse(p.t)));
	  return (Math.max(...ts) - Math.min(...ts)) / 60000 })()`)
	if span > 15 {
		t.Errorf("15-minute range draws %g minutes", span)
	}
	// Hover values.
	eval[bool](b, `(() => { const c = document.querySelector("svg#chart"), r = c.getBoundingClientRect();
	  c.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true})); return true })()`)
	if h := eval[string](b, `document.querySelector("svg#chart").dataset.hover || ""`); !strings.Contains(h, "meter-a: ") || !strings.Contains(h, " kWh") {
		t.Errorf("hover shows %q, want each meter's value in kWh", h)
	}
	b.screenshot("04b-table-bronze-15m-hover")

	// Drag across the middle third: the chart zooms to that span (from/to
	// in the URL) and "reset zoom" appears.
	before := eval[float64](b, `(() => { const sd = document.querySelector("svg#chart").__sd; return Date.parse(sd.to) - Date.parse(sd.from) })()`)
	eval[bool](b, `(() => { const c = document.querySelector("svg#chart"), r = c.getBoundingClientRect(), y = r.top + r.height / 2;
	  const at = f => ({clientX: r.left + r.width * f, clientY: y, bubbles: true});
	  c.dispatchEvent(new MouseEvent("mousedown", at(0.4))); c.dispatchEvent(new MouseEvent("mousemove", at(0.6)));
	  window.dispatchEvent(new MouseEvent("mouseup", at(0.6))); return true })()`)
	b.waitFor("the zoom", `location.search.includes("from=") && !document.getElementById("zoom-reset").hidden &&
	  (() => { const sd = document.querySelector("svg#chart").__sd; return !!sd.from && sd.from.length > 0 })()`, 10*time.Second)
	b.waitFor("the zoomed span", fmt.Sprintf(`(() => { const sd = document.querySelector("svg#chart").__sd; return Date.parse(sd.to) - Date.parse(sd.from) < %g * 0.3 })()`, before), 10*time.Second)
	b.screenshot("04c-table-bronze-zoomed")
	eval[bool](b, `(document.getElementById("zoom-reset").click(), true)`)
	b.waitFor("the zoom reset", `!location.search.includes("from=") && document.getElementById("zoom-reset").hidden`, 10*time.Second)
	b.checkErrors()
}

// qualityLink is a quarantine link of the quality page.
type qualityLink struct {
	Href  string `json:"href"`
	Text  string `json:"text"`
	Count int    `json:"count"` // tr.run rows
}

func checkQualityPage(t *testing.T, b *browser, l *testLake, base string) {
	b = b.on(t)
	if st := b.open("quality page", base+"/quality"); st != http.StatusOK {
		t.Fatalf("GET /quality answered %d", st)
	}
	// A reading with a column the source does not declare, sent while the
	// page is open: bronze keeps it in _rescued, and the rescued trend
	// grows a bar for its run without a reload.
	before := b.count("svg#trend-rescued rect.bar")
	ingest(t, base, "", `{"timestamp":"2024-03-01 00:59:59","meter_id":"meter-c","energy_usage":2.5,"voltage":231}`+"\n")
	b.waitFor("the rescued run's bar", fmt.Sprintf(`document.querySelectorAll("svg#trend-rescued rect.bar").length > %d &&
	  document.querySelector("svg#trend-rescued rect.bar:last-of-type").dataset.count === "1"`, before), 20*time.Second)
	b.screenshot("05-quality")
	checkQualityTrends(t, b, l)
	if n := b.count("table#quality-runs tr.run"); n == 0 {
		t.Fatal("table#quality-runs has no tr.run")
	}
	if n := b.count("table#quality-reasons td"); n == 0 {
		t.Error("table#quality-reasons is empty")
	}
	if b.count(`table#quality-runs tr.run a[href*="/tables/silver._late?batch="]`) == 0 {
		t.Error("no run links to its late rows (/tables/silver._late?batch=)")
	}
	links := eval[[]qualityLink](b, `[...document.querySelectorAll('table#quality-runs tr.run a[href*="/tables/bronze._quarantine?batch="]')]
	  .map(a => ({href: a.href, text: a.textContent.trim()}))`)
	var link qualityLink
	for _, ln := range links {
		if digits(ln.Text) > 0 {
			link = ln
			break
		}
	}
	if link.Href == "" {
		t.Fatalf("no run with quarantined rows > 0 linking to /tables/bronze._quarantine?batch= (links: %v)", links)
	}
	u, err := url.Parse(link.Href)
	if err != nil {
		t.Fatal(err)
	}
	batch := u.Query().Get("batch")
	want := l.count(t, "SELECT count(*) AS n FROM bronze._quarantine WHERE batch_id = '"+strings.ReplaceAll(batch, "'", "''")+"'")
	if digits(link.Text) != want {
		t.Errorf("quality page says %q quarantined rows for batch %s, the lake has %d", link.Text, batch, want)
	}

	if st := b.open("quarantined rows of one batch", link.Href); st != http.StatusOK {
		t.Fatalf("GET %s answered %d", link.Href, st)
	}
	b.screenshot("06-quarantine-batch")
	rows := b.count("table#sample tr:has(td)")
	if int64(rows) != want {
		t.Errorf("table#sample lists %d rows for batch %s, the lake has %d", rows, batch, want)
	}
	text := eval[string](b, `(document.querySelector("table#sample") || {textContent: ""}).textContent`)
	for _, bad := range badReadings {
		if !strings.Contains(text, bad.marker) {
			t.Errorf("the quarantined row %s is not in table#sample", bad.line)
		}
	}
	b.checkErrors()
	checkQuarantineFilter(t, b, l)
}

// trendBar is one bar of a quality trend as drawn.
type trendBar struct {
	Count  int64   `json:"count"`
	Height float64 `json:"height"` // on screen
	Inside bool    `json:"inside"` // within its svg
}

// checkQualityTrends: the rescued trend draws the drift run as a visible
// bar of 1, and the late trend's bars add up to silver._late.
func checkQualityTrends(t *testing.T, b *browser, l *testLake) {
	bars := func(id string) []trendBar {
		return eval[[]trendBar](b, `(() => { const s = document.getElementById(`+jsString(id)+`); if (!s) return [];
		  const box = s.getBoundingClientRect();
		  return [...s.querySelectorAll("rect.bar")].map(r => { const q = r.getBoundingClientRect();
		    return {count: +r.dataset.count, height: q.height, inside: q.left >= box.left && q.right <= box.right && q.top >= box.top && q.bottom <= box.bottom} }) })()`)
	}
	rescued := bars("trend-rescued")
	if len(rescued) < 2 {
		t.Fatalf("svg#trend-rescued has %d bars, want one per bronze run (2 or more)", len(rescued))
	}
	if last := rescued[len(rescued)-1]; last.Count != 1 || last.Height < 20 {
		t.Errorf("the newest bronze run rescued %d rows drawn %.1f px high, want 1 row drawn as a full bar", last.Count, last.Height)
	}
	// The drift row's silver run may commit after the swap that drew its
	// bronze run: wait for the page to catch up with the lake.
	var want, sum int64
	var late []trendBar
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		want, late, sum = l.count(t, "SELECT count(*) AS n FROM silver._late"), bars("trend-late"), 0
		for _, r := range late {
			sum += r.Count
		}
		if sum == want || time.Now().After(deadline) {
			break
		}
	}
	for _, r := range append(rescued, late...) {
		if !r.Inside || r.Height <= 0 {
			t.Errorf("a trend bar is drawn outside its chart or not at all: %+v", r)
		}
	}
	if sum != want || len(late) == 0 {
		t.Errorf("svg#trend-late: %d bars adding up to %d, silver._late has %d rows", len(late), sum, want)
	}
}

// checkQuarantineFilter picks a reason in the quarantine's filter form
// and searches the raw lines; then opens a long value in full.
func checkQuarantineFilter(t *testing.T, b *browser, l *testLake) {
	reason := eval[string](b, `document.querySelector('#quarantine-filter select[name="reason"] option:nth-child(2)').value`)
	want := l.count(t, "SELECT count(*) AS n FROM bronze._quarantine WHERE reason = '"+strings.ReplaceAll(reason, "'", "''")+"'")
	// Fill the form and go where submitting it goes (a plain GET form).
	submit := func(name, js string) {
		u := eval[string](b, `(() => { const f = document.getElementById("quarantine-filter"); `+js+`;
		  return new URL(f.action + "?" + new URLSearchParams(new FormData(f)).toString(), location.href).href })()`)
		if st := b.open(name, u); st != http.StatusOK {
			t.Fatalf("GET %s answered %d", u, st)
		}
	}
	submit("quarantine filtered by reason", fmt.Sprintf(`f.querySelector('select[name="reason"]').value = %s`, jsString(reason)))
	if got := b.count("table#sample tr:has(td)"); int64(got) != want || want == 0 {
		t.Errorf("reason %q: %d rows listed, the lake has %d", reason, got, want)
	}
	if m := eval[string](b, `document.getElementById("filter-matches").textContent`); digits(m) != want {
		t.Errorf("the filter says %q, the lake has %d", m, want)
	}
	b.screenshot("06b-quarantine-by-reason")

	// Search the raw lines for one bad reading's marker.
	marker := badReadings[0].marker
	submit("quarantine searched", fmt.Sprintf(`f.querySelector('select[name="reason"]').value = ""; f.querySelector('input[name="q"]').value = %s`, jsString(marker)))
	if got := b.count("table#sample tr:has(td)"); got != 1 {
		t.Errorf("search %q lists %d rows, want 1", marker, got)
	}
	// The source file is long: click shows it whole.
	if b.count("table#sample details.cell") > 0 {
		eval[bool](b, `(document.querySelector("table#sample details.cell summary").click(), true)`)
		if !eval[bool](b, `document.querySelector("table#sample details.cell").open`) {
			t.Error("a long value does not open on click")
		}
	}
	b.screenshot("06c-quarantine-search-full-value")
	b.checkErrors()
}

// checkRunsPage: table#runs lists the runs recorded in the lake (the
// scheduler's) or kept in memory (stream mode's micro-batches), and
// table#leases the leases, among them the stream's or the scheduler's.
func checkRunsPage(t *testing.T, b *browser, l *testLake, base, shot string) {
	b = b.on(t)
	recorded, err := jobs.ListRuns(context.Background(), l.store, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.open("runs page", base+"/runs"); st != http.StatusOK {
		t.Fatalf("GET /runs answered %d", st)
	}
	b.screenshot(shot)
	if b.count("table#runs") != 1 {
		t.Error("no table#runs")
	}
	// The scheduler may record more runs while the page renders; stream
	// mode keeps its micro-batches' runs in memory, not in the lake.
	if n := b.count("table#runs tr.run"); n == 0 || n < min(len(recorded), 100) {
		t.Errorf("table#runs has %d tr.run, the lake had %d recorded runs before the page was asked for", n, len(recorded))
	}
	if b.count("table#leases") != 1 {
		t.Fatal("no table#leases")
	}
	leases := eval[string](b, `document.querySelector("table#leases").textContent`)
	want := "stream"
	if len(recorded) > 0 {
		want = recorded[0].Job
	}
	if !strings.Contains(leases, want) {
		t.Errorf("table#leases does not list the %s lease: %q", want, strings.Join(strings.Fields(leases), " "))
	}
	b.checkErrors()
}

// TestBrowserDashboardLogin: with an ingest token set, the dashboard asks
// for it (401 with a login form), the form sets the cookie, and the cookie
// opens the pages and the JSON API. The serve runs a schedule here, so the
// runs page shows runs recorded in the lake.
func TestBrowserDashboardLogin(t *testing.T) {
	chromium := needChromium(t)
	const token = "s3cret-dashboard-token"
	l := newTestLake(t, "local")
	l.writePipeline(t, `sources:
  meters:
    format: ndjson
    schema:
      meter_id:     {type: string, required: true}
      energy_usage: {type: double}
schedule:
  bronze: "@every 1s"
`)
	l.env = append(l.env, "MEDALLION_INGEST_TOKEN="+token)
	srv := startServe(t, l)
	defer func() {
		if t.Failed() {
			t.Logf("serve output:\n%s", srv.out)
		}
	}()
	waitReady(t, srv.base)
	if resp, err := http.Get(srv.base + "/api/pipeline"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/pipeline without the token answered %s, want 401", resp.Status)
	}

	b := newBrowser(t, chromium)
	// The 401 of the login page is the point here, not an error of the page.
	b.mu.Lock()
	b.ignore = func(source, msg string) bool {
		return source == string(log.EntrySourceNetwork) && strings.Contains(msg, "401")
	}
	b.mu.Unlock()
	if st := b.open("login page", srv.base+"/"); st != http.StatusUnauthorized {
		t.Errorf("GET / without the token answered %d, want 401", st)
	}
	b.screenshot("08-login")
	if b.count(`form input[name=token]`) != 1 {
		t.Fatal("the 401 page has no form with input[name=token]")
	}
	if typ := eval[string](b, `document.querySelector("input[name=token]").type`); typ != "password" {
		t.Errorf("the token field is type=%q: a token typed in would be shown; want type=password", typ)
	}
	b.mu.Lock()
	b.ignore = nil // from here on a 401 is an error again
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`input[name=token]`), token)); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Submit(chromedp.CSS(`input[name=token]`)))
	if err != nil {
		t.Fatalf("submit the login form: %v", err)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("after login: %s answered %d", resp.URL, resp.Status)
	}
	b.at("pipeline page after login", resp.URL)
	b.waitFor("the pipeline page after login", `!!document.querySelector("table#tables")`, 10*time.Second)
	if loc := eval[string](b, "location.pathname"); loc != "/" {
		t.Errorf("login landed on %s, want /", loc)
	}
	b.screenshot("09-after-login")
	api := eval[string](b, `fetch("/api/pipeline").then(r => r.status + " " + (r.headers.get("content-type") || ""))`)
	if !strings.HasPrefix(api, "200 ") || !strings.Contains(api, "json") {
		t.Errorf("/api/pipeline with the cookie: %s, want 200 with JSON", api)
	}
	b.checkErrors()

	// A scheduled bronze run promotes what was posted (with the token) and
	// is recorded; the runs page lists it.
	ingest(t, srv.base, token, `{"meter_id":"meter-a","energy_usage":1.5}`+"\n")
	l.waitCount(t, "the scheduled bronze run", "SELECT count(*) AS n FROM bronze.meters", 1)
	checkRunsPage(t, b, l, srv.base, "10-runs-scheduler")
}

// serveForBrowser starts serve on a new local lake with pipeline and waits
// until it is ready; a failed test logs what serve printed.
func serveForBrowser(t *testing.T, pipeline string) (*testLake, *serveProc) {
	t.Helper()
	l := newTestLake(t, "local")
	l.writePipeline(t, pipeline)
	srv := startServe(t, l)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve output:\n%s", srv.output())
		}
	})
	waitReady(t, srv.base)
	return l, srv
}

// stationsPipeline is the turnstile and anomaly picture of the pipelines
// medallion replaces: 36 stations' raw counts in bronze, and a SQL model
// that marks counts over 100 with a boolean.
const stationsPipeline = `sources:
  turnstiles:
    format: ndjson
    schema:
      ts:      {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      station: {type: string, required: true}
      entries: {type: double}
gold:
  anomalies:
    sql: SELECT ts, station, entries, entries > 100 AS anomaly FROM bronze.turnstiles
  turnstile_entries_per_station_and_minute_over_the_last_day:
    sql: SELECT station, date_trunc('minute', ts) AS minute, sum(entries) AS entries FROM bronze.turnstiles GROUP BY ALL
stream:
  trigger: 1s
`

// stationReadings returns a count every 30 s over minutes [from, to) for
// 36 stations; station-07 and station-23 spike above 100 at the minutes
// given.
func stationReadings(t0 time.Time, from, to int, spikeAt map[int]bool) (body string, anomalies int) {
	var b strings.Builder
	for s := 1; s <= 36; s++ {
		for m := from; m < to; m++ {
			for sec := 0; sec < 60; sec += 30 {
				v := 20 + float64((s*7+m*3+sec)%40)
				if spikeAt[m] && sec == 0 && (s == 7 || s == 23) {
					v, anomalies = 180+float64(s), anomalies+1
				}
				ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(sec)*time.Second)
				fmt.Fprintf(&b, `{"ts":%q,"station":"station-%02d","entries":%g}`+"\n", ts.Format(time.DateTime), s, v)
			}
		}
	}
	return b.String(), anomalies
}

// TestBrowserDashboardStations: a boolean of a SQL model over bronze is
// drawn as red points over the last 15 minutes, new spikes appear while
// readings are posted, and 36 stations can be narrowed to a picked few.
func TestBrowserDashboardStations(t *testing.T) {
	chromium := needChromium(t)
	l, srv := serveForBrowser(t, stationsPipeline)
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-40 * time.Minute)
	body, _ := stationReadings(t0, 0, 30, map[int]bool{5: true, 25: true})
	ingestTo(t, srv.base, "turnstiles", "", body)
	l.waitCount(t, "gold", "SELECT count(*) AS n FROM gold.anomalies", 36*30*2)

	b := newBrowser(t, chromium)
	if st := b.open("anomalies, last 15 minutes", srv.base+"/tables/gold.anomalies?range=15m&groups=station-07,station-23,station-01"); st != http.StatusOK {
		t.Fatalf("GET answered %d", st)
	}
	b.waitFor("the chart", `(() => { const c = document.querySelector("svg#chart[data-rows]"); return !!c && +c.dataset.points > 0 })()`, 10*time.Second)
	if f := eval[int](b, `+document.querySelector("svg#chart").dataset.flagged`); f != 2 {
		t.Errorf("%d red points in the last 15 minutes, want 2 (minute 25 of station-07 and station-23)", f)
	}
	if tc := eval[string](b, `document.querySelector("svg#chart").dataset.time`); tc != "ts" {
		t.Errorf("chart over %q, want ts", tc)
	}
	b.screenshot("10-anomalies-15m")

	// New readings with spikes reach the open page by push.
	more, _ := stationReadings(t0, 30, 33, map[int]bool{31: true})
	ingestTo(t, srv.base, "turnstiles", "", more)
	b.waitFor("the new spikes", `+document.querySelector("svg#chart").dataset.flagged === 4`, 20*time.Second)
	if mode := eval[string](b, "document.documentElement.dataset.live"); mode != "push" {
		t.Errorf("live mode %q, want push", mode)
	}
	b.screenshot("10b-anomalies-15m-updated")

	// 36 stations: all of them, then a picked subset.
	eval[bool](b, `(document.getElementById("group-picker").open = true)`)
	eval[bool](b, `(document.getElementById("group-all").click(), true)`)
	b.waitFor("all 36 stations", `document.querySelectorAll("svg#chart path.series").length === 36`, 10*time.Second)
	if n := b.count("#group-list input.group-pick"); n != 36 {
		t.Errorf("the picker lists %d stations, want 36", n)
	}
	b.screenshot("11-stations-all")
	eval[bool](b, `(document.getElementById("group-reset").click(), true)`)
	b.waitFor("the top 8", `document.querySelectorAll("svg#chart path.series").length === 8`, 10*time.Second)
	eval[bool](b, `(() => { const s = document.getElementById("group-search"); s.value = "station-1"; s.dispatchEvent(new Event("input")); return true })()`)
	if n := eval[int](b, `[...document.querySelectorAll("#group-list label.group-item")].filter(l => !l.hidden).length`); n != 10 {
		t.Errorf("search station-1 shows %d stations, want 10 (station-10..19)", n)
	}
	// Untick all but three of the drawn ones, then tick station-12.
	eval[bool](b, `(() => { const drawn = [...document.querySelectorAll("#group-list input.group-pick")].filter(c => c.checked);
	  drawn.slice(3).forEach(c => { c.checked = false }); document.querySelector('#group-list input.group-pick[value="station-12"]').checked = true;
	  document.getElementById("group-list").dispatchEvent(new Event("change")); return true })()`)
	b.waitFor("the picked stations", `(() => { const c = document.querySelector("svg#chart");
	  return (c.querySelectorAll("path.series").length === 4 || c.querySelectorAll("path.series").length === 3) && !!c.querySelector('path.series[data-group="station-12"]') })()`, 10*time.Second)
	b.screenshot("11b-stations-picked")

	// A long table name is drawn whole on the lineage.
	if st := b.open("pipeline with a long table name", srv.base+"/"); st != http.StatusOK {
		t.Fatalf("GET / answered %d", st)
	}
	nodes := eval[[]lineageNode](b, lineageNodesJS)
	checkLineageNames(t, nodes)
	long := "gold.turnstile_entries_per_station_and_minute_over_the_last_day"
	if !slices.ContainsFunc(nodes, func(n lineageNode) bool { return n.ID == long }) {
		t.Errorf("the lineage has no node %s", long)
	}
	b.screenshot("11c-lineage-long-name")
	b.checkErrors()
}

// TestBrowserDashboardMillionRows measures the bronze page of a table of
// a million raw readings: the series answer stays small (the server
// downsamples to the chart's pixels) and the page paints fast.
func TestBrowserDashboardMillionRows(t *testing.T) {
	chromium := needChromium(t)
	l := newTestLake(t, "local")
	l.writePipeline(t, `sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double}
stream:
  trigger: 1s
`)
	srv := startServe(t, l)
	waitReady(t, srv.base)
	const rows, chunk = 1_000_000, 100_000
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for c := 0; c < rows/chunk; c++ {
		var b strings.Builder
		for i := c * chunk; i < (c+1)*chunk; i++ {
			v := 1.5 + float64(i%97)/100
			if i%250_000 == 123_456 {
				v = 250 // one spike per meter-sized stretch
			}
			fmt.Fprintf(&b, `{"timestamp":%q,"meter_id":"meter-%d","energy_usage":%g}`+"\n",
				t0.Add(time.Duration(i/4)*time.Second).Format(time.DateTime), i%4, v)
		}
		ingest(t, srv.base, "", b.String())
	}
	l.waitCount(t, "a million bronze rows", "SELECT count(*) AS n FROM bronze.meters", rows)

	b := newBrowser(t, chromium)
	start := time.Now()
	if st := b.open("bronze.meters with 1M rows", srv.base+"/tables/bronze.meters"); st != http.StatusOK {
		t.Fatalf("GET answered %d", st)
	}
	loaded := time.Since(start)
	b.waitFor("the chart", `(() => { const c = document.querySelector("svg#chart[data-rows]"); return !!c && +c.dataset.rows > 0 })()`, 30*time.Second)
	drawn := time.Since(start)
	type weight struct {
		FCP    float64 `json:"fcp"`
		Doc    float64 `json:"doc"`
		Series float64 `json:"series"`
		Total  float64 `json:"total"`
		Top    float64 `json:"top"`
		Points int     `json:"points"`
	}
	w := eval[weight](b, `(() => {
	  const p = performance.getEntriesByType("paint").find(e => e.name === "first-contentful-paint");
	  const nav = performance.getEntriesByType("navigation")[0];
	  const res = performance.getEntriesByType("resource");
	  const series = res.filter(r => r.name.includes("/series")).reduce((a, r) => Math.max(a, r.encodedBodySize), 0);
	  const sd = document.querySelector("svg#chart").__sd;
	  return {fcp: p ? p.startTime : -1, doc: nav.encodedBodySize, series: series,
	    total: nav.encodedBodySize + res.reduce((a, r) => a + r.encodedBodySize, 0),
	    top: Math.max(...sd.groups.flatMap(g => g.points.map(p => p.v))), points: +document.querySelector("svg#chart").dataset.points};
	})()`)
	t.Logf("1M rows: page loaded in %s, chart redrawn by %s; first contentful paint %.0f ms; HTML %d B, series answer %d B (%d points), whole page %d B",
		loaded.Round(time.Millisecond), drawn.Round(time.Millisecond), w.FCP, int(w.Doc), int(w.Series), w.Points, int(w.Total))
	if w.Series > 256<<10 {
		t.Errorf("series answer %d bytes for 1M rows: want at most 256 KiB", int(w.Series))
	}
	if w.Top != 250 {
		t.Errorf("highest point drawn %g, want the 250 spikes", w.Top)
	}
	b.screenshot("12-bronze-1M-rows")
	b.checkErrors()
}
