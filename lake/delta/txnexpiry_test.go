package delta_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestTxnRetention: txns last updated more than the retention before the
// newest txn are gone from snapshots, replayed and from checkpoints alike;
// a reader without a retention still sees them in the log.
func TestTxnRetention(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	opts := delta.DefaultOptions()
	opts.TxnRetention = time.Hour
	opts.CheckpointInterval = 3
	tbl, err := delta.OpenWith(st, "bronze/meters", opts)
	if err != nil {
		t.Fatal(err)
	}
	base := create(t, tbl)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	commitTxn := func(app string, at time.Time) {
		t.Helper()
		s, err := tbl.Commit(ctx, base, delta.Commit{Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: at.UnixMilli()}}})
		if err != nil {
			t.Fatalf("commit %s: %v", app, err)
		}
		base = s
	}
	commitTxn("old", t0)
	commitTxn("within", t0.Add(50*time.Minute))
	if _, ok := base.TxnVersion("old"); !ok {
		t.Fatal("old expired within the retention")
	}
	commitTxn("recent", t0.Add(90*time.Minute))
	commitTxn("new", t0.Add(2*time.Hour)) // version 4: past the checkpoint of 3
	for name, s := range map[string]*delta.Snapshot{"commit": base, "read": snapshot(t, tbl)} {
		if _, ok := s.TxnVersion("old"); ok {
			t.Errorf("%s: old still there past the retention", name)
		}
		for _, app := range []string{"recent", "new"} {
			if _, ok := s.TxnVersion(app); !ok {
				t.Errorf("%s: %s expired", name, app)
			}
		}
	}
	plain, _ := delta.OpenWith(st, "bronze/meters", withIgnoreCheckpoints())
	if _, ok := snapshot(t, plain).TxnVersion("old"); !ok {
		t.Error("a log replay without retention lost old")
	}
}

// TestWithTxns: a writer committing twice against what it read sees its own
// txn, not another writer's.
func TestWithTxns(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	tbl := delta.Open(st, "t")
	read := create(t, tbl)
	s1, err := tbl.Commit(ctx, read, delta.Commit{Txns: []delta.Txn{{AppID: "cursor", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Commit(ctx, s1, delta.Commit{Txns: []delta.Txn{{AppID: "cursor", Version: 2}}, Read: read}); err == nil {
		t.Fatal("second commit against the first read: no conflict")
	}
	mine := read.WithTxns(delta.Txn{AppID: "cursor", Version: 1})
	if v, ok := mine.TxnVersion("cursor"); !ok || v != 1 {
		t.Fatalf("WithTxns: cursor at %d, %v", v, ok)
	}
	if _, ok := read.TxnVersion("cursor"); ok {
		t.Fatal("WithTxns changed the snapshot it copied")
	}
	if _, err := tbl.Commit(ctx, s1, delta.Commit{Txns: []delta.Txn{{AppID: "cursor", Version: 2}}, Read: mine}); err != nil {
		t.Fatalf("second commit against the read plus its own txn: %v", err)
	}
}

// TestCheckpointAfterMissedOne: when checkpoints were missed (here, written
// by a writer with them off), the next commit past twice the interval since
// the checkpoint its snapshot came from writes one, so readers replay a
// short tail; an ordinary commit between multiples does not.
func TestCheckpointAfterMissedOne(t *testing.T) {
	st := testenv.LocalStore(t)
	opts := delta.DefaultOptions()
	opts.CheckpointInterval = 0
	miss, _ := delta.OpenWith(st, "t", opts)
	base := create(t, miss)
	for i := range 4 { // versions 1..4, no checkpoint
		base = appendFile(t, st, miss, base, fmt.Sprintf("m%d", i))
	}
	opts.CheckpointInterval = 2
	tbl, _ := delta.OpenWith(st, "t", opts)
	base = appendFile(t, st, tbl, snapshot(t, tbl), "x") // 5: not a multiple, tail 5
	if !hasCheckpoint(t, st, 5) {
		t.Fatal("no checkpoint at version 5 after a tail of 5 commits (interval 2)")
	}
	base = appendFile(t, st, tbl, base, "y") // 6: a multiple
	base = appendFile(t, st, tbl, base, "z") // 7: tail 1
	if !hasCheckpoint(t, st, 6) || hasCheckpoint(t, st, 7) {
		t.Fatal("want a checkpoint at 6 and none at 7")
	}
	if s := snapshot(t, tbl); s.Version != 7 || len(s.Files) != 7 {
		t.Fatalf("snapshot at %d with %d files, want 7 and 7", s.Version, len(s.Files))
	}
}

func snapshot(t *testing.T, tbl *delta.Table) *delta.Snapshot {
	t.Helper()
	s, err := tbl.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hasCheckpoint(t *testing.T, st lake.Store, v int64) bool {
	t.Helper()
	_, err := st.Stat(t.Context(), fmt.Sprintf("t/_delta_log/%020d.checkpoint.parquet", v))
	return err == nil
}

// TestTxnExpiresOnlyWhatItSays: with TxnExpires, other txns are kept and
// do not count as the newest (a lease fence stamped now does not expire
// records stamped with their input's older time).
func TestTxnExpiresOnlyWhatItSays(t *testing.T) {
	st := testenv.LocalStore(t)
	opts := delta.DefaultOptions()
	opts.TxnRetention = time.Hour
	opts.TxnExpires = func(app string) bool { return app != "fence" }
	tbl, _ := delta.OpenWith(st, "t", opts)
	base := create(t, tbl)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := tbl.Commit(t.Context(), base, delta.Commit{Txns: []delta.Txn{
		{AppID: "fence", Version: 1, LastUpdated: t0.Add(-48 * time.Hour).UnixMilli()},
		{AppID: "a", Version: 1, LastUpdated: t0.UnixMilli()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err = tbl.Commit(t.Context(), s, delta.Commit{Txns: []delta.Txn{
		{AppID: "fence", Version: 2, LastUpdated: t0.Add(48 * time.Hour).UnixMilli()},
		{AppID: "b", Version: 1, LastUpdated: t0.Add(30 * time.Minute).UnixMilli()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"fence", "a", "b"} {
		if _, ok := s.TxnVersion(app); !ok {
			t.Errorf("%s expired", app)
		}
	}
}
