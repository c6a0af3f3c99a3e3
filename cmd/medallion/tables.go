package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"text/tabwriter"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/maintenance"
)

func isExists(err error) bool { return errors.Is(err, lake.ErrExists) }

func runTables(ctx context.Context, a *app, args []string) error {
	fs := a.flags("tables")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	p, st, err := a.pipelineLake(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tlayer\trows\tfiles\tsmall\tbytes\tversion\tlast commit\t")
	for _, ref := range layers.Tables(p) {
		snap, err := delta.Open(st, ref.Dir()).Snapshot(ctx)
		if errors.Is(err, delta.ErrNoTable) {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\tnot created yet\t\n", ref, ref.Layer)
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", ref, err)
		}
		var size int64
		for _, f := range snap.Files {
			size += f.Size
		}
		rows, known := snap.NumRecords()
		rowText := fmt.Sprint(rows)
		if !known {
			rowText = "?"
		}
		// small: files under the compaction target, what `medallion
		// optimize` would rewrite.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t\n", ref, ref.Layer, rowText, len(snap.Files),
			maintenance.SmallFiles(snap, p.Maintenance.TargetFileSize), humanize.Bytes(size), snap.Version, snap.Timestamp.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
