package delta_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

const testSchema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"name","type":"string","nullable":true,"metadata":{}}]}`

func create(t *testing.T, tbl *delta.Table) *delta.Snapshot {
	t.Helper()
	s, err := tbl.Create(t.Context(), delta.Metadata{Name: "meters", SchemaString: testSchema}, delta.CommitInfo{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return s
}

// putFile writes a (fake) data file under the table root, as a writer does
// before committing it.
func putFile(t *testing.T, st lake.Store, tbl *delta.Table, path string) delta.Add {
	t.Helper()
	body := []byte("data of " + path)
	if _, err := st.Put(t.Context(), tbl.Key(path), bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	return delta.Add{Path: path, Size: int64(len(body)), ModificationTime: time.Now().UnixMilli(), DataChange: true,
		Stats: `{"numRecords":1}`}
}

func paths(s *delta.Snapshot) []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Path)
	}
	return out
}

func appendFile(t *testing.T, st lake.Store, tbl *delta.Table, base *delta.Snapshot, path string) *delta.Snapshot {
	t.Helper()
	s, err := tbl.Commit(t.Context(), base, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, path)}, IsBlindAppend: true,
		Info: delta.CommitInfo{Operation: "WRITE", Medallion: map[string]any{"rows_in": 1}}})
	if err != nil {
		t.Fatalf("append %s: %v", path, err)
	}
	return s
}

func TestCreateCommitTimeTravel(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/meters")
		if _, err := tbl.Snapshot(ctx); !errors.Is(err, delta.ErrNoTable) || !errors.Is(err, lake.ErrNotExist) {
			t.Fatalf("snapshot of no table: %v, want ErrNoTable", err)
		}
		if _, err := tbl.LatestVersion(ctx); !errors.Is(err, delta.ErrNoTable) {
			t.Fatalf("latest version of no table: %v, want ErrNoTable", err)
		}
		s0 := create(t, tbl)
		if s0.Version != 0 || s0.Protocol.MinReaderVersion != 1 || s0.Protocol.MinWriterVersion != 2 || len(s0.Metadata.ID) != 36 {
			t.Fatalf("version 0: %+v", s0)
		}
		if _, err := tbl.Create(ctx, delta.Metadata{}, delta.CommitInfo{}); !errors.Is(err, delta.ErrTableExists) {
			t.Fatalf("second create: %v, want ErrTableExists", err)
		}
		s1 := appendFile(t, st, tbl, s0, "a b.parquet") // a space: URL-encoded in the log
		time.Sleep(5 * time.Millisecond)
		s2 := appendFile(t, st, tbl, s1, "dt=2024-01-01/c.parquet")
		time.Sleep(5 * time.Millisecond)
		rm := s2.Files[0].Remove(time.Now().UnixMilli(), true)
		s3, err := tbl.Commit(ctx, s2, delta.Commit{Removes: []delta.Remove{rm}, Info: delta.CommitInfo{Operation: "DELETE"}})
		if err != nil {
			t.Fatalf("remove: %v", err)
		}
		raw, _, err := st.Get(ctx, "bronze/meters/_delta_log/00000000000000000001.json")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(raw)
		raw.Close()
		if !strings.Contains(buf.String(), `"path":"a%20b.parquet"`) {
			t.Errorf("log version 1 does not URL-encode the path: %s", buf.String())
		}

		for _, c := range []struct {
			v    int64
			want []string
		}{
			{0, nil}, {1, []string{"a b.parquet"}}, {2, []string{"a b.parquet", "dt=2024-01-01/c.parquet"}}, {3, []string{"dt=2024-01-01/c.parquet"}},
		} {
			s, err := tbl.SnapshotAt(ctx, c.v)
			if err != nil {
				t.Fatalf("snapshot at %d: %v", c.v, err)
			}
			if s.Version != c.v || !slices.Equal(paths(s), c.want) {
				t.Errorf("snapshot at %d: version %d files %q, want %q", c.v, s.Version, paths(s), c.want)
			}
		}
		latest, err := tbl.Snapshot(ctx)
		if err != nil || latest.Version != 3 || !slices.Equal(paths(latest), paths(s3)) {
			t.Fatalf("latest: %v %v, want the committed snapshot %v", latest, err, paths(s3))
		}
		if v, err := tbl.LatestVersion(ctx); err != nil || v != 3 {
			t.Fatalf("latest version %d %v, want 3", v, err)
		}
		if _, err := tbl.SnapshotAt(ctx, 4); !errors.Is(err, delta.ErrNoVersion) {
			t.Fatalf("snapshot at 4: %v, want ErrNoVersion", err)
		}

		// Time travel by timestamp: each commit's own timestamp selects it.
		hist, err := tbl.History(ctx, 0)
		if err != nil || len(hist) != 4 {
			t.Fatalf("history: %v %v", hist, err)
		}
		for i, h := range hist {
			if h.Version != int64(3-i) {
				t.Fatalf("history[%d] is version %d, want newest first", i, h.Version)
			}
			s, err := tbl.SnapshotAsOf(ctx, time.UnixMilli(h.Timestamp))
			if err != nil || s.Version != h.Version {
				t.Fatalf("as of %d: %v %v, want version %d", h.Timestamp, s, err, h.Version)
			}
		}
		if hist[0].Operation != "DELETE" || hist[0].ReadVersion == nil || *hist[0].ReadVersion != 2 || *hist[0].IsBlindAppend {
			t.Errorf("history[0] = %+v", hist[0])
		}
		if hist[1].Medallion["rows_in"] != float64(1) {
			t.Errorf("medallion commit data lost: %+v", hist[1].Medallion)
		}
		if h, _ := tbl.History(ctx, 2); len(h) != 2 || h[1].Version != 2 {
			t.Errorf("history limit 2: %+v", h)
		}
		if _, err := tbl.SnapshotAsOf(ctx, time.UnixMilli(hist[3].Timestamp-1)); !errors.Is(err, delta.ErrNoVersion) {
			t.Errorf("as of before creation: %v, want ErrNoVersion", err)
		}
		if s, err := tbl.SnapshotAsOf(ctx, time.Now().Add(time.Hour)); err != nil || s.Version != 3 {
			t.Errorf("as of the future: %v %v", s, err)
		}
	})
}

func TestTxnExactlyOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "silver/usage")
		s := create(t, tbl)
		if _, ok := s.TxnVersion("bronze-job"); ok {
			t.Fatal("txn on a new table")
		}
		s, err := tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "1.parquet")},
			Txns: []delta.Txn{{AppID: "bronze-job", Version: 7}}})
		if err != nil {
			t.Fatal(err)
		}
		s, err = tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "bronze-job", Version: 8}, {AppID: "other", Version: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := got.TxnVersion("bronze-job"); !ok || v != 8 {
			t.Errorf("txn bronze-job = %d %v, want 8", v, ok)
		}
		if len(got.Txns()) != 2 {
			t.Errorf("txns %+v", got.Txns())
		}
		// A blind append recording a txn for an appId another writer also
		// recorded concurrently is a conflict (exactly-once).
		if _, err := tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "x", Version: 1}}, IsBlindAppend: true}); err != nil {
			t.Fatal(err)
		}
		_, err = tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "2.parquet")},
			Txns: []delta.Txn{{AppID: "x", Version: 1}}, IsBlindAppend: true})
		if !errors.Is(err, delta.ErrCommitConflict) {
			t.Fatalf("duplicate txn: %v, want ErrCommitConflict", err)
		}
	})
}

func TestConcurrentBlindAppends(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		const writers, perWriter = 8, 25
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/events")
		create(t, tbl)

		readCtx, stopReader := context.WithCancel(ctx)
		var reads atomic.Int64
		readerErr := make(chan error, 1)
		go func() {
			defer close(readerErr)
			last := int64(0)
			for readCtx.Err() == nil {
				s, err := tbl.Snapshot(readCtx)
				if err != nil {
					if readCtx.Err() == nil {
						readerErr <- err
					}
					return
				}
				if s.Version < last || int64(len(s.Files)) != s.Version {
					readerErr <- fmt.Errorf("reader saw version %d with %d files after version %d", s.Version, len(s.Files), last)
					return
				}
				last = s.Version
				reads.Add(1)
			}
		}()

		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				wt := delta.Open(st, "bronze/events") // as if in its own process
				base, err := wt.Snapshot(ctx)
				if err != nil {
					errs <- err
					return
				}
				for i := range perWriter {
					add := putFile(t, st, wt, fmt.Sprintf("w%d-%02d.parquet", w, i))
					base, err = wt.Commit(ctx, base, delta.Commit{Adds: []delta.Add{add}, IsBlindAppend: true})
					if err != nil {
						errs <- fmt.Errorf("writer %d commit %d: %w", w, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		stopReader()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := <-readerErr; err != nil {
			t.Errorf("reader: %v", err)
		}
		t.Logf("reader took %d snapshots", reads.Load())

		objs, err := st.List(ctx, "bronze/events/_delta_log/", "")
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		for _, o := range objs {
			if name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "bronze/events/_delta_log/"), ".json"); ok {
				versions = append(versions, name)
			}
		}
		if len(versions) != writers*perWriter+1 {
			t.Fatalf("%d log versions, want %d", len(versions), writers*perWriter+1)
		}
		for i, v := range versions {
			if v != fmt.Sprintf("%020d", i) {
				t.Fatalf("log version %d is named %s", i, v)
			}
		}
		s, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != writers*perWriter || len(s.Files) != writers*perWriter {
			t.Fatalf("final snapshot version %d with %d files", s.Version, len(s.Files))
		}
		// Every writer's file is committed exactly once: count adds in the log.
		seen := map[string]int{}
		for v := int64(1); v <= s.Version; v++ {
			rc, _, err := st.Get(ctx, fmt.Sprintf("bronze/events/_delta_log/%020d.json", v))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.ReadFrom(rc)
			rc.Close()
			for line := range strings.Lines(b.String()) {
				if i := strings.Index(line, `"path":"`); i >= 0 {
					p := line[i+8:]
					seen[p[:strings.IndexByte(p, '"')]]++
				}
			}
		}
		for w := range writers {
			for i := range perWriter {
				if n := seen[fmt.Sprintf("w%d-%02d.parquet", w, i)]; n != 1 {
					t.Errorf("file w%d-%02d committed %d times", w, i, n)
				}
			}
		}
		// Checkpoints were written along the way and agree with the JSON log.
		if _, err := st.Stat(ctx, "bronze/events/_delta_log/00000000000000000200.checkpoint.parquet"); err != nil {
			t.Errorf("checkpoint 200: %v", err)
		}
		replayOnly, _ := delta.OpenWith(st, "bronze/events", withIgnoreCheckpoints())
		r, err := replayOnly.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(paths(r), paths(s)) {
			t.Error("checkpointed snapshot differs from JSON replay")
		}
	})
}

