package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/warehouse"
)

// sqlList is a repeatable -sql flag.
type sqlList []string

func (l *sqlList) String() string     { return strings.Join(*l, "; ") }
func (l *sqlList) Set(s string) error { *l = append(*l, s); return nil }

// referenceMain is the bench re-executed as `bench -reference NAME [-threads
// N] [-memory-limit M] -sql Q...` (Q may be @FILE, the statement in FILE): it opens an in-memory DuckDB through the
// warehouse package with the same settings our runs use and executes the
// statements, so the reference's time and peak RSS are those of one process
// doing the work directly. -version prints DuckDB's version and -query Q
// the value of the one-value query Q instead (setup, never timed).
func referenceMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench -reference: want a NAME")
		return 2
	}
	name := args[0]
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	threads := fs.Int("threads", 0, "")
	mem := fs.String("memory-limit", "", "")
	version := fs.Bool("version", false, "")
	query := fs.String("query", "", "")
	var stmts sqlList
	fs.Var(&stmts, "sql", "")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
		return 2
	}
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: *mem, Threads: *threads})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
		return 1
	}
	defer eng.Close()
	conn, err := eng.DB().Conn(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
		return 1
	}
	defer conn.Close()
	if *version || *query != "" {
		q := *query
		if *version {
			q = "SELECT version()"
		}
		var v string
		if err := conn.QueryRowContext(ctx, "SELECT CAST(("+q+") AS VARCHAR)").Scan(&v); err != nil {
			fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
			return 1
		}
		fmt.Println(v)
		return 0
	}
	// Our bronze job sets the session zone to UTC; so does the reference.
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
		return 1
	}
	for _, q := range stmts {
		if path, ok := strings.CutPrefix(q, "@"); ok {
			// A statement longer than one argument may be, in a file.
			b, err := os.ReadFile(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench -reference %s: %v\n", name, err)
				return 1
			}
			q = string(b)
		}
		start := time.Now()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			fmt.Fprintf(os.Stderr, "bench -reference %s: %v\nquery: %s\n", name, err, q)
			return 1
		}
		fmt.Fprintf(os.Stderr, "%s: %.3fs %s\n", name, time.Since(start).Seconds(), firstLine(q, 100))
	}
	return 0
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// refSettings are the DuckDB settings a reference runs with: the same as
// the pipeline file of our run.
type refSettings struct {
	threads     int
	memoryLimit string
}

// referenceCommand is the subprocess running stmts as reference name.
func referenceCommand(self string, name string, rs refSettings, stmts ...string) command {
	args := []string{"-reference", name}
	if rs.threads > 0 {
		args = append(args, "-threads", strconv.Itoa(rs.threads))
	}
	if rs.memoryLimit != "" {
		args = append(args, "-memory-limit", rs.memoryLimit)
	}
	for _, q := range stmts {
		args = append(args, "-sql", q)
	}
	return command{bin: self, args: args}
}

// sqlString quotes a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlStrings renders a DuckDB list of string literals.
func sqlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = sqlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// The reference statements: DuckDB doing each case's work directly.

// ecommerceColumns is the typed column list of the generated e-commerce CSV
// (the same types as the bronze schema of case 1).
const ecommerceColumns = `{'event_id': 'VARCHAR', 'user_id': 'VARCHAR', 'event_type': 'VARCHAR', 'product_id': 'VARCHAR', ` +
	`'product_name': 'VARCHAR', 'product_category': 'VARCHAR', 'product_price': 'DECIMAL(10,2)', 'quantity': 'BIGINT', ` +
	`'event_timestamp': 'TIMESTAMP', 'session_id': 'VARCHAR', 'device_type': 'VARCHAR'}`

func refCSV(in, out string) string {
	return "COPY (SELECT * FROM read_csv(" + sqlString(in) + ", header=true, auto_detect=false, columns=" + ecommerceColumns +
		", timestampformat='%Y-%m-%d %H:%M:%S')) TO " + sqlString(out) + " (FORMAT parquet, COMPRESSION zstd)"
}

// refNDJSONFiles is refNDJSON over a list of files (case 10).
func refNDJSONFiles(files []string, out string) string {
	return "COPY (SELECT * FROM read_json(" + sqlStrings(files) + ", format='newline_delimited', " +
		"columns={'timestamp': 'TIMESTAMP', 'meter_id': 'VARCHAR', 'energy_usage': 'DOUBLE'}, timestampformat='%Y-%m-%d %H:%M:%S')) TO " +
		sqlString(out) + " (FORMAT parquet, COMPRESSION zstd)"
}

func refNDJSON(in, out string) string {
	return "COPY (SELECT * FROM read_json(" + sqlString(in) + ", format='newline_delimited', " +
		"columns={'timestamp': 'TIMESTAMP', 'meter_id': 'VARCHAR', 'energy_usage': 'DOUBLE'}, timestampformat='%Y-%m-%d %H:%M:%S')) TO " +
		sqlString(out) + " (FORMAT parquet, COMPRESSION zstd)"
}

// refSilver is the silver table's aggregates with a GROUP BY time_bucket
// over the same bronze files.
func refSilver(bronzeFiles []string, out string) string {
	return "COPY (SELECT time_bucket(INTERVAL '1 minute', \"timestamp\") AS window_start, " +
		"time_bucket(INTERVAL '1 minute', \"timestamp\") + INTERVAL '1 minute' AS window_end, meter_id, " +
		"count(*) AS readings, avg(energy_usage) AS avg_usage, max(energy_usage) AS max_usage, count_if(anomaly) AS anomalies " +
		"FROM read_parquet(" + sqlStrings(bronzeFiles) + ") GROUP BY ALL) TO " + sqlString(out) + " (FORMAT parquet, COMPRESSION zstd)"
}

// refGold is the gold moving average and flag with a window function over
// the same silver files.
func refGold(silverFiles []string, out string) string {
	return "COPY (SELECT *, avg_usage > ma * 1.5 AS spike FROM (SELECT *, avg(avg_usage) OVER " +
		"(PARTITION BY meter_id ORDER BY window_start ROWS BETWEEN 14 PRECEDING AND CURRENT ROW) AS ma " +
		"FROM read_parquet(" + sqlStrings(silverFiles) + "))) TO " + sqlString(out) + " (FORMAT parquet, COMPRESSION zstd)"
}

// refExportCSV writes the rows of parquet files as a header-less CSV in the
// column order of the mirror's reference table (setup for psql \copy).
func refExportCSV(files []string, out string) string {
	return "COPY (SELECT \"timestamp\", meter_id, energy_usage, anomaly, _rescued, _source_file, _ingested_at, _batch_id, event_date " +
		"FROM read_parquet(" + sqlStrings(files) + ", hive_partitioning=true)) TO " + sqlString(out) + " (FORMAT csv, HEADER false)"
}
