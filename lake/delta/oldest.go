package delta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// oldestCommit returns the oldest version whose commit is still in the log
// and the time it was committed, without listing the log: a binary search
// over commit versions by Stat, then one read. Log cleanup (ours and
// Spark's) deletes from the oldest version up, so the commits still there
// are one run up to the newest; a search over a log with a gap finds the
// oldest commit after the gap, never one older than the true oldest, which
// the callers' fast paths only use to skip work they would find nothing in.
//
// A stream commits about once a second, so its log holds tens of thousands
// of commits within the retention; the maintenance pass asked for the
// whole listing twice (vacuum's version at its cutoff, log cleanup) only to
// learn, most of the time, that the oldest commit is younger than either
// cutoff.
func (t *Table) oldestCommit(ctx context.Context) (int64, time.Time, error) {
	latest, err := t.LatestVersion(ctx)
	if err != nil {
		return -1, time.Time{}, err
	}
	lo, hi := int64(0), latest
	for lo < hi {
		mid := lo + (hi-lo)/2
		_, err := t.store.Stat(ctx, t.commitKey(mid))
		switch {
		case err == nil:
			hi = mid
		case errors.Is(err, lake.ErrNotExist):
			lo = mid + 1
		default:
			return -1, time.Time{}, fmt.Errorf("%s: find the oldest commit: %w", t.name(), err)
		}
	}
	_, ts, err := t.readCommitTime(ctx, hi)
	if err != nil {
		return -1, time.Time{}, fmt.Errorf("read the oldest commit: %w", err)
	}
	return hi, ts, nil
}