func withIgnoreCheckpoints() delta.Options {
	o := delta.DefaultOptions()
	o.IgnoreCheckpoints = true
	return o
}

func TestConflict(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "gold/ma")
		s := appendFile(t, st, tbl, create(t, tbl), "old.parquet")

		// Two writers read version 1; both rewrite old.parquet (non-blind).
		rewrite := func(name string) error {
			_, err := tbl.Commit(ctx, s, delta.Commit{
				Removes: []delta.Remove{s.Files[0].Remove(time.Now().UnixMilli(), true)},
				Adds:    []delta.Add{putFile(t, st, tbl, name)},
				Info:    delta.CommitInfo{Operation: "MERGE"},
			})
			return err
		}
		if err := rewrite("new-a.parquet"); err != nil {
			t.Fatal(err)
		}
		err := rewrite("new-b.parquet")
		if !errors.Is(err, delta.ErrCommitConflict) {
			t.Fatalf("losing rewrite: %v, want ErrCommitConflict", err)
		}
		if !strings.Contains(err.Error(), "gold/ma") || !strings.Contains(err.Error(), "version 2") {
			t.Errorf("conflict error does not name the table and version: %v", err)
		}
		// A blind append after a metadata change must not be reordered.
		s2, _ := tbl.Snapshot(ctx)
		if _, err := tbl.Commit(ctx, s2, delta.Commit{Metadata: &delta.Metadata{SchemaString: testSchema, Configuration: map[string]string{"k": "v"}}}); err != nil {
			t.Fatal(err)
		}
		_, err = tbl.Commit(ctx, s2, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "late.parquet")}, IsBlindAppend: true})
		if !errors.Is(err, delta.ErrCommitConflict) {
			t.Fatalf("blind append over a metadata change: %v, want ErrCommitConflict", err)
		}
		got, _ := tbl.Snapshot(ctx)
		if !slices.Equal(paths(got), []string{"new-a.parquet"}) || got.Metadata.Configuration["k"] != "v" || got.Metadata.ID != s.Metadata.ID {
			t.Errorf("after conflicts: %v %+v", paths(got), got.Metadata)
		}
	})
}

