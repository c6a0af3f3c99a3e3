package main

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/layers/raw/brokers"
)

// sourceStatus adds the broker sources' connection state to the
// receiver's /readyz and /metrics: a gauge per source, and a line per
// source under /readyz's answer. A broker that is down does not make
// /readyz fail: this process still takes HTTP and TCP ingest, and the
// source reconnects by itself; alert on medallion_source_up instead.
type sourceStatus struct {
	next    http.Handler
	sources []brokers.Source // fixed once serve has started them
	up      *metrics.GaugeVec
}

func newSourceStatus(reg *metrics.Registry, next http.Handler, sources []brokers.Source) *sourceStatus {
	return &sourceStatus{
		next:    next,
		sources: slices.Clone(sources),
		up: reg.Gauge("medallion_source_up",
			"1 while a broker source is connected and consuming; 0 while it is down and reconnecting (see /readyz for why).",
			"source", "kind"),
	}
}

func (s *sourceStatus) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	statuses := make([]brokers.Status, len(s.sources))
	for i, src := range s.sources {
		statuses[i] = src.Status()
		v := 0.0
		if statuses[i].Up {
			v = 1
		}
		s.up.With(statuses[i].Source, statuses[i].Kind).Set(v)
	}
	if req.URL.Path != "/readyz" || len(statuses) == 0 {
		s.next.ServeHTTP(w, req)
		return
	}
	rec := &recorded{header: w.Header(), code: http.StatusOK}
	s.next.ServeHTTP(rec, req)
	w.WriteHeader(rec.code)
	w.Write(rec.body.Bytes())
	for _, st := range statuses {
		fmt.Fprintln(w, statusLine(st))
	}
}

// statusLine is one source's line under /readyz.
func statusLine(st brokers.Status) string {
	state := "up"
	if !st.Up {
		state = "down"
	}
	line := fmt.Sprintf("source %s (%s): %s", st.Source, st.Kind, state)
	if !st.Since.IsZero() {
		line += " since " + st.Since.UTC().Format(time.RFC3339)
	}
	if !st.Up && st.Err != nil {
		line += ": " + st.Err.Error()
	}
	return line
}

// recorded holds a response so that lines can be added after it.
type recorded struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorded) Header() http.Header         { return r.header }
func (r *recorded) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorded) WriteHeader(code int)        { r.code = code }
