package delta_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// probeTable creates a table checkpointed every 5 versions and appends n
// files (versions 1..n), returning the writer's Table and last snapshot.
func probeTable(t *testing.T, st lake.Store, dir string, n int) (*delta.Table, *delta.Snapshot) {
	t.Helper()
	opts := delta.DefaultOptions()
	opts.CheckpointInterval = 5
	tbl, err := delta.OpenWith(st, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, tbl)
	for i := range n {
		s = appendFile(t, st, tbl, s, fmt.Sprintf("f%03d.parquet", i))
	}
	return tbl, s
}

func commitKey(dir string, v int64) string {
	return fmt.Sprintf("%s/_delta_log/%020d.json", dir, v)
}

// TestProbeLatestWithoutListing: the latest snapshot and version come from
// _last_checkpoint and the commits after it, with no listing of the log,
// and equal what replaying the whole log gives; reads stay within the tail.
func TestProbeLatestWithoutListing(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		_, want := probeTable(t, st, "bronze/p", 23) // checkpoint at 20, tail 21..23
		var counts lake.Counts
		tbl := delta.Open(lake.Count(st, &counts), "bronze/p")
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, want)
		replay, _ := delta.OpenWith(st, "bronze/p", withIgnoreCheckpoints())
		r, err := replay.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, r)
		if v, err := tbl.LatestVersion(ctx); err != nil || v != 23 {
			t.Fatalf("latest version %d, %v; want 23", v, err)
		}
		if n := counts.ReadKeys("bronze/p/_delta_log/", ".json"); n > 6 {
			t.Errorf("read %d commit keys, want at most twice the tail after the checkpoint", n)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("%d listings, want none", n)
		}
		// Loaded again, the Table replays the tail it parsed from memory
		// and asks only for the versions after it (a window of two).
		counts.Reset()
		if again, err := tbl.Snapshot(ctx); err != nil {
			t.Fatal(err)
		} else {
			assertSameSnapshot(t, again, want)
		}
		if n := counts.ReadKeys("bronze/p/_delta_log/", ".json"); n != 2 {
			t.Errorf("read %d commit keys again, want the 2 after the tail", n)
		}
		// A writer reading its own last commit (silver's progress).
		if h, err := tbl.History(ctx, 1); err != nil || len(h) != 1 || h[0].Version != 23 {
			t.Fatalf("history of 1: %+v, %v; want version 23", h, err)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("%d listings, want none", n)
		}
		// A load with nothing after the checkpoint takes the checkpoint's
		// commit for the timestamp.
		at20, err := delta.Open(st, "bronze/p").SnapshotAt(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		_, s := probeTable(t, st, "bronze/q", 20)
		got20, err := delta.Open(st, "bronze/q").Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got20, s)
		if got20.Timestamp.IsZero() || at20.Version != 20 {
			t.Errorf("snapshot at a checkpoint with no tail: timestamp %v", got20.Timestamp)
		}
	})
}

// TestProbeAfterLogCleanup: after log cleanup deleted every entry before
// the newest checkpoint, the probe still finds the latest version (and a
// checkpoint met in the middle of the tail changes nothing).
func TestProbeAfterLogCleanup(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		w, s := probeTable(t, st, "silver/c", 30)
		res, err := w.CleanupLog(ctx, time.Hour, time.Now().Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res.Checkpoint != 30 || res.Commits != 30 {
			t.Fatalf("cleanup %+v, want the log to start at the checkpoint of 30", res)
		}
		for i := range 8 { // a checkpoint at 35, a tail 36..38
			s = appendFile(t, st, w, s, fmt.Sprintf("g%d.parquet", i))
		}
		// _last_checkpoint lags behind (a writer that lost the race to
		// update it): the probe walks from 30 across the checkpoint at 35.
		lc := `{"version":30,"size":3}`
		if _, err := st.Put(ctx, "silver/c/_delta_log/_last_checkpoint", strings.NewReader(lc), int64(len(lc))); err != nil {
			t.Fatal(err)
		}
		var counts lake.Counts
		tbl := delta.Open(lake.Count(st, &counts), "silver/c")
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, s)
		if len(got.Files) != 38 {
			t.Errorf("%d files, want 38", len(got.Files))
		}
		if v, err := tbl.LatestVersion(ctx); err != nil || v != 38 {
			t.Fatalf("latest version %d, %v; want 38", v, err)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("%d listings, want none", n)
		}
	})
}

// hookStore runs before on the first Stat of key, before the Stat.
type hookStore struct {
	lake.Store
	key    string
	once   sync.Once
	before func()
}

func (h *hookStore) Stat(ctx context.Context, key string) (lake.ObjectInfo, error) {
	if key == h.key {
		h.once.Do(h.before)
	}
	return h.Store.Stat(ctx, key)
}

