package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// say prints one timestamped line on stdout: what serve does, at any log
// level, one line per micro-batch or scheduled run.
func (s *server) say(format string, args ...any) {
	s.sayMu.Lock()
	defer s.sayMu.Unlock()
	fmt.Fprintf(s.a.stdout, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// logBatch is stream mode's line for one micro-batch.
func (s *server) logBatch(r jobs.BatchReport) {
	s.say("%s", batchLine(r))
}

// batchLine says what a micro-batch did: new objects, rows, time, lag.
func batchLine(r jobs.BatchReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "micro-batch: %s new, %d rows in, %d rows out, %s in %s", plural(r.Objects, "object"),
		r.RowsIn, r.RowsOut, plural(r.Jobs, "job"), roundDur(r.Duration))
	if r.Lag > 0 {
		fmt.Fprintf(&b, ", lag %s", roundDur(r.Lag))
	}
	if r.Compacted > 0 {
		fmt.Fprintf(&b, ", then compacted %s in %s", plural(r.Compacted, "small file"), roundDur(r.CompactTime))
	}
	if r.Err != nil {
		fmt.Fprintf(&b, ": %d failed: %s", r.Failed, errorLine(r.Err))
	}
	return b.String()
}

// logScheduled is the scheduler's line for one run.
func (s *server) logScheduled(r jobs.RunRecord) {
	s.say("%s", scheduledLine(r))
}

// scheduledLine says what a scheduled run did; lag is how late it started
// after its due time.
func scheduledLine(r jobs.RunRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scheduled run %s: %s, %d rows in, %d rows out in %s", r.Job, r.Result, r.RowsIn, r.RowsOut, roundDur(r.End.Sub(r.Start)))
	if !r.Due.IsZero() {
		fmt.Fprintf(&b, ", lag %s after due %s", roundDur(max(0, r.Start.Sub(r.Due))), r.Due.UTC().Format(time.RFC3339))
	}
	if r.Error != "" {
		msg, _, _ := strings.Cut(r.Error, "\n")
		fmt.Fprintf(&b, ": %s", msg)
	}
	return b.String()
}

// roundDur rounds for a person: milliseconds under a second, else 10 ms.
func roundDur(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
