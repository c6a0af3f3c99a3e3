package delta_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestCleanupLog: the log cleanup deletes only what precedes the newest
// checkpoint older than the retention; every version from it on loads as
// before, a snapshot held from before keeps working, and a writer commits
// on top.
func TestCleanupLog(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/cleanup")
		s := create(t, tbl)
		held := s
		snaps := map[int64]*delta.Snapshot{0: s}
		for i := 1; i <= 25; i++ {
			s = appendFile(t, st, tbl, s, fmt.Sprintf("part-%03d.parquet", i))
			snaps[s.Version] = s
			if i == 3 {
				held = s
			}
		}
		// Within the retention: nothing goes.
		res, err := tbl.CleanupLog(ctx, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Checkpoint != -1 || res.Commits != 0 || res.Checkpoints != 0 {
			t.Fatalf("cleanup within the retention deleted %+v", res)
		}
		for v := int64(0); v <= 25; v++ {
			if _, err := tbl.SnapshotAt(ctx, v); err != nil {
				t.Fatalf("version %d after a cleanup that deleted nothing: %v", v, err)
			}
		}
		// Everything older than the retention: the log starts at the
		// newest checkpoint (20).
		res, err = tbl.CleanupLog(ctx, time.Hour, time.Now().Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res.Checkpoint != 20 || res.Commits != 20 || res.Checkpoints != 1 {
			t.Fatalf("cleanup = %+v, want the log from checkpoint 20 (20 commits and checkpoint 10 deleted)", res)
		}
		for v := int64(20); v <= 25; v++ {
			got, err := tbl.SnapshotAt(ctx, v)
			if err != nil {
				t.Fatalf("version %d after the cleanup: %v", v, err)
			}
			assertSameSnapshot(t, got, snaps[v])
		}
		if _, err := tbl.SnapshotAt(ctx, 19); !errors.Is(err, delta.ErrNoVersion) {
			t.Fatalf("version 19 after the cleanup: %v, want ErrNoVersion", err)
		}
		// An incremental reader whose commits are gone is told so.
		if _, err := tbl.Changes(ctx, 5, 25); !errors.Is(err, delta.ErrChangesGone) {
			t.Fatalf("changes 5..25 after the cleanup: %v, want ErrChangesGone", err)
		}
		// A reader holding version 3 still reads its files (vacuum keeps
		// data files, the log cleanup only log entries).
		for _, f := range held.Files {
			if _, err := st.Stat(ctx, tbl.Key(f.Path)); err != nil {
				t.Fatalf("file %s of the held snapshot: %v", f.Path, err)
			}
		}
		// A writer commits on top, and a fresh Table loads the latest.
		s = appendFile(t, st, tbl, s, "part-after.parquet")
		latest, err := delta.Open(st, "bronze/cleanup").Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, latest, s)
		if len(latest.Files) != 26 {
			t.Fatalf("latest has %d files, want 26", len(latest.Files))
		}
		// Cleaning again finds nothing more before checkpoint 20.
		if res, err = tbl.CleanupLog(ctx, time.Hour, time.Now().Add(2*time.Hour)); err != nil || res.Commits != 0 || res.Checkpoints != 0 {
			t.Fatalf("second cleanup = %+v, %v; want nothing deleted", res, err)
		}
		if _, err := tbl.CleanupLog(ctx, 0, time.Now()); err == nil {
			t.Fatal("cleanup with retention 0: no error")
		}
	})
}

// TestCheckpointCacheCopies: a Table that loads the same checkpoint again
// and again (from its cache) returns the same snapshots as a fresh Table,
// and what a load applies on top of the checkpoint does not leak into the
// next load.
func TestCheckpointCacheCopies(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	tbl := delta.Open(st, "silver/cached")
	s := create(t, tbl)
	for i := 1; i <= 10; i++ {
		s = appendFile(t, st, tbl, s, fmt.Sprintf("part-%03d.parquet", i))
	}
	at10, err := tbl.SnapshotAt(ctx, 10) // decoded and cached
	if err != nil {
		t.Fatal(err)
	}
	for i := 11; i <= 13; i++ {
		s = appendFile(t, st, tbl, s, fmt.Sprintf("part-%03d.parquet", i))
	}
	for _, v := range []int64{13, 10, 12, 10} {
		got, err := tbl.SnapshotAt(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := delta.Open(st, "silver/cached").SnapshotAt(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, want)
		if len(got.Files) != int(v) {
			t.Fatalf("version %d from the cached checkpoint has %d files, want %d", v, len(got.Files), v)
		}
	}
	if len(at10.Files) != 10 {
		t.Fatalf("the first snapshot of version 10 changed: %d files", len(at10.Files))
	}
}

// TestMaintenanceOfAYoungLogListsNothing: on a log whose oldest commit is
// younger than the cutoff (every table younger than the retention), log
// cleanup and vacuum's version at its cutoff find that out without listing
// the log; a stream's log holds a commit a second, and the maintenance
// pass listed it whole twice a pass. Once the cleanup has removed the
// oldest commits, both find the new oldest one.
func TestMaintenanceOfAYoungLogListsNothing(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		var counts lake.Counts
		cst := lake.Count(st, &counts)
		tbl := delta.Open(cst, "bronze/young")
		s := create(t, tbl)
		for i := 1; i <= 25; i++ {
			s = appendFile(t, cst, tbl, s, fmt.Sprintf("part-%03d.parquet", i))
		}
		fresh := delta.Open(cst, "bronze/young") // no cached log
		counts.Lists.Store(0)
		res, err := fresh.CleanupLog(ctx, time.Hour, time.Now())
		if err != nil || res.Checkpoint != -1 || res.Commits != 0 {
			t.Fatalf("cleanup within the retention: %+v, %v", res, err)
		}
		if _, err := fresh.SnapshotAsOf(ctx, time.Now().Add(-time.Hour)); !errors.Is(err, delta.ErrNoVersion) {
			t.Fatalf("snapshot as of an hour before the table: %v, want ErrNoVersion", err)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("cleanup and SnapshotAsOf on a young log listed it %d times, want 0", n)
		}
		// Versions at or after a time still resolve (by the listing).
		if got, err := fresh.SnapshotAsOf(ctx, time.Now().Add(time.Hour)); err != nil || got.Version != 25 {
			t.Fatalf("snapshot as of now: %v, %v; want version 25", got, err)
		}
		// After a cleanup the log starts at checkpoint 20: still no
		// listing within the retention, and the oldest is 20.
		if res, err = fresh.CleanupLog(ctx, time.Hour, time.Now().Add(2*time.Hour)); err != nil || res.Checkpoint != 20 {
			t.Fatalf("cleanup = %+v, %v; want the log from checkpoint 20", res, err)
		}
		counts.Lists.Store(0)
		if res, err = fresh.CleanupLog(ctx, time.Hour, time.Now()); err != nil || res.Checkpoint != -1 {
			t.Fatalf("second cleanup within the retention: %+v, %v", res, err)
		}
		_, err = fresh.SnapshotAsOf(ctx, time.Now().Add(-time.Hour))
		if !errors.Is(err, delta.ErrNoVersion) || !strings.Contains(err.Error(), "the oldest, version 20,") {
			t.Fatalf("snapshot as of before the cleaned log: %v, want ErrNoVersion naming version 20", err)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("after the cleanup: listed %d times, want 0", n)
		}
	})
}
