package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
)

// streamLease is the lease that makes one process at a time run the
// pipeline's micro-batches, so two `medallion serve` processes in stream
// mode never run two batches of one table at once.
const streamLease = "stream"

// Stream runs the whole pipeline as micro-batches, like Spark's
// processing-time trigger: every Trigger, if something new landed in raw,
// bronze -> silver -> gold -> mirror run once in dependency order. A trigger
// that finds nothing new is skipped; a batch that takes longer than the
// trigger delays the next one (batches never overlap).
type Stream struct {
	Runner  *Runner
	Plan    []Job // the whole pipeline, from Plan(p, nil)
	Trigger time.Duration
	Owner   string       // lease owner (DefaultOwner)
	Lease   LeaseOptions // lease TTL and clock (nil Clock: the stream's)
	Clock   Clock        // triggers' clock (nil: SystemClock)
	Log     *slog.Logger
	Metrics *StreamMetrics // nil: not measured
	// Recent receives every job run of every micro-batch (nil: not kept),
	// for the dashboard's runs page.
	Recent *RecentRuns
	// History, if set, also writes every job run of every micro-batch to
	// the lake's run history (`medallion runs`), after the batch, as the
	// scheduler does for scheduled runs.
	History bool
	// OnBatch, if set, is called once per micro-batch that ran (not for
	// triggers with nothing new), with what it did.
	OnBatch func(BatchReport)
	// Compact, if set, compacts the tables a micro-batch wrote right after
	// it, before the next trigger (streamcompact.go); nil: stream mode
	// compacts nothing.
	Compact Compactor

	disc *streamDiscovery // streamdiscover.go

	// tables keeps one delta.Table per bronze table the trigger check
	// reads; they share the Runner's TableCache with its jobs, so that
	// each checkpoint is decoded once in the process.
	tablesMu sync.Mutex
	tables   map[string]*delta.Table
}

// bronzeTable returns the stream's Table of bronze table source.
func (s *Stream) bronzeTable(source string) *delta.Table {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	if s.tables == nil {
		s.tables = map[string]*delta.Table{}
	}
	t, ok := s.tables[source]
	if !ok {
		o := delta.DefaultOptions()
		o.Cache = s.Runner.TableCache()
		t, _ = delta.OpenWith(s.Runner.Store, layers.TableRef{Layer: layers.Bronze, Name: source}.Dir(), o) // defaults are valid
		s.tables[source] = t
	}
	return t
}

// BatchReport is what one micro-batch did, for a one-line log.
type BatchReport struct {
	Objects  int           // new raw objects the trigger found
	Jobs     int           // job runs, skipped ones included
	Failed   int           // job runs that failed
	RowsIn   int64         // rows read, summed over the jobs
	RowsOut  int64         // rows written, summed over the jobs
	Duration time.Duration // wall time of the batch
	// Lag is from the receipt of the oldest new object (received since the
	// stream started) to its rows being visible in gold; 0 when unknown.
	Lag time.Duration
	Err error // the batch's error, nil when every job succeeded
	// Compacted is how many small files the compaction after the batch
	// replaced, in CompactTime (not part of Duration).
	Compacted   int
	CompactTime time.Duration
}

// StreamMetrics are what stream mode reports on /metrics.
type StreamMetrics struct {
	batches *metrics.CounterVec
	latency *metrics.HistogramVec
	lag     *metrics.GaugeVec
}

// NewStreamMetrics registers stream mode's families: batches by result and
// the end-to-end latency from a raw object's receipt to the moment its rows
// are visible in gold and in PostgreSQL.
func NewStreamMetrics(reg *metrics.Registry) *StreamMetrics {
	return &StreamMetrics{
		batches: reg.Counter("medallion_stream_batches_total", "Stream-mode micro-batches by result (ok, failed, skipped, busy).", "result"),
		latency: reg.Histogram("medallion_stream_latency_seconds",
			"Seconds from a raw object's receipt to its rows being visible in a stage (gold, postgres).",
			latencyBuckets(), "stage"),
		lag: reg.Gauge("medallion_stream_lag_objects", "Raw objects landed but not yet through a micro-batch, at the last trigger.", "source"),
	}
}

// latencyBuckets are the bounds of the latency histogram: 0.25 s wide
// from 0.5 s to 3 s, where a 1 s trigger puts most objects (the wait for
// the trigger plus one micro-batch) and where the 3 s p99 target lies, so a
// quantile read from them is off by at most an eighth of a second there.
func latencyBuckets() []float64 {
	return []float64{.1, .25, .5, .75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.5, 4, 5, 7.5, 10, 15, 30, 60, 120}
}

