package jobs

import (
	"slices"
	"sync"
	"time"
)

// RecordOf is the run record of a job's result that ended at end, run by
// owner under lease generation (0: none).
func RecordOf(res Result, end time.Time, owner string, generation int64) RunRecord {
	rec := RunRecord{
		Job: res.Job.Table.String(), Start: end.Add(-res.Duration), End: end,
		RowsIn: res.RowsIn, RowsOut: res.RowsOut, Result: ResultOK,
		Owner: owner, Generation: generation,
	}
	switch {
	case res.Skipped:
		rec.Result = ResultSkipped
	case res.Err != nil:
		rec.Result, rec.Error = ResultFailed, res.Err.Error()
	}
	return rec
}

// DefaultRecentRuns is how many micro-batch job runs RecentRuns keeps when
// created with a capacity of 0.
const DefaultRecentRuns = 500

// RecentRuns keeps the last runs of stream mode's jobs in memory, the way
// Spark keeps a query's recent progress updates: a micro-batch every second
// would write tens of thousands of records a day to the lake's run history,
// which is meant for scheduled runs. It is safe for concurrent use; the zero
// value is not usable, use NewRecentRuns.
type RecentRuns struct {
	mu   sync.Mutex
	buf  []RunRecord // ring: buf[next-1] is the newest once full
	next int
	full bool
}

// NewRecentRuns returns a ring of capacity n (0: DefaultRecentRuns).
func NewRecentRuns(n int) *RecentRuns {
	if n <= 0 {
		n = DefaultRecentRuns
	}
	return &RecentRuns{buf: make([]RunRecord, n)}
}

// Add records one run, dropping the oldest when the ring is full.
func (r *RecentRuns) Add(rec RunRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// Recent returns up to limit runs (limit <= 0: all kept), newest first.
func (r *RecentRuns) Recent(limit int) []RunRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RunRecord
	if r.full {
		out = append(out, r.buf[r.next:]...)
	}
	out = append(out, r.buf[:r.next]...)
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
