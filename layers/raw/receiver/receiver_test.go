package receiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

const ndjsonCT = "application/x-ndjson"

func TestNewRefusesBadOptions(t *testing.T) {
	st := testenv.LocalStore(t)
	p := pipeline(t)
	for name, o := range map[string]Options{
		"no store":          {Pipeline: p},
		"no pipeline":       {Store: st},
		"pending below max": {Store: st, Pipeline: p, MaxBodyBytes: 2 << 20, MaxPending: 1 << 20},
		"negative interval": {Store: st, Pipeline: p, FlushInterval: -time.Second},
		"budget below body": {Store: st, Pipeline: p, MaxBodyBytes: 1 << 20, MaxBuffered: 2 << 20},
		"negative timeout":  {Store: st, Pipeline: p, BodyTimeout: -time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

// TestStatusCodes shows every status code of the ingest endpoint.
func TestStatusCodes(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ts := &testStore{Store: st}
		p := pipeline(t)
		h := start(t, ts, p, func(o *Options) {
			o.Token = "s3cret"
			o.MaxBodyBytes = 1000
			o.MaxPending = 1000
			o.FlushAttempts = 2
			o.FlushTimeout = 5 * time.Second
		})
		auth := []string{"Authorization", "Bearer s3cret"}
		body := ndjsonRows([]meterRow{{1, 1, 0.5}, {1, 2, 1.5}})

		// 202: landed, with the object that holds the rows.
		r := h.post(t, "meters", ndjsonCT, body, auth...)
		if r.code != http.StatusAccepted || r.ok.Rows != 2 || r.ok.Source != "meters" || !strings.HasPrefix(r.ok.Object, "raw/meters/dt=") || !strings.HasSuffix(r.ok.Object, ".ndjson") {
			t.Fatalf("202: got %d %+v %s", r.code, r.ok, r.err)
		}
		ms, bodies := rawObjects(t, st, "meters")
		if len(ms) != 1 || ms[0].Key != r.ok.Object || string(bodies[0]) != body || !strings.HasPrefix(ms[0].Name, "http-") {
			t.Fatalf("raw after 202: %+v %q", ms, bodies)
		}

		// 200: the same bytes again (alone in their batch) are already landed.
		if r2 := h.post(t, "meters", ndjsonCT, body, auth...); r2.code != http.StatusOK || !r2.ok.Duplicate || r2.ok.Object != r.ok.Object || r2.ok.Rows != 2 {
			t.Errorf("duplicate: got %d %+v %s", r2.code, r2.ok, r2.err)
		}
		// 200: no rows.
		if r2 := h.post(t, "meters", "application/json", " [ ] ", auth...); r2.code != http.StatusOK || r2.ok.Rows != 0 || r2.ok.Object != "" {
			t.Errorf("empty: got %d %+v %s", r2.code, r2.ok, r2.err)
		}
		// 202 for a JSON array to a json source: NDJSON raw object.
		if r2 := h.post(t, "events", "application/json; charset=utf-8", `[{"id": 1, "kind": "a"}, {"id": 2}]`, auth...); r2.code != http.StatusAccepted || r2.ok.Rows != 2 {
			t.Errorf("json array: got %d %+v %s", r2.code, r2.ok, r2.err)
		} else if _, b := rawObjects(t, st, "events"); len(b) != 1 || string(b[0]) != "{\"id\":1,\"kind\":\"a\"}\n{\"id\":2}\n" {
			t.Errorf("json array landed as %q", b)
		}

		// 400 for a body that is not framed at all; it names the line.
		if r2 := h.post(t, "meters", ndjsonCT, "client,seq\n1,9\n", auth...); r2.code != http.StatusBadRequest || !strings.Contains(r2.err, "line 1: invalid JSON") {
			t.Errorf("400: got %d %s", r2.code, r2.err)
		}
		if r2 := h.post(t, "clicks", "text/csv", "user,n\nu1,1\nu\xe92,2\n", auth...); r2.code != http.StatusBadRequest || !strings.Contains(r2.err, "line 3: not UTF-8") {
			t.Errorf("400 csv: got %d %s", r2.code, r2.err)
		}
		// A bad line in a framed body is landed (bronze quarantines it): 202.
		if r2 := h.post(t, "clicks", "text/csv", "user,n\nu1,1\nu2\n", auth...); r2.code != http.StatusAccepted || r2.ok.Rows != 2 || r2.ok.BadLines != 1 || r2.ok.FirstLine != 1 {
			t.Errorf("csv with a bad line: got %d %+v %s", r2.code, r2.ok, r2.err)
		}

		// 401: missing, wrong scheme, wrong token.
		for _, hdr := range [][]string{nil, {"Authorization", "Basic s3cret"}, {"Authorization", "Bearer s3cre"}, {"Authorization", "Bearer s3cretX"}} {
			r2 := h.post(t, "meters", ndjsonCT, body, hdr...)
			if r2.code != http.StatusUnauthorized || r2.hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("401 with %v: got %d", hdr, r2.code)
			}
		}
		// 404 (after auth: unknown clients learn nothing about sources).
		if r2 := h.post(t, "nope", ndjsonCT, body, auth...); r2.code != http.StatusNotFound || !strings.Contains(r2.err, "meters, events, clicks") {
			t.Errorf("404: got %d %s", r2.code, r2.err)
		}
		if r2 := h.post(t, "nope", ndjsonCT, body); r2.code != http.StatusUnauthorized {
			t.Errorf("unknown source without token: got %d, want 401", r2.code)
		}
		// 405.
		if code, _ := h.get(t, "/v1/ingest/meters"); code != http.StatusMethodNotAllowed {
			t.Errorf("GET ingest: got %d, want 405", code)
		}
		// 413: by Content-Length, streamed (chunked), and gzipped.
		big := ndjsonRows(make([]meterRow, 100))
		if r2 := h.post(t, "meters", ndjsonCT, big, auth...); r2.code != http.StatusRequestEntityTooLarge {
			t.Errorf("413: got %d %s", r2.code, r2.err)
		}
		if r2 := postTo(t, h.srv.Client(), h.srv.URL, "meters", ndjsonCT, io.MultiReader(strings.NewReader(big)), auth...); r2.code != http.StatusRequestEntityTooLarge {
			t.Errorf("413 chunked: got %d %s", r2.code, r2.err)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(big))
		zw.Close()
		if gz.Len() >= 1000 {
			t.Fatalf("gzip body %d bytes: not a bomb", gz.Len())
		}
		if r2 := h.post(t, "meters", ndjsonCT, gz.String(), append(auth, "Content-Encoding", "gzip")...); r2.code != http.StatusRequestEntityTooLarge {
			t.Errorf("413 gzip: got %d %s", r2.code, r2.err)
		}
		gz.Reset()
		zw = gzip.NewWriter(&gz)
		zw.Write([]byte(ndjsonRows([]meterRow{{7, 1, 1}})))
		zw.Close()
		if r2 := h.post(t, "meters", ndjsonCT, gz.String(), append(auth, "Content-Encoding", "gzip")...); r2.code != http.StatusAccepted || r2.ok.Rows != 1 {
			t.Errorf("gzip: got %d %s", r2.code, r2.err)
		}
		// 415: unknown type, JSON to a csv source, CSV to a JSON source, other encodings.
		for _, c := range []struct{ source, ct, enc string }{
			{"meters", "text/plain", ""}, {"meters", "", ""}, {"clicks", ndjsonCT, ""}, {"clicks", "application/json", ""},
			{"meters", "text/csv", ""}, {"meters", ndjsonCT, "br"},
		} {
			hdr := append([]string(nil), auth...)
			if c.enc != "" {
				hdr = append(hdr, "Content-Encoding", c.enc)
			}
			if r2 := h.post(t, c.source, c.ct, "{}\n", hdr...); r2.code != http.StatusUnsupportedMediaType {
				t.Errorf("415 for %+v: got %d %s", c, r2.code, r2.err)
			}
		}

		// 429: one request waits at the gate holding 600 of 1000 bytes;
		// another of 600 does not fit.
		ts.hold()
		row600 := ndjsonRows(make([]meterRow, 600/len(`{"client":0,"seq":0,"v":0}`+"\n")))
		first := make(chan reply, 1)
		go func() {
			first <- h.post(t, "meters", ndjsonCT, strings.Replace(row600, `"seq":0`, `"seq":100`, 1), auth...)
		}()
		waitFor(t, "the first request at the gate", func() bool { return ts.held.Load() == 1 })
		r2 := h.post(t, "meters", ndjsonCT, strings.Replace(row600, `"seq":0`, `"seq":101`, 1), auth...)
		if r2.code != http.StatusTooManyRequests || r2.hdr.Get("Retry-After") == "" {
			t.Errorf("429: got %d %s", r2.code, r2.err)
		}
		// Another source has its own room.
		go func() { first <- h.post(t, "events", ndjsonCT, `{"id":3}`, auth...) }()

		// 503 while shutting down; the request already accepted is
		// landed during the drain and gets its 202.
		waitFor(t, "both requests at the gate", func() bool { return ts.held.Load() == 2 })
		closed := make(chan error, 1)
		go func() { closed <- h.r.Close(context.Background()) }()
		waitFor(t, "shutdown", func() bool { return h.r.closing.Load() })
		if r2 := h.post(t, "meters", ndjsonCT, body, auth...); r2.code != http.StatusServiceUnavailable || r2.hdr.Get("Retry-After") == "" {
			t.Errorf("503 while closing: got %d %s", r2.code, r2.err)
		}
		if code, _ := h.get(t, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("readyz while closing: got %d", code)
		}
		ts.release()
		for range 2 {
			if r := <-first; r.code != http.StatusAccepted {
				t.Errorf("request accepted before shutdown: got %d %s", r.code, r.err)
			}
		}
		if err := <-closed; err != nil {
			t.Error(err)
		}

		// Metrics of all that.
		var m strings.Builder
		h.reg.WriteText(&m)
		for _, want := range []string{
			`medallion_ingest_requests_total{source="meters",code="202"} 3`,
			`medallion_ingest_requests_total{source="meters",code="200"} 2`,
			`medallion_ingest_requests_total{source="meters",code="429"} 1`,
			`medallion_ingest_requests_total{source="",code="404"} 1`,
			`medallion_ingest_flushes_total{source="meters",result="duplicate"} 1`,
			`medallion_ingest_pending_bytes{source="meters"} 0`,
			`medallion_ingest_flush_duration_seconds_count{source="meters"}`,
		} {
			if !strings.Contains(m.String(), want) {
				t.Errorf("metrics lack %s\n%s", want, m.String())
			}
		}
	})
}

