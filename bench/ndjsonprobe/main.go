// Command ndjsonprobe times, in CPU and wall seconds, the DuckDB statements
// that make up bench case 2's bronze run, each alone over the same NDJSON
// energy file: the reference's typed read and write, the readers bronze
// could use, and the duplicate check's variants. It is a measuring aid for
// docs/bronze-profile.md, not part of the product.
//
// Usage: go run ./bench/ndjsonprobe FILE.ndjson
//
// With -semantics FILE.ndjson it prints, for each line and each of the
// columns s, d, i, t, what DuckDB's typed reader makes of the value
// (VARCHAR, DOUBLE, BIGINT, TIMESTAMP with a format) next to the text
// the MAP reader bronze uses today hands to bronze's own cast.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-semantics" {
		if err := semantics(context.Background(), os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "ndjsonprobe:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ndjsonprobe FILE.ndjson")
		os.Exit(2)
	}
	if err := landing(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "ndjsonprobe:", err)
		os.Exit(1)
	}
	if err := run(context.Background(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "ndjsonprobe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, file string) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	tmp, err := os.MkdirTemp("", "ndjsonprobe")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	f := "'" + file + "'"
	out := filepath.Join(tmp, "ref.parquet")
	typed := "read_json(" + f + ", format='newline_delimited', columns={'timestamp': 'TIMESTAMP', 'meter_id': 'VARCHAR', 'energy_usage': 'DOUBLE'}, timestampformat='%Y-%m-%d %H:%M:%S')"
	varchar := "read_json(" + f + ", format='newline_delimited', columns={'timestamp': 'VARCHAR', 'meter_id': 'VARCHAR', 'energy_usage': 'VARCHAR'})"
	mapped := "read_json(" + f + ", format='newline_delimited', records=false, columns={'j': 'MAP(VARCHAR, VARCHAR)'})"
	// checks is, over typed columns, the rules of the bench's meters
	// source as one predicate: a row that fails any of them.
	checks := "meter_id IS NULL OR trim(meter_id) = '' OR energy_usage < 0 OR isnan(energy_usage) OR isinf(energy_usage)"
	steps := []struct{ name, q string }{
		{"reference: typed read_json -> Parquet", "COPY (SELECT * FROM " + typed + ") TO '" + out + "' (FORMAT parquet)"},
		{"typed read_json, all columns consumed", "SELECT count(*), count(timestamp), count(meter_id), sum(energy_usage) FROM " + typed},
		{"typed read_json + rules as one predicate", "SELECT count(*) FILTER (WHERE " + checks + ") FROM " + typed},
		{"VARCHAR read_json, all columns consumed", "SELECT count(*), count(timestamp), count(meter_id), count(energy_usage) FROM " + varchar},
		{"MAP read_json, values looked up", "SELECT count(*), count(j['timestamp']), count(j['meter_id']), count(j['energy_usage']) FROM " + mapped},
		{"MAP read_json + per-value parse and checks (fast path's shape)", "SELECT count(*) FILTER (WHERE e IS NOT NULL) FROM (SELECT CASE WHEN j IS NULL THEN 'x' WHEN map_keys(j) <> ['timestamp','meter_id','energy_usage'] AND NOT list_has_all(['timestamp','meter_id','energy_usage'], map_keys(j)) THEN 'k' WHEN ts IS NOT NULL AND t IS NULL THEN 't' WHEN u IS NOT NULL AND d IS NULL THEN 'd' WHEN m IS NULL THEN 'r' WHEN d < 0 THEN 'm' END AS e FROM (SELECT j, ts, m, u, timezone('UTC', try_strptime(ts, '%Y-%m-%d %H:%M:%S')) AS t, TRY_CAST(u AS DOUBLE) AS d FROM (SELECT j, j['timestamp'] AS ts, CASE WHEN starts_with(j['meter_id'], ' ') OR ends_with(j['meter_id'], ' ') THEN trim(j['meter_id']) ELSE j['meter_id'] END AS m, j['energy_usage'] AS u FROM " + mapped + ")))"},
		{"dedupe check: GROUP BY hash(key) HAVING count > 1 LIMIT 1", "SELECT count(*) FROM (SELECT 1 FROM read_parquet('" + out + "') GROUP BY hash(meter_id, timestamp) HAVING count(*) > 1 LIMIT 1)"},
		{"dedupe check: count(*) = count(DISTINCT hash(key))", "SELECT count(*) = count(DISTINCT hash(meter_id, timestamp)) FROM read_parquet('" + out + "')"},
		{"dedupe check in the typed read (no read-back)", "SELECT count(*) = count(DISTINCT hash(meter_id, timestamp)) FROM " + typed},
	}
	for _, s := range steps {
		c0, w0 := cpu(), time.Now()
		rows, err := conn.QueryContext(ctx, s.q)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		var res []string
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("%s: scan: %w", s.name, err)
			}
			res = append(res, fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows.Close()
		fmt.Printf("%-62s cpu %6.2fs  wall %6.2fs  %v\n", s.name, (cpu() - c0).Seconds(), time.Since(w0).Seconds(), res)
	}
	return nil
}

// landing times, in Go, what a landing profile would add to landing's
// pass over the bytes: the sha256 alone, then the sha256 and a scan of
// every line's top-level keys (whether each line is an object, its keys,
// a key twice in a line, the longest line).
func landing(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	c0, w0 := cpu(), time.Now()
	sum := sha256.Sum256(data)
	fmt.Printf("%-62s cpu %6.2fs  wall %6.2fs  [%x]\n", "landing: sha256 of the object", (cpu() - c0).Seconds(), time.Since(w0).Seconds(), sum[:4])
	c0, w0 = cpu(), time.Now()
	sum = sha256.Sum256(data)
	p := profile(data)
	fmt.Printf("%-62s cpu %6.2fs  wall %6.2fs  [%x %+v]\n", "landing: sha256 + top-level key profile", (cpu() - c0).Seconds(), time.Since(w0).Seconds(), sum[:4], p)
	return nil
}

// objProfile is what a landing profile of an NDJSON object would hold.
type objProfile struct {
	Lines, MaxLine int
	Keys           []string
	AllObjects     bool
	DupKey         bool
}

// profile scans NDJSON lines for their top-level keys: strings are skipped
// by their quotes and escapes, nesting by a depth count; a key is a string
// at depth 1 followed by a colon. It does not validate the JSON (the
// reader does).
func profile(data []byte) objProfile {
	p := objProfile{AllObjects: true}
	seen := map[string]bool{}
	var lineKeys [][]byte
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n')
		line := data
		if n >= 0 {
			line, data = data[:n], data[n+1:]
		} else {
			data = nil
		}
		p.Lines++
		p.MaxLine = max(p.MaxLine, len(line))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			p.AllObjects = false
			continue
		}
		lineKeys = lineKeys[:0]
		depth := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			case '"':
				start := i + 1
				for i++; i < len(line) && line[i] != '"'; i++ {
					if line[i] == '\\' {
						i++
					}
				}
				if depth == 1 {
					j := i + 1
					for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
						j++
					}
					if j < len(line) && line[j] == ':' {
						k := line[start:min(i, len(line))]
						for _, o := range lineKeys {
							if bytes.Equal(o, k) {
								p.DupKey = true
							}
						}
						lineKeys = append(lineKeys, k)
						if !seen[string(k)] {
							seen[string(k)] = true
							p.Keys = append(p.Keys, string(k))
						}
					}
				}
			}
		}
	}
	return p
}