func TestCrashBeforeCommitLeavesOrphan(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/meters")
		before := appendFile(t, st, tbl, create(t, tbl), "kept.parquet")
		// The "killed" writer put its data file but never wrote the log entry.
		putFile(t, st, tbl, "orphan.parquet")
		s, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != before.Version || !slices.Equal(paths(s), paths(before)) {
			t.Fatalf("after the crash: version %d files %v, want %d %v", s.Version, paths(s), before.Version, paths(before))
		}
		// The next writer commits normally; the orphan stays out.
		after := appendFile(t, st, tbl, s, "next.parquet")
		if after.Version != 2 || !slices.Equal(paths(after), []string{"kept.parquet", "next.parquet"}) {
			t.Fatalf("next commit: version %d files %v", after.Version, paths(after))
		}
		reread, err := tbl.Snapshot(ctx)
		if err != nil || slices.Contains(paths(reread), "orphan.parquet") {
			t.Fatalf("reread %v %v", paths(reread), err)
		}
	})
}

func TestCheckpointMatchesReplay(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		opts := delta.DefaultOptions()
		opts.CheckpointInterval = 5
		tbl, err := delta.OpenWith(st, "silver/cp", opts)
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, tbl)
		for i := range 23 {
			c := delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, fmt.Sprintf("f%02d.parquet", i))},
				Txns: []delta.Txn{{AppID: "job", Version: int64(i)}}}
			if i%3 == 2 { // rewrite: drop the oldest file
				c.Removes = []delta.Remove{s.Files[0].Remove(time.Now().UnixMilli(), true)}
			}
			if s, err = tbl.Commit(ctx, s, c); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []string{"05", "10", "15", "20"} {
			if _, err := st.Stat(ctx, "silver/cp/_delta_log/000000000000000000"+v+".checkpoint.parquet"); err != nil {
				t.Errorf("checkpoint %s: %v", v, err)
			}
		}
		replay, _ := delta.OpenWith(st, "silver/cp", withIgnoreCheckpoints())
		for _, v := range []int64{4, 5, 12, 20, 23} {
			a, err := tbl.SnapshotAt(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			b, err := replay.SnapshotAt(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			assertSameSnapshot(t, a, b)
		}
		latest, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertSameSnapshot(t, latest, s)
		if v, _ := latest.TxnVersion("job"); v != 22 {
			t.Errorf("txn from checkpoint + log = %d, want 22", v)
		}

		// A damaged _last_checkpoint, then one pointing at a missing
		// checkpoint: readers recover by listing the log.
		for _, body := range []string{"{not json", `{"version":9999,"size":3}`, `{"version":15,"size":3}`} {
			if _, err := st.Put(ctx, "silver/cp/_delta_log/_last_checkpoint", strings.NewReader(body), int64(len(body))); err != nil {
				t.Fatal(err)
			}
			if body == `{"version":15,"size":3}` {
				if err := st.Delete(ctx, "silver/cp/_delta_log/00000000000000000015.checkpoint.parquet"); err != nil {
					t.Fatal(err)
				}
			}
			got, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatalf("with _last_checkpoint %s: %v", body, err)
			}
			assertSameSnapshot(t, got, s)
		}
		// A corrupt checkpoint file falls back to an older one or the log.
		bad := "PAR1 garbage"
		if _, err := st.Put(ctx, "silver/cp/_delta_log/00000000000000000020.checkpoint.parquet", strings.NewReader(bad), int64(len(bad))); err != nil {
			t.Fatal(err)
		}
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatalf("with a corrupt checkpoint: %v", err)
		}
		assertSameSnapshot(t, got, s)
	})
}