// TestLandingFailure: a batch the lake refuses gets 503 and nothing of it
// is acknowledged or landed; /readyz reports an unreachable lake.
func TestLandingFailure(t *testing.T) {
	st := testenv.LocalStore(t)
	ts := &testStore{Store: st}
	h := start(t, ts, pipeline(t), func(o *Options) { o.FlushAttempts = 2 })
	if code, body := h.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := h.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz: %d %q", code, body)
	}
	ts.failPuts.Store(true)
	r := h.post(t, "meters", ndjsonCT, ndjsonRows([]meterRow{{1, 1, 1}}))
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.err, "nothing of it is acknowledged") {
		t.Errorf("landing failure: got %d %s", r.code, r.err)
	}
	if ms, _ := rawObjects(t, st, "meters"); len(ms) != 0 {
		t.Errorf("a failed batch left manifests: %+v", ms)
	}
	ts.failPuts.Store(false)
	if r := h.post(t, "meters", ndjsonCT, ndjsonRows([]meterRow{{1, 1, 1}})); r.code != http.StatusAccepted {
		t.Errorf("retry: got %d %s", r.code, r.err)
	}
	ts.failStat.Store(true)
	if code, body := h.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "unreachable") {
		t.Errorf("readyz with a failing lake: %d %q", code, body)
	}
	if code, body := h.get(t, "/metrics"); code != http.StatusOK || !strings.Contains(body, `medallion_ingest_flushes_total{source="meters",result="error"} 1`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
}