// semantics compares, line by line, DuckDB's typed JSON reader with the
// MAP reader's text for the columns s (VARCHAR), d (DOUBLE), i (BIGINT)
// and t (TIMESTAMP, format %Y-%m-%d %H:%M:%S).
func semantics(ctx context.Context, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	tmp, err := os.MkdirTemp("", "ndjsonprobe")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	types := []struct{ col, typ string }{{"s", "VARCHAR"}, {"d", "DOUBLE"}, {"i", "BIGINT"}, {"t", "TIMESTAMP"}}
	for n, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		f := filepath.Join(tmp, fmt.Sprintf("l%d.ndjson", n))
		if err := os.WriteFile(f, append(line, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
		fmt.Printf("line %d: %s\n", n+1, line)
		for _, t := range types {
			var typed, mapped any
			q := "SELECT " + t.col + "::VARCHAR FROM read_json('" + f + "', format='newline_delimited', columns={'" + t.col + "': '" + t.typ + "'}, timestampformat='%Y-%m-%d %H:%M:%S')"
			if err := db.QueryRowContext(ctx, q).Scan(&typed); err != nil {
				typed = "ERROR " + firstLine(err.Error())
			}
			q = "SELECT j['" + t.col + "'] FROM read_json('" + f + "', format='newline_delimited', records=false, columns={'j': 'MAP(VARCHAR, VARCHAR)'})"
			if err := db.QueryRowContext(ctx, q).Scan(&mapped); err != nil {
				mapped = "ERROR " + firstLine(err.Error())
			}
			fmt.Printf("  %s %-9s typed: %-40v map text: %v\n", t.col, t.typ, typed, mapped)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
