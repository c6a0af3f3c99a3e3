package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// runRun is `medallion run [LAYER|TABLE ...]`: bring the named tables (all
// by default) and what they read up to date, once, in dependency order.
func runRun(ctx context.Context, a *app, args []string) error {
	fs := a.flags("run")
	a.createLakeFlag(fs)
	wait := fs.Duration("wait", defaultLeaseWait, "how long to wait for a table another runner (serve, another run) is running, then fail")
	noProgress := fs.Bool("no-progress", false, "no progress: neither the status line on a terminal nor the info lines every "+envProgressEvery+" (5s) in logs")
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
	if err := takeFiles(ctx, a, p, ws.store); err != nil {
		return err
	}
	every, err := progressEvery()
	if err != nil {
		return err
	}
	r, err := ws.runner(a, p, *wait)
	if err != nil {
		return err
	}
	owner := r.Owner
	say := func(line string) { fmt.Fprintln(a.stdout, line) }
	if !*noProgress {
		prog := newProgress(a.stderr, a.log, len(plan), every)
		defer prog.close()
		a.log = a.loggerTo(prog.logsTo(a.stderr))
		prog.logTo(a.log)
		r.Log = a.log
		r.OnStart, r.OnResult, r.OnProgress = prog.started, prog.finished, prog.advanced
		say = func(line string) { prog.println(a.stdout, line) }
	}
	results, err := r.Run(ctx, plan, func(res jobs.Result) {
		recordRun(ctx, a, ws, owner, res)
		if res.Err != nil {
			say("FAILED " + errorLine(res.Err))
			return
		}
		say(res.Summary)
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
	if res.Job.MirrorDisabled() {
		return // not a run: `runs` would list a job "mirror."
	}
	rec := jobs.RecordOf(res, time.Now(), owner, 0)
	if err := jobs.RecordRun(context.WithoutCancel(ctx), ws.store, rec); err != nil {
		a.log.Warn("record run", "job", rec.Job, "err", err)
	}
}

// defaultLeaseWait is how long `run` waits for a table's lease by default:
// long enough for a stream micro-batch or a short scheduled run to finish,
// short enough that a cron `run` overlapping a long one fails soon, naming
// the holder.
const defaultLeaseWait = 10 * time.Second

// Environment variables that tune the table and job leases of `run` and
// `serve` (Go durations). Every process sharing a lake must use the same
// values.
const (
	envLeaseTTL     = "MEDALLION_LEASE_TTL"      // default 30s
	envLeaseMaxSkew = "MEDALLION_LEASE_MAX_SKEW" // default 2s
)

// leaseOptions are the default lease options with the environment's
// overrides.
func leaseOptions() (jobs.LeaseOptions, error) {
	o := jobs.DefaultLeaseOptions()
	for _, e := range []struct {
		name string
		dst  *time.Duration
	}{{envLeaseTTL, &o.TTL}, {envLeaseMaxSkew, &o.MaxSkew}} {
		v := os.Getenv(e.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("%s=%q: want a duration like 30s", e.name, v)
		}
		*e.dst = d
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("%s/%s: %w", envLeaseTTL, envLeaseMaxSkew, err)
	}
	return o, nil
}