// loadClients runs n clients posting NDJSON batches of unique rows until
// stop is closed or the endpoint stops answering 2xx/429, and returns the
// rows acknowledged to each (client, seq) and the sum of acknowledged row
// counts. Answers other than 2xx, 429 and 503 fail the test.
func loadClients(t *testing.T, base string, n, clientOffset int, stop <-chan struct{}) (acked map[[2]int]int, sum int64, requests int) {
	t.Helper()
	var mu sync.Mutex
	acked = map[[2]int]int{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for c := clientOffset; c < clientOffset+n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				rows := make([]meterRow, 1+rng.IntN(40))
				for i := range rows {
					seq++
					rows[i] = meterRow{Client: c, Seq: seq, V: float64(rng.IntN(1000)) / 10}
				}
				r := postTo(t, client, base, "meters", ndjsonCT, strings.NewReader(ndjsonRows(rows)))
				switch {
				case r.code/100 == 2:
					if r.ok.Rows != int64(len(rows)) || r.ok.Object == "" {
						t.Errorf("client %d: ack %+v for %d rows", c, r.ok, len(rows))
					}
					mu.Lock()
					for _, row := range rows {
						acked[[2]int{row.Client, row.Seq}]++
					}
					sum += r.ok.Rows
					requests++
					mu.Unlock()
				case r.code == http.StatusTooManyRequests:
					time.Sleep(50 * time.Millisecond)
				case r.code == http.StatusServiceUnavailable || r.code == -1:
					return // shutting down or gone
				default:
					t.Errorf("client %d: %d %s", c, r.code, r.err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return acked, sum, requests
}

// checkExactlyOnce compares the acknowledged rows with the raw objects:
// every acknowledged row is in exactly one raw object, and nothing else is.
func checkExactlyOnce(t *testing.T, st lake.Store, acked map[[2]int]int, sum int64) {
	t.Helper()
	counts, total := rawRowCounts(t, st)
	if int64(len(acked)) != sum {
		t.Errorf("%d distinct rows acknowledged, responses sum to %d", len(acked), sum)
	}
	lost, doubled := 0, 0
	for k, n := range acked {
		if n != 1 {
			t.Fatalf("row %v acknowledged %d times", k, n)
		}
		switch counts[k] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	if lost > 0 || doubled > 0 {
		t.Errorf("acknowledged rows: %d lost, %d doubled in raw", lost, doubled)
	}
	if int64(total) != sum {
		t.Errorf("raw holds %d rows, clients were acknowledged %d", total, sum)
	}
}

// TestConcurrentClients: 20 clients posting for a few seconds lose nothing
// and double nothing: acknowledged rows == raw rows == bronze rows.
func TestConcurrentClients(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		p := pipeline(t)
		h := start(t, st, p, func(o *Options) {
			o.FlushInterval = 100 * time.Millisecond
			o.FlushBytes = 16 << 10 // some flushes by size, some by time
		})
		stop := make(chan struct{})
		time.AfterFunc(3*time.Second, func() { close(stop) })
		acked, sum, requests := loadClients(t, h.srv.URL, 20, 0, stop)
		if sum == 0 {
			t.Fatal("nothing acknowledged")
		}
		checkExactlyOnce(t, st, acked, sum)
		ms, _ := rawObjects(t, st, "meters")
		t.Logf("%d requests, %d rows acknowledged, in %d raw objects", requests, sum, len(ms))
		if len(ms) >= requests {
			t.Errorf("%d objects for %d requests: no batching", len(ms), requests)
		}
		runBronze(t, st, p, "meters", sum)
	})
}

// TestCloseDuringLoad: Close while 20 clients post: every acknowledged row
// is in the lake exactly once, later requests get 503, and a new receiver
// on the same lake (a restart) carries on without losing or doubling.
func TestCloseDuringLoad(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		p := pipeline(t)
		h := start(t, st, p, nil)
		stop := make(chan struct{})
		time.AfterFunc(1500*time.Millisecond, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := h.r.Close(ctx); err != nil {
				t.Error(err)
			}
		})
		time.AfterFunc(30*time.Second, func() { close(stop) }) // a bound; clients stop at their first 503
		acked, sum, _ := loadClients(t, h.srv.URL, 20, 0, stop)
		if r := h.post(t, "meters", ndjsonCT, ndjsonRows([]meterRow{{99, 1, 1}})); r.code != http.StatusServiceUnavailable {
			t.Errorf("after Close: got %d", r.code)
		}
		checkExactlyOnce(t, st, acked, sum)

		// Restart: a new receiver on the same lake.
		h2 := start(t, st, p, nil)
		stop2 := make(chan struct{})
		time.AfterFunc(500*time.Millisecond, func() { close(stop2) })
		acked2, sum2, _ := loadClients(t, h2.srv.URL, 20, 100, stop2)
		for k, v := range acked2 {
			acked[k] += v
		}
		checkExactlyOnce(t, st, acked, sum+sum2)
		runBronze(t, st, p, "meters", sum+sum2)
	})
}

