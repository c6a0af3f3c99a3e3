package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// ingestPipeline writes a medallion.yaml with a local lake and one ndjson
// source, meters, and returns its path and the lake directory.
func ingestPipeline(t *testing.T) (path, lakeDir string) {
	t.Helper()
	dir := t.TempDir()
	lakeDir = filepath.Join(dir, "lake")
	yaml := "lake: file://" + lakeDir + `
sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0}
`
	path = filepath.Join(dir, "medallion.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	markLakeDir(t, lakeDir)
	return path, lakeDir
}

// cli runs one command line and returns its exit code, stdout and stderr.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestIngest(t *testing.T) {
	pipeline, lakeDir := ingestPipeline(t)
	data := t.TempDir()
	code, _, stderr := cli(t, "", "generate", "energy", "--rows", "5000", "--out", filepath.Join(data, "meters.ndjson"))
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	file := filepath.Join(data, "meters.ndjson")

	code, stdout, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", file)
	if code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	landedLine := regexp.MustCompile(`^landed .*meters\.ndjson -> raw/meters/dt=\d{4}-\d\d-\d\d/\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{8}\.ndjson \(\d+\.\d KiB, sha256 [0-9a-f]{8}…\)$`)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !landedLine.MatchString(lines[0]) || lines[1] != "meters: 1 file, 1 landed ("+strings.Fields(lines[0])[4][1:]+" KiB), 0 already landed" {
		t.Fatalf("ingest output:\n%s", stdout)
	}

	// The same bytes again, from a file and from stdin: recognised.
	content, _ := os.ReadFile(file)
	code, stdout, stderr = cli(t, string(content), "ingest", "meters", file, "-", "-f", pipeline)
	if code != 0 {
		t.Fatalf("second ingest: exit %d: %s", code, stderr)
	}
	if stdout != "meters: 2 files, 0 landed (0 B), 2 already landed\n" {
		t.Fatalf("second ingest output:\n%s", stdout)
	}

	st, err := lake.NewLocal(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := raw.Manifests(context.Background(), st, "meters")
	if err != nil || len(ms) != 1 || ms[0].Size != int64(len(content)) || ms[0].Name != "meters.ndjson" || ms[0].Format != "ndjson" {
		t.Fatalf("manifests: %+v %v", ms, err)
	}
}

func TestIngestDirAndStdin(t *testing.T) {
	pipeline, _ := ingestPipeline(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"a.ndjson": "{\"a\":1}\n", "b.ndjson": "{\"b\":1}\n", ".hidden": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := cli(t, "{\"c\":1}\n", "ingest", "-f", pipeline, "meters", dir, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "landed "+filepath.Join(dir, "a.ndjson")+" -> ") ||
		!strings.HasPrefix(lines[1], "landed "+filepath.Join(dir, "b.ndjson")+" -> ") ||
		!strings.HasPrefix(lines[2], "landed stdin -> raw/meters/") || lines[3] != "meters: 3 files, 3 landed (24 B), 0 already landed" {
		t.Fatalf("output:\n%s", stdout)
	}
}

// TestIngestDirAsUsersExpect: re-running ingest over a folder prints one
// summary line, skips files still being written, takes --glob, and an
// empty folder is not an error.
func TestIngestDirAsUsersExpect(t *testing.T) {
	pipeline, _ := ingestPipeline(t)
	dir := t.TempDir()
	for name, body := range map[string]string{
		"a.ndjson": "{\"a\":1}\n", "b.ndjson": "{\"b\":1}\n", "c.json": "{\"c\":1}\n",
		"d.ndjson.part": "{\"d\"", "e.ndjson.tmp": "{", "f.ndjson.crdownload": "{", ".g.ndjson": "{",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", dir, "--glob", "*.ndjson")
	if code != 0 || strings.Count(stdout, "\n") != 3 || !strings.HasSuffix(stdout, "meters: 2 files, 2 landed (16 B), 0 already landed\n") {
		t.Fatalf("first ingest: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, stdout, stderr = cli(t, "", "ingest", "-f", pipeline, "meters", dir)
	if code != 0 || !strings.HasPrefix(stdout, "landed "+filepath.Join(dir, "c.json")+" -> ") ||
		!strings.HasSuffix(stdout, "\nmeters: 3 files, 1 landed (8 B), 2 already landed\n") || strings.Count(stdout, "\n") != 2 {
		t.Fatalf("second ingest: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	empty := t.TempDir()
	code, stdout, stderr = cli(t, "", "ingest", "-f", pipeline, "meters", empty)
	if code != 0 || stdout != "meters: nothing to ingest (no files to take in "+empty+")\n" {
		t.Fatalf("empty dir: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if code, _, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", dir, "--glob", "[x"); code != 2 || !strings.Contains(stderr, "--glob") {
		t.Fatalf("bad glob: exit %d: %s", code, stderr)
	}
}

func TestIngestErrors(t *testing.T) {
	pipeline, lakeDir := ingestPipeline(t)
	for _, tc := range []struct {
		args     []string
		code     int
		wantErr  string
		wantLake bool
	}{
		{[]string{"ingest", "-f", pipeline, "clicks", "x.csv"}, 1, `medallion ingest: unknown source "clicks": ` + pipeline + " declares meters\n", false},
		{[]string{"ingest", "-f", pipeline, "meters", "missing.ndjson"}, 1, "medallion ingest: missing.ndjson: no such file or directory (give files, directories or - for stdin)\n", false},
		{[]string{"ingest", "-f", pipeline, "meters"}, 2, "medallion ingest: want a SOURCE and at least one FILE, DIR or - (stdin)\n", false},
		{[]string{"ingest", "-f", pipeline, "meters", "-", "-"}, 2, "medallion ingest: - (stdin) given twice\n", false},
	} {
		code, _, stderr := cli(t, "", tc.args...)
		if code != tc.code || !strings.HasPrefix(stderr, tc.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d, %q", tc.args, code, stderr, tc.code, tc.wantErr)
		}
	}
	if _, err := os.Stat(filepath.Join(lakeDir, "raw")); err == nil {
		t.Errorf("a failed ingest landed something")
	}
}

func TestIngestS3(t *testing.T) {
	srv := testenv.MinIO(t)
	st, opts, url := testenv.S3Store(t)
	markLake(t, st)
	dir := t.TempDir()
	yaml := "lake: " + url + "\ns3:\n  endpoint: " + srv.Endpoint + "\n  access_key: " + opts.AccessKey +
		"\n  secret_key: " + opts.SecretKey + "\n  secure: false\nsources:\n  clicks:\n    format: csv\n    schema:\n      event_id: {type: string}\n"
	pipeline := filepath.Join(dir, "medallion.yaml")
	if err := os.WriteFile(pipeline, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "event_id\n1\n", "ingest", "-f", pipeline, "clicks", "-")
	if code != 0 || !strings.HasPrefix(stdout, "landed stdin -> raw/clicks/dt=") || !strings.Contains(stdout, ".csv (") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, "event_id\n1\n", "ingest", "-f", pipeline, "clicks", "-")
	if code != 0 || stdout != "clicks: 1 file, 0 landed (0 B), 1 already landed\n" {
		t.Fatalf("second ingest: exit %d: %s", code, stdout)
	}
}
