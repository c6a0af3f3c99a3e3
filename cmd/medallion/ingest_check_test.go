package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestWrongFormat: a CSV file into an ndjson source is refused before
// anything lands, naming the file and line; so is CSV on stdin. A file with
// one bad line among good ones still lands (bronze quarantines the line).
func TestIngestWrongFormat(t *testing.T) {
	pipeline, lakeDir := ingestPipeline(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ndjson")
	csv := filepath.Join(dir, "meters.csv")
	if err := os.WriteFile(good, []byte(`{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","energy_usage":1}`+"\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csv, []byte("timestamp,meter_id,energy_usage\n2024-01-01 00:00:00,m1,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"ingest", "-f", pipeline, "meters", good, csv}
	code, stdout, stderr := cli(t, "", args...)
	if code != 1 || stdout != "" {
		t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
	}
	oneLineErr(t, args, stderr, "medallion ingest: "+csv+`:1: "timestamp,meter_id,energy_usage" is not a JSON object`,
		"looks like CSV", "source meters is format: ndjson", "nothing was landed")
	if _, err := os.Stat(filepath.Join(lakeDir, "raw")); !os.IsNotExist(err) {
		t.Errorf("a refused ingest landed something: %v", err)
	}
	args = []string{"ingest", "-f", pipeline, "meters", "-"}
	code, _, stderr = cli(t, "a,b\n1,2\n", args...)
	if code != 1 {
		t.Errorf("CSV on stdin: exit %d", code)
	}
	oneLineErr(t, args, stderr, `medallion ingest: stdin:1: "a,b" is not a JSON object`)
	if code, stdout, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", good); code != 0 || !strings.Contains(stdout, "1 landed") {
		t.Errorf("one bad line among good ones: exit %d\n%s%s", code, stdout, stderr)
	}
}
