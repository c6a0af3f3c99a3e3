package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// splitLines writes the lines of file into k files of about equal line
// counts, in order, and returns their paths.
func splitLines(t *testing.T, file string, k int) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var out []string
	for i := 0; i < k; i++ {
		part := lines[i*len(lines)/k : (i+1)*len(lines)/k]
		p := filepath.Join(filepath.Dir(file), fmt.Sprintf("%s.%dof%d", filepath.Base(file), i+1, k))
		if err := os.WriteFile(p, []byte(strings.Join(part, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// csvRows parses `medallion query --format csv` output with one row into
// its header and values.
func csvRow(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got:\n%s", out)
	}
	h, v := strings.Split(lines[0], ","), strings.Split(lines[1], ",")
	if len(h) != len(v) {
		t.Fatalf("bad csv:\n%s", out)
	}
	m := map[string]string{}
	for i := range h {
		m[h[i]] = v[i]
	}
	return m
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

var bronzeLine = regexp.MustCompile(`^bronze\.meters: (\d+) rows read = (\d+) written \+ (\d+) quarantined \+ (\d+) dropped \+ (\d+) duplicates`)

// checkRunOK fails unless every job of a `medallion run` succeeded.
func checkRunOK(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "FAILED") {
		t.Fatalf("run:\n%s", out)
	}
}

// TestEndToEnd runs the starter pipeline (`medallion init`) on generated
// energy readings with bad and late rows, landed as two files with a run
// after each (so that events of the second file are late for windows the
// first run finalised), on a local lake and on MinIO. Afterwards every
// table is queryable and consistent, and a run with nothing new commits
// nothing.
func TestEndToEnd(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			l := newTestLake(t, kind)
			l.run(t, "init", "--lake", l.url)
			data := filepath.Join(l.dir, "meters.ndjson")
			l.run(t, "generate", "energy", "--rows", "20000", "--bad-fraction", "0.01", "--late-fraction", "0.02", "--seed", "11", "--out", data)
			var read, written, quarantined, dupes int64
			for _, f := range splitLines(t, data, 2) {
				l.run(t, "ingest", "meters", f)
				out := l.run(t, "run")
				checkRunOK(t, out)
				m := bronzeLine.FindStringSubmatch(lineStarting(t, out, "bronze.meters: "))
				if m == nil {
					t.Fatalf("no accounting line in:\n%s", out)
				}
				read += atoi(t, m[1])
				written += atoi(t, m[2])
				quarantined += atoi(t, m[3])
				dupes += atoi(t, m[5])
				if m[4] != "0" {
					t.Errorf("dropped rows with on_error: quarantine: %s", m[0])
				}
			}
			if read != 20000 || read != written+quarantined+dupes || quarantined == 0 || dupes == 0 {
				t.Errorf("bronze over both runs: %d read = %d written + %d quarantined + %d duplicates; want 20000 rows read, some quarantined, some duplicates",
					read, written, quarantined, dupes)
			}

			counts := csvRow(t, l.query(t, `SELECT
  (SELECT count(*) FROM bronze.meters) AS bronze,
  (SELECT count(*) FROM bronze._quarantine) AS quarantine,
  (SELECT count(*) FROM silver.meter_usage_1m) AS silver,
  (SELECT sum(readings) FROM silver.meter_usage_1m) AS silver_readings,
  (SELECT count(*) FROM silver._late) AS late,
  (SELECT count(*) FROM silver._late WHERE "table" <> 'silver.meter_usage_1m' OR lateness_ms <= 0) AS bad_late,
  (SELECT count(*) FROM gold.meter_usage_ma) AS gold,
  (SELECT count(*) FROM gold.top_meters) AS top,
  (SELECT count(DISTINCT meter_id) FROM silver.meter_usage_1m) AS meters`))
			t.Logf("row counts: %v", counts)
			if atoi(t, counts["bronze"]) != written || atoi(t, counts["quarantine"]) != quarantined {
				t.Errorf("bronze tables hold %s rows and %s quarantined, the runs said %d and %d", counts["bronze"], counts["quarantine"], written, quarantined)
			}
			silverRows := atoi(t, counts["silver"])
			if silverRows == 0 || atoi(t, counts["late"]) == 0 || counts["bad_late"] != "0" {
				t.Errorf("want silver windows and late events of silver.meter_usage_1m in silver._late: %v", counts)
			}
			// Every bronze row is in a written window, late, or in a window
			// that is not final yet.
			if n := atoi(t, counts["silver_readings"]) + atoi(t, counts["late"]); n > written {
				t.Errorf("silver readings + late = %d > %d bronze rows", n, written)
			}
			if counts["gold"] != counts["silver"] {
				t.Errorf("gold.meter_usage_ma has %s rows, silver.meter_usage_1m %s", counts["gold"], counts["silver"])
			}
			if counts["top"] != counts["meters"] {
				t.Errorf("gold.top_meters has %s rows for %s meters", counts["top"], counts["meters"])
			}

			// The moving average is DuckDB's window average over silver.
			ma := csvRow(t, l.query(t, `SELECT count(*) AS matched,
  count(*) FILTER (WHERE g.ma IS NULL OR abs(g.ma - s.ma) > 1e-9 * greatest(1, abs(s.ma))) AS differ,
  count(*) FILTER (WHERE g.spike IS DISTINCT FROM (g.avg_usage > g.ma * 1.5)) AS bad_spike
FROM gold.meter_usage_ma g
JOIN (SELECT meter_id, window_start,
        AVG(avg_usage) OVER (PARTITION BY meter_id ORDER BY window_start ROWS BETWEEN 14 PRECEDING AND CURRENT ROW) AS ma
      FROM silver.meter_usage_1m) s USING (meter_id, window_start)`))
			if atoi(t, ma["matched"]) != silverRows || ma["differ"] != "0" || ma["bad_spike"] != "0" {
				t.Errorf("gold.meter_usage_ma against DuckDB's window average over silver: %v (want %d matched, 0 differ, 0 bad spike)", ma, silverRows)
				t.Log(l.query(t, `SELECT g.meter_id, g.window_start, g.ma, s.ma AS duckdb_ma FROM gold.meter_usage_ma g
JOIN (SELECT meter_id, window_start, AVG(avg_usage) OVER (PARTITION BY meter_id ORDER BY window_start ROWS BETWEEN 14 PRECEDING AND CURRENT ROW) AS ma
      FROM silver.meter_usage_1m) s USING (meter_id, window_start)
WHERE g.ma IS NULL OR abs(g.ma - s.ma) > 1e-9 ORDER BY ALL LIMIT 10`))
			}

			// Nothing new: nothing runs, nothing is committed.
			before := l.run(t, "tables")
			out := l.run(t, "run")
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				// DATABASE_URL is not passed on: the mirror says it is off.
				if !strings.Contains(line, "nothing new") && !strings.HasPrefix(line, "mirror disabled") {
					t.Errorf("second run with nothing new: %q", line)
				}
			}
			if after := l.run(t, "tables"); after != before {
				t.Errorf("a run with nothing new changed the tables:\n--- before\n%s--- after\n%s", before, after)
			}
		})
	}
}

