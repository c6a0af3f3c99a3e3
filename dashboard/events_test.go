package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// A commit reaches an open /api/events stream as a "commit" event per
// table, within a second of the job: the runner's OnResult hook (as serve
// sets it) makes the dashboard look at once.
func TestDashboardEventsAfterCommit(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	f.runner.OnResult = func(jobs.Result) { d.Notify() }
	srv := httptest.NewServer(d)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /api/events: %d %s", res.StatusCode, ct)
	}
	got := make(chan commitEvent, 32)
	go func() {
		sc := bufio.NewScanner(res.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "commit":
				var ev commitEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err == nil {
					got <- ev
				}
			}
		}
		close(got)
	}()
	time.Sleep(200 * time.Millisecond) // the watcher has seen the first versions

	f.deliver(t)
	done := time.Now()
	want := map[string]bool{"bronze.meters": true, "silver.usage_1m": true, "gold.usage_ma": true}
	for len(want) > 0 {
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("stream ended; still waiting for %v", want)
			}
			if ev.Version < 1 {
				t.Errorf("event %+v: want the new version", ev)
			}
			if want[ev.Table] {
				t.Logf("commit of %s v%d reached the stream %s after the run", ev.Table, ev.Version, time.Since(done).Round(time.Millisecond))
			}
			delete(want, ev.Table)
		case <-time.After(time.Second):
			t.Fatalf("no commit event within a second for %v", want)
		}
	}

	// StopEvents (serve's shutdown) ends the stream.
	d.StopEvents()
	select {
	case _, ok := <-got:
		for ok {
			_, ok = <-got
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after StopEvents")
	}
}

// live.js's fetch of a page gets the panels without the chart's series
// (the chart redraws itself): the same panels, no svg#chart.
func TestDashboardLivePanels(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	full := get(t, d, "/tables/gold.usage_ma").body
	r := do(t, d, http.MethodGet, "/tables/gold.usage_ma", map[string]string{liveHeader: "panels"})
	if r.code != http.StatusOK {
		t.Fatalf("live fetch: %d", r.code)
	}
	if n, m := strings.Count(full, `<section class="panel`), strings.Count(r.body, `<section class="panel`); n != m {
		t.Errorf("%d panels in the page, %d in the live fetch", n, m)
	}
	if !strings.Contains(full, `id="chart"`) || strings.Contains(r.body, `id="chart"`) {
		t.Errorf("the page must draw the chart and the live fetch must not")
	}
}

// Pages and series answers are gzipped for clients that accept it.
func TestDashboardGzip(t *testing.T) {
	f := newFixture(t)
	f.deliver(t)
	d := newDashboard(t, f, "")
	for _, u := range []string{"/tables/gold.usage_ma", "/api/tables/bronze.meters/series", "/"} {
		plain := do(t, d, http.MethodGet, u, nil)
		r := do(t, d, http.MethodGet, u, map[string]string{"Accept-Encoding": "gzip, deflate"})
		if r.code != http.StatusOK || r.header.Get("Content-Encoding") != "gzip" || len(r.body) >= len(plain.body) {
			t.Errorf("%s: %d, encoding %q, %d bytes gzipped vs %d", u, r.code, r.header.Get("Content-Encoding"), len(r.body), len(plain.body))
		}
		if plain.header.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzipped for a client that did not ask", u)
		}
	}
}
