package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// MinRetain is the shortest retention Vacuum accepts without Force: a
// reader or a writer slower than the retention could lose files it needs.
const MinRetain = 168 * time.Hour

// ErrRetainTooShort is returned for a retention under MinRetain without
// Force.
var ErrRetainTooShort = errors.New("retention shorter than 168h")

// VacuumOptions tune Vacuum.
type VacuumOptions struct {
	// Retain: every version committed within it stays readable (time
	// travel, slow readers), and no file written within it is deleted.
	Retain time.Duration
	// Force accepts a retention under MinRetain.
	Force bool
	// Delete deletes; false is a dry run that only lists.
	Delete bool
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// VacuumFile is a file Vacuum deletes (or would).
type VacuumFile struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// VacuumResult is what Vacuum found for one table.
type VacuumResult struct {
	Table   string
	NoTable bool // the table has no log yet
	// Oldest is the oldest version kept readable: the one current at the
	// retention's start. -1 when no version is that old (nothing is
	// deleted then).
	Oldest  int64
	Files   []VacuumFile // deleted, or to delete in a dry run
	Bytes   int64
	Deleted bool
}

// Vacuum deletes the data files of tbl that no version readable within the
// retention references and that were written before it: the version
// current at now-Retain and every later one keep all their files, and a
// file written (even not committed yet) within the retention is never
// touched. Files and directories whose name starts with _ or . (the log,
// state files) are not data files and are left alone. A dry run (Delete
// false) lists what would go.
func Vacuum(ctx context.Context, tbl *delta.Table, opts VacuumOptions) (VacuumResult, error) {
	res := VacuumResult{Table: tbl.Dir(), Oldest: -1}
	if opts.Retain < MinRetain && !opts.Force {
		return res, fmt.Errorf("vacuum %s: %w: --retain %s would delete files a reader or writer slower than that still needs; use at least %s or --force",
			tbl.Dir(), ErrRetainTooShort, opts.Retain, MinRetain)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-opts.Retain)
	if _, err := tbl.LatestVersion(ctx); errors.Is(err, delta.ErrNoTable) {
		res.NoTable = true
		return res, nil
	}
	keep, oldest, err := retainedFiles(ctx, tbl, cutoff)
	if err != nil || oldest < 0 {
		return res, err
	}
	res.Oldest = oldest
	objs, err := tbl.Store().List(ctx, tbl.Dir()+"/", "")
	if err != nil {
		return res, fmt.Errorf("vacuum %s: list files: %w", tbl.Dir(), err)
	}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, tbl.Dir()+"/")
		if hidden(rel) || keep[rel] || !o.ModTime.Before(cutoff) {
			continue
		}
		res.Files = append(res.Files, VacuumFile{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
		res.Bytes += o.Size
	}
	if !opts.Delete {
		return res, nil
	}
	for _, f := range res.Files {
		if err := tbl.Store().Delete(ctx, f.Key); err != nil && !errors.Is(err, lake.ErrNotExist) {
			return res, fmt.Errorf("vacuum %s: delete %s: %w", tbl.Dir(), f.Key, err)
		}
	}
	res.Deleted = true
	return res, nil
}

// retainedFiles is every file path a version readable at or after cutoff
// references: the files of the version current at cutoff and every file
// a later commit added. It reads the version current at cutoff and the
// latest snapshot (each a checkpoint and a short tail of commits), not
// every commit in between (delta.Table.RetainedPaths). oldest is that
// version, -1 when the log holds no version that old (or no table):
// nothing may be deleted then, since the versions before the log's oldest
// are unknown.
func retainedFiles(ctx context.Context, tbl *delta.Table, cutoff time.Time) (map[string]bool, int64, error) {
	base, err := tbl.SnapshotAsOf(ctx, cutoff)
	if errors.Is(err, delta.ErrNoVersion) || errors.Is(err, delta.ErrNoTable) {
		return nil, -1, nil
	}
	if err != nil {
		return nil, -1, fmt.Errorf("vacuum %s: read the version current at %s: %w", tbl.Dir(), cutoff.UTC().Format(time.RFC3339), err)
	}
	kept, err := tbl.RetainedPaths(ctx, base, cutoff)
	if err != nil {
		return nil, -1, fmt.Errorf("vacuum %s: find the files versions %d and later reference: %w", tbl.Dir(), base.Version, err)
	}
	return kept.Paths, base.Version, nil
}

// hidden says rel is not a data file: a segment starting with _ or .
// (the log, state files, temporary uploads), other than a partition
// directory (col=value).
func hidden(rel string) bool {
	for _, seg := range strings.Split(rel, "/") {
		if (strings.HasPrefix(seg, "_") || strings.HasPrefix(seg, ".")) && !strings.Contains(seg, "=") {
			return true
		}
	}
	return false
}
