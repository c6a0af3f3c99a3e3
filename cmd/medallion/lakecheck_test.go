package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

// writeYAML writes a pipeline file with the given lake line and one source.
func writeYAML(t *testing.T, dir, lakeLine string) string {
	t.Helper()
	path := filepath.Join(dir, "medallion.yaml")
	y := lakeLine + "\ncache: " + filepath.Join(dir, "cache") + "\nsources:\n  meters:\n    format: ndjson\n    schema:\n      meter_id: {type: string}\n"
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readOnly are the commands that only read the lake.
var readOnly = [][]string{{"tables"}, {"query", "SELECT 1"}, {"history", "bronze.meters"}, {"runs"}, {"verify"}}

// TestCLINoLake: a lake URL with no lake behind it is never created: read
// commands say "no lake at URL (run `medallion init`)", run refuses unless
// --create-lake, and a malformed URL is refused before anything is made.
func TestCLINoLake(t *testing.T) {
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "nope")
	pipeline := writeYAML(t, dir, "lake: file://"+lakeDir)
	for _, c := range append(readOnly, []string{"run"}, []string{"ingest", "meters", "-"}) {
		args := append([]string{c[0], "-f", pipeline}, c[1:]...)
		code, _, stderr := cli(t, "", args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		oneLineErr(t, args, stderr, "medallion "+c[0]+": no lake at file://"+lakeDir+" (run `medallion init`", "does not exist")
		if c[0] == "run" && !strings.Contains(stderr, "--create-lake") {
			t.Errorf("%v: %q does not name --create-lake", args, stderr)
		}
		if _, err := os.Stat(lakeDir); !os.IsNotExist(err) {
			t.Fatalf("%v created %s", args, lakeDir)
		}
	}
	// An existing directory without init's marker is no lake either.
	if err := os.Mkdir(lakeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cli(t, "", "tables", "-f", pipeline)
	if code != 1 {
		t.Errorf("tables on an empty directory: exit %d", code)
	}
	oneLineErr(t, nil, stderr, "medallion tables: no lake at file://", "no _medallion/lake.json")
	// Told to, run creates the lake; then the read commands work.
	if code, stdout, stderr := cli(t, "", "run", "-f", pipeline, "--create-lake"); code != 0 {
		t.Fatalf("run --create-lake: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(lakeDir, "_medallion", "lake.json")); err != nil {
		t.Errorf("run --create-lake wrote no marker: %v", err)
	}
	for _, c := range readOnly[:2] {
		args := append([]string{c[0], "-f", pipeline}, c[1:]...)
		if code, stdout, stderr := cli(t, "", args...); code != 0 {
			t.Errorf("%v after --create-lake: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
}

// TestCLIMalformedLakeURL: "s3:", "s3:/bucket" and unknown schemes are
// refused with the pipeline's line, and no directory named "s3:" appears.
func TestCLIMalformedLakeURL(t *testing.T) {
	for _, tc := range []struct{ lake, want string }{
		{"s3:", `malformed lake URL "s3:"`},
		{"s3:/bucket", `malformed lake URL "s3:/bucket"`},
		{"s3:bucket/x", `malformed lake URL "s3:bucket/x"`},
		{"gs://bucket", `unsupported lake "gs://bucket"`},
	} {
		dir := t.TempDir()
		t.Chdir(dir)
		pipeline := writeYAML(t, dir, "lake: "+strconv.Quote(tc.lake))
		for _, c := range []string{"tables", "run"} {
			code, _, stderr := cli(t, "", c, "-f", pipeline)
			if code != 1 {
				t.Errorf("%s with lake %q: exit %d", c, tc.lake, code)
			}
			oneLineErr(t, []string{c, tc.lake}, stderr, "medallion "+c+": "+pipeline+":1:", tc.want)
		}
		code, _, stderr := cli(t, "", "init", "-f", filepath.Join(dir, "new.yaml"), "--lake", tc.lake)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("init --lake %q: exit %d, stderr %q", tc.lake, code, stderr)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("lake %q: the directory holds %d entries, want only medallion.yaml", tc.lake, len(ents))
		}
	}
	if err := lake.CheckURL("s3:/b"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("CheckURL(s3:/b) = %v", err)
	}
}

// TestCLINoLakeS3: a bucket that does not exist is neither created nor
// read: tables and run say there is no lake there.
func TestCLINoLakeS3(t *testing.T) {
	srv := testenv.MinIO(t)
	_, opts, _ := testenv.S3Store(t)
	bucket := opts.Bucket + "-typo"
	l := newTestLake(t, "local")
	l.env = append(l.env, srv.Env()...)
	y := "lake: s3://" + bucket + "/lake\ns3:\n  endpoint: ${S3_ENDPOINT}\n  access_key: ${S3_ACCESS_KEY}\n  secret_key: ${S3_SECRET_KEY}\n" +
		"sources:\n  meters:\n    format: ndjson\n    schema:\n      meter_id: {type: string}\n"
	if err := os.WriteFile(filepath.Join(l.dir, "medallion.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"tables", "run"} {
		_, errOut, err := l.exec(t, nil, c)
		if err == nil || !strings.Contains(errOut, "no lake at s3://"+bucket+"/lake (run `medallion init`") {
			t.Errorf("%s on a missing bucket: %v\n%s", c, err, errOut)
		}
	}
	opts.Bucket, opts.CreateBucket = bucket, false
	if _, err := lake.NewS3(context.Background(), opts); err == nil {
		t.Errorf("bucket %s was created", bucket)
	}
}
