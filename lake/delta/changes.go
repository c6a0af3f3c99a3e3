package delta

import (
	"context"
	"errors"
	"fmt"

	"github.com/medallion-dev/medallion/lake"
)

// ErrChangesGone means a commit file Changes needs has been cleaned up
// from the log (log retention, a rebuilt table): the change between the
// two versions can no longer be read, and a caller that must know it
// compares snapshots instead (or rebuilds).
var ErrChangesGone = errors.New("log versions needed for the change are gone")

// Changes is what the commits of versions (From, To] did to a table's data
// files, read from the commit files themselves. A snapshot loaded from a
// checkpoint says dataChange=false for every file, so a diff of snapshots
// cannot tell new rows from rewritten ones; the commits can.
type Changes struct {
	From, To int64
	// Added are the files added with dataChange=true, in commit order, each
	// once. A file a later commit of the range removed again (compaction)
	// is still listed: its rows are new to the reader.
	Added []Add
	// Removed are the files removed with dataChange=true, in commit order.
	Removed []Remove
	// Rewritten says some commit of the range added or removed files with
	// dataChange=false (compaction, optimize): the rows did not change but
	// the set of files did, so Added and Removed do not turn the file set
	// at From into the one at To.
	Rewritten bool
	// MetadataChanged says some commit of the range changed the table's
	// metadata (schema, partitioning).
	MetadataChanged bool
	// Refreshed are the versions of the range whose commit info says
	// operation REFRESH (medallion refresh replaced rows of the table in
	// place), oldest first.
	Refreshed []int64
}

// Changes reads the commits after version from up to version to (from <
// to; from -1 means from the start). It returns an error wrapping
// ErrChangesGone when one of those commit files no longer exists.
func (t *Table) Changes(ctx context.Context, from, to int64) (*Changes, error) {
	if to < from {
		return nil, fmt.Errorf("%s: changes from version %d to %d: the range is reversed", t.name(), from, to)
	}
	c := &Changes{From: from, To: to}
	seen := map[string]bool{}
	for v := from + 1; v <= to; v++ {
		cm, err := t.readCommit(ctx, v)
		if errors.Is(err, lake.ErrNotExist) {
			return nil, fmt.Errorf("%s: log version %d (%s) is gone (log cleaned up?): %w: %w", t.name(), v, t.commitKey(v), ErrChangesGone, err)
		}
		if err != nil {
			return nil, err
		}
		for _, a := range cm.actions {
			switch {
			case a.Add != nil && !a.Add.DataChange, a.Remove != nil && !a.Remove.DataChange:
				c.Rewritten = true
			case a.Add != nil:
				if !seen[a.Add.Path] {
					seen[a.Add.Path] = true
					c.Added = append(c.Added, *a.Add)
				}
			case a.Remove != nil:
				c.Removed = append(c.Removed, *a.Remove)
			case a.MetaData != nil:
				c.MetadataChanged = true
			case a.CommitInfo != nil && a.CommitInfo.Operation == "REFRESH":
				c.Refreshed = append(c.Refreshed, v)
			}
		}
	}
	return c, nil
}

// AppendedSince is the files the commits of versions (from, to.Version]
// added with dataChange=true, as they stand in to and in to's order, when
// those commits only appended new rows: ok is false when they did anything
// else (removed rows, changed the metadata), when a file they added is no
// longer in to (compacted away with the rows of older files, which the
// reader cannot tell apart), when from is not before to, or when their
// commit files are no longer in the log. A compaction of older files
// (dataChange=false, `medallion optimize`) is nothing new: the rows did not
// change, so it leaves ok true and adds nothing. Readers that keep up
// incrementally take it as a fast path and compare snapshots when ok is
// false.
func (t *Table) AppendedSince(ctx context.Context, from int64, to *Snapshot) (adds []Add, ok bool, err error) {
	if err := to.needFiles(t, "appended since"); err != nil {
		return nil, false, err
	}
	if from < 0 || from >= to.Version {
		return nil, false, nil
	}
	ch, err := t.Changes(ctx, from, to.Version)
	if errors.Is(err, ErrChangesGone) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if len(ch.Removed) > 0 || ch.MetadataChanged {
		return nil, false, nil
	}
	added := make(map[string]bool, len(ch.Added))
	for _, f := range ch.Added {
		added[f.Path] = true
	}
	for _, f := range to.Files {
		if added[f.Path] {
			adds = append(adds, f)
		}
	}
	return adds, len(adds) == len(added), nil
}
