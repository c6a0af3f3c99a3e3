package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/randid"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

// oneLineErr fails unless stderr is exactly one line starting with prefix
// and containing each of wants.
func oneLineErr(t *testing.T, args []string, stderr, prefix string, wants ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, prefix) {
		t.Errorf("%v: stderr %q; want one line starting with %q", args, stderr, prefix)
		return
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("%v: stderr %q; want it to say %q", args, stderr, w)
		}
	}
}

// initLake runs `medallion init` for a local lake in a temp dir and
// returns the pipeline file.
func initLake(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "medallion.yaml")
	args := []string{"init", "-f", pipeline, "--lake", "file://" + filepath.Join(dir, "lake")}
	if code, _, stderr := cli(t, "", args...); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	// The starter mirrors into public.meter_usage_ma of $DATABASE_URL, which
	// every test shares: a table of its own keeps one test's lake from
	// meeting another's mirror state (run --rebuild refusals).
	b, err := os.ReadFile(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	own := "to: public.ma_" + randid.Hex(6)
	b = []byte(strings.Replace(string(b), "to: public.meter_usage_ma", own, 1))
	if err := os.WriteFile(pipeline, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return pipeline
}

func TestCLIUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		first string // the first line of stderr
	}{
		{nil, "medallion: a medallion-architecture lakehouse in one binary"},
		{[]string{"frobnicate"}, `medallion: unknown command "frobnicate"`},
		{[]string{"tables", "--nope"}, "medallion tables: flag provided but not defined: -nope"},
		{[]string{"query", "--format"}, "medallion query: flag needs an argument: -format"},
		{[]string{"history"}, "medallion history: want exactly one TABLE, e.g. bronze.meters"},
		{[]string{"history", "bronze.meters", "silver.x"}, "medallion history: want exactly one TABLE, e.g. bronze.meters"},
		{[]string{"version", "extra"}, `medallion version: unexpected argument "extra"`},
		{[]string{"tables", "--log-format", "xml"}, `medallion tables: --log-format "xml": want text or json`},
		{[]string{"init", "--lake"}, "medallion init: flag needs an argument: -lake"},
		{[]string{"replay"}, "medallion replay: want one bronze table, e.g. bronze.meters"},
		{[]string{"replay", "gold.x"}, "medallion replay: gold.x: replay takes a bronze source table (bronze.SOURCE); its rows come from bronze._quarantine"},
		{[]string{"replay", "bronze._quarantine"}, "medallion replay: bronze._quarantine: replay takes a bronze source table (bronze.SOURCE); its rows come from bronze._quarantine"},
	} {
		code, stdout, stderr := cli(t, "", tc.args...)
		first, _, _ := strings.Cut(stderr, "\n")
		if code != 2 || first != tc.first || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", tc.args, code, stderr, stdout, tc.first)
		}
		// A usage error says how to call the command.
		if len(tc.args) > 0 && tc.args[0] != "frobnicate" && !strings.Contains(stderr, "\nusage: medallion "+tc.args[0]) {
			t.Errorf("%v: stderr %q has no usage line", tc.args, stderr)
		}
	}
}

func TestCLIHelp(t *testing.T) {
	for _, h := range []string{"--help", "-h", "help"} {
		code, stdout, stderr := cli(t, "", h)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "usage: medallion COMMAND") {
			t.Errorf("medallion %s: exit %d, stdout %q, stderr %q", h, code, stdout, stderr)
		}
		for _, c := range commands() {
			if !strings.Contains(stdout, "\n  "+c.name+" ") {
				t.Errorf("medallion %s does not list %s", h, c.name)
			}
		}
	}
	for _, c := range commands() {
		for _, h := range []string{"--help", "-h"} {
			code, stdout, stderr := cli(t, "", c.name, h)
			if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: medallion "+c.name) ||
				!strings.Contains(stdout, c.summary) || !strings.Contains(stdout, "-log-format") {
				t.Errorf("medallion %s %s: exit %d, stdout %q, stderr %q", c.name, h, code, stdout, stderr)
			}
		}
	}
}

func TestCLIMissingPipeline(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{"tables"}, {"run"}, {"ingest", "meters", "x.ndjson"}, {"history", "bronze.meters"}, {"query", "SELECT 1"}} {
		code, _, stderr := cli(t, "", args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		oneLineErr(t, args, stderr, "medallion "+args[0]+": no medallion.yaml in ", "run `medallion init` or pass -f FILE")
	}
	args := []string{"tables", "-f", "elsewhere.yaml"}
	code, _, stderr := cli(t, "", args...)
	if code != 1 {
		t.Errorf("%v: exit %d, want 1", args, code)
	}
	oneLineErr(t, args, stderr, "medallion tables: pipeline file elsewhere.yaml does not exist", "medallion init -f elsewhere.yaml")
}

