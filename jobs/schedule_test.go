package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/cron"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

// fakeClock is a Clock that moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at    time.Time
	ch    chan time.Time
	sched bool // asked for by a scheduler loop (Scheduler.sleep)
}

func newFakeClock(t0 time.Time) *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch, sched: calledFrom("(*Scheduler).sleep")})
	return ch
}

// calledFrom reports whether the caller of After is the function name
// ends with. A lease's renewal timer stays in waiters after the lease is
// released (nothing reads it any more), so counting only the scheduler's
// own waits keeps a stale renewal due at the same instant out of
// schedulersAt.
func calledFrom(name string) bool {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return false
	}
	f := runtime.FuncForPC(pc)
	return f != nil && strings.HasSuffix(f.Name(), name)
}

// Set moves the clock to t (never backwards) and fires the waiters due.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		panic("fake clock moved backwards")
	}
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
		} else {
			w.ch <- t
		}
	}
	c.waiters = kept
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// nextBefore returns the earliest time a waiter fires at, if it is before
// limit.
func (c *fakeClock) nextBefore(limit time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, w := range c.waiters {
		if w.at.Before(limit) && (next.IsZero() || w.at.Before(next)) {
			next = w.at
		}
	}
	return next, !next.IsZero()
}

// waitingAt counts the waiters that fire at exactly at.
func (c *fakeClock) waitingAt(at time.Time) int { return c.countAt(at, false) }

// schedulersAt counts the scheduler loops waiting to wake at exactly at,
// leaving out lease timers (a released lease's renewal timer stays behind).
func (c *fakeClock) schedulersAt(at time.Time) int { return c.countAt(at, true) }

// schedulersWaiting counts the scheduler loops parked on the clock.
func (c *fakeClock) schedulersWaiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waiters {
		if w.sched {
			n++
		}
	}
	return n
}

