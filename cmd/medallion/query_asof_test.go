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
