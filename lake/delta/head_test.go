package delta_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// assertSameHead checks that head, from Table.Head, says what full, from
// Table.Snapshot, says of the table apart from its files.
func assertSameHead(t *testing.T, head, full *delta.Snapshot) {
	t.Helper()
	if head.FilesLoaded() || head.Files != nil {
		t.Errorf("head: FilesLoaded %v with %d files, want no files", head.FilesLoaded(), len(head.Files))
	}
	if !full.FilesLoaded() {
		t.Error("Snapshot says its files were not loaded")
	}
	if head.Version != full.Version || !head.Timestamp.Equal(full.Timestamp) ||
		!reflect.DeepEqual(head.Protocol, full.Protocol) || !reflect.DeepEqual(head.Metadata, full.Metadata) ||
		!slices.Equal(head.Txns(), full.Txns()) {
		t.Errorf("head differs from the snapshot:\n%d %s %+v %+v %d txns\n%d %s %+v %+v %d txns",
			head.Version, head.Timestamp, head.Protocol, head.Metadata, len(head.Txns()),
			full.Version, full.Timestamp, full.Protocol, full.Metadata, len(full.Txns()))
	}
}

// headTable makes a table with a checkpoint at version 10 (files, a
// tombstone, txns) and commits after it that add, remove, record txns and
// change the metadata.
func headTable(t *testing.T, st lake.Store, dir string) *delta.Snapshot {
	t.Helper()
	ctx := t.Context()
	tbl := delta.Open(st, dir)
	base := create(t, tbl)
	for i := range 13 {
		c := delta.Commit{
			Adds: []delta.Add{{Path: fmt.Sprintf("f%02d.parquet", i), Size: int64(i), DataChange: true, Stats: `{"numRecords":1}`}},
			Txns: []delta.Txn{{AppID: fmt.Sprintf("obj-%d", i), Version: int64(i)}},
		}
		switch i {
		case 3, 11:
			c.Removes = []delta.Remove{{Path: fmt.Sprintf("f%02d.parquet", i-1), DeletionTimestamp: time.Now().UnixMilli(), DataChange: true}}
		case 12:
			m := base.Metadata
			m.Configuration = map[string]string{"delta.appendOnly": "false"}
			c.Metadata = &m
		}
		s, err := tbl.Commit(ctx, base, c)
		if err != nil {
			t.Fatal(err)
		}
		base = s
	}
	return base
}

// TestHeadMatchesSnapshot: Table.Head gives the version, timestamp,
// protocol, metadata and txns Table.Snapshot gives, without files, whether
// it decodes the checkpoint (only its head columns) or finds it cached; a
// Snapshot after a Head on the same Table completes the cached head with
// the files' columns and equals a fresh full load.
func TestHeadMatchesSnapshot(t *testing.T) {
	local := testenv.LocalStore(t)
	last := headTable(t, local, "bronze/meters")
	if len(last.Files) != 11 || last.Version != 13 {
		t.Fatalf("setup: version %d with %d files", last.Version, len(last.Files))
	}
	ctx := t.Context()
	fresh := func() *delta.Table { return delta.Open(lake.Count(local, &lake.Counts{}), "bronze/meters") }
	full := snapshot(t, fresh())

	tbl := fresh()
	head, err := tbl.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertSameHead(t, head, full)
	again, err := tbl.Head(ctx) // from the Table's cached head
	if err != nil {
		t.Fatal(err)
	}
	assertSameHead(t, again, full)
	completed := snapshot(t, tbl)
	if !reflect.DeepEqual(completed, full) {
		t.Errorf("Snapshot after Head differs from a fresh one:\n%+v\n%+v", completed, full)
	}
	// With the whole checkpoint cached (this Table's, and the process's
	// for another Table of the same store), Head still leaves the files
	// out.
	for _, tb := range []*delta.Table{tbl, delta.Open(local, "bronze/meters")} {
		h, err := tb.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameHead(t, h, full)
	}
}

// TestHeadIsNoCommitBase: a snapshot without its files may say what a
// writer read (Commit.Read) but cannot be what it commits on, checkpoints
// or vacuums from.
func TestHeadIsNoCommitBase(t *testing.T) {
	local := testenv.LocalStore(t)
	headTable(t, local, "t")
	ctx := t.Context()
	st := lake.Count(local, &lake.Counts{})
	tbl := delta.Open(st, "t")
	head, err := tbl.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.FilesLoaded() {
		t.Fatal("a fresh Head loaded the files")
	}
	add := delta.Commit{Adds: []delta.Add{{Path: "new.parquet", Size: 1, DataChange: true}}, IsBlindAppend: true}
	if _, err := tbl.Commit(ctx, head, add); err == nil {
		t.Error("Commit on a head snapshot succeeded")
	}
	if err := tbl.Checkpoint(ctx, head); err == nil {
		t.Error("Checkpoint of a head snapshot succeeded")
	}
	if _, err := tbl.RetainedPaths(ctx, head, time.Now()); err == nil {
		t.Error("RetainedPaths on a head snapshot succeeded")
	}
	if _, err := tbl.Verify(ctx, head, 1); err == nil {
		t.Error("Verify of a head snapshot succeeded")
	}

	// As Read, the txn check works from the head's txns.
	full := snapshot(t, tbl)
	add.Txns = []delta.Txn{{AppID: "obj-1", Version: 1}} // recorded already, as read
	add.Read = head
	s, err := tbl.Commit(ctx, full, add)
	if err != nil {
		t.Fatalf("commit with a head as Read: %v", err)
	}
	if len(s.Files) != len(full.Files)+1 {
		t.Errorf("commit on the full snapshot: %d files, want %d", len(s.Files), len(full.Files)+1)
	}
	stale := add
	stale.Adds = []delta.Add{{Path: "other.parquet", Size: 1, DataChange: true}}
	stale.Txns = []delta.Txn{{AppID: "late", Version: 1}}
	if _, err := tbl.Commit(ctx, s, delta.Commit{Adds: stale.Adds, Txns: stale.Txns, IsBlindAppend: true}); err != nil {
		t.Fatal(err)
	}
	latest := snapshot(t, tbl)
	if _, err := tbl.Commit(ctx, latest, stale); !errors.Is(err, delta.ErrTxnApplied) {
		t.Errorf("txn recorded after the head was read: err %v, want ErrTxnApplied", err)
	}
}

// TestHeadOfGoldenTables: on checkpoints Spark wrote (another Parquet
// layout, read whole and filtered), multi-part ones and a damaged
// _last_checkpoint, Head says what Snapshot says, and a Snapshot after it
// equals a fresh one.
func TestHeadOfGoldenTables(t *testing.T) {
	st := goldenStore(t)
	for _, table := range []string{"checkpoint", "basic-with-inserts-deletes-checkpoint", "multi-part-checkpoint", "corrupted-last-checkpoint", "snapshot-data3"} {
		t.Run(table, func(t *testing.T) {
			// Each load on a store of its own, so that neither finds the
			// other's decoded checkpoint in the process-wide cache.
			tbl := delta.Open(lake.Count(st, &lake.Counts{}), table)
			head, err := tbl.Head(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			full := snapshot(t, delta.Open(lake.Count(st, &lake.Counts{}), table))
			assertSameHead(t, head, full)
			// The full load after the head completes it with the files.
			if completed := snapshot(t, tbl); !reflect.DeepEqual(completed, full) {
				t.Errorf("Snapshot after Head: %d files, want %d: %v, want %v", len(completed.Files), len(full.Files), paths(completed), paths(full))
			}
		})
	}
}
