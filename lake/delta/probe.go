package delta

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
)

// Finding the latest version without listing the log.
//
// A listing of _delta_log/ reads every name in it: a local directory is
// read whole whatever the listing's start, and the log keeps every commit
// and checkpoint for the log retention (30 days by default), so a load
// that lists grows with the table's history: after a day of one commit a
// second, 86,400 names per load. The latest version is found instead from
// _last_checkpoint and by asking for the commits after its checkpoint one
// version after another (a window of them at a time, in parallel) until
// one is not there: the cost follows the short tail since the last
// checkpoint. That is sound because commits are created in version order
// (a writer puts version v+1 only after v exists: put-if-absent of v lost,
// or it read v), so the versions found up to the first missing one are the
// table as it was when that one was asked for. Log cleanup deletes only
// entries older than a checkpoint that _last_checkpoint already names, so
// _last_checkpoint is read again after the probe: if it names a version
// newer than every commit found, the missing commit may have been deleted
// rather than not yet written, and the probe starts again from there.
// Anything unexpected (no _last_checkpoint, its checkpoint missing or
// incomplete, a commit found after a missing one) falls back to listing.

// probeAttempts bounds how often a load starts the probe again because a
// newer checkpoint appeared under it before it lists the log instead.
const probeAttempts = 3

// maxProbeWindow bounds how many versions one round of the probe asks for.
const maxProbeWindow = 64

// probeLog returns the log from the checkpoint _last_checkpoint names on:
// that checkpoint's files and the commits after it up to the newest, with
// read their parsed contents too (in l.read), and the checkpoint's version. ok is false when the log must be
// listed instead (see above); err is only a cancelled context.
func (t *Table) probeLog(ctx context.Context, read bool) (l *logListing, from int64, ok bool, err error) {
	if t.opts.IgnoreCheckpoints {
		return nil, -1, false, nil
	}
	lc, err := t.lastCheckpointInfo(ctx)
	if err != nil || lc.Version < 0 {
		return nil, -1, false, err
	}
	for range probeAttempts {
		l = newListing()
		files, err := t.checkpointObjects(ctx, lc)
		if err != nil || files == nil {
			return nil, -1, false, t.probeFailed(ctx, "checkpoint", lc.Version, err)
		}
		for _, f := range files {
			l.addCheckpoint(lc.Version, len(files), f)
		}
		latest, ok, err := t.probeCommits(ctx, l, lc.Version, files, read)
		if err != nil || !ok {
			return nil, -1, false, t.probeFailed(ctx, "commits", lc.Version, err)
		}
		now, err := t.lastCheckpointInfo(ctx)
		if err != nil {
			return nil, -1, false, err
		}
		if now.Version <= latest {
			t.cache.saw(latest)
			return l, lc.Version, true, nil
		}
		lc = now
	}
	t.log.Debug("delta: checkpoints kept appearing under the probe; listing the log", "version", lc.Version)
	return nil, -1, false, nil
}

// probeFailed decides what a failed probe step means: a cancelled context
// is the load's error; anything else (a store error, a damaged commit, a
// missing checkpoint, a gap) sends the load to the listing, which reports
// what is really wrong.
func (t *Table) probeFailed(ctx context.Context, step string, version int64, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t.log.Debug("delta: cannot probe the log; listing it", "step", step, "checkpoint", version, "err", err)
	return nil
}

// checkpointObjects returns the files of the checkpoint lc names, in key
// order, or nil when one of them is missing.
func (t *Table) checkpointObjects(ctx context.Context, lc lastCheckpoint) ([]lake.ObjectInfo, error) {
	keys := []string{t.checkpointKey(lc.Version)}
	if lc.Parts != nil && *lc.Parts > 1 {
		n := *lc.Parts
		keys = keys[:0]
		for i := 1; i <= n; i++ {
			keys = append(keys, fmt.Sprintf("%s%020d.checkpoint.%010d.%010d.parquet", t.logPrefix(), lc.Version, i, n))
		}
	}
	out := make([]lake.ObjectInfo, 0, len(keys))
	for _, k := range keys {
		o, err := t.store.Stat(ctx, k)
		if errors.Is(err, lake.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// probed is what the probe found at one version.
type probed struct {
	found bool
	info  lake.ObjectInfo
	c     commit
}

// probeCommits asks for the commits after version from, a window at a
// time, until one is missing, and records those found in l; it returns
// the newest version found (from when there is none after it). When there
// is none, from's own commit is asked for too (a snapshot's timestamp is
// its commit's), and may be missing: log cleanup deletes it with the
// checkpoints before it. ok is false when a version after a missing one
// exists: a gap (or commits landing while the window was asked for), which
// the listing sorts out.
func (t *Table) probeCommits(ctx context.Context, l *logListing, from int64, cp []lake.ObjectInfo, read bool) (latest int64, ok bool, err error) {
	latest = from
	fresh := map[int64]probed{}
	record := func(v int64, p probed) {
		l.commits[v] = p.info
		if read {
			l.read[v] = p.c
			fresh[v] = p
		}
	}
	v := from + 1
	var own probed
	if read {
		// The commits an earlier load parsed are not asked for again.
		var run []probed
		run, own = t.cache.tail(cp, v, from)
		for _, p := range run {
			l.commits[v], l.read[v] = p.info, p.c
			latest, v = v, v+1
		}
	}
	defer func() {
		if ok && read {
			t.cache.keepCommits(cp, from, fresh)
		}
	}()
	// The window reaches one past the newest version seen before, so that
	// a steady reader finds the tail in one round.
	w := min(max(t.cache.seen()-v+2, 2), maxProbeWindow)
	for {
		got := make([]probed, w)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i := range got {
			g.Go(func() (err error) {
				got[i], err = t.probeVersion(gctx, v+int64(i), read)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return 0, false, err
		}
		for i, p := range got {
			if p.found {
				record(v+int64(i), p)
				latest = v + int64(i)
				continue
			}
			for _, after := range got[i+1:] {
				if after.found {
					return 0, false, nil
				}
			}
			if latest == from {
				p := own
				if !p.found {
					if p, err = t.probeVersion(ctx, from, read); err != nil {
						return 0, false, err
					}
				}
				if p.found {
					record(from, p)
				}
			}
			return latest, true, nil
		}
		v += int64(w)
		w = min(2*w, maxProbeWindow)
	}
}

// probeVersion asks for the commit of version v: its object (a Stat) or,
// with read, its parsed contents (a Get). A missing commit is not an error.
func (t *Table) probeVersion(ctx context.Context, v int64, read bool) (probed, error) {
	if !read {
		o, err := t.store.Stat(ctx, t.commitKey(v))
		if errors.Is(err, lake.ErrNotExist) {
			return probed{}, nil
		}
		if err != nil {
			return probed{}, fmt.Errorf("%s: read log version %d: %w", t.name(), v, err)
		}
		return probed{found: true, info: o}, nil
	}
	b, o, err := t.get(ctx, t.commitKey(v))
	if errors.Is(err, lake.ErrNotExist) {
		return probed{}, nil
	}
	if err != nil {
		return probed{}, fmt.Errorf("%s: read log version %d: %w", t.name(), v, err)
	}
	c, err := t.parseCommit(v, b)
	if err != nil {
		return probed{}, err
	}
	return probed{found: true, info: o, c: c}, nil
}
