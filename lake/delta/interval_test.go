package delta_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestCheckpointIntervalFollowsSize: a table whose history left 12,000
// tombstones is checkpointed every 30 commits (interval 10, three times
// for up to 15,000 actions), not every 10; every load equals a replay of
// the whole log; a load right after the writer's checkpoint does not read
// it back (the writer cached what it wrote), and a load that replays the
// tail again reads none of the commits it parsed before.
func TestCheckpointIntervalFollowsSize(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		var counts lake.Counts
		var cache delta.Cache
		opts := delta.DefaultOptions()
		opts.Cache = &cache
		tbl, err := delta.OpenWith(lake.Count(st, &counts), "silver/interval", opts)
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, tbl)
		var adds []delta.Add
		for i := range 12000 {
			adds = append(adds, delta.Add{Path: fmt.Sprintf("old/part-%05d.parquet", i), Size: 1, ModificationTime: 1, DataChange: true})
		}
		if s, err = tbl.Commit(ctx, s, delta.Commit{Adds: adds}); err != nil {
			t.Fatal(err)
		}
		var rm []delta.Remove
		for _, a := range adds {
			rm = append(rm, a.Remove(time.Now().UnixMilli(), false))
		}
		if s, err = tbl.Commit(ctx, s, delta.Commit{Removes: rm}); err != nil { // version 2
			t.Fatal(err)
		}
		replay, err := delta.OpenWith(st, "silver/interval", withIgnoreCheckpoints())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 75 { // versions 3..77
			if s, err = tbl.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			counts.Reset()
			s = appendFile(t, st, tbl, s, fmt.Sprintf("new-%02d.parquet", i))
			if s.Version%10 == 0 {
				if got, err := tbl.Snapshot(ctx); err != nil {
					t.Fatal(err)
				} else {
					assertSameSnapshot(t, got, s)
				}
				if n := counts.ReadKeys("silver/interval/_delta_log/", ".checkpoint.parquet"); n != 0 {
					t.Errorf("version %d: the load after the commit read %d checkpoints; want none (cached by the writer)", s.Version, n)
				}
				// From version 30 on a checkpoint exists: the load reads
				// the checkpoint's own commit (for its timestamp) and the
				// two after it, not the tail it parsed before.
				if n := counts.ReadKeys("silver/interval/_delta_log/", ".json"); s.Version >= 30 && n > 3 {
					t.Errorf("version %d: the load after the commit read %d commits; want at most 3", s.Version, n)
				}
			}
		}
		objs, err := st.List(ctx, "silver/interval/_delta_log/", "")
		if err != nil {
			t.Fatal(err)
		}
		var cps []int64
		for _, o := range objs {
			if name := strings.TrimPrefix(o.Key, "silver/interval/_delta_log/"); strings.HasSuffix(name, ".checkpoint.parquet") {
				var v int64
				fmt.Sscanf(name, "%020d", &v)
				cps = append(cps, v)
			}
		}
		slices.Sort(cps)
		// From version 2 on the table holds 12,000 tombstones: the
		// interval is 30, so no checkpoint at 10, 20, 40, 50 or 70.
		if want := []int64{30, 60}; !slices.Equal(cps, want) {
			t.Errorf("checkpoints at %v, want %v", cps, want)
		}
		fresh, err := delta.Open(st, "silver/interval").Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := replay.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, fresh, whole)
		assertSameSnapshot(t, fresh, s)

		// The table deleted and created again, up to a checkpoint at a
		// version the cached commits also have: a load through the same
		// cache sees the new table, not the commits it parsed before.
		for _, o := range objs {
			if err := st.Delete(ctx, o.Key); err != nil {
				t.Fatal(err)
			}
		}
		again, err := delta.Open(st, "silver/interval").Create(ctx, delta.Metadata{Name: "again", SchemaString: testSchema}, delta.CommitInfo{})
		if err != nil {
			t.Fatal(err)
		}
		w := delta.Open(st, "silver/interval")
		for i := range 62 {
			again = appendFile(t, st, w, again, fmt.Sprintf("again-%02d.parquet", i))
		}
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, got, again)
	})
}
