package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/gold"
	"github.com/medallion-dev/medallion/layers/silver"
	"github.com/medallion-dev/medallion/warehouse"
)

// Runner brings tables up to date: it runs the layer job of each planned
// table, in dependency order, on one DuckDB engine.
type Runner struct {
	Store    lake.Store
	Pipeline *config.Pipeline
	Engine   *warehouse.Engine
	Cache    *lake.Cache // local copies of lake objects (S3 lakes)
	Log      *slog.Logger
	// Parallel bounds how many independent jobs run at once (0:
	// DefaultParallel). Jobs of one table never overlap.
	Parallel int
	// Metrics, if set, receives every job's result.
	Metrics *RunnerMetrics
	// Owner names this process in table leases (TableLease); empty: one
	// DefaultOwner per Runner.
	Owner string
	// Lease configures the table leases; a zero TTL means
	// DefaultLeaseOptions.
	Lease LeaseOptions
	// LeaseWait is how long a job waits for its table's lease while another
	// runner holds it before failing with an error wrapping ErrLeaseHeld
	// that names the holder; 0 fails at once.
	LeaseWait time.Duration
	// OnResult, if set, is called after every job that ran (its tables may
	// have new commits): serve tells the dashboard, which pushes the news
	// to open pages.
	OnResult func(Result)
	// OnStart, if set, is called when a job starts to run (after it got a
	// slot among Parallel, before its lease): progress output.
	OnStart func(Job)
	// OnProgress, if set, receives how far a running job has got, as its
	// layer reports it (layers.Progress), from the job's goroutines:
	// progress output. It must be quick and safe for concurrent use.
	OnProgress func(layers.TableRef, layers.Progress)

	// Tables is shared by the delta Tables of every job the Runner runs
	// (layers.Env.Tables), so that running the same jobs again (stream
	// mode, scheduled runs of serve) decodes each checkpoint once. nil:
	// the Runner makes one on first use (see TableCache).
	Tables *delta.Cache

	ownerOnce  sync.Once
	owner      string
	tablesOnce sync.Once
}

// Result is what one job did.
type Result struct {
	Job      Job
	Summary  string        // one line for the terminal
	Err      error         // nil on success
	Skipped  bool          // not run because an upstream job failed
	RowsIn   int64         // rows the job read (new input)
	RowsOut  int64         // rows the job wrote
	Duration time.Duration // wall time of the job
}

// ErrUpstreamFailed marks a job skipped because a table it reads failed.
var ErrUpstreamFailed = errors.New("not run: an upstream table failed")

// DefaultParallel is how many independent jobs a Runner runs at once when
// Parallel is not set: the work is mostly DuckDB, which uses every core on
// its own, so a little overlap (one job uploading while another computes)
// is what pays.
const DefaultParallel = 2

// Run runs the plan: a job starts once every job it reads from has
// finished, and at most Parallel jobs run at once. A failed job stops the
// jobs that read from it, not the others; the returned error names every
// failed job. report is called once per job, in plan order (for progress
// output); it may be nil.
func (r *Runner) Run(ctx context.Context, plan []Job, report func(Result)) ([]Result, error) {
	scratch, err := os.MkdirTemp(r.Engine.TempDir(), "run-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(scratch)

	limit := r.Parallel
	if limit <= 0 {
		limit = DefaultParallel
	}
	sem := make(chan struct{}, limit)
	done := make(map[string]chan struct{}, len(plan))
	for _, j := range plan {
		done[j.Table.String()] = make(chan struct{})
	}
	var (
		failMu   sync.Mutex // failed alone: a job checks it while another reports
		failed   = make(map[string]bool)
		mu       sync.Mutex // the results and reporting
		results  = make([]Result, len(plan))
		finished = make([]bool, len(plan))
		reported int
		wg       sync.WaitGroup
	)
	for i, j := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range j.Deps {
				if ch, ok := done[d.String()]; ok {
					<-ch
				}
			}
			res, release := r.runJob(ctx, j, scratch, sem, func(d layers.TableRef) bool {
				failMu.Lock()
				defer failMu.Unlock()
				return failed[d.String()]
			})
			failMu.Lock()
			if res.Err != nil {
				failed[j.Table.String()] = true
			}
			failMu.Unlock()
			// The jobs reading this table start now, not after the
			// lease's release and report (which writes the run history):
			// file writes and fsyncs that none of them needs. The two
			// overlap each other too.
			close(done[j.Table.String()])
			released := make(chan struct{})
			go func() {
				defer close(released)
				release()
			}()
			defer func() { <-released }()
			mu.Lock()
			defer mu.Unlock()
			results[i], finished[i] = res, true
			for reported < len(plan) && finished[reported] {
				if report != nil {
					report(results[reported])
				}
				reported++
			}
		}()
	}
	wg.Wait()
	var errs []error
	for _, res := range results {
		if res.Err != nil && !res.Skipped {
			errs = append(errs, res.Err)
		}
	}
	return results, errors.Join(errs...)
}

