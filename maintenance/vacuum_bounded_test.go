package maintenance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/maintenance"
)

// TestVacuumReadsBoundedLog: a vacuum whose retention holds many commits
// reads the commits around the oldest retained version and after the
// newest checkpoint, not every commit in the window (counted through a
// counting store); it deletes only the orphan written before the
// retention, and time travel to every retained version reads what it read
// before.
func TestVacuumReadsBoundedLog(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		var counts lake.Counts
		f := newFixture(t, lake.Count(st, &counts))
		id := 0
		add := func(n int) {
			for i := range n {
				day := ptr("2026-01-0" + string(rune('1'+i%2)))
				f.appendFile(day, id, 3)
				id += 3
			}
		}
		add(12)
		put(t, st, f.tbl.Key("day=2026-01-01/orphan.parquet"))
		time.Sleep(1100 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(1100 * time.Millisecond)
		// Within the retention: appends, a compaction that removes files
		// the retained versions still read, more appends.
		add(20)
		if _, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		add(13)
		latest, err := f.tbl.LatestVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := map[int64]string{}
		for v := int64(12); v <= latest; v++ {
			before[v] = f.mustContent(v)
		}

		counts.Reset()
		now := time.Now()
		res, err := maintenance.Vacuum(ctx, f.tbl, maintenance.VacuumOptions{Retain: now.Sub(cutoff), Force: true, Delete: true, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		read := counts.ReadKeys(f.tbl.Key("_delta_log/"), ".json")
		inWindow := int(latest - res.Oldest)
		t.Logf("vacuum read %d commit files; %d commits after the oldest retained version %d", read, inWindow, res.Oldest)
		// The binary search for the version current at the cutoff (about
		// log2 of the log), the commits after that version's checkpoint and
		// after the newest one: bounded by the checkpoint interval, not by
		// the commits in the window.
		if read > 2*10+7 || read >= inWindow {
			t.Errorf("vacuum read %d commit files, want at most %d and fewer than the %d commits in the retention", read, 2*10+7, inWindow)
		}
		if len(res.Files) != 1 || !strings.HasSuffix(res.Files[0].Key, "orphan.parquet") || !res.Deleted {
			t.Fatalf("vacuum: %+v, want only the orphan deleted", res)
		}
		for v := res.Oldest; v <= latest; v++ {
			if got := f.mustContent(v); got != before[v] {
				t.Fatalf("version %d after vacuum differs", v)
			}
		}
	})
}

// TestVacuumKeepsReaderSnapshot: a reader that took its snapshot before a
// compaction and reads its files only after a vacuum finishes correctly
// when it started within the retention; the same vacuum run with a
// retention that starts after the reader began would have taken its files.
func TestVacuumKeepsReaderSnapshot(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		f := newFixture(t, st)
		f.build()
		time.Sleep(1100 * time.Millisecond)
		readerStart := time.Now()
		held, err := f.tbl.Snapshot(ctx) // the reader's snapshot
		if err != nil {
			t.Fatal(err)
		}
		want := f.mustContent(held.Version)
		time.Sleep(1100 * time.Millisecond)
		if _, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		f.appendFile(ptr("2026-01-03"), 10_000, 4)
		time.Sleep(1100 * time.Millisecond)
		afterOptimize := time.Now()
		time.Sleep(1100 * time.Millisecond)

		// A dry run with the retention starting after the reader began
		// would delete the files it holds: the retention is what protects
		// it.
		now := time.Now()
		dry, err := maintenance.Vacuum(ctx, f.tbl, maintenance.VacuumOptions{Retain: now.Sub(afterOptimize), Force: true, Now: func() time.Time { return now }})
		if err != nil || len(dry.Files) != len(held.Files) {
			t.Fatalf("dry run after the optimize: %d files, %v; want the reader's %d", len(dry.Files), err, len(held.Files))
		}
		// The vacuum that runs while the reader reads: the reader began
		// within its retention.
		res, err := maintenance.Vacuum(ctx, f.tbl, maintenance.VacuumOptions{Retain: now.Sub(readerStart) + time.Second, Force: true, Delete: true, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Oldest > held.Version {
			t.Fatalf("oldest retained version %d is after the reader's %d", res.Oldest, held.Version)
		}
		for _, a := range held.Files {
			if _, err := st.Stat(ctx, f.tbl.Key(a.Path)); err != nil {
				t.Fatalf("the reader's file %s: %v", a.Path, err)
			}
		}
		if got := f.mustContent(held.Version); got != want {
			t.Fatalf("the reader's version %d reads differently after vacuum", held.Version)
		}
	})
}
