package delta_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// BenchmarkStreamCommit: one load and one single-file commit (the loop of
// a stream job) on a table whose history left many tombstones; the cost
// must follow the commit, not the tombstones.
func BenchmarkStreamCommit(b *testing.B) {
	for _, n := range []int{0, 30000, 100000} {
		b.Run(fmt.Sprintf("tombstones=%d", n), func(b *testing.B) {
			ctx := b.Context()
			st, err := lake.NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			var cache delta.Cache
			opts := delta.DefaultOptions()
			opts.Cache = &cache
			tbl, err := delta.OpenWith(st, "silver/t", opts)
			if err != nil {
				b.Fatal(err)
			}
			s, err := tbl.Create(ctx, delta.Metadata{Name: "t", SchemaString: `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}}]}`}, delta.CommitInfo{})
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				var rm []delta.Remove
				now := time.Now().UnixMilli()
				for i := range n {
					rm = append(rm, delta.Remove{Path: fmt.Sprintf("part-%08d-0000-0000-0000-000000000000.c000.snappy.parquet", i), DeletionTimestamp: now, DataChange: false})
				}
				if s, err = tbl.Commit(ctx, s, delta.Commit{Removes: rm}); err != nil {
					b.Fatal(err)
				}
				// As a long stream leaves it: the tombstones in a checkpoint.
				if err := tbl.Checkpoint(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if s, err = tbl.Snapshot(ctx); err != nil {
					b.Fatal(err)
				}
				add := delta.Add{Path: fmt.Sprintf("new-%d.parquet", i), Size: 10, ModificationTime: time.Now().UnixMilli(), DataChange: true}
				if s, err = tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{add}, IsBlindAppend: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
