package main

import (
	"context"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/humanize"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/maintenance"
)

const vacuumUsage = "[--retain 168h] [--yes] [--force] [TABLE ...]"

// runVacuum is `medallion vacuum [TABLE ...]`: list (by default) or delete
// (--yes) the data files no version within the retention needs, of the
// named tables or every table of the pipeline.
func runVacuum(ctx context.Context, a *app, args []string) error {
	fs := a.flags("vacuum")
	retain := fs.String("retain", "", "keep every version committed within this much time readable (default maintenance.retain, 168h)")
	yes := fs.Bool("yes", false, "delete the files; without it, only list them")
	force := fs.Bool("force", false, "accept a --retain under 168h")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	var keep time.Duration
	if *retain != "" {
		if keep, err = config.ParseDuration(*retain); err != nil || keep < 0 {
			return usagef("--retain %q: want a duration such as 168h or 7d", *retain)
		}
		if keep < maintenance.MinRetain && !*force {
			return usagef("--retain %s is under 168h: a reader or writer slower than that could lose files it needs; add --force to do it anyway", *retain)
		}
	}
	refs, err := tableArgs(pos)
	if err != nil {
		return err
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	if *retain == "" {
		keep = p.Maintenance.Retain
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		refs = layers.Tables(p)
	}
	var files int
	var bytes int64
	for _, ref := range refs {
		res, err := maintenance.Vacuum(ctx, delta.Open(st, ref.Dir()), maintenance.VacuumOptions{Retain: keep, Force: *force, Delete: *yes})
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		switch {
		case res.NoTable:
			fmt.Fprintf(a.stdout, "%s: not created yet\n", ref)
			continue
		case res.Oldest < 0:
			fmt.Fprintf(a.stdout, "%s: no version older than %s: nothing to delete\n", ref, shortDuration(keep))
			continue
		}
		verb := "would delete"
		if *yes {
			verb = "deleted"
		}
		for _, f := range res.Files {
			fmt.Fprintf(a.stdout, "  %s %s (%s, written %s)\n", verb, f.Key, humanize.Bytes(f.Size), f.ModTime.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(a.stdout, "%s: %s %s (%s); versions %d and later stay readable\n", ref, verb, plural(len(res.Files), "file"), humanize.Bytes(res.Bytes), res.Oldest)
		files += len(res.Files)
		bytes += res.Bytes
	}
	if !*yes && files > 0 {
		fmt.Fprintf(a.stdout, "dry run: %s (%s) would be deleted; run again with --yes to delete them\n", plural(files, "file"), humanize.Bytes(bytes))
	}
	return nil
}

// shortDuration prints whole hours as "168h", not "168h0m0s".
func shortDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