// TestStartContextCanceled: canceling Start's ctx (SIGTERM in serve) drains
// like Close.
func TestStartContextCanceled(t *testing.T) {
	st := testenv.LocalStore(t)
	r, err := New(Options{Store: st, Pipeline: pipeline(t), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, r.Handler())
	done := make(chan reply, 1)
	go func() {
		done <- postTo(t, srv.Client(), srv.URL, "meters", ndjsonCT, strings.NewReader(ndjsonRows([]meterRow{{1, 1, 1}})))
	}()
	waitFor(t, "the request in a batch", func() bool { return pendingOf(r, "meters") > 0 })
	cancel() // the hour-long interval never passes: only the drain lands it
	if rep := <-done; rep.code != http.StatusAccepted {
		t.Errorf("got %d %s", rep.code, rep.err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Error(err)
	}
	if ms, _ := rawObjects(t, st, "meters"); len(ms) != 1 {
		t.Errorf("%d objects", len(ms))
	}
}

// TestCloseDeadline: when Close's ctx ends before the lake answers, the
// waiting requests get 503 and Close says so.
func TestCloseDeadline(t *testing.T) {
	st := testenv.LocalStore(t)
	ts := &testStore{Store: st}
	ts.hold()
	defer ts.release()
	r, err := New(Options{Store: ts, Pipeline: pipeline(t), FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, r.Handler())
	done := make(chan reply, 1)
	go func() {
		done <- postTo(t, srv.Client(), srv.URL, "meters", ndjsonCT, strings.NewReader(ndjsonRows([]meterRow{{1, 1, 1}})))
	}()
	waitFor(t, "the batch at the gate", func() bool { return ts.held.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err == nil || !strings.Contains(err.Error(), "abandoned") {
		t.Errorf("Close: %v", err)
	}
	if rep := <-done; rep.code != http.StatusServiceUnavailable {
		t.Errorf("got %d %s", rep.code, rep.err)
	}
}

// TestCSVBatching: concurrent CSV requests share one raw object with one
// header; a request with another header gets an object of its own.
func TestCSVBatching(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		p := pipeline(t)
		h := start(t, st, p, func(o *Options) { o.FlushInterval = 500 * time.Millisecond })
		bodies := []string{
			"user,n\nu1,1\nu2,2\n",
			"user,n\r\nu3,3\r\n",
			"\xEF\xBB\xBFuser,n\nu4,4", // BOM, no final newline
			"n,user\n5,u5\n",           // another header
			"user,n\n\"u,6\",6\n",
		}
		var wg sync.WaitGroup
		for _, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := h.post(t, "clicks", "text/csv", b); r.code != http.StatusAccepted {
					t.Errorf("%q: %d %s", b, r.code, r.err)
				}
			}()
		}
		wg.Wait()
		_, objs := rawObjects(t, st, "clicks")
		rows := 0
		headers := 0
		for _, o := range objs {
			lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(o), "\r\n", "\n"), "\n"), "\n")
			if lines[0] != "user,n" && lines[0] != "n,user" {
				t.Errorf("object does not start with a header: %q", o)
			}
			for _, l := range lines {
				if l == "user,n" || l == "n,user" || strings.HasPrefix(l, "\xEF\xBB\xBF") {
					headers++
				}
			}
			rows += len(lines) - 1
		}
		if headers != len(objs) {
			t.Errorf("%d header lines in %d objects:\n%q", headers, len(objs), objs)
		}
		if rows != 6 || len(objs) > 3 {
			t.Errorf("%d rows in %d objects (want 6 rows in at most 3):\n%q", rows, len(objs), objs)
		}
		runBronze(t, st, p, "clicks", 6)
	})
}

