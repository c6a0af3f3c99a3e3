package delta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
)

// AddedPaths is every file path the commits of versions (from, to] added,
// with dataChange true or false: with the files of the snapshot at from,
// they are every file any version from..to references, which is what
// vacuum must keep. The commits are read in parallel. It returns an error
// wrapping ErrChangesGone when one of them is no longer in the log.
func (t *Table) AddedPaths(ctx context.Context, from, to int64) (map[string]bool, error) {
	if to <= from {
		return map[string]bool{}, nil
	}
	added := make([][]string, to-from)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for v := from + 1; v <= to; v++ {
		g.Go(func() error {
			cm, err := t.readCommit(gctx, v)
			if errors.Is(err, lake.ErrNotExist) {
				return fmt.Errorf("%s: log version %d is gone: %w: %w", t.name(), v, ErrChangesGone, err)
			}
			if err != nil {
				return err
			}
			for _, a := range cm.actions {
				if a.Add != nil {
					added[v-from-1] = append(added[v-from-1], a.Add.Path)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, paths := range added {
		for _, p := range paths {
			out[p] = true
		}
	}
	return out, nil
}

// removeSlack is how much earlier than its commit's timestamp a remove may
// be stamped, or a writer's clock may run behind the store's, for
// RetainedPaths to still trust a checkpoint's tombstones.
const removeSlack = time.Hour

// Retained is what RetainedPaths found.
type Retained struct {
	Paths  map[string]bool // every file path some retained version references
	Latest int64           // the latest version
	// FromLog is true when the commits after the base version were read
	// one by one (the newest checkpoint could not be trusted to hold every
	// tombstone younger than the cutoff); false when the latest snapshot
	// (checkpoint and tail) was enough.
	FromLog bool
}

// RetainedPaths returns every file path that a version from base.Version
// to the latest references, where base is the version current at cutoff
// (every later version was committed after cutoff). That is base's files
// and every file a later commit added; a file added after base is either
// still in the latest snapshot or was removed since, and then is one of
// its tombstones (those the base also has were removed before it and are
// left out). So it reads the latest snapshot (the newest checkpoint
// and the commits after it) instead of every commit after base, which
// keeps the work bounded by the checkpoint interval rather than by the
// length of the retention window.
//
// A checkpoint drops tombstones older than the table's tombstone
// retention (plus tombstoneGrace) at the time it was written. When that
// could have dropped a remove committed after cutoff (a vacuum retention
// longer than the tombstone retention plus the grace, less removeSlack),
// the commits after base are read instead, as AddedPaths does.
func (t *Table) RetainedPaths(ctx context.Context, base *Snapshot, cutoff time.Time) (Retained, error) {
	if err := base.needFiles(t, "retained paths"); err != nil {
		return Retained{}, err
	}
	latest, err := t.Snapshot(ctx)
	if err != nil {
		return Retained{}, err
	}
	res := Retained{Latest: latest.Version}
	if latest.Version < base.Version {
		return res, fmt.Errorf("%s: internal: latest version %d is before the base %d", t.name(), latest.Version, base.Version)
	}
	if latest.checkpoint > base.Version {
		// Tombstones the checkpoint dropped were deleted before its write
		// time minus the retention; the removes after base were deleted at
		// about their commit, after cutoff.
		horizon := latest.checkpointWritten.Add(-min(tombstoneRetention(base.Metadata), tombstoneRetention(latest.Metadata)) - tombstoneGrace)
		if !horizon.Before(cutoff.Add(-removeSlack)) {
			res.FromLog = true
		}
	}
	if res.FromLog {
		if res.Paths, err = t.AddedPaths(ctx, base.Version, latest.Version); err != nil {
			return res, err
		}
	} else {
		res.Paths = make(map[string]bool, len(base.Files)+len(latest.Files)+latest.tombstones.len())
		for p, r := range latest.tombstones.all() {
			// The same remove in the base: removed at or before it, so no
			// retained version has the file (unless one added it again,
			// and then the latest snapshot or a later tombstone has it).
			if br, ok := base.tombstones.get(p); ok && br.DeletionTimestamp == r.DeletionTimestamp {
				continue
			}
			res.Paths[p] = true
		}
	}
	for _, f := range latest.Files {
		res.Paths[f.Path] = true
	}
	for _, f := range base.Files {
		res.Paths[f.Path] = true
	}
	return res, nil
}