func assertSameSnapshot(t *testing.T, a, b *delta.Snapshot) {
	t.Helper()
	if a.Version != b.Version || !slices.Equal(paths(a), paths(b)) || a.Metadata.ID != b.Metadata.ID ||
		a.Metadata.SchemaString != b.Metadata.SchemaString || a.Protocol.MinWriterVersion != b.Protocol.MinWriterVersion ||
		!slices.Equal(a.Txns(), b.Txns()) || !a.Timestamp.Equal(b.Timestamp) {
		t.Errorf("snapshots differ:\n%d %v %+v %v %v\n%d %v %+v %v %v", a.Version, paths(a), a.Metadata, a.Txns(), a.Timestamp,
			b.Version, paths(b), b.Metadata, b.Txns(), b.Timestamp)
		return
	}
	for i := range a.Files {
		fa, fb := a.Files[i], b.Files[i]
		if fa.Size != fb.Size || fa.ModificationTime != fb.ModificationTime || fa.Stats != fb.Stats {
			t.Errorf("file %s differs: %+v vs %+v", fa.Path, fa, fb)
		}
	}
}

func TestRefusesNewerWriterProtocol(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	log := `{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["checkConstraints"]}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}
`
	if _, err := st.Put(ctx, "t/_delta_log/00000000000000000000.json", strings.NewReader(log), int64(len(log))); err != nil {
		t.Fatal(err)
	}
	tbl := delta.Open(st, "t")
	s, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatalf("reading a writer-v7 table: %v", err)
	}
	_, err = tbl.Commit(ctx, s, delta.Commit{IsBlindAppend: true})
	if !errors.Is(err, delta.ErrUnsupportedProtocol) || !strings.Contains(err.Error(), "writer version 7") {
		t.Fatalf("commit to a writer-v7 table: %v, want ErrUnsupportedProtocol naming version 7", err)
	}
}

