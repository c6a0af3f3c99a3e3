package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
)

// TagSHA256 is the add.tags key holding the lowercase hex SHA-256 of a data
// file's bytes, recorded by every medallion writer. Other engines ignore
// tags they do not know, and files they write carry none.
const TagSHA256 = "medallion.sha256"

// WithSHA256 returns tags (nil or not) with the checksum sum set, leaving
// the caller's map unchanged.
func WithSHA256(tags map[string]string, sum string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out[TagSHA256] = sum
	return out
}

// ErrDamagedFile is wrapped by every error about a data file whose bytes do
// not match what the table's log records for it.
var ErrDamagedFile = errors.New("data file does not match the table log")

// FileSizeError is a data file whose size is not the one its add action
// records: truncated, extended or replaced since it was committed.
type FileSizeError struct {
	Table   string // layer.name
	Version int64  // the table version being read
	Path    string // relative to the table root
	Want    int64  // add.size
	Got     int64  // bytes found
}

func (e *FileSizeError) Error() string {
	return fmt.Sprintf("table %s version %d: data file %s is %d bytes, the log records %d: it was damaged or replaced since it was written (run `medallion verify %s`)",
		e.Table, e.Version, e.Path, e.Got, e.Want, e.Table)
}

// Unwrap makes the error match ErrDamagedFile.
func (e *FileSizeError) Unwrap() error { return ErrDamagedFile }

// CheckSize returns a *FileSizeError when got (the bytes found for the data
// file f of table at version) differs from f.Size.
func CheckSize(table string, version int64, f Add, got int64) error {
	if got == f.Size {
		return nil
	}
	return &FileSizeError{Table: table, Version: version, Path: f.Path, Want: f.Size, Got: got}
}

// CheckLocalFile checks the size of local, a local copy of (or the local
// lake's own file for) the data file f of table at version, with one stat:
// a cheap guard against reading a truncated or replaced file as if it were
// whole. A missing file is an error wrapping lake.ErrNotExist.
func CheckLocalFile(table string, version int64, f Add, local string) error {
	fi, err := os.Stat(local)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("table %s version %d: data file %s: %w", table, version, f.Path, lake.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("table %s version %d: data file %s: %w", table, version, f.Path, err)
	}
	return CheckSize(table, version, f, fi.Size())
}

// VerifyResult is what Verify found in one snapshot of a table.
type VerifyResult struct {
	Files      int   // live data files checked
	Bytes      int64 // bytes read to check them
	Unverified int   // files with no checksum tag (other engines, older versions): size checked only
	Mismatches []Mismatch
}

// Mismatch is one data file that does not match its add action.
type Mismatch struct {
	Path     string // relative to the table root
	Problem  string // "missing", "size" or "sha256"
	Expected string
	Found    string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s mismatch: expected %s, found %s", m.Path, m.Problem, m.Expected, m.Found)
}

// Verify reads every live file of snap (a snapshot of t), parallel at a
// time, and compares it with its add action: its size, and its SHA-256
// when the add carries TagSHA256. A file without the tag is only stat'ed.
// Mismatches are reported in the result, sorted by path; the error is for
// failures to read (a store error other than a missing file).
func (t *Table) Verify(ctx context.Context, snap *Snapshot, parallel int) (VerifyResult, error) {
	if err := snap.needFiles(t, "verify"); err != nil {
		return VerifyResult{}, err
	}
	var mu sync.Mutex
	res := VerifyResult{Files: len(snap.Files)}
	found := make([]*Mismatch, len(snap.Files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i, f := range snap.Files {
		g.Go(func() error {
			m, n, verified, err := t.verifyFile(gctx, f)
			if err != nil {
				return fmt.Errorf("verify %s: %w", t.Key(f.Path), err)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Bytes += n
			if !verified {
				res.Unverified++
			}
			found[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	for _, m := range found { // snap.Files is sorted by path
		if m != nil {
			res.Mismatches = append(res.Mismatches, *m)
		}
	}
	return res, nil
}

// verifyFile checks one file; verified says whether it had a checksum to
// compare, n is the bytes read.
func (t *Table) verifyFile(ctx context.Context, f Add) (m *Mismatch, n int64, verified bool, err error) {
	want, tagged := f.Tags[TagSHA256]
	if strings.Contains(f.Path, "://") {
		return nil, 0, false, nil // outside the lake: not ours to check
	}
	key := t.Key(f.Path)
	sizeOff := func(got int64) *Mismatch {
		return &Mismatch{Path: f.Path, Problem: "size", Expected: fmt.Sprintf("%d bytes", f.Size), Found: fmt.Sprintf("%d bytes", got)}
	}
	missing := &Mismatch{Path: f.Path, Problem: "missing", Expected: fmt.Sprintf("%d bytes", f.Size), Found: "no object at " + key}
	if !tagged {
		info, err := t.store.Stat(ctx, key)
		if errors.Is(err, lake.ErrNotExist) {
			return missing, 0, false, nil
		}
		if err != nil {
			return nil, 0, false, err
		}
		if info.Size != f.Size {
			return sizeOff(info.Size), 0, false, nil
		}
		return nil, 0, false, nil
	}
	rc, info, err := t.store.Get(ctx, key)
	if errors.Is(err, lake.ErrNotExist) {
		return missing, 0, true, nil
	}
	if err != nil {
		return nil, 0, true, err
	}
	defer rc.Close()
	if info.Size != f.Size {
		return sizeOff(info.Size), 0, true, nil
	}
	h := sha256.New()
	n, err = io.Copy(h, rc)
	if err != nil {
		return nil, n, true, err
	}
	if n != f.Size {
		return sizeOff(n), n, true, nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &Mismatch{Path: f.Path, Problem: "sha256", Expected: want, Found: got}, n, true, nil
	}
	return nil, n, true, nil
}