// TestProbeRestartsWhenCleanedUnderIt: a reader reads _last_checkpoint (20)
// and its checkpoint; then other writers commit past a new checkpoint (30)
// and a cleanup deletes the commits before it. The commit after 20 is then
// missing because it was deleted, not because it is not written yet: the
// probe must see the newer checkpoint and start again from it, not return
// version 20.
func TestProbeRestartsWhenCleanedUnderIt(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		w, s := probeTable(t, st, "gold/r", 20)
		hooked := &hookStore{Store: st, key: "gold/r/_delta_log/00000000000000000020.checkpoint.parquet"}
		hooked.before = func() {
			for i := range 12 {
				s = appendFile(t, st, w, s, fmt.Sprintf("h%d.parquet", i))
			}
			for v := int64(21); v < 30; v++ {
				if err := st.Delete(ctx, commitKey("gold/r", v)); err != nil {
					t.Error(err)
				}
			}
		}
		var counts lake.Counts
		tbl := delta.Open(lake.Count(hooked, &counts), "gold/r")
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, s)
		if got.Version != 32 {
			t.Errorf("version %d, want 32", got.Version)
		}
		if n := counts.Lists.Load(); n != 0 {
			t.Errorf("%d listings, want none (the probe restarts from the newer checkpoint)", n)
		}
	})
}

// TestProbeGapIsDamage: a commit missing between the checkpoint and later
// commits is not taken for the end of the log: the load falls back to the
// listing, which calls the table damaged.
func TestProbeGapIsDamage(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		probeTable(t, st, "bronze/g", 13)
		if err := st.Delete(ctx, commitKey("bronze/g", 11)); err != nil {
			t.Fatal(err)
		}
		_, err := delta.Open(st, "bronze/g").Snapshot(ctx)
		if err == nil || !strings.Contains(err.Error(), "version 11 is missing") {
			t.Fatalf("snapshot of a log with a gap: %v, want version 11 missing", err)
		}
	})
}

// TestProbeWithConcurrentCommitter: while a writer commits, every snapshot
// a reader loads (reusing one Table, so its probe window follows the
// writer) is a consistent version: as many files as its version, never
// going back, and at the end the writer's last version.
func TestProbeWithConcurrentCommitter(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		w, s := probeTable(t, st, "silver/w", 3)
		const last = 40
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := s.Version; i < last; i++ {
				var err error
				s, err = w.Commit(ctx, s, delta.Commit{Adds: []delta.Add{{Path: fmt.Sprintf("w%03d.parquet", i), Size: 1, DataChange: true}}, IsBlindAppend: true})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		reader := delta.Open(st, "silver/w")
		prev := int64(-1)
		check := func() *delta.Snapshot {
			got, err := reader.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version < prev || int64(len(got.Files)) != got.Version {
				t.Fatalf("loaded version %d with %d files after version %d", got.Version, len(got.Files), prev)
			}
			prev = got.Version
			return got
		}
	loop:
		for {
			select {
			case <-done:
				break loop
			default:
				check()
			}
		}
		if got := check(); got.Version != last {
			t.Errorf("version %d after the writer finished, want %d", got.Version, last)
		}
	})
}

// TestSharedCacheDecodesOnce: Tables opened with one Cache (a job's fresh
// Tables in each micro-batch) decode a checkpoint once between them.
func TestSharedCacheDecodesOnce(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	probeTable(t, st, "bronze/s", 12)
	var counts lake.Counts
	cs := lake.Count(st, &counts)
	cache := &delta.Cache{}
	opts := delta.DefaultOptions()
	opts.Cache = cache
	for range 3 {
		tbl, err := delta.OpenWith(cs, "bronze/s", opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const cp = "bronze/s/_delta_log/00000000000000000010.checkpoint.parquet"
	if n := counts.Reads(cp); n != 1 {
		t.Fatalf("checkpoint read %d times by Tables sharing a cache, want 1", n)
	}
	counts.Reset()
	for range 3 { // without Options.Cache: the process-wide cache serves them
		if _, err := delta.Open(cs, "bronze/s").Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := counts.Reads(cp); n != 0 {
		t.Fatalf("checkpoint read %d times by Tables without a shared Cache, want 0 (the process-wide cache)", n)
	}
}

// TestSnapshotAtTailWithoutListing: time travel to a version at or after
// the newest checkpoint finds it by the probe, with no listing of the log
// (which reads every name in it), and equals a replay of the whole log;
// an older version, and one that does not exist yet, are still found, or
// refused, through the listing.
func TestSnapshotAtTailWithoutListing(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		probeTable(t, st, "bronze/at", 23) // checkpoint at 20, tail 21..23
		var counts lake.Counts
		tbl := delta.Open(lake.Count(st, &counts), "bronze/at")
		replay, err := delta.OpenWith(st, "bronze/at", withIgnoreCheckpoints())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []int64{20, 21, 23} {
			counts.Reset()
			got, err := tbl.SnapshotAt(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			if n := counts.Lists.Load(); n != 0 {
				t.Errorf("version %d: %d listings, want none", v, n)
			}
			want, err := replay.SnapshotAt(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			assertSameSnapshot(t, got, want)
		}
		counts.Reset()
		got, err := tbl.SnapshotAt(ctx, 12)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Lists.Load() == 0 {
			t.Error("version 12, before the newest checkpoint: want a listing")
		}
		want, err := replay.SnapshotAt(ctx, 12)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, want)
		if _, err := tbl.SnapshotAt(ctx, 24); !errors.Is(err, delta.ErrNoVersion) {
			t.Errorf("version 24: %v, want ErrNoVersion", err)
		}
	})
}