// Run triggers batches until ctx is cancelled. It returns nil on
// cancellation: the batch under way finishes (its commits are atomic either
// way) and the lease is released.
func (s *Stream) Run(ctx context.Context) error {
	if s.Trigger <= 0 {
		return errors.New("stream: trigger must be positive")
	}
	clock := s.Clock
	if clock == nil {
		clock = SystemClock()
	}
	seen := make(map[string]bool) // manifests already promoted by an earlier batch
	primed := false
	started := clock.Now()
	next := started
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(next.Sub(clock.Now())):
		}
		next = next.Add(s.Trigger)
		if now := clock.Now(); next.Before(now) {
			next = now // an overrun batch: start the next one at once, not a burst
		}
		fresh, err := s.newManifests(ctx, seen)
		if err != nil {
			s.Log.Warn("stream: list raw", "err", err)
			s.count("failed")
			continue
		}
		s.observeLag(fresh)
		if primed && len(fresh) == 0 {
			s.count("skipped")
			continue
		}
		primed = true
		promoted, err := s.batch(ctx, clock, fresh, seen, started)
		if err != nil {
			if errors.Is(err, ErrLeaseHeld) {
				s.count("busy")
				continue
			}
			s.Log.Warn("stream: batch failed", "err", err)
			s.count("failed")
			continue
		}
		for _, m := range promoted {
			seen[m.Source+"/"+m.SHA256] = true
		}
		s.settle(ctx, seen)
		s.count("ok")
	}
}

// batch runs the plan once under the stream lease and observes the
// latencies of the raw objects received since the stream started (older
// ones landed while no stream ran: their wait says nothing about it). It
// returns the objects the batch took through the pipeline: fresh, and those
// that landed between the trigger's listing and bronze's own.
func (s *Stream) batch(ctx context.Context, clock Clock, fresh []raw.Manifest, seen map[string]bool, started time.Time) ([]raw.Manifest, error) {
	lo := s.Lease
	if lo.Clock == nil {
		lo.Clock = clock
	}
	held, err := AcquireWith(ctx, s.Runner.Store, streamLease, s.Owner, lo)
	if err != nil {
		return nil, err
	}
	defer held.Release(context.WithoutCancel(ctx))
	var goldAt, pgAt time.Time
	batchStart := clock.Now()
	// Objects an earlier run (a `medallion run` before serve started, or
	// beside it) already promoted are listed again by the first trigger
	// (the grace window) but are not new: count only the others.
	report := BatchReport{Objects: len(fresh)}
	if _, todo, err := s.splitPromoted(ctx, fresh); err == nil {
		report.Objects = len(todo)
	} else {
		s.Log.Warn("stream: read which objects bronze promoted", "err", err)
	}
	var records []RunRecord
	results, err := s.Runner.Run(held.Context(), s.Plan, func(r Result) {
		if !r.Job.MirrorDisabled() { // its message is not a run
			records = append(records, s.recordRun(clock, held, r))
		}
		report.Jobs++
		report.RowsIn += r.RowsIn
		report.RowsOut += r.RowsOut
		if r.Err != nil {
			if !r.Skipped {
				report.Failed++
			}
			return
		}
		switch r.Job.Table.Layer {
		case layers.Gold:
			goldAt = clock.Now()
		case MirrorLayer:
			if s.Runner.Pipeline.Postgres != "" { // a disabled mirror makes nothing visible
				pgAt = clock.Now()
			}
		}
	})
	s.writeHistory(ctx, records)
	report.Duration, report.Err = clock.Now().Sub(batchStart), err
	if !goldAt.IsZero() {
		report.Lag = oldestLag(fresh, started, goldAt)
	}
	report.Compacted, report.CompactTime = s.compactTimed(held.Context(), clock, results)
	if s.OnBatch != nil {
		s.OnBatch(report)
	}
	if err != nil {
		return nil, err
	}
	promoted := fresh
	if extra, err := s.promotedLate(ctx, seen, fresh); err != nil {
		// Not fatal: those objects are observed (one batch late) by the next trigger.
		s.Log.Warn("stream: list objects promoted after the trigger", "err", err)
	} else {
		promoted = append(promoted[:len(promoted):len(promoted)], extra...)
	}
	if s.Metrics != nil {
		for _, m := range promoted {
			if m.ReceivedAt.Before(started) {
				continue
			}
			if !goldAt.IsZero() {
				s.Metrics.latency.With("gold").Observe(goldAt.Sub(m.ReceivedAt).Seconds())
			}
			if !pgAt.IsZero() {
				s.Metrics.latency.With("postgres").Observe(pgAt.Sub(m.ReceivedAt).Seconds())
			}
		}
	}
	return promoted, nil
}