// TestSplitInvariance: the same on-time input (no late events) landed as 1,
// 3 and 10 files, with `medallion run` after each, gives the same silver and
// gold tables.
func TestSplitInvariance(t *testing.T) {
	gen := newTestLake(t, "local")
	data := filepath.Join(gen.dir, "meters.ndjson")
	gen.run(t, "generate", "energy", "--rows", "6000", "--bad-fraction", "0.01", "--late-fraction", "0", "--seed", "5", "--out", data)
	// Averages are rounded to 9 decimals: summing doubles in a different
	// order (per run, per file) changes the last bits (6.312500000000002
	// against 6.312500000000001), and nothing more.
	queries := []string{
		"SELECT * REPLACE (round(avg_usage, 9) AS avg_usage) FROM silver.meter_usage_1m ORDER BY ALL",
		"SELECT * REPLACE (round(avg_usage, 9) AS avg_usage, round(ma, 9) AS ma) FROM gold.meter_usage_ma ORDER BY ALL",
		"SELECT * REPLACE (round(mean_usage, 9) AS mean_usage) FROM gold.top_meters ORDER BY ALL",
		"SELECT count(*) AS late FROM silver._late",
	}
	results := map[int][]string{}
	for _, k := range []int{1, 3, 10} {
		l := newTestLake(t, "local")
		l.run(t, "init", "--lake", l.url)
		for _, f := range splitLines(t, data, k) {
			l.run(t, "ingest", "meters", f)
			checkRunOK(t, l.run(t, "run"))
		}
		for _, q := range queries {
			out, errOut, err := l.exec(t, nil, "query", "--format", "csv", q)
			if err != nil {
				// silver._late exists only once an event was late.
				if strings.Contains(q, "_late") && strings.Contains(errOut, "_late") {
					out = "late\n0\n"
				} else {
					t.Fatalf("%s: %v\n%s", q, err, errOut)
				}
			}
			results[k] = append(results[k], out)
		}
	}
	if n := strings.Count(results[1][0], "\n"); n < 50 {
		t.Fatalf("only %d silver rows", n-1)
	}
	for _, k := range []int{3, 10} {
		for i, q := range queries {
			if results[k][i] != results[1][i] {
				t.Errorf("%s: %d files differ from 1 file\n--- 1 file\n%s\n--- %d files\n%s", q, k, head(results[1][i], 20), k, head(results[k][i], 20))
				t.Log(firstDiff(results[1][i], results[k][i]))
			}
		}
	}
}

func head(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...\n")
	}
	return strings.Join(lines, "")
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("first difference at line %d:\n  %s\n  %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines vs %d lines", len(la), len(lb))
}