// TestTCPListener: lines sent over TCP land; at Close the lines read are
// landed before the connection is closed.
func TestTCPListener(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		p := pipeline(t)
		h := start(t, st, p, func(o *Options) { o.FlushInterval = 20 * time.Millisecond })
		if _, err := h.r.ListenTCP(context.Background(), "clicks", "127.0.0.1:0"); err == nil {
			t.Error("a TCP listener for a csv source was opened")
		}
		addr, err := h.r.ListenTCP(context.Background(), "meters", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// Three senders that close their connections; the last line of
		// each has no newline, and one uses CRLF.
		var wg sync.WaitGroup
		for c := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.Dial("tcp", addr.String())
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				w := bufio.NewWriter(conn)
				for s := 1; s <= 500; s++ {
					end := "\n"
					if c == 1 {
						end = "\r\n"
					}
					if s == 500 {
						end = ""
					}
					fmt.Fprintf(w, `{"client":%d,"seq":%d,"v":1}%s`, 1000+c, s, end)
				}
				w.Flush()
			}()
		}
		wg.Wait()
		waitFor(t, "1500 TCP rows in raw", func() bool { _, n := rawRowCounts(t, st); return n == 1500 })

		// A sender that stays connected: its lines land at Close, and only
		// then is the connection closed.
		conn, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for s := 1; s <= 100; s++ {
			fmt.Fprintf(conn, `{"client":2000,"seq":%d}`+"\n", s)
		}
		fmt.Fprintf(conn, `{"client":2000,"seq":`) // incomplete: never landed
		waitFor(t, "the lines read", func() bool {
			var m strings.Builder
			h.reg.WriteText(&m)
			return strings.Contains(m.String(), `medallion_ingest_rows_received_total{source="meters",transport="tcp"} 1600`)
		})
		closeReceiver(t, h.r)
		counts, total := rawRowCounts(t, st)
		if total != 1600 {
			t.Errorf("raw holds %d rows, want 1600", total)
		}
		for c := 1000; c < 1003; c++ {
			for s := 1; s <= 500; s++ {
				if counts[[2]int{c, s}] != 1 {
					t.Fatalf("row %d/%d landed %d times", c, s, counts[[2]int{c, s}])
				}
			}
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("connection after Close: %v, want EOF", err)
		}
		runBronze(t, st, p, "meters", 1600)
	})
}

