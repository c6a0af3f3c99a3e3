package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/cron"
	"github.com/medallion-dev/medallion/lake"
)

// Clock tells time. The scheduler and leases take one so tests can use a
// fake clock and never sleep.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After delivers the time on the channel once d has passed (at once
	// for d <= 0), like time.After.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ScheduleEntry says when one job runs under `medallion serve`: on a cron
// spec, or after each successful run of another job. Job names are
// canonical job ids (config.Pipeline.JobID): a layer ("bronze") or
// layer.table ("silver.meter_usage_1m").
type ScheduleEntry struct {
	Job   string
	Cron  string // a spec internal/cron parses; empty when After is set
	After string // the job this one runs after; empty when Cron is set
}

// ScheduleEntries turns the pipeline's schedule: section into entries with
// canonical job ids, in the order the file declares them.
func ScheduleEntries(p *config.Pipeline) ([]ScheduleEntry, error) {
	var out []ScheduleEntry
	for _, name := range p.ScheduleOrder {
		s := p.Schedule[name]
		id, err := p.JobID(name)
		if err != nil {
			return nil, fmt.Errorf("schedule.%s: %w", name, err)
		}
		e := ScheduleEntry{Job: id, Cron: s.Cron}
		if s.After != "" {
			if e.After, err = p.JobID(s.After); err != nil {
				return nil, fmt.Errorf("schedule.%s.after: %w", name, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Rows counts what one run read and wrote, for the run history.
type Rows struct {
	In, Out int64
}

// RunFunc runs one job for one due time. ctx is cancelled when the job's
// lease is lost or the scheduler stops; the job should then give up
// without committing. The returned Rows go to the run history.
type RunFunc func(ctx context.Context, job string, due time.Time) (Rows, error)

// SchedulerOptions tune a Scheduler. Get them from DefaultSchedulerOptions.
type SchedulerOptions struct {
	// Owner names this process in leases and run history. It must differ
	// between processes sharing a lake; the default is host-pid-random.
	Owner string
	// Clock tells time; tests use a fake one.
	Clock Clock
	// Location is the zone cron fields are read in (nil: UTC).
	Location *time.Location
	// Lease configures the per-job leases (its Clock is replaced by Clock).
	Lease LeaseOptions
	// LeaseRetry is how long to wait before asking again for a lease another
	// runner holds. While it waits, the other runner is running the job or
	// has crashed; in the second case the job is taken over after the
	// lease's TTL.
	LeaseRetry time.Duration
	// Log receives one line per run and every problem; nil discards.
	Log *slog.Logger
	// OnRun, if set, is called with every run record (ok, failed or
	// skipped) once it is written and the job's lease is released: a hook
	// for metrics and tests. It must not block for long.
	OnRun func(RunRecord)
}

// DefaultSchedulerOptions returns options for one `medallion serve`: a
// generated owner id, the system clock, UTC, default leases, retry every 5s.
func DefaultSchedulerOptions() SchedulerOptions {
	return SchedulerOptions{
		Owner:      DefaultOwner(),
		Clock:      SystemClock(),
		Location:   time.UTC,
		Lease:      DefaultLeaseOptions(),
		LeaseRetry: 5 * time.Second,
	}
}

// DefaultOwner returns host-pid-random, unique per process.
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Validate refuses options the scheduler cannot work with, naming the field.
func (o SchedulerOptions) Validate() error {
	switch {
	case o.Owner == "":
		return errors.New("scheduler owner is empty")
	case o.Clock == nil:
		return errors.New("scheduler clock is nil")
	case o.LeaseRetry <= 0:
		return fmt.Errorf("scheduler lease retry must be positive, got %s", o.LeaseRetry)
	}
	lo := o.Lease
	lo.Clock = o.Clock
	return lo.Validate()
}

// StatePrefix is where the scheduler keeps, per job, the last due time a run
// was made for: _medallion/schedule/<job>.json.
const StatePrefix = "_medallion/schedule/"

// jobState is the persisted schedule state of one job.
type jobState struct {
	Job        string    `json:"job"`
	LastDue    time.Time `json:"last_due"`    // the last due time a run was made for
	LastResult string    `json:"last_result"` // ok | failed
	LastStart  time.Time `json:"last_start"`
	LastEnd    time.Time `json:"last_end"`
	Owner      string    `json:"owner"`
}

// Scheduler runs jobs on their schedules, under `medallion serve`.
//
//   - Jitter-free: a cron job runs at exactly its due time on the Clock.
//   - Catch-up once: the last due time each job ran for is kept in the lake
//     (StatePrefix). On start, and after a run that overran later due
//     times, a job whose due times were missed runs once, for the latest
//     missed one, not once per missed time. A job never run before waits
//     for its first due time.
//   - after: a job with After: X runs after each successful run of X, with
//     X's due time, in chains. Failures mark the chain below as skipped.
//     On start, a job whose upstream last succeeded for a later due time
//     than it ran for runs once.
//   - One run of a job at a time in this process (each job has one
//     goroutine), and across processes through the job's lease; under the
//     lease the persisted state is read again, so a due time another
//     process already ran is not run twice.
//
// Every run is recorded with RecordRun. Start starts one goroutine per job,
// owned by the Scheduler; Stop cancels them and waits.
type Scheduler struct {
	store lake.Store
	run   RunFunc
	o     SchedulerOptions
	log   *slog.Logger
	jobs  []*schedJob // in entry order

	mu     sync.Mutex
	cancel context.CancelFunc // nil until Start
	wg     sync.WaitGroup
}

type schedJob struct {
	name       string
	cron       *cron.Schedule // nil for after: jobs
	after      string
	dependents []*schedJob

	mu      sync.Mutex
	pending time.Time     // latest due time an upstream success asked for
	wake    chan struct{} // buffered(1): pending changed
}

// NewScheduler checks the entries (cron specs parse, after: names a
// scheduled job, no cycles, no job twice) and returns a Scheduler that is
// not started.
func NewScheduler(store lake.Store, entries []ScheduleEntry, run RunFunc, o SchedulerOptions) (*Scheduler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if store == nil || run == nil {
		return nil, errors.New("scheduler: nil store or run function")
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	o.Lease.Clock = o.Clock
	if o.Lease.Log == nil {
		o.Lease.Log = o.Log
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{store: store, run: run, o: o, log: log}
	byName := make(map[string]*schedJob, len(entries))
	for _, e := range entries {
		if err := checkJobName(e.Job); err != nil {
			return nil, fmt.Errorf("schedule: %w", err)
		}
		if byName[e.Job] != nil {
			return nil, fmt.Errorf("schedule: job %s is scheduled twice", e.Job)
		}
		j := &schedJob{name: e.Job, after: e.After, wake: make(chan struct{}, 1)}
		switch {
		case (e.Cron == "") == (e.After == ""):
			return nil, fmt.Errorf("schedule.%s: give a cron spec or after: a job, exactly one", e.Job)
		case e.Cron != "":
			c, err := cron.ParseInLocation(e.Cron, o.Location)
			if err != nil {
				return nil, fmt.Errorf("schedule.%s: bad cron spec %q: %w", e.Job, e.Cron, err)
			}
			j.cron = c
		}
		byName[e.Job] = j
		s.jobs = append(s.jobs, j)
	}
	for _, j := range s.jobs {
		if j.after == "" {
			continue
		}
		up := byName[j.after]
		if up == nil {
			return nil, fmt.Errorf("schedule.%s: runs after %s, which has no schedule: give %s a cron spec", j.name, j.after, j.after)
		}
		up.dependents = append(up.dependents, j)
	}
	for _, j := range s.jobs { // after: chains must end in a cron job
		seen := map[string]bool{}
		for k := j; k.after != ""; k = byName[k.after] {
			if seen[k.name] {
				return nil, fmt.Errorf("schedule.%s: after: chain loops back to %s", j.name, k.name)
			}
			seen[k.name] = true
		}
	}
	return s, nil
}

// Start starts one goroutine per job under ctx. It returns an error if the
// scheduler was already started.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("scheduler already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	for _, j := range s.jobs {
		if j.cron != nil {
			s.wg.Go(func() { s.cronLoop(ctx, j) })
		} else {
			s.wg.Go(func() { s.afterLoop(ctx, j) })
		}
	}
	s.log.Info("scheduler started", "owner", s.o.Owner, "jobs", len(s.jobs))
	return nil
}

// Stop cancels every job goroutine (a running job sees its context
// cancelled and its due time stays unconsumed, so it is caught up on the
// next start) and waits for them. Stop before Start does nothing.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	s.wg.Wait()
}

// cronLoop runs one cron job at its due times until ctx is cancelled.
func (s *Scheduler) cronLoop(ctx context.Context, j *schedJob) {
	var from time.Time // the last due time handled: due times after it are owed
	for from.IsZero() {
		st, err := s.loadState(ctx, j.name)
		if err == nil {
			from = st.LastDue
			if from.IsZero() {
				from = s.o.Clock.Now() // never ran: wait for the first due time
			}
			break
		}
		s.log.Error("read schedule state; retrying", "job", j.name, "err", err)
		if !s.sleep(ctx, s.o.LeaseRetry) {
			return
		}
	}
	for ctx.Err() == nil {
		now := s.o.Clock.Now()
		due := latestDue(j.cron, from, now)
		if due.IsZero() {
			next := j.cron.Next(from)
			if next.IsZero() {
				s.log.Error("cron spec has no further due time; job stops", "job", j.name, "cron", j.cron.String())
				return
			}
			if !s.sleep(ctx, next.Sub(now)) {
				return
			}
			continue
		}
		handled, ranFor := s.runDue(ctx, j, due)
		if !handled {
			if !s.sleep(ctx, s.o.LeaseRetry) {
				return
			}
			continue
		}
		from = ranFor
	}
}

// afterLoop runs one after: job whenever its upstream succeeded.
func (s *Scheduler) afterLoop(ctx context.Context, j *schedJob) {
	s.catchUpAfter(ctx, j)
	for {
		select {
		case <-ctx.Done():
			return
		case <-j.wake:
		}
		for {
			due := j.takePending()
			if due.IsZero() {
				break
			}
			for {
				handled, _ := s.runDue(ctx, j, due)
				if handled {
					break
				}
				if !s.sleep(ctx, s.o.LeaseRetry) {
					return
				}
				if newer := j.takePending(); newer.After(due) {
					due = newer
				}
			}
		}
	}
}

// catchUpAfter triggers an after: job once on start if its upstream last
// succeeded for a later due time than the job last ran for (the process
// stopped between the two).
func (s *Scheduler) catchUpAfter(ctx context.Context, j *schedJob) {
	up, err := s.loadState(ctx, j.after)
	if err != nil || up.LastResult != ResultOK || up.LastDue.IsZero() {
		return
	}
	own, err := s.loadState(ctx, j.name)
	if err != nil || !own.LastDue.Before(up.LastDue) {
		return
	}
	j.trigger(up.LastDue)
}

func (j *schedJob) trigger(due time.Time) {
	j.mu.Lock()
	if due.After(j.pending) {
		j.pending = due
	}
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default: // a wake-up is already pending; it will see the new due time
	}
}

func (j *schedJob) takePending() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	due := j.pending
	j.pending = time.Time{}
	return due
}

// runDue runs job j for due time due under its lease. handled is false
// when another runner holds the lease or the lake failed (try again later);
// ranFor is the due time now consumed (due, or a later one another process
// already ran).
func (s *Scheduler) runDue(ctx context.Context, j *schedJob, due time.Time) (handled bool, ranFor time.Time) {
	held, err := AcquireWith(ctx, s.store, j.name, s.o.Owner, s.o.Lease)
	if errors.Is(err, ErrLeaseHeld) {
		s.log.Debug("lease held elsewhere; will retry", "job", j.name, "due", due, "err", err)
		return false, time.Time{}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("acquire lease", "job", j.name, "err", err)
		}
		return false, time.Time{}
	}
	var finished []RunRecord
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.Lease.TTL)
		defer cancel()
		if err := held.Release(rctx); err != nil {
			s.log.Warn("release lease", "job", j.name, "err", err)
		}
		if s.o.OnRun != nil {
			for _, r := range finished {
				s.o.OnRun(r)
			}
		}
	}()
	lctx := held.Context()
	st, err := s.loadState(lctx, j.name)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("read schedule state", "job", j.name, "err", err)
		}
		return false, time.Time{}
	}
	if !st.LastDue.Before(due) {
		s.log.Debug("due time already run", "job", j.name, "due", due, "by", st.Owner)
		return true, st.LastDue
	}

	start := s.o.Clock.Now()
	rows, runErr := s.run(lctx, j.name, due)
	end := s.o.Clock.Now()
	if lctx.Err() != nil {
		// Stopped or lease lost mid-run: the due time is not consumed. This
		// process (after a restart) or another runner (after the lease
		// expires) runs it again; the Delta commit fences half-done work.
		cause := context.Cause(lctx)
		s.log.Warn("run interrupted", "job", j.name, "due", due, "cause", cause)
		if errors.Is(cause, ErrLeaseLost) {
			finished = append(finished, s.record(ctx, RunRecord{Job: j.name, Due: due, Start: start, End: end, RowsIn: rows.In, RowsOut: rows.Out,
				Result: ResultFailed, Error: cause.Error(), Owner: s.o.Owner, Generation: held.Generation()}))
		}
		return false, time.Time{}
	}
	result, msg := ResultOK, ""
	if runErr != nil {
		result, msg = ResultFailed, runErr.Error()
	}
	finished = append(finished, s.record(lctx, RunRecord{Job: j.name, Due: due, Start: start, End: end, RowsIn: rows.In, RowsOut: rows.Out,
		Result: result, Error: msg, Owner: s.o.Owner, Generation: held.Generation()}))
	next := jobState{Job: j.name, LastDue: due, LastResult: result, LastStart: start, LastEnd: end, Owner: s.o.Owner}
	if err := s.saveState(lctx, next); err != nil {
		// The run happened; without the state it may run again for this
		// due time, which the job's own exactly-once commit absorbs.
		s.log.Error("save schedule state", "job", j.name, "err", err)
	}
	if runErr != nil {
		s.log.Error("run failed", "job", j.name, "due", due, "err", runErr)
		finished = s.skipDependents(ctx, j, due, end, finished)
		return true, due
	}
	s.log.Info("run ok", "job", j.name, "due", due, "rows_in", rows.In, "rows_out", rows.Out, "took", end.Sub(start))
	for _, d := range j.dependents {
		d.trigger(due)
	}
	return true, due
}

