// Command sqlprobe times DuckDB statements one by one in one in-memory
// DuckDB process, in CPU seconds (user + system of the process, DuckDB's
// threads included) and wall seconds, a given number of rounds, the
// statements in file order each round (so variants alternate). It is a
// measuring aid for docs/bronze-profile.md, not part of the product.
//
// Usage: go run ./bench/sqlprobe [-rounds N] FILE.sql
//
// FILE.sql holds statements separated by lines starting with "-- name:",
// the rest of that line naming the statement that follows. A statement
// that returns rows prints its first row.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

type stmt struct{ name, sql string }

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds over the statements")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sqlprobe [-rounds N] FILE.sql")
		os.Exit(2)
	}
	stmts, err := parse(flag.Arg(0))
	if err == nil {
		err = run(context.Background(), stmts, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlprobe:", err)
		os.Exit(1)
	}
}

func parse(path string) ([]stmt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []stmt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "-- name:"); ok {
			out = append(out, stmt{name: strings.TrimSpace(name)})
			continue
		}
		if len(out) == 0 {
			continue
		}
		out[len(out)-1].sql += line + "\n"
	}
	return out, sc.Err()
}

func run(ctx context.Context, stmts []stmt, rounds int) error {
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
	for r := 1; r <= rounds; r++ {
		fmt.Printf("## round %d\n", r)
		for _, s := range stmts {
			if strings.TrimSpace(s.sql) == "" {
				continue
			}
			c0, w0 := cpu(), time.Now()
			first, err := firstRow(ctx, conn, s.sql)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Printf("%-60s cpu %6.2fs  wall %6.2fs  %s\n", s.name, (cpu() - c0).Seconds(), time.Since(w0).Seconds(), first)
		}
	}
	return nil
}

func firstRow(ctx context.Context, conn *sql.Conn, q string) (string, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var first string
	if rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		first = fmt.Sprint(vals)
		if len(first) > 3000 {
			first = first[:3000] + "..."
		}
	}
	for rows.Next() {
	}
	return first, rows.Err()
}