// TestTCPBackPressure: with a full buffer the listener stops reading; the
// sender's lines are landed once there is room, none dropped.
func TestTCPBackPressure(t *testing.T) {
	st := testenv.LocalStore(t)
	ts := &testStore{Store: st}
	h := start(t, ts, pipeline(t), func(o *Options) {
		o.MaxBodyBytes = 4 << 10
		o.MaxPending = 4 << 10
		o.FlushBytes = 1 << 10
		o.FlushInterval = 10 * time.Millisecond
	})
	addr, err := h.r.ListenTCP(context.Background(), "meters", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.hold()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(conn)
		for s := 1; s <= 5000; s++ {
			fmt.Fprintf(w, `{"client":3000,"seq":%d,"v":0}`+"\n", s)
		}
		if err := w.Flush(); err != nil {
			sent <- err
			return
		}
		sent <- conn.Close()
	}()
	// The listener blocks for room: from then on it reads nothing more
	// until a batch is landed, so pending is at its highest.
	waitFor(t, "the listener to wait for room", func() bool {
		b := h.r.sources["meters"]
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.waiting > 0
	})
	if p := pendingOf(h.r, "meters"); p > 4<<10 {
		t.Errorf("pending %d over MaxPending", p)
	}
	ts.release()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5000 rows", func() bool { _, n := rawRowCounts(t, st); return n == 5000 })
	counts, _ := rawRowCounts(t, st)
	if len(counts) != 5000 {
		t.Errorf("%d distinct rows", len(counts))
	}
}

func pendingOf(r *Receiver, source string) int64 {
	b := r.sources[source]
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

func closeReceiver(t *testing.T, r *Receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
