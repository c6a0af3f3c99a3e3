package receiver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// testPipeline has one source per format, none with a dedupe key, so that
// bronze keeps every row and row counts can be compared exactly.
const testPipeline = `
lake: file://./lake
sources:
  meters:
    format: ndjson
    schema:
      client: {type: int64, required: true}
      seq:    {type: int64, required: true}
      v:      {type: double}
  events:
    format: json
    schema:
      id:   {type: int64, required: true}
      kind: {type: string}
  clicks:
    format: csv
    schema:
      user: {type: string, required: true}
      n:    {type: int64}
`

func pipeline(t testing.TB) *config.Pipeline {
	t.Helper()
	p, err := config.Parse("medallion.yaml", []byte(testPipeline), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testStore decorates a real store: PutIfAbsent (the raw commit) can be
// held at a gate or made to fail, and Stat can be made to fail.
type testStore struct {
	lake.Store
	gate     chan struct{} // nil: open; else PutIfAbsent waits until it is closed
	mu       sync.Mutex
	failPuts atomic.Bool
	failStat atomic.Bool
	held     atomic.Int32 // PutIfAbsent calls waiting at the gate
}

var errInjected = errors.New("injected store failure")

func (s *testStore) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *testStore) release() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *testStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (lake.ObjectInfo, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.held.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			s.held.Add(-1)
			return lake.ObjectInfo{}, ctx.Err()
		}
		s.held.Add(-1)
	}
	if s.failPuts.Load() {
		return lake.ObjectInfo{}, errInjected
	}
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

func (s *testStore) Stat(ctx context.Context, key string) (lake.ObjectInfo, error) {
	if s.failStat.Load() {
		return lake.ObjectInfo{}, errInjected
	}
	return s.Store.Stat(ctx, key)
}

// harness is a started receiver behind an httptest server.
type harness struct {
	r   *Receiver
	srv *httptest.Server
	reg *metrics.Registry
}

func start(t *testing.T, st lake.Store, p *config.Pipeline, mod func(*Options)) *harness {
	t.Helper()
	reg := metrics.NewRegistry()
	o := Options{Store: st, Pipeline: p, Metrics: reg, FlushInterval: 50 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return &harness{r: r, srv: srv, reg: reg}
}

// reply is one HTTP answer.
type reply struct {
	code int
	hdr  http.Header
	ok   IngestResponse
	err  string
}

func (h *harness) post(t testing.TB, source, ct, body string, hdr ...string) reply {
	t.Helper()
	return postTo(t, h.srv.Client(), h.srv.URL, source, ct, strings.NewReader(body), hdr...)
}

func postTo(t testing.TB, c *http.Client, base, source, ct string, body io.Reader, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/ingest/"+source, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{code: -1, err: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := reply{code: resp.StatusCode, hdr: resp.Header}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, &rep.ok); err != nil {
			t.Errorf("2xx body %q: %v", b, err)
		}
	} else {
		var e errorResponse
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			rep.err = e.Error
		} else {
			rep.err = string(b)
		}
	}
	return rep
}

func (h *harness) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := h.srv.Client().Get(h.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawObjects reads every landed raw object of source, in receive order.
func rawObjects(t testing.TB, st lake.Store, source string) (ms []raw.Manifest, bodies [][]byte) {
	t.Helper()
	ctx := context.Background()
	ms, err := raw.Manifests(ctx, st, source)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		rc, err := raw.OpenObject(ctx, st, m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return ms, bodies
}

// meterRow is one row the load clients send: unique by (client, seq).
type meterRow struct {
	Client int     `json:"client"`
	Seq    int     `json:"seq"`
	V      float64 `json:"v"`
}

// rawRowCounts counts each (client, seq) over every raw object of meters
// and checks every line is one.
func rawRowCounts(t testing.TB, st lake.Store) (map[[2]int]int, int) {
	t.Helper()
	_, bodies := rawObjects(t, st, "meters")
	counts := map[[2]int]int{}
	total := 0
	for _, b := range bodies {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var r meterRow
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("raw line %q: %v", sc.Text(), err)
			}
			counts[[2]int{r.Client, r.Seq}]++
			total++
		}
	}
	return counts, total
}

// runBronze promotes source to bronze and checks that the bronze table
// holds want rows, every one written (none quarantined, dropped or
// duplicate). Under -race it only logs that it is skipped (see
// race_on_test.go).
func runBronze(t testing.TB, st lake.Store, p *config.Pipeline, source string, want int64) {
	t.Helper()
	if raceDetector {
		t.Logf("bronze check of %d rows skipped under -race (duckdb-go fails checkptr); it runs in the plain go test", want)
		return
	}
	ctx := context.Background()
	e, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "1GB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := bronze.Run(ctx, bronze.Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir()}}, p.Sources[source])
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() {
		t.Fatalf("bronze accounting does not hold: %s", s)
	}
	snap, err := delta.Open(st, "bronze/"+source).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := snap.NumRecords()
	if !ok {
		t.Fatal("bronze table without numRecords statistics")
	}
	if s.Written != want || n != want || s.RowsRead != want {
		t.Errorf("bronze.%s: %s; the table holds %d rows; want %d", source, s, n, want)
	}
}

func ndjsonRows(rows []meterRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, `{"client":%d,"seq":%d,"v":%g}`+"\n", r.Client, r.Seq, r.V)
	}
	return b.String()
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