// recordRun keeps one job's run of a micro-batch in s.Recent and returns
// its record.
func (s *Stream) recordRun(clock Clock, held *Held, r Result) RunRecord {
	rec := RecordOf(r, clock.Now(), s.Owner, held.Generation())
	if s.Recent != nil {
		s.Recent.Add(rec)
	}
	return rec
}

// writeHistory writes a batch's job runs to the lake's run history when
// s.History is set. The history is a record, not part of the batch: a
// failed write is logged and the stream goes on.
func (s *Stream) writeHistory(ctx context.Context, records []RunRecord) {
	if !s.History {
		return
	}
	wctx := context.WithoutCancel(ctx)
	for _, rec := range records {
		if err := RecordRun(wctx, s.Runner.Store, rec); err != nil {
			s.Log.Warn("stream: record run", "job", rec.Job, "err", err)
		}
	}
}

// oldestLag is how long the oldest of fresh (received since the stream
// started) waited until visibleAt; 0 when none did.
func oldestLag(fresh []raw.Manifest, started, visibleAt time.Time) time.Duration {
	var lag time.Duration
	for _, m := range fresh {
		if m.ReceivedAt.Before(started) {
			continue
		}
		lag = max(lag, visibleAt.Sub(m.ReceivedAt))
	}
	return lag
}

// promotedLate returns the objects that landed after the trigger listed
// fresh but before bronze listed its own pending objects: bronze promoted
// them in this batch (its Delta log records each raw object's txn), so
// their rows reached gold now. Without this they would be observed at the
// next batch's gold time, one batch late (inflating the latency tail), and
// would make that trigger run a batch with nothing new.
func (s *Stream) promotedLate(ctx context.Context, seen map[string]bool, fresh []raw.Manifest) ([]raw.Manifest, error) {
	known := make(map[string]bool, len(seen)+len(fresh))
	for k := range seen {
		known[k] = true
	}
	for _, m := range fresh {
		known[m.Source+"/"+m.SHA256] = true
	}
	later, err := s.newManifests(ctx, known)
	if err != nil || len(later) == 0 {
		return nil, err
	}
	out, _, err := s.splitPromoted(ctx, later)
	return out, err
}

// splitPromoted splits ms into the objects bronze has promoted (its table
// records their txn) and the others, reading each source's bronze table
// once.
func (s *Stream) splitPromoted(ctx context.Context, ms []raw.Manifest) (done, todo []raw.Manifest, err error) {
	snaps := map[string]*delta.Snapshot{}
	for _, m := range ms {
		snap, ok := snaps[m.Source]
		if !ok {
			ref := layers.TableRef{Layer: layers.Bronze, Name: m.Source}
			snap, err = s.bronzeTable(m.Source).Snapshot(ctx)
			if errors.Is(err, delta.ErrNoTable) {
				snap, err = nil, nil // nothing promoted yet
			}
			if err != nil {
				return nil, nil, fmt.Errorf("read %s: %w", ref, err)
			}
			snaps[m.Source] = snap
		}
		if snap != nil {
			if _, ok := snap.TxnVersion(bronze.RawAppID(m.Source, m.SHA256)); ok {
				done = append(done, m)
				continue
			}
		}
		todo = append(todo, m)
	}
	return done, todo, nil
}

// newManifests lists the raw objects of every source that no earlier batch
// of this process promoted, from bronze's discovery cursor
// (streamdiscover.go). The first call returns those of the grace window
// (after a restart they may already be in bronze: bronze's txn skips
// those, and their latency is not measured past the first batch).
func (s *Stream) newManifests(ctx context.Context, seen map[string]bool) ([]raw.Manifest, error) {
	var out []raw.Manifest
	for _, src := range s.Runner.Pipeline.SourceOrder {
		ms, err := s.fresh(ctx, src, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// observeLag sets the lag gauge: per source, the raw objects this trigger
// found that no batch has taken yet.
func (s *Stream) observeLag(fresh []raw.Manifest) {
	if s.Metrics == nil {
		return
	}
	n := make(map[string]int, len(s.Runner.Pipeline.SourceOrder))
	for _, m := range fresh {
		n[m.Source]++
	}
	for _, src := range s.Runner.Pipeline.SourceOrder {
		s.Metrics.lag.With(src).Set(float64(n[src]))
	}
}

func (s *Stream) count(result string) {
	if s.Metrics != nil {
		s.Metrics.batches.With(result).Inc()
	}
}