// TestTxnRecheckedOnNewerBase is the bronze race: a writer decides from
// one snapshot (the object is new), another writer records the object,
// and the first commits on the newer snapshot. The txn it carries is
// already in that snapshot: the commit must be refused, not applied twice.
func TestTxnRecheckedOnNewerBase(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/meters")
		read := create(t, tbl)
		tx := []delta.Txn{{AppID: "raw/meters/abc", Version: 1}}
		other, err := tbl.Commit(ctx, read, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "a.parquet")}, Txns: tx, IsBlindAppend: true})
		if err != nil {
			t.Fatal(err)
		}
		newer, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, blind := range []bool{true, false} {
			_, err = tbl.Commit(ctx, newer, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "b.parquet")}, Txns: tx, Read: read, IsBlindAppend: blind})
			if !errors.Is(err, delta.ErrTxnApplied) || !errors.Is(err, delta.ErrCommitConflict) {
				t.Fatalf("blind %v: commit on a base that has the txn: %v, want ErrTxnApplied", blind, err)
			}
			for _, want := range []string{"bronze/meters", `"raw/meters/abc"`, "version 1", "none"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		}
		// A writer that decided with no table reads nothing.
		_, err = tbl.Commit(ctx, newer, delta.Commit{Txns: tx, Read: delta.EmptySnapshot(), IsBlindAppend: true})
		if !errors.Is(err, delta.ErrTxnApplied) {
			t.Fatalf("decided from no table: %v, want ErrTxnApplied", err)
		}
		// A stale base: the winner is replayed while retrying a blind append.
		_, err = tbl.Commit(ctx, read, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "c.parquet")}, Txns: tx, IsBlindAppend: true})
		if !errors.Is(err, delta.ErrTxnApplied) {
			t.Fatalf("stale base: %v, want ErrTxnApplied", err)
		}
		s, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != other.Version || len(s.Files) != 1 {
			t.Errorf("refused commits changed the table: v%d %v", s.Version, paths(s))
		}
	})
}

// TestTxnSameOrLowerVersionAsRead: a gold model records every input's
// version, changed or not, and a recreated input goes back to a lower
// version. Neither is a conflict when the writer read what is there; a
// version recorded by another writer since the read is.
func TestTxnSameOrLowerVersionAsRead(t *testing.T) {
	ctx := t.Context()
	st := testenv.LocalStore(t)
	tbl := delta.Open(st, "gold/model")
	s := create(t, tbl)
	s, err := tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "in/a", Version: 5}, {AppID: "in/b", Version: 9}}})
	if err != nil {
		t.Fatal(err)
	}
	read := s
	s, err = tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "in/a", Version: 5}, {AppID: "in/b", Version: 2}}, Read: read})
	if err != nil {
		t.Fatalf("same and lower version than read: %v", err)
	}
	// A concurrent writer moved in/a to 6 after our read of 5.
	if s, err = tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "in/a", Version: 6}}}); err != nil {
		t.Fatal(err)
	}
	_, err = tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "in/a", Version: 7}}, Read: read})
	if !errors.Is(err, delta.ErrTxnApplied) {
		t.Fatalf("moved since read: %v, want ErrTxnApplied", err)
	}
	if _, err := tbl.Commit(ctx, s, delta.Commit{Txns: []delta.Txn{{AppID: "x", Version: 1}, {AppID: "x", Version: 2}}}); err == nil {
		t.Fatal("two txns for one appId accepted")
	}
}