// skipDependents records the after: chain below a failed job as skipped,
// appending the records to out.
func (s *Scheduler) skipDependents(ctx context.Context, j *schedJob, due, at time.Time, out []RunRecord) []RunRecord {
	for _, d := range j.dependents {
		out = append(out, s.record(ctx, RunRecord{Job: d.name, Due: due, Start: at, End: at, Result: ResultSkipped,
			Error: "upstream " + j.name + " failed", Owner: s.o.Owner}))
		out = s.skipDependents(ctx, d, due, at, out)
	}
	return out
}

// record appends r to the run history (a failure is logged: history must
// not stop the schedule) and returns it.
func (s *Scheduler) record(ctx context.Context, r RunRecord) RunRecord {
	if err := RecordRun(ctx, s.store, r); err != nil {
		s.log.Error("record run", "job", r.Job, "err", err)
	}
	return r
}

// sleep waits d on the clock; false if ctx was cancelled first.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-s.o.Clock.After(d):
		return true
	}
}

func (s *Scheduler) loadState(ctx context.Context, job string) (jobState, error) {
	rc, _, err := s.store.Get(ctx, StatePrefix+job+".json")
	if errors.Is(err, lake.ErrNotExist) {
		return jobState{Job: job}, nil
	}
	if err != nil {
		return jobState{}, fmt.Errorf("read schedule state of %s: %w", job, err)
	}
	defer rc.Close()
	var st jobState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return jobState{}, fmt.Errorf("read schedule state %s%s.json: %w (delete it to start the job afresh)", StatePrefix, job, err)
	}
	return st, nil
}

func (s *Scheduler) saveState(ctx context.Context, st jobState) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	key := StatePrefix + st.Job + ".json"
	if _, err := s.store.Put(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// latestDue returns the latest due time in (from, now], or the zero time if
// none: the one run owed however many due times were missed.
func latestDue(c *cron.Schedule, from, now time.Time) time.Time {
	first := c.Next(from)
	if first.IsZero() || first.After(now) {
		return time.Time{}
	}
	if e := c.Every(); e > 0 {
		return c.Next(now.Add(-e)) // the one multiple of e in (now-e, now]
	}
	// Search a window back from now that doubles until it holds a due time,
	// so a long downtime costs a few searches, not one Next per missed minute.
	for w := 24 * time.Hour; ; w *= 2 {
		start := now.Add(-w)
		if !start.After(from) {
			start = from
		}
		var last time.Time
		for t := c.Next(start); !t.IsZero() && !t.After(now); t = c.Next(t) {
			last = t
		}
		if !last.IsZero() || start.Equal(from) {
			return last
		}
	}
}