func TestCLIBadPipeline(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "lake: file://./lake\nsources:\n  meters:\n    format: ndjson\n    schemaa:\n      a: {type: string}\n",
			`:5:5: unknown key "schemaa" in sources.meters`},
		{"unknown top-level key", "lake: file://./lake\nsilvr: {}\n", `:2:1: unknown key "silvr"`},
		{"bad duration", "lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      t: {type: timestamp}\n" +
			"silver:\n  w:\n    from: m\n    event_time: t\n    window: {size: 1 minute}\n    watermark: 2m\n    aggregates: {n: count(*)}\n", ":11:"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"tables", "run"} {
			args := []string{c, "-f", path}
			code, _, stderr := cli(t, "", args...)
			if code != 1 {
				t.Errorf("%s: %v: exit %d, want 1", tc.name, args, code)
			}
			oneLineErr(t, args, stderr, "medallion "+c+": "+path+tc.want)
		}
	}
}

func TestCLIInitTablesHistory(t *testing.T) {
	pipeline := initLake(t)
	dir := filepath.Dir(pipeline)

	// init twice: refused, the file is left alone.
	before, _ := os.ReadFile(pipeline)
	args := []string{"init", "-f", pipeline}
	code, _, stderr := cli(t, "", args...)
	if code != 1 {
		t.Errorf("second init: exit %d, want 1", code)
	}
	oneLineErr(t, args, stderr, "medallion init: "+pipeline+" already exists", "--force")
	if after, _ := os.ReadFile(pipeline); string(after) != string(before) {
		t.Errorf("a refused init changed %s", pipeline)
	}
	if _, err := os.Stat(filepath.Join(dir, "lake", "_medallion", "lake.json")); err != nil {
		t.Errorf("init did not create the lake: %v", err)
	}

	// A fresh lake: every table of the starter pipeline, none created yet.
	code, stdout, stderr := cli(t, "", "tables", "-f", pipeline)
	if code != 0 {
		t.Fatalf("tables: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	want := []string{"bronze.meters", "bronze._quarantine", "silver.meter_usage_1m", "silver._late", "gold.meter_usage_ma", "gold.top_meters"}
	if len(lines) != len(want)+1 || !strings.Contains(lines[0], "table") || !strings.Contains(lines[0], "version") {
		t.Fatalf("tables on a fresh lake:\n%s", stdout)
	}
	for i, w := range want {
		if f := strings.Fields(lines[i+1]); len(f) < 2 || f[0] != w || !strings.HasSuffix(lines[i+1], "not created yet") {
			t.Errorf("tables line %d: %q; want %s, not created yet", i+1, lines[i+1], w)
		}
	}
	code, _, stderr = cli(t, "", "history", "-f", pipeline, "bronze.meters")
	if code != 1 {
		t.Errorf("history before a run: exit %d", code)
	}
	oneLineErr(t, nil, stderr, "medallion history: table bronze.meters has no commits yet", "medallion run")

	// After two runs, history lists each commit: version, time,
	// operation, rows in and out.
	data := filepath.Join(dir, "m.ndjson")
	if err := os.WriteFile(data, []byte(`{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","energy_usage":1.5}
{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","energy_usage":1.5}
{"timestamp":"2024-01-01 00:00:01","meter_id":"m2","energy_usage":-3}
{"timestamp":"2024-01-01 00:00:02","meter_id":"m2","energy_usage":7}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ingest", "-f", pipeline, "meters", data}, {"run", "-f", pipeline, "bronze"},
		{"ingest", "-f", pipeline, "meters", "-"}, {"run", "-f", pipeline, "bronze"}} {
		if code, stdout, stderr := cli(t, `{"timestamp":"2024-01-01 00:00:03","meter_id":"m3","energy_usage":2}`+"\n", args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	code, stdout, stderr = cli(t, "", "history", "-f", pipeline, "bronze.meters")
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, stderr)
	}
	hist := regexp.MustCompile(`^version +time +operation +rows in +rows out\n` +
		`2 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +WRITE +1 +1\n` +
		`1 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +WRITE +4 +2\n` +
		`0 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +CREATE TABLE +- +-\n$`)
	if !hist.MatchString(stdout) {
		t.Errorf("history bronze.meters:\n%s", stdout)
	}
	code, stdout, _ = cli(t, "", "history", "-f", pipeline, "--limit", "1", "bronze.meters")
	if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, "\n2 ") {
		t.Errorf("history --limit 1:\n%s", stdout)
	}
	code, stdout, stderr = cli(t, "", "tables", "-f", pipeline)
	if l := tableLine(t, stdout, "bronze.meters"); code != 0 || l != "bronze.meters bronze 3 2 v2" {
		t.Errorf("tables after the runs: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestCLIVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := cli(t, "", args...)
		if code != 0 || stderr != "" || !regexp.MustCompile(`^medallion \S+ \(go\S+, \w+/\w+\)\n$`).MatchString(stdout) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestCLILogFormatJSON(t *testing.T) {
	pipeline := initLake(t)
	data := filepath.Join(t.TempDir(), "m.ndjson")
	if code, _, stderr := cli(t, "", "generate", "energy", "--rows", "300", "--bad-fraction", "0.05", "--out", data); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := cli(t, "", "ingest", "-f", pipeline, "meters", data); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := cli(t, "", "run", "-f", pipeline, "bronze", "--log-format", "json", "--log-level", "info")
	if code != 0 || !strings.HasPrefix(stdout, "bronze.meters: 300 rows read = ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if stderr == "" {
		t.Fatal("no log lines at --log-level info")
	}
	sawRun := false
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", line)
			continue
		}
		if rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("log line without time, level or msg: %q", line)
		}
		if rec["msg"] == "bronze run" && rec["read"] == float64(300) {
			sawRun = true
		}
	}
	if !sawRun {
		t.Errorf("no bronze run record with read=300 in:\n%s", stderr)
	}
	// Text logs are not JSON.
	if code, _, stderr := cli(t, "", "query", "-f", pipeline, "--log-level", "debug", "SELECT 1"); code != 0 || !strings.Contains(stderr, "level=DEBUG msg=attached") {
		t.Errorf("text logs: exit %d, stderr %q", code, stderr)
	}
}

// TestCLIInitS3 runs `medallion init --lake s3://BUCKET` against MinIO
// with a bucket that does not exist yet: init creates it and the lake.
func TestCLIInitS3(t *testing.T) {
	srv := testenv.MinIO(t)
	l := newTestLake(t, "local")
	l.env = append(l.env, srv.Env()...)
	_, opts, url := testenv.S3Store(t) // for a unique name, then a fresh bucket beside it
	bucket := opts.Bucket + "-init"
	out := l.run(t, "init", "--lake", "s3://"+bucket+"/lakes/one")
	if !strings.Contains(out, "lake ready at s3://"+bucket+"/lakes/one") {
		t.Errorf("init output:\n%s", out)
	}
	opts.Bucket, opts.CreateBucket, opts.Prefix = bucket, false, "lakes/one"
	st, err := lake.NewS3(context.Background(), opts)
	if err != nil {
		t.Fatalf("the bucket init made: %v (other bucket %s)", err, url)
	}
	if _, err := st.Stat(context.Background(), "_medallion/lake.json"); err != nil {
		t.Errorf("no lake marker: %v", err)
	}
	t.Cleanup(func() { st.Delete(context.Background(), "_medallion/lake.json") })
	// The file init wrote keeps the endpoint and keys in the environment.
	y, _ := os.ReadFile(filepath.Join(l.dir, "medallion.yaml"))
	if !strings.Contains(string(y), "${S3_SECRET_KEY}") || strings.Contains(string(y), opts.SecretKey) {
		t.Errorf("medallion.yaml should reference ${S3_SECRET_KEY}, not hold the key")
	}
	tables := l.run(t, "tables")
	if strings.Count(tables, "not created yet") != 6 {
		t.Errorf("tables on the new S3 lake:\n%s", tables)
	}
}

// TestCLIRunFreshLake: `medallion run` right after `medallion init`, before
// anything was ingested, has nothing to do: exit 0, every job "nothing new".
// (Fails today: the gold jobs fail because silver.meter_usage_1m has no
// table yet, and the error names the table three times.)
func TestCLIRunFreshLake(t *testing.T) {
	pipeline := initLake(t)
	code, stdout, stderr := cli(t, "", "run", "-f", pipeline)
	if code != 0 || strings.Contains(stdout, "FAILED") {
		t.Errorf("run on a fresh lake: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// markLake writes the marker `medallion init` writes, for tests that build a
// lake by hand: every command but init refuses a lake without it.
func markLake(t *testing.T, st lake.Store) {
	t.Helper()
	if err := writeLakeMarker(context.Background(), st); err != nil {
		t.Fatalf("mark lake %s: %v", st.URL(), err)
	}
}

// markLakeDir is markLake for a local lake directory, created if missing.
func markLakeDir(t *testing.T, dir string) {
	t.Helper()
	st, err := lake.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	markLake(t, st)
}
