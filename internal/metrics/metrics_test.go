package metrics

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestWriteText(t *testing.T) {
	r := NewRegistry()
	req := r.Counter("medallion_test_requests_total", "Requests by code.\nSecond line \\ here.", "source", "code")
	req.With("meters", "202").Add(3)
	req.With("meters", "429").Inc()
	req.With("a\"b\\c\nd", "200").Inc()
	g := r.Gauge("medallion_test_pending_bytes", "Pending bytes.", "source")
	g.With("meters").Set(10)
	g.With("meters").Add(-4)
	r.Gauge("medallion_test_up", "No labels.").With().Set(1)
	h := r.Histogram("medallion_test_seconds", "Latency.", []float64{0.1, 1}, "source")
	h.With("meters").Observe(0.05)
	h.With("meters").Observe(0.1) // le is inclusive
	h.With("meters").Observe(5)
	r.Counter("medallion_test_empty_total", "No series yet.", "x")

	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP medallion_test_empty_total No series yet.
# TYPE medallion_test_empty_total counter
# HELP medallion_test_pending_bytes Pending bytes.
# TYPE medallion_test_pending_bytes gauge
medallion_test_pending_bytes{source="meters"} 6
# HELP medallion_test_requests_total Requests by code.\nSecond line \\ here.
# TYPE medallion_test_requests_total counter
medallion_test_requests_total{source="a\"b\\c\nd",code="200"} 1
medallion_test_requests_total{source="meters",code="202"} 3
medallion_test_requests_total{source="meters",code="429"} 1
# HELP medallion_test_seconds Latency.
# TYPE medallion_test_seconds histogram
medallion_test_seconds_bucket{source="meters",le="0.1"} 2
medallion_test_seconds_bucket{source="meters",le="1"} 2
medallion_test_seconds_bucket{source="meters",le="+Inf"} 3
medallion_test_seconds_sum{source="meters"} 5.15
medallion_test_seconds_count{source="meters"} 3
# HELP medallion_test_up No labels.
# TYPE medallion_test_up gauge
medallion_test_up 1
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.Body.String() != want {
		t.Errorf("handler body differs from WriteText")
	}
}

func TestRegisterTwice(t *testing.T) {
	r := NewRegistry()
	a := r.Counter("x_total", "x", "l")
	b := r.Counter("x_total", "x", "l")
	a.With("v").Inc()
	if b.With("v").Value() != 1 {
		t.Error("same registration should share series")
	}
	for name, f := range map[string]func(){
		"kind":      func() { r.Gauge("x_total", "x", "l") },
		"labels":    func() { r.Counter("x_total", "x", "m") },
		"bad name":  func() { r.Counter("x-y", "x") },
		"bad label": func() { r.Counter("y_total", "x", "1a") },
		"le":        func() { r.Histogram("h", "x", nil, "le") },
		"buckets":   func() { r.Histogram("h2", "x", []float64{1, 1}) },
		"arity":     func() { a.With("v", "w") },
		"negative":  func() { a.With("v").Add(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "c", "k")
	h := r.Histogram("h_seconds", "h", nil, "k")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				c.With("a").Add(0.5)
				h.With("a").Observe(0.01)
				if j%100 == 0 {
					_ = r.WriteText(&strings.Builder{})
				}
			}
		}()
	}
	wg.Wait()
	if v := c.With("a").Value(); v != 4000 {
		t.Errorf("counter = %v, want 4000", v)
	}
	if n := h.With("a").Count(); n != 8000 {
		t.Errorf("histogram count = %d, want 8000", n)
	}
}
