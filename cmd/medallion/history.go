package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

func runHistory(ctx context.Context, a *app, args []string) error {
	fs := a.flags("history")
	limit := fs.Int("limit", 50, "show at most this many commits, newest first (0: all)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TABLE, e.g. bronze.meters")
	}
	ref, err := layers.ParseTableRef(pos[0], "")
	if err != nil {
		return usagef("%v", err)
	}
	p, st, err := a.pipelineLake(ctx)
	if err != nil {
		return err
	}
	commits, err := delta.Open(st, ref.Dir()).History(ctx, *limit)
	if errors.Is(err, delta.ErrNoTable) {
		if err := declared(p, ref); err != nil {
			return err
		}
		return fmt.Errorf("table %s has no commits yet: run `medallion run` first", ref)
	}
	if err != nil {
		return fmt.Errorf("history of %s: %w", ref, err)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "version\ttime\toperation\trows in\trows out")
	for _, c := range commits {
		op := c.Operation
		if rng, ok := c.OperationParameters["range"].(string); ok && op == "REFRESH" {
			op += " " + rng // e.g. REFRESH [2026-01-01T00:00:00Z, +inf)
		}
		if sc, ok := c.Medallion[layers.SchemaChangeKey].(string); ok && sc != "" {
			op += "; SCHEMA: " + sc
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.Version,
			time.UnixMilli(c.Timestamp).UTC().Format(time.RFC3339), op,
			// Rows in: gold writes rows_in, bronze rows_read, silver
			// Delta's numSourceRows.
			c.Metric("rows_in", "rows_read", "numSourceRows"), c.Metric("numOutputRows"))
	}
	return tw.Flush()
}

// declared refuses a table the pipeline does not declare, naming the
// nearest one that it does.
func declared(p *config.Pipeline, ref layers.TableRef) error {
	var names []string
	for _, t := range layers.Tables(p) {
		if t == ref {
			return nil
		}
		names = append(names, t.String())
	}
	msg := fmt.Sprintf("unknown table %s: the pipeline declares no such table, and the lake has none", ref)
	if s := config.Closest(ref.String(), names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return errors.New(msg + "; `medallion tables` lists them")
}
