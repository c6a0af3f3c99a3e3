package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/warehouse"
)

// queryUsage is the usage line of `medallion query` (for commands()).
const queryUsage = `[--format table|csv|json|ndjson|parquet] [--out FILE] [--as-of VERSION|TIME] "SQL"|-`

// runQuery is `medallion query`: one read-only SQL statement over every
// table by name, on an in-memory DuckDB that reads the last committed
// snapshot of each table (or the one --as-of chooses) and never locks the lake.
func runQuery(ctx context.Context, a *app, args []string) error {
	fs := a.flags("query")
	formatFlag := fs.String("format", "table", "output format: table, csv, json, ndjson or parquet")
	out := fs.String("out", "", "write the result to this file (required for parquet; default: standard output)")
	asOfFlag := fs.String("as-of", "", "read the tables the query names as of a version (3) or a time (2024-05-01T10:00:00Z); the others at their latest")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(`want exactly one SQL statement in one argument ("-" reads it from standard input)`)
	}
	format, err := warehouse.ParseFormat(*formatFlag)
	if err != nil {
		return usagef("--format: %v", err)
	}
	if format == warehouse.FormatParquet && *out == "" {
		return usagef("--format parquet needs --out FILE")
	}
	asOf, err := warehouse.ParseAsOf(*asOfFlag)
	if err != nil {
		return usagef("%v", err)
	}
	query := pos[0]
	if query == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return fmt.Errorf("read SQL from standard input: %w", err)
		}
		query = string(b)
	}
	query, pins, err := rewriteAt(query)
	if err != nil {
		return usagef("%v", err)
	}
	// Refuse early, before touching the lake.
	if err := warehouse.CheckReadOnly(query); err != nil {
		return err
	}

	p, ws, err := a.pipelineWorkspace(ctx)
	if err != nil {
		return err
	}
	defer ws.Close()
	eng := ws.eng
	refs := jobs.WarehouseTables(p)
	cat, err := attachPins(ctx, ws, refs, pins)
	if err != nil {
		return err
	}
	rest, err := attachAsOf(ctx, ws, refs, query, asOf)
	if err != nil {
		return err
	}
	cat.Tables = append(cat.Tables, rest.Tables...)
	if a.log != nil {
		for _, t := range cat.Tables {
			a.log.Debug("attached", "table", t.Ref.String(), "version", t.Version, "files", t.Files)
		}
	}
	if err := warehouse.LockDown(ctx, eng, cat); err != nil {
		return err
	}

	if format == warehouse.FormatParquet {
		n, err := eng.WriteParquet(ctx, query, *out)
		if err != nil {
			return queryError(err, cat)
		}
		fmt.Fprintf(a.stderr, "wrote %d rows to %s\n", n, *out)
		return nil
	}
	return queryError(writeResult(ctx, eng, query, format, *out, a.stdout), cat)
}

// writeResult runs query and writes its result in format to the file out,
// or to stdout when out is empty. A file is written next to its target and
// renamed, so a reader never sees half a file.
func writeResult(ctx context.Context, eng *warehouse.Engine, query string, format warehouse.Format, out string, stdout io.Writer) error {
	if out == "" {
		_, err := eng.Query(ctx, query, format, stdout)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, qerr := eng.Query(ctx, query, format, f)
	if err := f.Close(); err != nil && qerr == nil {
		qerr = fmt.Errorf("write %s: %w", out, err)
	}
	if qerr != nil {
		return qerr
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// queryError adds what a user needs to a failed query: the tables there are
// when DuckDB did not know a name.
func queryError(err error, cat *warehouse.Catalog) error {
	var se *warehouse.SQLError
	if err == nil || !errors.As(err, &se) || !se.UnknownName {
		return err
	}
	names := cat.Names()
	if len(names) == 0 {
		return fmt.Errorf("%s (no table has commits yet: run `medallion run` first)", se.Msg)
	}
	return fmt.Errorf("%s (tables: %s)", se.Msg, strings.Join(names, ", "))
}