func (c *fakeClock) countAt(at time.Time, onlySched bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waiters {
		if (w.sched || !onlySched) && w.at.Equal(at) {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds, failing the test after 20s of real
// time. It is how a test waits for goroutines to reach a state, not a way
// to let schedule time pass: that moves only with the fake clock.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: CI machines are loaded
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// runLog collects what the scheduler's run function and OnRun saw.
type runLog struct {
	mu       sync.Mutex
	calls    []string // "job@15:04" in call order
	finished []RunRecord
	inFlight map[string]*atomic.Int32
	overlap  []string
}

func newRunLog() *runLog { return &runLog{inFlight: map[string]*atomic.Int32{}} }

func (l *runLog) counter(job string) *atomic.Int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.inFlight[job]
	if c == nil {
		c = new(atomic.Int32)
		l.inFlight[job] = c
	}
	return c
}

// run returns a RunFunc that logs each call, checks that no job runs twice
// at once, and fails the jobs fail says to.
func (l *runLog) run(clock Clock, fail func(job string, due time.Time) bool, jitter *atomic.Int32) RunFunc {
	return func(ctx context.Context, job string, due time.Time) (Rows, error) {
		c := l.counter(job)
		if c.Add(1) != 1 {
			l.mu.Lock()
			l.overlap = append(l.overlap, job)
			l.mu.Unlock()
		}
		defer c.Add(-1)
		if jitter != nil && !clock.Now().Equal(due) {
			jitter.Add(1)
		}
		l.mu.Lock()
		l.calls = append(l.calls, job+"@"+due.Format("15:04"))
		l.mu.Unlock()
		if fail != nil && fail(job, due) {
			return Rows{In: 1}, errors.New("boom")
		}
		return Rows{In: 10, Out: 7}, nil
	}
}

func (l *runLog) onRun(r RunRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finished = append(l.finished, r)
}

func (l *runLog) has(job string, due time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.finished {
		if r.Job == job && r.Due.Equal(due) {
			return true
		}
	}
	return false
}

func (l *runLog) callList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func testSchedulerOptions(clock Clock, owner string, l *runLog) SchedulerOptions {
	o := DefaultSchedulerOptions()
	o.Owner = owner
	o.Clock = clock
	o.Lease.TTL = 10 * time.Minute // longer than a test step: renewals never interleave with clock jumps
	o.LeaseRetry = time.Second
	o.OnRun = l.onRun
	return o
}

func startScheduler(t *testing.T, store lake.Store, entries []ScheduleEntry, run RunFunc, o SchedulerOptions) *Scheduler {
	t.Helper()
	s, err := NewScheduler(store, entries, run, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func TestSchedulerJitterFree(t *testing.T) {
	store := testenv.LocalStore(t)
	clock := newFakeClock(at("2024-01-01 00:02:10"))
	l := newRunLog()
	var jitter atomic.Int32
	s := startScheduler(t, store, []ScheduleEntry{{Job: "bronze", Cron: "*/5 * * * *"}},
		l.run(clock, nil, &jitter), testSchedulerOptions(clock, "p1", l))

	eventually(t, "the first due time to be awaited", func() bool { return clock.waitingAt(at("2024-01-01 00:05:00")) == 1 })
	if calls := l.callList(); len(calls) != 0 {
		t.Fatalf("a job never run before ran at start: %v", calls)
	}
	for _, due := range []string{"00:05", "00:10", "00:15"} {
		d := at("2024-01-01 " + due + ":00")
		clock.Set(d)
		eventually(t, "run at "+due, func() bool { return l.has("bronze", d) })
		eventually(t, "the next due time", func() bool { return clock.waitingAt(d.Add(5*time.Minute)) == 1 })
	}
	s.Stop()
	if want := []string{"bronze@00:05", "bronze@00:10", "bronze@00:15"}; !slices.Equal(l.callList(), want) {
		t.Fatalf("runs %v, want %v", l.callList(), want)
	}
	if jitter.Load() != 0 {
		t.Fatalf("%d runs started off their due time", jitter.Load())
	}
	runs, err := ListRuns(t.Context(), store, "bronze", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || !runs[0].Due.Equal(at("2024-01-01 00:15:00")) || runs[0].RowsIn != 10 || runs[0].RowsOut != 7 || runs[0].Result != ResultOK || runs[0].Owner != "p1" {
		t.Fatalf("run history: %+v", runs)
	}
}

// A job whose due times were missed five times while no process ran runs
// once, for the latest of them, then keeps its schedule.
func TestSchedulerCatchUpOnce(t *testing.T) {
	store := testenv.LocalStore(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	l := newRunLog()
	entries := []ScheduleEntry{{Job: "bronze", Cron: "@every 1m"}, {Job: "silver", After: "bronze"}}
	first := startScheduler(t, store, entries, l.run(clock, nil, nil), testSchedulerOptions(clock, "p1", l))
	eventually(t, "00:01 to be awaited", func() bool { return clock.waitingAt(at("2024-01-01 00:01:00")) == 1 })
	clock.Set(at("2024-01-01 00:01:00"))
	eventually(t, "the 00:01 runs", func() bool { return l.has("silver", at("2024-01-01 00:01:00")) })
	first.Stop()

	// Down from 00:01:00 to 00:06:30: 00:02, 00:03, 00:04, 00:05, 00:06 missed.
	clock.Set(at("2024-01-01 00:06:30"))
	startScheduler(t, store, entries, l.run(clock, nil, nil), testSchedulerOptions(clock, "p2", l))
	eventually(t, "the catch-up run", func() bool { return l.has("silver", at("2024-01-01 00:06:00")) })
	eventually(t, "00:07 to be awaited", func() bool { return clock.waitingAt(at("2024-01-01 00:07:00")) == 1 })
	clock.Set(at("2024-01-01 00:07:00"))
	eventually(t, "the 00:07 runs", func() bool { return l.has("silver", at("2024-01-01 00:07:00")) })

	want := []string{"bronze@00:01", "silver@00:01", "bronze@00:06", "silver@00:06", "bronze@00:07", "silver@00:07"}
	if got := l.callList(); !slices.Equal(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
}

// A run that overruns later due times is followed by one run, not one per
// due time it overran.
func TestSchedulerOverrunCatchesUpOnce(t *testing.T) {
	store := testenv.LocalStore(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	l := newRunLog()
	started, release := make(chan struct{}), make(chan struct{})
	inner := l.run(clock, nil, nil)
	run := func(ctx context.Context, job string, due time.Time) (Rows, error) {
		if due.Equal(at("2024-01-01 00:01:00")) {
			close(started)
			<-release
		}
		return inner(ctx, job, due)
	}
	startScheduler(t, store, []ScheduleEntry{{Job: "bronze", Cron: "@every 1m"}}, run, testSchedulerOptions(clock, "p1", l))
	eventually(t, "00:01 to be awaited", func() bool { return clock.waitingAt(at("2024-01-01 00:01:00")) == 1 })
	clock.Set(at("2024-01-01 00:01:00"))
	<-started
	clock.Set(at("2024-01-01 00:04:10")) // the 00:01 run is still going; 00:02-00:04 pass
	close(release)
	eventually(t, "the catch-up run", func() bool { return l.has("bronze", at("2024-01-01 00:04:00")) })
	eventually(t, "00:05 to be awaited", func() bool { return clock.waitingAt(at("2024-01-01 00:05:00")) == 1 })
	if want := []string{"bronze@00:01", "bronze@00:04"}; !slices.Equal(l.callList(), want) {
		t.Fatalf("runs %v, want %v", l.callList(), want)
	}
}

// after: jobs run after each successful run of their upstream, in chains;
// a failure skips the chain below it.
func TestSchedulerAfterOrdering(t *testing.T) {
	store := testenv.LocalStore(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	l := newRunLog()
	entries := []ScheduleEntry{
		{Job: "mirror", After: "gold"}, // declared before what it follows: order comes from after:
		{Job: "bronze", Cron: "@every 1m"},
		{Job: "silver", After: "bronze"},
		{Job: "gold", After: "silver"},
	}
	failSilverAt2 := func(job string, due time.Time) bool {
		return job == "silver" && due.Equal(at("2024-01-01 00:02:00"))
	}
	startScheduler(t, store, entries, l.run(clock, failSilverAt2, nil), testSchedulerOptions(clock, "p1", l))
	for _, m := range []string{"00:01", "00:02", "00:03"} {
		d := at("2024-01-01 " + m + ":00")
		eventually(t, m+" to be awaited", func() bool { return clock.waitingAt(d) == 1 })
		clock.Set(d)
		eventually(t, "the chain at "+m, func() bool { return l.has("mirror", d) })
	}
	want := []string{
		"bronze@00:01", "silver@00:01", "gold@00:01", "mirror@00:01",
		"bronze@00:02", "silver@00:02",
		"bronze@00:03", "silver@00:03", "gold@00:03", "mirror@00:03",
	}
	if got := l.callList(); !slices.Equal(got, want) {
		t.Fatalf("runs %v\nwant %v", got, want)
	}
	runs, err := ListRuns(t.Context(), store, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var at2 []string
	for _, r := range runs {
		if r.Due.Equal(at("2024-01-01 00:02:00")) {
			at2 = append(at2, r.Job+" "+r.Result+" "+r.Error)
		}
	}
	sort.Strings(at2)
	if want := []string{"bronze ok ", "gold skipped upstream silver failed", "mirror skipped upstream gold failed", "silver failed boom"}; !slices.Equal(at2, want) {
		t.Fatalf("history at 00:02: %q, want %q", at2, want)
	}
	if l.overlap != nil {
		t.Fatalf("jobs ran twice at once: %v", l.overlap)
	}
}

// An after: job whose upstream succeeded just before the process stopped
// runs once when it starts again.
func TestSchedulerAfterCatchUp(t *testing.T) {
	store := testenv.LocalStore(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	s := &Scheduler{store: store}
	if err := s.saveState(t.Context(), jobState{Job: "bronze", LastDue: at("2024-01-01 00:00:00"), LastResult: ResultOK}); err != nil {
		t.Fatal(err)
	}
	l := newRunLog()
	entries := []ScheduleEntry{{Job: "bronze", Cron: "@hourly"}, {Job: "silver", After: "bronze"}}
	startScheduler(t, store, entries, l.run(clock, nil, nil), testSchedulerOptions(clock, "p1", l))
	eventually(t, "silver's catch-up", func() bool { return l.has("silver", at("2024-01-01 00:00:00")) })
	if want := []string{"silver@00:00"}; !slices.Equal(l.callList(), want) {
		t.Fatalf("runs %v, want %v", l.callList(), want)
	}
}

func TestNewSchedulerRefuses(t *testing.T) {
	store := testenv.LocalStore(t)
	run := func(context.Context, string, time.Time) (Rows, error) { return Rows{}, nil }
	tests := []struct {
		entries []ScheduleEntry
		want    string
	}{
		{[]ScheduleEntry{{Job: "a", Cron: "* * *"}}, `schedule.a: bad cron spec "* * *": want 5 fields`},
		{[]ScheduleEntry{{Job: "a", After: "b"}}, "schedule.a: runs after b, which has no schedule"},
		{[]ScheduleEntry{{Job: "a", After: "b"}, {Job: "b", After: "a"}}, "chain loops back"},
		{[]ScheduleEntry{{Job: "a", Cron: "@daily"}, {Job: "a", Cron: "@hourly"}}, "scheduled twice"},
		{[]ScheduleEntry{{Job: "a"}}, "give a cron spec or after: a job, exactly one"},
		{[]ScheduleEntry{{Job: "a/b", Cron: "@daily"}}, `bad job name "a/b"`},
	}
	for _, tt := range tests {
		_, err := NewScheduler(store, tt.entries, run, DefaultSchedulerOptions())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %s", tt.entries, err, tt.want)
		}
	}
	o := DefaultSchedulerOptions()
	o.LeaseRetry = 0
	if _, err := NewScheduler(store, nil, run, o); err == nil || !strings.Contains(err.Error(), "lease retry") {
		t.Errorf("LeaseRetry 0: %v", err)
	}
}

func TestScheduleEntries(t *testing.T) {
	p, err := config.Parse("medallion.yaml", []byte(`
lake: file://./lake
sources:
  meters:
    format: ndjson
    schema:
      meter_id: {type: string}
schedule:
  meters: "@every 1m"
  silver: {after: bronze.meters}
  gold: {after: silver}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	got, err := ScheduleEntries(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []ScheduleEntry{{Job: "bronze.meters", Cron: "@every 1m"}, {Job: "silver", After: "bronze.meters"}, {Job: "gold", After: "silver"}}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
}

func TestLatestDue(t *testing.T) {
	tests := []struct {
		spec, from, now, want string
	}{
		{"@every 1m", "2024-01-01 00:00:00", "2024-01-01 00:00:59", ""},
		{"@every 1m", "2024-01-01 00:00:00", "2024-01-01 00:05:30", "2024-01-01 00:05:00"},
		{"*/5 * * * *", "2024-01-01 00:00:00", "2024-01-01 00:04:59", ""},
		{"*/5 * * * *", "2024-01-01 00:00:00", "2024-01-01 07:03:00", "2024-01-01 07:00:00"},
		{"0 0 1 1 *", "2020-01-01 00:00:00", "2024-06-01 00:00:00", "2024-01-01 00:00:00"},
		{"0 0 29 2 *", "2016-02-29 00:00:00", "2024-06-01 00:00:00", "2024-02-29 00:00:00"},
		{"* * * * *", "2023-01-01 00:00:00", "2024-06-01 12:34:56", "2024-06-01 12:34:00"},
	}
	for _, tt := range tests {
		c, err := cron.Parse(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		got := latestDue(c, at(tt.from), at(tt.now))
		var want time.Time
		if tt.want != "" {
			want = at(tt.want)
		}
		if !got.Equal(want) {
			t.Errorf("latestDue(%q, %s, %s) = %s, want %s", tt.spec, tt.from, tt.now, got, want)
		}
	}
}

// Two scheduler "processes" with their own owner ids share one MinIO lake
// and one (fake) clock for twelve minutes: every due job ran exactly once
// per due time, never twice at once, counted in the run history.
func TestTwoSchedulersRunEachDueTimeOnce(t *testing.T) {
	store, _, _ := testenv.S3Store(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	l := newRunLog()
	entries := []ScheduleEntry{
		{Job: "bronze", Cron: "@every 1m"},
		{Job: "silver", After: "bronze"},
		{Job: "gold", Cron: "*/2 * * * *"},
		{Job: "mirror", After: "gold"},
	}
	run := l.run(clock, nil, nil)
	var schedulers []*Scheduler
	for _, owner := range []string{"host-a-1", "host-b-2"} {
		schedulers = append(schedulers, startScheduler(t, store, entries, run, testSchedulerOptions(clock, owner, l)))
	}
	cronJobs := 2 * len(schedulers) // goroutines that wait for a due time
	expected := map[string][]time.Time{}
	for m := 1; m <= 12; m++ {
		d := at("2024-01-01 00:00:00").Add(time.Duration(m) * time.Minute)
		// Every cron goroutine of both processes is waiting for a due time
		// up to d: the losers of the last round have given up their retries.
		eventually(t, fmt.Sprintf("both processes idle before minute %d", m), func() bool {
			n := clock.schedulersAt(d)
			if m%2 == 1 {
				n += clock.schedulersAt(d.Add(time.Minute)) // gold waits for the next even minute
			}
			if n == cronJobs {
				return true
			}
			// Fire the losers' lease retries, one at a time, so they find
			// the due time done. Only a retry already waiting is fired, and
			// only while no lease is held: advancing while a winner is
			// still busy with MinIO (slow on a loaded machine) would burn
			// through the retries' schedule in real milliseconds and strand
			// the next retry past where the clock may go (before d).
			next, ok := clock.nextBefore(d.Add(-time.Second))
			if ok && !anyLeaseHeld(t, store, clock.Now()) {
				clock.Set(next)
			}
			return false
		})
		clock.Set(d)
		due := []string{"bronze", "silver"}
		if m%2 == 0 {
			due = append(due, "gold", "mirror")
		}
		for _, job := range due {
			expected[job] = append(expected[job], d)
			eventually(t, job+" at minute "+fmt.Sprint(m), func() bool { return l.has(job, d) })
		}
	}
	for _, s := range schedulers {
		s.Stop()
	}

	runs, err := ListRuns(t.Context(), store, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	owners := map[string]bool{}
	for _, r := range runs {
		if r.Result != ResultOK {
			t.Errorf("run %+v", r)
		}
		count[r.Job+"@"+r.Due.Format("15:04")]++
		owners[r.Owner] = true
	}
	total := 0
	for job, dues := range expected {
		for _, d := range dues {
			k := job + "@" + d.Format("15:04")
			if count[k] != 1 {
				t.Errorf("%s ran %d times, want once", k, count[k])
			}
			total++
		}
	}
	if len(runs) != total || len(l.callList()) != total {
		t.Errorf("%d runs recorded and %d calls, want %d", len(runs), len(l.callList()), total)
	}
	if l.overlap != nil {
		t.Errorf("jobs ran twice at once: %v", l.overlap)
	}
	t.Logf("%d runs, by owners %v", total, owners)
}

// anyLeaseHeld reports whether some job's lease binds at now (a run is in
// progress or has not released yet).
func anyLeaseHeld(t *testing.T, store lake.Store, now time.Time) bool {
	t.Helper()
	leases, err := ListLeases(t.Context(), store)
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	for _, l := range leases {
		if l.Held(now) {
			return true
		}
	}
	return false
}

// deadStore is a lake.Store that fails every call once its process is
// "killed": from the lake's side, a dead process and a cut-off one look the same.
type deadStore struct {
	lake.Store
	dead atomic.Bool
}

var errKilled = errors.New("process killed")

func (s *deadStore) check() error {
	if s.dead.Load() {
		return errKilled
	}
	return nil
}

func (s *deadStore) Get(ctx context.Context, key string) (io.ReadCloser, lake.ObjectInfo, error) {
	if err := s.check(); err != nil {
		return nil, lake.ObjectInfo{}, err
	}
	return s.Store.Get(ctx, key)
}

func (s *deadStore) Put(ctx context.Context, key string, r io.Reader, size int64) (lake.ObjectInfo, error) {
	if err := s.check(); err != nil {
		return lake.ObjectInfo{}, err
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *deadStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (lake.ObjectInfo, error) {
	if err := s.check(); err != nil {
		return lake.ObjectInfo{}, err
	}
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

func (s *deadStore) Stat(ctx context.Context, key string) (lake.ObjectInfo, error) {
	if err := s.check(); err != nil {
		return lake.ObjectInfo{}, err
	}
	return s.Store.Stat(ctx, key)
}

func (s *deadStore) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, prefix, startAfter)
}

func (s *deadStore) Delete(ctx context.Context, key string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.Delete(ctx, key)
}

// Two processes on one MinIO lake; the one that starts the 00:01 run dies
// in the middle of it. The other takes the job over once the lease has
// expired (not before), runs the due time once, and the chain follows.
func TestSchedulerTakeoverAfterKill(t *testing.T) {
	shared, _, _ := testenv.S3Store(t)
	clock := newFakeClock(at("2024-01-01 00:00:30"))
	l := newRunLog()
	entries := []ScheduleEntry{{Job: "bronze", Cron: "@every 1m"}, {Job: "silver", After: "bronze"}}
	d := at("2024-01-01 00:01:00")
	var (
		killedOnce atomic.Bool
		victimDone = make(chan struct{})
	)
	for _, owner := range []string{"a", "b"} {
		store := &deadStore{Store: shared}
		inner := l.run(clock, nil, nil)
		run := func(ctx context.Context, job string, due time.Time) (Rows, error) {
			if job == "bronze" && due.Equal(d) && killedOnce.CompareAndSwap(false, true) {
				store.dead.Store(true) // mid-run: no more renewals, no release, no state
				defer close(victimDone)
				<-ctx.Done() // the lease's expiry cancels what is left of it
				return Rows{}, context.Cause(ctx)
			}
			return inner(ctx, job, due)
		}
		o := testSchedulerOptions(clock, owner, l)
		o.Lease.TTL = 30 * time.Second
		o.Lease.MaxSkew = time.Second
		startScheduler(t, store, entries, run, o)
	}
	eventually(t, "both processes waiting for 00:01", func() bool { return clock.waitingAt(d) == 2 })
	clock.Set(d)
	eventually(t, "the victim's run", killedOnce.Load)

	okAt := func(job string) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.finished {
			if r.Job == job && r.Due.Equal(d) && r.Result == ResultOK {
				return true
			}
		}
		return false
	}
	// Step through the lease's lifetime a second at a time.
	for clock.Now().Before(d.Add(31 * time.Second)) {
		clock.Advance(time.Second)
		if okAt("bronze") {
			t.Fatalf("taken over at %s, before the lease expired (00:01:30 + 1s skew)", clock.Now().Format("15:04:05"))
		}
		if !clock.Now().Before(d.Add(30 * time.Second)) {
			<-victimDone // lost at its expiry: its run is cancelled
		}
	}
	eventually(t, "the takeover", func() bool {
		if okAt("bronze") && okAt("silver") {
			return true
		}
		// Fire the next timer only while both processes' bronze loops are
		// parked on the clock (neither is in the middle of a lease call to
		// MinIO), never on real time passing; the clock stops short of
		// 00:02, so no later due time joins in.
		if clock.schedulersWaiting() >= 2 {
			if next, ok := clock.nextBefore(d.Add(time.Minute)); ok {
				clock.Set(next)
			}
		}
		return false
	})
	for _, job := range []string{"bronze", "silver"} {
		runs, err := ListRuns(t.Context(), shared, job, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].Result != ResultOK || !runs[0].Due.Equal(d) || runs[0].Owner == "" {
			t.Fatalf("%s history %+v, want one ok run for 00:01", job, runs)
		}
		if job == "bronze" && runs[0].Generation != 2 {
			t.Errorf("takeover ran under lease generation %d, want 2", runs[0].Generation)
		}
	}
	if l.overlap != nil {
		t.Errorf("jobs ran twice at once: %v", l.overlap)
	}
}
