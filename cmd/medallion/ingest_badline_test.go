package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHTTPIngestBadLine: one bad line in 5,000 does not refuse the request:
// it is answered 202 and landed whole, 4,999 rows reach bronze and the bad
// line is in bronze._quarantine with its line in the request.
func TestHTTPIngestBadLine(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, `sources:
  meters:
    format: ndjson
    schema:
      id:       {type: int64, required: true}
      meter_id: {type: string, required: true}
`)
	srv := startServe(t, l, "--no-ui")
	var body strings.Builder
	const n, badAt = 5000, 1234
	for i := 1; i <= n; i++ {
		if i == badAt {
			body.WriteString(`{"id": 1234, "meter_id": "m1"` + "\n") // cut short
			continue
		}
		fmt.Fprintf(&body, `{"id":%d,"meter_id":"m%d"}`+"\n", i, i%7)
	}
	resp, err := http.Post(srv.base+"/v1/ingest/meters", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Rows      int64  `json:"rows"`
		BadLines  int64  `json:"bad_lines"`
		FirstLine int64  `json:"first_line"`
		Object    string `json:"object"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || r.Rows != n || r.FirstLine != 1 {
		t.Fatalf("answer %d %+v (%v); want 202 with %d rows from line 1", resp.StatusCode, r, err, n)
	}
	if r.BadLines != 1 {
		t.Errorf("bad_lines %d, want 1", r.BadLines)
	}
	l.run(t, "run", "bronze")
	if got := l.query(t, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM bronze.meters"); got != "n,d\n4999,4999\n" {
		t.Errorf("bronze:\n%s", got)
	}
	q := l.query(t, "SELECT line, source_file FROM bronze._quarantine")
	if want := fmt.Sprintf("line,source_file\n%d,%s\n", badAt-r.FirstLine+1, r.Object); q != want {
		t.Errorf("quarantine:\n%s\nwant\n%s", q, want)
	}
}

// TestTCPIngestBadLine: the same over a TCP line listener: one bad line in
// 5,000 is landed with the rest, 4,999 rows reach bronze, and the
// quarantine's line number points at the bad line in its raw object.
func TestTCPIngestBadLine(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, `sources:
  meters:
    format: ndjson
    listen: "127.0.0.1:0"
    schema:
      id:       {type: int64, required: true}
      meter_id: {type: string, required: true}
`)
	srv := startServe(t, l, "--no-ui")
	var addr string
	waitFor(t, "the tcp line listener", func() bool {
		_, rest, ok := strings.Cut(srv.output(), "tcp line listener on ")
		addr, _, _ = strings.Cut(rest, "\n")
		return ok && strings.Contains(rest, "\n")
	})
	const n, badAt = 5000, 1234
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(conn)
	for i := 1; i <= n; i++ {
		if i == badAt {
			w.WriteString(`{"id": 1234, "meter_id": "m1"` + "\n") // cut short
			continue
		}
		fmt.Fprintf(w, `{"id":%d,"meter_id":"m%d"}`+"\n", i, i%7)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every line promoted", func() bool {
		l.run(t, "run", "bronze")
		// The listener lands its lines in objects of its own pace: until the
		// first one is promoted the tables do not exist yet.
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT (SELECT count(*) FROM bronze.meters) + (SELECT count(*) FROM bronze._quarantine) AS n")
		return err == nil && out == fmt.Sprintf("n\n%d\n", n)
	})
	if got := l.query(t, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM bronze.meters"); got != "n,d\n4999,4999\n" {
		t.Errorf("bronze:\n%s", got)
	}
	q := strings.Split(strings.TrimSpace(l.query(t, "SELECT line, source_file FROM bronze._quarantine")), "\n")
	if len(q) != 2 {
		t.Fatalf("quarantine: %q, want one row", q)
	}
	lineText, key, _ := strings.Cut(q[1], ",")
	line, err := strconv.Atoi(lineText)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := l.store.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("raw object %s: %v", key, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for i := 1; sc.Scan(); i++ {
		if i == line {
			if got := sc.Text(); got != `{"id": 1234, "meter_id": "m1"` {
				t.Errorf("line %d of %s is %q, want the bad line", line, key, got)
			}
			return
		}
	}
	t.Errorf("%s has no line %d", key, line)
}