// TestFence: a lease holder's commits carry its generation; once a newer
// generation committed, the older holder's commits are refused.
func TestFence(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "silver/s")
		base := create(t, tbl)
		old := delta.WithFence(ctx, "medallion-lease:silver.s", 3)
		cur := delta.WithFence(ctx, "medallion-lease:silver.s", 4)
		s, err := tbl.Commit(old, base, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "1.parquet")}, IsBlindAppend: true})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := s.TxnVersion("medallion-lease:silver.s"); !ok || v != 3 {
			t.Fatalf("fence not recorded: %d %v", v, ok)
		}
		s, err = tbl.Commit(cur, s, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "2.parquet")}, IsBlindAppend: true})
		if err != nil {
			t.Fatal(err)
		}
		// The stalled holder wakes up: on the current base, and on a stale
		// one (the newer commit is a winner it would be reordered after).
		for name, b := range map[string]*delta.Snapshot{"current": s, "stale": base} {
			_, err = tbl.Commit(old, b, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "3.parquet")}, IsBlindAppend: true})
			if !errors.Is(err, delta.ErrFenced) || !strings.Contains(err.Error(), "medallion-lease:silver.s") {
				t.Fatalf("%s base: stale holder's commit: %v, want ErrFenced", name, err)
			}
		}
		if _, err := tbl.Commit(cur, s, delta.Commit{IsBlindAppend: true}); err != nil {
			t.Fatalf("current holder again: %v", err)
		}
		got, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(paths(got), "3.parquet") {
			t.Error("the fenced commit landed")
		}
	})
}

// TestFenceOnCreate: a newer lease holder that only created the table (it
// failed before its first data commit) still fences the stalled holder
// that took over from: version 0 records the creator's fence, so the
// stale holder, which saw no table, cannot commit on top of it.
func TestFenceOnCreate(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "bronze/m")
		old := delta.WithFence(ctx, "medallion-lease:bronze.m", 1)
		cur := delta.WithFence(ctx, "medallion-lease:bronze.m", 2)
		s, err := tbl.Create(cur, delta.Metadata{Name: "m", SchemaString: testSchema}, delta.CommitInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := s.TxnVersion("medallion-lease:bronze.m"); !ok || v != 2 {
			t.Fatalf("fence not recorded by create: %d %v", v, ok)
		}
		s, err = tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tbl.Commit(old, s, delta.Commit{Adds: []delta.Add{putFile(t, st, tbl, "1.parquet")}, IsBlindAppend: true, Read: delta.EmptySnapshot()})
		if !errors.Is(err, delta.ErrFenced) {
			t.Fatalf("stale holder's commit on a table a newer holder created: %v, want ErrFenced", err)
		}
		if _, err := tbl.Commit(cur, s, delta.Commit{IsBlindAppend: true}); err != nil {
			t.Fatalf("the creating holder commits: %v", err)
		}
	})
}

// laggingList is a store whose listings leave out one key, as a readdir
// running while another writer links that file may.
type laggingList struct {
	lake.Store
	hide string
}

func (s laggingList) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	objs, err := s.Store.List(ctx, prefix, startAfter)
	return slices.DeleteFunc(objs, func(o lake.ObjectInfo) bool { return o.Key == s.hide }), err
}

// TestListingMissesACommit: a commit left out of one listing is not a gap in
// the log, neither for a reader nor for a blind append catching up after
// losing a version.
func TestListingMissesACommit(t *testing.T) {
	st := testenv.LocalStore(t)
	tbl := delta.Open(st, "bronze/events")
	base := create(t, tbl)
	stale := base
	for i := range 3 {
		base = appendFile(t, st, tbl, base, fmt.Sprintf("a%d.parquet", i))
	}
	lagging := delta.Open(laggingList{Store: st, hide: "bronze/events/_delta_log/00000000000000000002.json"}, "bronze/events")

	s, err := lagging.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if s.Version != 3 || len(s.Files) != 3 {
		t.Fatalf("snapshot: version %d with %d files, want 3 with 3", s.Version, len(s.Files))
	}

	add := putFile(t, st, tbl, "b.parquet")
	got, err := lagging.Commit(t.Context(), stale, delta.Commit{Adds: []delta.Add{add}, IsBlindAppend: true})
	if err != nil {
		t.Fatalf("blind append after a lagging listing: %v", err)
	}
	if got.Version != 4 || len(got.Files) != 4 {
		t.Fatalf("blind append: version %d with %d files, want 4 with 4", got.Version, len(got.Files))
	}
}
