package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/maintenance"
	"github.com/medallion-dev/medallion/warehouse"
)

const testSchema = `{"type":"struct","fields":[` +
	`{"name":"id","type":"long","nullable":false,"metadata":{}},` +
	`{"name":"name","type":"string","nullable":true,"metadata":{}},` +
	`{"name":"day","type":"string","nullable":true,"metadata":{}}]}`

// fixture is a partitioned table of small files, one commit each, in a
// store, with a DuckDB engine to write and read them.
type fixture struct {
	t     *testing.T
	store lake.Store
	tbl   *delta.Table
	eng   *warehouse.Engine
	env   layers.Env
	snap  *delta.Snapshot
	n     int
}

func newFixture(t *testing.T, st lake.Store) *fixture {
	eng, err := warehouse.Open(t.Context(), warehouse.Options{MemoryLimit: "512MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &fixture{t: t, store: st, tbl: delta.Open(st, "bronze/meters"), eng: eng}
	f.env = layers.Env{Store: st, DB: eng.DB(), ScratchDir: t.TempDir(), Cache: &lake.Cache{Dir: t.TempDir()}}
	if f.snap, err = f.tbl.Create(t.Context(), delta.Metadata{Name: "meters", SchemaString: testSchema, PartitionColumns: []string{"day"}}, delta.CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// appendFile commits one small file of rows ids [from, from+rows) in the
// partition day (nil: NULL), with the statistics bronze writes.
func (f *fixture) appendFile(day *string, from, rows int) {
	t := f.t
	f.n++
	local := filepath.Join(t.TempDir(), "f.parquet")
	q := fmt.Sprintf("COPY (SELECT range::BIGINT AS id, 'n' || range AS name FROM range(%d, %d)) TO %s (FORMAT parquet)",
		from, from+rows, warehouse.QuoteString(local))
	if _, err := f.eng.DB().ExecContext(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	dir := "day=__HIVE_DEFAULT_PARTITION__"
	if day != nil {
		dir = "day=" + *day
	}
	rel := fmt.Sprintf("%s/part-%05d.parquet", dir, f.n)
	up, err := lake.PutFile(t.Context(), f.store, f.tbl.Key(rel), local)
	if err != nil {
		t.Fatal(err)
	}
	st := fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d,"name":"n%d"},"maxValues":{"id":%d,"name":"n%d"},"nullCount":{"id":0,"name":0}}`,
		rows, from, from, from+rows-1, from+rows-1)
	add := delta.Add{Path: rel, PartitionValues: delta.PartitionValues{"day": day}, Size: up.Size,
		ModificationTime: time.Now().UnixMilli(), DataChange: true, Stats: st, Tags: delta.WithSHA256(nil, up.SHA256)}
	if f.snap, err = f.tbl.Commit(t.Context(), f.snap, delta.Commit{Adds: []delta.Add{add}, IsBlindAppend: true}); err != nil {
		t.Fatal(err)
	}
}

// content is every row of version v (-1: latest), sorted, as text.
func (f *fixture) content(v int64) (string, error) {
	ctx := f.t.Context()
	s, err := f.tbl.Snapshot(ctx)
	if v >= 0 {
		s, err = f.tbl.SnapshotAt(ctx, v)
	}
	if err != nil {
		return "", err
	}
	var parts []string
	for _, a := range s.Files {
		p, err := f.env.Cache.Path(ctx, f.store, f.tbl.Key(a.Path), "")
		if err != nil {
			return "", err
		}
		day := "NULL"
		if d := a.PartitionValues["day"]; d != nil {
			day = warehouse.QuoteString(*d)
		}
		parts = append(parts, fmt.Sprintf("SELECT id, name, %s AS day FROM read_parquet(%s, hive_partitioning = false)", day, warehouse.QuoteString(p)))
	}
	if len(parts) == 0 {
		return "", nil
	}
	rows, err := f.eng.DB().QueryContext(ctx, "SELECT id, name, day FROM ("+strings.Join(parts, " UNION ALL ")+") ORDER BY id")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int64
		var name string
		var day *string
		if err := rows.Scan(&id, &name, &day); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d,%s,%v\n", id, name, day != nil && *day != "")
		if day != nil {
			b.WriteString(*day + "\n")
		}
	}
	return b.String(), rows.Err()
}

func (f *fixture) mustContent(v int64) string {
	f.t.Helper()
	c, err := f.content(v)
	if err != nil {
		f.t.Fatalf("content of version %d: %v", v, err)
	}
	return c
}

func ptr(s string) *string { return &s }

// build commits 12 small files in two partitions and 3 in a NULL one.
func (f *fixture) build() {
	id := 0
	for i := range 15 {
		var day *string
		switch {
		case i >= 12:
			day = nil
		case i%2 == 0:
			day = ptr("2026-01-01")
		default:
			day = ptr("2026-01-02")
		}
		f.appendFile(day, id, 5+i)
		id += 5 + i
	}
}

// TestOptimizeKeepsEveryRow: optimize rewrites the partitions with enough
// small files in one dataChange=false commit, every row stays, every
// earlier version still reads its own content, the new files carry
// checksums `medallion verify` accepts and merged statistics, and a
// second optimize has nothing to do.
func TestOptimizeKeepsEveryRow(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		f := newFixture(t, st)
		f.build()
		before := map[int64]string{}
		for v := int64(0); v <= f.snap.Version; v++ {
			before[v] = f.mustContent(v)
		}
		last := f.snap.Version
		res, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{MinFiles: 5})
		if err != nil {
			t.Fatal(err)
		}
		// Two partitions of 6 files compacted; the NULL one (3 files) not.
		if res.Version != last+1 || res.Partitions != 2 || res.FilesRemoved != 12 || res.FilesAdded != 2 {
			t.Fatalf("optimize: %+v", res)
		}
		if got := f.mustContent(-1); got != before[last] {
			t.Fatalf("content after optimize differs:\n%s\nwant\n%s", got, before[last])
		}
		for v, want := range before {
			if got := f.mustContent(v); got != want {
				t.Errorf("time travel to version %d after optimize differs", v)
			}
		}
		snap, err := f.tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Files) != 5 {
			t.Fatalf("files after optimize: %d, want 5", len(snap.Files))
		}
		n, ok := snap.NumRecords()
		if !ok || n != 15*5+105 {
			t.Fatalf("numRecords after optimize: %d %v", n, ok)
		}
		for _, a := range snap.Files {
			if a.DataChange && strings.Contains(a.Path, "c000") {
				t.Errorf("compacted file %s says dataChange=true", a.Path)
			}
			if a.Tags[delta.TagSHA256] == "" {
				t.Errorf("file %s has no checksum", a.Path)
			}
			if st, err := delta.ParseStats(a.Stats); err != nil || len(st.MinValues) != 2 {
				t.Errorf("file %s statistics %s: %v", a.Path, a.Stats, err)
			}
		}
		vr, err := f.tbl.Verify(ctx, snap, 2)
		if err != nil || len(vr.Mismatches) > 0 {
			t.Fatalf("verify after optimize: %+v %v", vr, err)
		}
		ch, err := f.tbl.Changes(ctx, last, snap.Version)
		if err != nil || len(ch.Added) != 0 || len(ch.Removed) != 0 || !ch.Rewritten {
			t.Fatalf("changes of the optimize: %+v %v", ch, err)
		}
		if adds, ok, err := f.tbl.AppendedSince(ctx, last, snap); err != nil || !ok || len(adds) != 0 {
			t.Fatalf("AppendedSince over the optimize: %v %v %v", adds, ok, err)
		}
		again, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{MinFiles: 5})
		if err != nil || again.Version != -1 {
			t.Fatalf("second optimize: %+v %v", again, err)
		}
		forced, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{Force: true})
		if err != nil || forced.FilesRemoved != 3 {
			t.Fatalf("forced optimize: %+v %v", forced, err)
		}
		if got := f.mustContent(-1); got != before[last] {
			t.Fatalf("content after the forced optimize differs")
		}
	})
}

// TestVacuumKeepsRetainedVersions: vacuum keeps every file a version
// readable within the retention needs, deletes the files compacted away
// once the compaction is older than the retention and old uncommitted
// files, leaves _-prefixed state alone, and a dry run deletes nothing.
func TestVacuumKeepsRetainedVersions(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		f := newFixture(t, st)
		f.build()
		put(t, st, f.tbl.Key("day=2026-01-01/orphan.parquet"))
		put(t, st, f.tbl.Key("_state/tail.parquet"))
		preOpt := f.snap.Version
		want := f.mustContent(-1)
		time.Sleep(1100 * time.Millisecond)
		t1 := time.Now()
		time.Sleep(1100 * time.Millisecond)
		if _, err := maintenance.Optimize(ctx, f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		t2 := time.Now()
		time.Sleep(1100 * time.Millisecond)

		if _, err := maintenance.Vacuum(ctx, f.tbl, maintenance.VacuumOptions{Retain: time.Hour}); !errors.Is(err, maintenance.ErrRetainTooShort) {
			t.Fatalf("vacuum with 1h retention: %v, want ErrRetainTooShort", err)
		}
		at := func(ts time.Time) maintenance.VacuumOptions {
			now := time.Now()
			return maintenance.VacuumOptions{Retain: now.Sub(ts), Force: true, Now: func() time.Time { return now }}
		}
		// Retention starting before the optimize: the pre-optimize version
		// stays readable, only the orphan goes.
		o := at(t1)
		o.Delete = true
		res, err := maintenance.Vacuum(ctx, f.tbl, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Oldest != preOpt || len(res.Files) != 1 || !strings.HasSuffix(res.Files[0].Key, "orphan.parquet") {
			t.Fatalf("vacuum at t1: %+v", res)
		}
		if got := f.mustContent(preOpt); got != want {
			t.Fatalf("version %d after vacuum differs", preOpt)
		}
		// Dry run past the optimize: lists the 15 compacted files, deletes none.
		dry, err := maintenance.Vacuum(ctx, f.tbl, at(t2))
		if err != nil || len(dry.Files) != 15 || dry.Deleted {
			t.Fatalf("dry run: %+v %v", dry, err)
		}
		if got := f.mustContent(preOpt); got != want {
			t.Fatalf("a dry run deleted files: version %d differs", preOpt)
		}
		o = at(t2)
		o.Delete = true
		if res, err = maintenance.Vacuum(ctx, f.tbl, o); err != nil || len(res.Files) != 15 || !res.Deleted {
			t.Fatalf("vacuum at t2: %+v %v", res, err)
		}
		latest, err := f.tbl.LatestVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for v := res.Oldest; v <= latest; v++ {
			if got := f.mustContent(v); got != want {
				t.Fatalf("version %d after vacuum differs", v)
			}
		}
		if _, err := st.Stat(ctx, f.tbl.Key("_state/tail.parquet")); err != nil {
			t.Fatalf("vacuum touched a state file: %v", err)
		}
		if _, err := f.content(preOpt); err == nil {
			t.Fatalf("version %d still readable after its files were vacuumed", preOpt)
		}
	})
}

func put(t *testing.T, st lake.Store, key string) {
	t.Helper()
	if _, err := st.Put(context.Background(), key, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
}

// TestOptimizeWhileAppending: optimize runs over and over while a writer
// appends (blind appends, as bronze commits): every optimize commits on
// top of the appends that won the race, and no row is lost or doubled.
func TestOptimizeWhileAppending(t *testing.T) {
	st := testenv.LocalStore(t)
	f := newFixture(t, st)
	f.build()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := maintenance.Optimize(context.Background(), f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil {
				errc <- err
				return
			}
		}
	}()
	id := 15*5 + 105
	for i := range 20 {
		f.appendFile(ptr("2026-01-0"+fmt.Sprint(1+i%2)), id, 3)
		id += 3
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatalf("optimize while appending: %v", err)
	}
	if _, err := maintenance.Optimize(t.Context(), f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	got := f.mustContent(-1)
	if n := strings.Count(got, "\n") - strings.Count(got, "2026-01-0"); n != id {
		t.Fatalf("%d rows after optimizing while appending, want %d", n, id)
	}
	for i := range id {
		if !strings.Contains(got, fmt.Sprintf("\n%d,n%d,", i, i)) && !strings.HasPrefix(got, fmt.Sprintf("%d,n%d,", i, i)) {
			t.Fatalf("row %d missing", i)
		}
	}
	snap, err := f.tbl.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := snap.NumRecords(); n != int64(id) || len(snap.Files) != 3 {
		t.Fatalf("after the last optimize: %d rows in %d files, want %d in 3", n, len(snap.Files), id)
	}
}