// runJob runs one job once its inputs are done, unless one of them failed
// or ctx is over. release (never nil) gives the table's lease back.
func (r *Runner) runJob(ctx context.Context, j Job, scratch string, sem chan struct{}, depFailed func(layers.TableRef) bool) (res Result, release func()) {
	res, release = Result{Job: j}, func() {}
	for _, d := range j.Deps {
		if depFailed(d) {
			res.Skipped, res.Err = true, fmt.Errorf("%s: %w (%s)", j.Table, ErrUpstreamFailed, d)
			r.Metrics.observe(res, layers.Result{})
			return res, release
		}
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-ctx.Done():
		res.Err = nameTable(j.Table, ctx.Err())
		return res, release
	}
	if err := ctx.Err(); err != nil {
		res.Err = nameTable(j.Table, err)
		return res, release
	}
	if r.OnStart != nil {
		r.OnStart(j)
	}
	start := time.Now()
	o, release, err := r.runLeased(ctx, j.Table, scratch)
	res.Duration = time.Since(start)
	res.Summary, res.RowsIn, res.RowsOut = o.Summary, o.RowsIn, o.RowsOut
	res.Err = nameTable(j.Table, err)
	r.Metrics.observe(res, o)
	if r.OnResult != nil {
		r.OnResult(res)
	}
	return res, release
}

// runLeased runs the job of table t under the table's lease (see
// TableLease), with its commits fenced by the lease's generation, and
// returns the lease's release (never nil) for the caller to call. The
// message of a disabled mirror needs no lease.
func (r *Runner) runLeased(ctx context.Context, t layers.TableRef, scratch string) (layers.Result, func(), error) {
	if t.Layer == MirrorLayer && (t.Name == "" || r.Pipeline.Postgres == "") {
		o, err := r.runOne(ctx, t, scratch)
		return o, func() {}, err
	}
	return r.leased(ctx, t, func(ctx context.Context) (layers.Result, error) { return r.runOne(ctx, t, scratch) })
}

// layerJobs are the jobs the runner runs for the tables of each layer.
var layerJobs = map[layers.Layer]layers.Job{
	layers.Bronze: bronze.Job,
	layers.Silver: silver.Job,
	layers.Gold:   gold.Job,
}

func (r *Runner) runOne(ctx context.Context, t layers.TableRef, scratch string) (layers.Result, error) {
	if t.Layer == MirrorLayer {
		summary, err := r.runMirror(ctx, t)
		return layers.Result{Table: t, Summary: summary}, err
	}
	job, ok := layerJobs[t.Layer]
	if !ok {
		return layers.Result{}, fmt.Errorf("%s: no job for layer %q", t, t.Layer)
	}
	env := r.env(scratch)
	env.Progress = r.progressOf(t)
	return job(ctx, env, r.Pipeline, t.Name)
}

// env is the layer environment of one job: the runner's store, engine,
// cache and logger, scratch files under scratch.
func (r *Runner) env(scratch string) layers.Env {
	return layers.Env{Store: r.Store, DB: r.Engine.DB(), ScratchDir: scratch, Cache: r.Cache, Log: r.Log, Tables: r.TableCache()}
}

// TableCache returns r.Tables, making it on first use: what other users of
// the same tables in this process (stream mode's trigger check and
// compaction) share with the Runner's jobs.
func (r *Runner) TableCache() *delta.Cache {
	r.tablesOnce.Do(func() {
		if r.Tables == nil {
			r.Tables = &delta.Cache{}
		}
	})
	return r.Tables
}

// progressOf is the Env.Progress of table t's job: OnProgress naming t;
// nil without OnProgress.
func (r *Runner) progressOf(t layers.TableRef) func(layers.Progress) {
	if r.OnProgress == nil {
		return nil
	}
	return func(p layers.Progress) { r.OnProgress(t, p) }
}

// nameTable makes sure a job's error says which table failed, once: layer
// errors often start with the table already.
func nameTable(t layers.TableRef, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), t.String()) {
		return err
	}
	return fmt.Errorf("%s: %w", t, err)
}
