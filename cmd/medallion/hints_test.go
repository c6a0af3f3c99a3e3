package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestCLIErrorKeepsCause: with PostgreSQL down, the last line of `medallion
// run` carries the root cause and a hint, not a message cut at its colon.
func TestCLIErrorKeepsCause(t *testing.T) {
	pipeline := initLake(t)
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test")
	rows := `{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","energy_usage":1.5}` + "\n"
	if code, _, stderr := cli(t, rows, "ingest", "-f", pipeline, "meters", "-"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := cli(t, "", "run", "-f", pipeline)
	if code != 1 {
		t.Fatalf("run with PostgreSQL down: exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	for _, w := range []string{"medallion run: ", "connection refused", "(hint: is PostgreSQL running at that host and port?"} {
		if !strings.Contains(last, w) {
			t.Errorf("last line %q does not say %q", last, w)
		}
	}
	if !strings.Contains(stdout, "FAILED mirror.") || !strings.Contains(stdout, "connection refused") {
		t.Errorf("the FAILED line has no cause:\n%s", stdout)
	}
}

func TestErrorLineHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string // "" : no hint
	}{
		{fmt.Errorf("connect to PostgreSQL: failed to connect to `user=u database=d`:\n\t1.2.3.4:5432: dial: %w", syscall.ECONNREFUSED),
			"connection refused (hint: is PostgreSQL running at that host and port? It is postgres:"},
		{errors.New("open lake s3://b: check bucket \"b\" at 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"),
			"(hint: is the S3 server running at that host and port? It is s3.endpoint"},
		{errors.New("mirror x: failed to connect to `user=u database=d`: server error: FATAL: database \"d\" does not exist"),
			"(hint: create that database, or name another one"},
		{errors.New("dial tcp: lookup db.example: no such host"), "(hint: the host name does not resolve"},
		{errors.New("query: Parser Error: syntax error at or near \"SELEC\"\nLINE 1: SELEC"), ""},
	} {
		got := errorLine(tc.err)
		if strings.Contains(got, "\n") {
			t.Errorf("errorLine(%q) = %q: more than one line", tc.err, got)
		}
		if tc.want == "" && strings.Contains(got, "hint:") || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("errorLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
