package main

import (
	"encoding/json"
	"fmt"
	"net/http"
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
