package delta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// DefaultLogRetention is Delta's delta.logRetentionDuration default: log
// entries (commits and checkpoints) younger than it are never deleted.
const DefaultLogRetention = 30 * 24 * time.Hour

// LogCleanup is what CleanupLog deleted.
type LogCleanup struct {
	// Checkpoint is the version of the checkpoint the log now starts at
	// (-1: nothing could be deleted).
	Checkpoint int64
	// Commits and Checkpoints count the commit JSON files and checkpoint
	// files deleted.
	Commits, Checkpoints int
}

// CleanupLog deletes the log entries no retained version needs, as Delta
// does after a checkpoint under delta.logRetentionDuration: it finds the
// newest complete checkpoint whose commit is older than now - retention
// (by the commit's timestamp, as SnapshotAsOf reads it), and deletes every
// commit file and checkpoint file of an older version. Every version from
// that checkpoint on still loads (from it and the commits after it), and
// every version that time travel within the retention can ask for is at
// or after it; versions before it were committed before the cutoff and are
// gone (SnapshotAt returns ErrNoVersion, Changes ErrChangesGone).
//
// A reader that already built a snapshot holds its state in memory and
// never reads the log again; a reader loading the latest snapshot starts
// from _last_checkpoint, which is never older than the kept checkpoint.
// The caller keeps retention at least as long as the data-file retention,
// so that vacuum still finds the version current at its own cutoff.
// retention must be positive. Deleting is idempotent: a concurrent cleanup
// deleting the same files is not an error.
func (t *Table) CleanupLog(ctx context.Context, retention time.Duration, now time.Time) (LogCleanup, error) {
	res := LogCleanup{Checkpoint: -1}
	if retention <= 0 {
		return res, fmt.Errorf("%s: clean up the log: retention %s must be positive", t.name(), retention)
	}
	cutoff := now.Add(-retention)
	// Most passes find nothing to delete (a log younger than the
	// retention): learn that without listing the log.
	if _, oldest, err := t.oldestCommit(ctx); errors.Is(err, ErrNoTable) {
		return res, nil // no log, nothing to clean
	} else if err != nil {
		return res, fmt.Errorf("clean up the log: %w", err)
	} else if !oldest.Before(cutoff) {
		return res, nil
	}
	l, err := t.list(ctx, 0)
	if err != nil {
		return res, err
	}
	var cps []int64
	for v, c := range l.checkpoints {
		if c.complete() != nil {
			cps = append(cps, v)
		}
	}
	slices.Sort(cps)
	// Newest checkpoint whose commit is older than the cutoff; commit
	// timestamps increase with versions, so stop at the first too new.
	keep := int64(-1)
	for _, v := range cps {
		o, ok := l.commits[v]
		if !ok {
			continue // its commit file already went in an earlier cleanup
		}
		c, err := t.readCommit(ctx, v)
		if errors.Is(err, lake.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("%s: clean up the log: %w", t.name(), err)
		}
		if !c.timestamp(o).Before(cutoff) {
			break
		}
		keep = v
	}
	if keep <= 0 {
		return res, nil
	}
	res.Checkpoint = keep
	// Checkpoints first, then commits, oldest first: a crash in between
	// leaves a log that still starts with a complete checkpoint or at 0.
	for _, v := range cps {
		if v >= keep {
			break
		}
		for _, files := range l.checkpoints[v].byParts {
			for _, o := range files {
				if err := t.store.Delete(ctx, o.Key); err != nil {
					return res, fmt.Errorf("%s: clean up the log: delete checkpoint %d: %w", t.name(), v, err)
				}
				res.Checkpoints++
			}
		}
	}
	for _, v := range l.commitVersions() {
		if v >= keep {
			break
		}
		if err := t.store.Delete(ctx, l.commits[v].Key); err != nil {
			return res, fmt.Errorf("%s: clean up the log: delete commit %d: %w", t.name(), v, err)
		}
		res.Commits++
	}
	return res, nil
}
