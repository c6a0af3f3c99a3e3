package main

import (
	"strings"
	"testing"
)

// TestQueryAsOfNamedTablesOnly: --as-of applies to the tables the query
// names; a table with fewer versions that the query never reads does not
// make it fail.
func TestQueryAsOfNamedTablesOnly(t *testing.T) {
	pipeline := initLake(t)
	row := func(s string) string {
		return `{"timestamp":"2024-01-01 00:00:0` + s + `","meter_id":"m` + s + `","energy_usage":1}` + "\n"
	}
	for _, step := range []struct {
		stdin string
		args  []string
	}{
		{row("1"), []string{"ingest", "meters", "-"}},
		{"", []string{"run"}},
		{row("2"), []string{"ingest", "meters", "-"}},
		{"", []string{"run", "bronze"}},
		{row("3"), []string{"ingest", "meters", "-"}},
		{"", []string{"run", "bronze"}},
	} {
		if code, stdout, stderr := cli(t, step.stdin, append(step.args, "-f", pipeline)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", step.args, code, stdout, stderr)
		}
	}
	code, stdout, stderr := cli(t, "", "query", "-f", pipeline, "--format", "csv", "--as-of", "3", "SELECT count(*) AS n FROM bronze.meters")
	if code != 0 || stdout != "n\n3\n" {
		t.Errorf("--as-of 3 on bronze.meters: exit %d\n%s%s", code, stdout, stderr)
	}
	// Per table, in DuckDB's syntax: one table at two versions in one query.
	for _, tc := range []struct{ sql, want string }{
		{"SELECT (SELECT count(*) FROM bronze.meters AT (VERSION => 1)) AS v1, (SELECT count(*) FROM bronze.meters) AS now", "v1,now\n1,3\n"},
		{"SELECT count(*) AS n FROM bronze.meters at (timestamp => TIMESTAMP '2999-01-01 00:00:00')", "n\n3\n"},
		{"SELECT count(*) AS n FROM bronze.meters AT (VERSION => 2) JOIN silver.meter_usage_1m s ON true", "n\n0\n"},
	} {
		code, stdout, stderr := cli(t, "", "query", "-f", pipeline, "--format", "csv", tc.sql)
		if code != 0 || stdout != tc.want {
			t.Errorf("%s: exit %d\n%s%s\nwant %s", tc.sql, code, stdout, stderr, tc.want)
		}
	}
	code, _, stderr = cli(t, "", "query", "-f", pipeline, "SELECT * FROM bronze.meters AT (VERSION => 9)")
	if code != 1 || !strings.Contains(stderr, "bronze.meters has no version as of 9") {
		t.Errorf("AT (VERSION => 9): exit %d, %q", code, stderr)
	}
	code, _, stderr = cli(t, "", "query", "-f", pipeline, "SELECT * FROM gold.nope AT (VERSION => 1)")
	if code != 1 || !strings.Contains(stderr, "unknown table gold.nope") {
		t.Errorf("AT on an unknown table: exit %d, %q", code, stderr)
	}
	// A table the query names that lacks the version still fails, naming it.
	code, _, stderr = cli(t, "", "query", "-f", pipeline, "--as-of", "3", `SELECT count(*) FROM "silver".meter_usage_1m`)
	if code != 1 || !strings.Contains(stderr, "silver.meter_usage_1m has no version as of") {
		t.Errorf("--as-of 3 on silver: exit %d, %q", code, stderr)
	}
}

func TestNamesTable(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM bronze.meters":               true,
		`SELECT * FROM "bronze"."meters" m`:         true,
		"select * from BRONZE . meters":             true,
		"SELECT * FROM bronze.meters_2":             false,
		"SELECT * FROM xbronze.meters":              false,
		"SELECT * FROM silver.x JOIN bronze.meters": true,
	} {
		if got := namesTable(q, "bronze.meters"); got != want {
			t.Errorf("namesTable(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestRewriteAt(t *testing.T) {
	q, pins, err := rewriteAt(`SELECT * FROM bronze.meters AT (VERSION => 3) a JOIN "gold"."x" AT ( TIMESTAMP => '2026-01-01 00:00:00' ) b USING (k), bronze.meters AT (VERSION=>3)`)
	want := `SELECT * FROM bronze."meters@v3" a JOIN gold."x@t20260101T000000000000000" b USING (k), bronze."meters@v3"`
	if err != nil || q != want || len(pins) != 2 {
		t.Fatalf("rewriteAt = %q, %d pins, %v\nwant %q, 2 pins", q, len(pins), err, want)
	}
	if _, _, err := rewriteAt("SELECT * FROM bronze.m AT (VERSION => '2026-01-01')"); err == nil {
		t.Errorf("a time in VERSION => is accepted")
	}
}

func FuzzRewriteAt(f *testing.F) {
	f.Add("SELECT * FROM bronze.meters AT (VERSION => 3)")
	f.Add("SELECT * FROM silver.x AT (TIMESTAMP => TIMESTAMP '2026-01-01')")
	f.Fuzz(func(t *testing.T, q string) {
		out, pins, err := rewriteAt(q)
		if err == nil && len(pins) == 0 && out != q {
			t.Fatalf("rewrote %q to %q without a pin", q, out)
		}
	})
}
