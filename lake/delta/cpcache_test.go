package delta_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestCheckpointDecodedOncePerProcess: a second Table on the same store
// (silver reading bronze right after bronze's job) loads the snapshot
// without reading the checkpoint again, and gets an equal snapshot of its
// own; a Table on another store of the same files reads it.
func TestCheckpointDecodedOncePerProcess(t *testing.T) {
	local := testenv.LocalStore(t)
	var counts lake.Counts
	st := lake.Count(local, &counts)
	ctx := t.Context()
	tbl := delta.Open(st, "bronze/meters")
	base := create(t, tbl)
	for i := range 12 { // a checkpoint at version 10, two commits after it
		s, err := tbl.Commit(ctx, base, delta.Commit{
			Adds: []delta.Add{{Path: fmt.Sprintf("f%02d.parquet", i), Size: 1, DataChange: true, Stats: `{"numRecords":1}`}},
			Txns: []delta.Txn{{AppID: fmt.Sprintf("obj-%d", i), Version: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		base = s
	}
	first := snapshot(t, delta.Open(st, "bronze/meters"))
	counts.Reset()
	second := snapshot(t, delta.Open(st, "bronze/meters"))
	if n := counts.ReadKeys("bronze/meters/_delta_log/", ".checkpoint.parquet"); n != 0 {
		t.Errorf("a second Table on the same store read the checkpoint again (%d keys)", n)
	}
	if !reflect.DeepEqual(first, second) || len(second.Files) != 12 {
		t.Errorf("snapshots differ or miss files: %d and %d files", len(first.Files), len(second.Files))
	}
	// Each load has its own copy: what one does to its state does not
	// reach the next.
	second.Files[0].Path = "changed"
	if third := snapshot(t, delta.Open(st, "bronze/meters")); third.Files[0].Path == "changed" {
		t.Error("a load shares its files with the cache")
	}
	counts.Reset()
	other := lake.Count(local, &counts) // same files, another store value
	if s := snapshot(t, delta.Open(other, "bronze/meters")); len(s.Files) != 12 {
		t.Errorf("other store: %d files", len(s.Files))
	}
	if n := counts.ReadKeys("bronze/meters/_delta_log/", ".checkpoint.parquet"); n != 1 {
		t.Errorf("another store read %d checkpoint keys, want 1 (no sharing across stores)", n)
	}
}
