package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// runRuns prints the run history the scheduler keeps in the lake, newest
// first: `medallion runs [--limit N] [JOB]`.
func runRuns(ctx context.Context, a *app, args []string) error {
	fs := a.flags("runs")
	limit := fs.Int("limit", 50, "show at most this many runs, newest first (0: all)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit %d: want 0 (all) or more", *limit)
	}
	if len(pos) > 1 {
		return usagef("want at most one JOB, e.g. bronze or silver.meter_usage_1m")
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	job := ""
	var unknown error // the job is not in the pipeline
	if len(pos) == 1 {
		job = pos[0]
		// "meters" means bronze.meters, as in the schedule; a name the
		// pipeline no longer has is looked up as written.
		if id, err := p.JobID(job); err == nil {
			job = id
		} else if !strings.HasPrefix(job, "mirror.") {
			unknown = err
		}
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return err
	}
	runs, err := jobs.ListRuns(ctx, st, job, *limit)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		if unknown != nil {
			return fmt.Errorf("unknown job %q, and no runs of it recorded: %w", job, unknown)
		}
		if job != "" {
			fmt.Fprintf(a.stdout, "no runs of %s recorded yet\n", job)
		} else {
			fmt.Fprintln(a.stdout, "no runs recorded yet: `medallion serve` records every scheduled run")
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "job\tstart\tend\tduration\trows in\trows out\tresult\terror")
	for _, r := range runs {
		msg, _, _ := strings.Cut(r.Error, "\n")
		if msg == "" {
			msg = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Job, runTime(r.Start), runTime(r.End), runDuration(r), r.RowsIn, r.RowsOut, r.Result, msg)
	}
	return tw.Flush()
}

func runTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runDuration is a run's wall time for a person ("-" when unknown).
func runDuration(r jobs.RunRecord) string {
	if r.Start.IsZero() || r.End.IsZero() || r.End.Before(r.Start) {
		return "-"
	}
	return roundDur(r.End.Sub(r.Start)).String()
}
