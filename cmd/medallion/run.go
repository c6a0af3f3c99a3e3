package main

import (
	"context"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// runRun is `medallion run [LAYER|TABLE ...]`: bring the named tables (all
// by default) and what they read up to date, once, in dependency order.
func runRun(ctx context.Context, a *app, args []string) error {
	fs := a.flags("run")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	plan, err := jobs.Plan(p, pos)
	if err != nil {
		return usagef("%v", err)
	}
	if len(plan) == 0 {
		fmt.Fprintln(a.stdout, "nothing to run: the pipeline declares no tables")
		return nil
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	r := &jobs.Runner{Store: ws.store, Pipeline: p, Engine: ws.eng, Cache: ws.cache, Log: a.log}
	owner := jobs.DefaultOwner()
	results, err := r.Run(ctx, plan, func(res jobs.Result) {
		recordRun(ctx, a, ws, owner, res)
		if res.Err != nil {
			fmt.Fprintf(a.stdout, "FAILED %s\n", oneLine(res.Err))
			return
		}
		fmt.Fprintln(a.stdout, res.Summary)
	})
	if err != nil {
		failed := 0
		for _, res := range results {
			if res.Err != nil && !res.Skipped {
				failed++
			}
		}
		if failed > 1 {
			return fmt.Errorf("%d jobs failed; first: %w", failed, err)
		}
		return err
	}
	return nil
}

// recordRun writes one job's run to the lake's run history (`medallion
// runs`, the dashboard's runs page). The history is a record, not part of
// the job: failing to write it is logged and the run goes on.
func recordRun(ctx context.Context, a *app, ws *workspace, owner string, res jobs.Result) {
	rec := jobs.RecordOf(res, time.Now(), owner, 0)
	if err := jobs.RecordRun(context.WithoutCancel(ctx), ws.store, rec); err != nil {
		a.log.Warn("record run", "job", rec.Job, "err", err)
	}
}
