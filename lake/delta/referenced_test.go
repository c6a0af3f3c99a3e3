package delta_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestRetainedPaths: the files RetainedPaths keeps for every base version
// are exactly the files some version from the base to the latest
// references (the base's files and every later add, read commit by commit
// as the reference); it reads the latest snapshot and not the commits in between
// when the newest checkpoint's tombstones can be trusted, and falls back to
// the commits when the cutoff is older than the tombstone retention.
func TestRetainedPaths(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		var counts lake.Counts
		cst := lake.Count(st, &counts)
		opts := delta.DefaultOptions()
		opts.CheckpointInterval = 5
		tbl, err := delta.OpenWith(cst, "bronze/retained", opts)
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, tbl)
		for i := range 33 {
			c := delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, fmt.Sprintf("f%02d.parquet", i))}}
			if i%3 == 2 { // a rewrite: the oldest live file goes
				c.Removes = []delta.Remove{s.Files[0].Remove(time.Now().UnixMilli(), false)}
			}
			if s, err = tbl.Commit(ctx, s, c); err != nil {
				t.Fatal(err)
			}
		}
		latest := s.Version
		for base := int64(0); base <= latest; base++ {
			b, err := tbl.SnapshotAt(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tbl.AddedPaths(ctx, base, latest)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range b.Files {
				want[f.Path] = true
			}
			counts.Reset()
			got, err := tbl.RetainedPaths(ctx, b, time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if got.FromLog || got.Latest != latest {
				t.Fatalf("base %d: FromLog %v, latest %d; want false, %d", base, got.FromLog, got.Latest, latest)
			}
			for p := range want {
				if !got.Paths[p] {
					t.Errorf("base %d: %s is referenced by a retained version but not kept", base, p)
				}
			}
			// Nor more: a file removed at or before the base is free to go.
			for p := range got.Paths {
				if !want[p] {
					t.Errorf("base %d: %s is kept, but no version from the base on references it", base, p)
				}
			}
			// The latest snapshot: its checkpoint and at most the commits
			// after it, whatever the base.
			if n := counts.ReadKeys(tbl.Key("_delta_log/"), ".json"); n >= int(opts.CheckpointInterval) {
				t.Errorf("base %d: read %d commits, want fewer than the checkpoint interval %d", base, n, opts.CheckpointInterval)
			}
		}
		// A cutoff older than the tombstone retention and its grace: the
		// checkpoint may have dropped a remove the retained versions
		// need, so the commits after the base are read, and the result is
		// exactly the reference.
		b, err := tbl.SnapshotAt(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tbl.RetainedPaths(ctx, b, time.Now().Add(-9*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want, err := tbl.AddedPaths(ctx, 3, latest)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range b.Files {
			want[f.Path] = true
		}
		if !got.FromLog || !slices.Equal(slices.Sorted(maps.Keys(got.Paths)), slices.Sorted(maps.Keys(want))) {
			t.Fatalf("old cutoff: FromLog %v, %d paths; want true and the %d referenced", got.FromLog, len(got.Paths), len(want))
		}
	})
}
