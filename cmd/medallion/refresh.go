package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/silver"
)

const refreshUsage = "TABLE [--from TIME] [--to TIME] [--downstream] [--wait D]"

// runRefresh is `medallion refresh TABLE [--from T] [--to T]
// [--downstream]`: re-type a bronze table from the raw objects it consumed,
// recompute a silver table (or the windows of it starting
// in [from, to)) or a gold table from what it reads, through the code of
// incremental runs, in one REFRESH commit, under the table's lease; with
// --downstream, the silver and gold tables reading it and the PostgreSQL mirrors of
// all of them follow. See docs/refresh.md.
func runRefresh(ctx context.Context, a *app, args []string) error {
	fs := a.flags("refresh")
	from := fs.String("from", "", "refresh only windows (silver) or rows (bronze, by event time) starting at or after TIME (RFC 3339, or 2006-01-02[ 15:04:05] in UTC)")
	to := fs.String("to", "", "refresh only windows (silver) or rows (bronze) starting before TIME")
	downstream := fs.Bool("downstream", false, "then refresh the silver and gold tables reading TABLE and rebuild the PostgreSQL mirrors of all of them")
	wait := fs.Duration("wait", defaultLeaseWait, "how long to wait for a table another runner (serve, run) is running, then fail")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TABLE, e.g. silver.meter_usage_1m")
	}
	var rng silver.Range
	if rng.From, err = parseRefreshTime("--from", *from); err != nil {
		return err
	}
	if rng.To, err = parseRefreshTime("--to", *to); err != nil {
		return err
	}
	if !rng.From.IsZero() && !rng.To.IsZero() && !rng.From.Before(rng.To) {
		return usagef("--from %s is not before --to %s: the range [from, to) would be empty", *from, *to)
	}
	ref, err := layers.ParseTableRef(pos[0], "")
	if err != nil {
		return usagef("%v", err)
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	if err := refreshable(p, ref); err != nil {
		return err
	}
	switch {
	case ref.Layer == layers.Gold && !rng.Full():
		return usagef("%s: a gold table is refreshed whole (a moving average at t depends on the rows before t): drop --from/--to, or refresh its silver table's range with --downstream", ref)
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	r, err := ws.runner(a, p, *wait)
	if err != nil {
		return err
	}
	return r.Refresh(ctx, ref, rng, *downstream, func(line string) { fmt.Fprintln(a.stdout, line) })
}

// refreshable refuses, as a usage error, a table the pipeline does not
// declare (naming the nearest one) and the tables of the lake's own
// bookkeeping.
func refreshable(p *config.Pipeline, ref layers.TableRef) error {
	var names []string
	for _, t := range layers.Tables(p) {
		if t == ref && !strings.HasPrefix(t.Name, "_") {
			return nil
		}
		if !strings.HasPrefix(t.Name, "_") {
			names = append(names, t.String())
		}
	}
	msg := fmt.Sprintf("unknown table %s: the pipeline declares no such table to refresh", ref)
	if s := config.Closest(ref.String(), names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return usagef("%s", msg)
}

// parseRefreshTime parses the value of --from or --to ("" is no bound).
func parseRefreshTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef("%s %q: want a time like 2026-01-01T00:00:00Z or 2026-01-01 00:00:00 (UTC)", flag, s)
}
