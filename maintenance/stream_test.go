package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/maintenance"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestCompactNewestBounded: one small file per commit in one partition, as
// a stream writes, with CompactNewest after each: the partition never
// holds more than MaxFiles plus a few compacted files, no row is lost or
// doubled, each compaction is dataChange=false, and every version, before
// and after each compaction, still reads its own content.
func TestCompactNewestBounded(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, testenv.LocalStore(t))
	opts := maintenance.StreamCompactOptions{MaxFiles: 4}
	content := map[int64]string{}
	compactions, id := 0, 0
	for range 60 {
		f.appendFile(ptr("2026-01-01"), id, 3)
		id += 3
		content[f.snap.Version] = f.mustContent(-1)
		res, err := maintenance.CompactNewest(ctx, f.env, f.tbl, opts)
		if err != nil {
			t.Fatal(err)
		}
		if f.snap, err = f.tbl.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		if res.Version >= 0 {
			compactions++
			if res.FilesRemoved <= opts.MaxFiles || res.FilesAdded != 1 {
				t.Fatalf("compaction %d: %+v, want more than %d files into 1", compactions, res, opts.MaxFiles)
			}
			ch, err := f.tbl.Changes(ctx, res.Version-1, res.Version)
			if err != nil || len(ch.Added) != 0 || !ch.Rewritten {
				t.Fatalf("changes of compaction version %d: %+v %v, want a rewrite incremental readers skip", res.Version, ch, err)
			}
			content[res.Version] = f.mustContent(-1)
			if content[res.Version] != content[res.Version-1] {
				t.Fatalf("compaction version %d changed the rows", res.Version)
			}
		}
		if n := len(f.snap.Files); n > opts.MaxFiles+6 {
			t.Fatalf("version %d: %d files in the partition, want at most %d", f.snap.Version, n, opts.MaxFiles+6)
		}
	}
	if compactions < 5 {
		t.Fatalf("%d compactions over 60 appends with MaxFiles 4", compactions)
	}
	if n, _ := f.snap.NumRecords(); n != int64(id) {
		t.Fatalf("%d rows after the compactions, want %d", n, id)
	}
	got := f.mustContent(-1)
	for i := range id {
		if !strings.Contains(got, fmt.Sprintf("\n%d,n%d,", i, i)) && !strings.HasPrefix(got, fmt.Sprintf("%d,n%d,", i, i)) {
			t.Fatalf("row %d missing", i)
		}
	}
	for v, want := range content {
		if got := f.mustContent(v); got != want {
			t.Errorf("time travel to version %d after the compactions differs", v)
		}
	}
}

// streamPipeline is a pipeline whose every table gets files from a stream
// of small objects: bronze, its quarantine (a negative reading now and
// then), silver in update mode (a file per micro-batch), silver._late (an
// old reading now and then) and a gold model.
const streamPipeline = `
bronze:
  discovery_grace: 1ms
maintenance:
  stream_compact_files: 3
sources:
  meters:
    format: ndjson
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05"}
      meter_id: {type: string, required: true}
      v: {type: double, min: 0}
silver:
  usage_1m:
    from: meters
    event_time: ts
    window: {size: 1m}
    watermark: 0s
    output: update
    group_by: [meter_id]
    aggregates: {n: count(*), avg_v: avg(v)}
gold:
  usage_ma:
    from: usage_1m
    partition_by: [meter_id]
    order_by: window_start
    moving_average: {column: avg_v, rows: 3}
  top:
    sql: SELECT meter_id, sum(n) AS n FROM silver.usage_1m GROUP BY meter_id
`

// TestStreamCompactsBetweenBatches: stream mode, driven by a simulated
// clock (a raw object of a few rows landed per 1 s trigger), compacts the
// tables its micro-batches write (bronze, the quarantine and silver._late
// here) once more than stream_compact_files small files piled up in a
// partition, between micro-batches; no table piles up more; no row is
// lost; the version before each compaction reads the same rows as the
// compaction; and after a compaction, a run of the whole pipeline finds
// no work for silver and gold.
func TestStreamCompactsBetweenBatches(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store := testenv.LocalStore(t)
	p, err := config.Parse("medallion.yaml", []byte("lake: file://"+t.TempDir()+streamPipeline), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "512MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	log := slog.New(slog.DiscardHandler)
	cache := &lake.Cache{Dir: t.TempDir()}
	runner := &jobs.Runner{Store: store, Pipeline: p, Engine: eng, Cache: cache, Log: log, Owner: "test"}
	plan, err := jobs.Plan(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The simulated clock runs behind the wall clock, as landing stamps must.
	clock := jobs.NewStepClock(time.Now().Add(-2 * time.Hour).Truncate(time.Hour))
	var landed, good atomic.Int64
	clock.OnStep = func(now time.Time) {
		if ctx.Err() != nil {
			return // stopped: the stream's loop may still ask for a trigger
		}
		i := landed.Add(1)
		ts := now.UTC().Format("2006-01-02 15:04:05")
		body := fmt.Sprintf(`{"ts":%q,"meter_id":"m1","v":%d}`+"\n"+`{"ts":%q,"meter_id":"m2","v":%d}`+"\n", ts, i, ts, i+1)
		good.Add(2)
		if i%4 == 0 {
			body += fmt.Sprintf(`{"ts":%q,"meter_id":"m1","v":-1}`+"\n", ts)
		}
		if i%3 == 0 && i > 10 {
			body += fmt.Sprintf(`{"ts":%q,"meter_id":"m3","v":1}`+"\n", now.Add(-30*time.Minute).UTC().Format("2006-01-02 15:04:05"))
			good.Add(1)
		}
		if _, _, err := raw.Land(context.Background(), store, "meters", "x.ndjson", "ndjson", strings.NewReader(body), now); err != nil {
			t.Error(err)
		}
	}
	compacted := map[string]int{}
	var batches, lastCompacted int
	st := &jobs.Stream{
		Runner: runner, Plan: plan, Trigger: time.Second, Owner: "test", Lease: jobs.DefaultLeaseOptions(), Clock: clock, Log: log,
		Compact: &maintenance.StreamCompactor{
			Env:     layers.Env{Store: store, DB: eng.DB(), Cache: cache, Log: log},
			Options: maintenance.StreamCompactOptions{TargetSize: p.Maintenance.TargetFileSize, MaxFiles: p.Maintenance.StreamCompactFiles},
		},
		OnBatch: func(r jobs.BatchReport) {
			if r.Err != nil {
				t.Errorf("micro-batch %d: %v", batches, r.Err)
			}
			batches++
			lastCompacted = r.Compacted
			if batches >= 60 && r.Compacted > 0 {
				cancel()
			}
			if batches > 200 {
				t.Error("no compaction after 200 micro-batches")
				cancel()
			}
		},
	}
	if err := st.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() || lastCompacted == 0 {
		t.Fatalf("stopped after %d micro-batches, the last compacting %d files", batches, lastCompacted)
	}

	for _, ref := range layers.Tables(p) {
		tbl := delta.Open(store, ref.Dir())
		snap, err := tbl.Snapshot(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		perPart := map[string]int{}
		for _, a := range snap.Files {
			perPart[fmt.Sprint(a.PartitionValues)]++
		}
		for part, n := range perPart {
			if n > 3+6 && ref.Layer != layers.Gold {
				t.Errorf("%s partition %s: %d files after %d micro-batches, want at most 9", ref, part, n, batches)
			}
		}
		// Time travel: the version before each compaction reads the rows
		// of the compaction.
		for v := int64(1); v <= snap.Version; v++ {
			ch, err := tbl.Changes(t.Context(), v-1, v)
			if err != nil || !ch.Rewritten || len(ch.Added) > 0 {
				continue
			}
			compacted[ref.String()]++
			if a, b := tableRows(t, eng, cache, tbl, v-1), tableRows(t, eng, cache, tbl, v); a != b {
				t.Errorf("%s: version %d (before a compaction) reads other rows than version %d", ref, v-1, v)
			}
		}
	}
	// silver.usage_1m (output: update) replaces the files of the windows it
	// rewrites, so it may never pile up enough to compact.
	for _, tbl := range []string{"bronze.meters", "bronze._quarantine", "silver._late"} {
		if compacted[tbl] == 0 {
			t.Errorf("%s was never compacted in %d micro-batches (%v)", tbl, batches, compacted)
		}
	}
	snap, err := delta.Open(store, "bronze/meters").Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rows, _ := snap.NumRecords(); rows != good.Load() {
		t.Errorf("bronze.meters holds %d rows, %d good ones landed", rows, good.Load())
	}
	// The last micro-batch ended with a compaction: nothing is new for
	// silver and gold.
	results, err := runner.Run(t.Context(), plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Job.Table.Layer != layers.Bronze && (r.RowsIn != 0 || r.RowsOut != 0) {
			t.Errorf("%s did work after a compaction: %d rows in, %d out (%s)", r.Job.Table, r.RowsIn, r.RowsOut, r.Summary)
		}
	}
}

// tableRows is every row of tbl at version v, sorted, as text.
func tableRows(t *testing.T, eng *warehouse.Engine, cache *lake.Cache, tbl *delta.Table, v int64) string {
	t.Helper()
	snap, err := tbl.SnapshotAt(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) == 0 {
		return ""
	}
	var paths []string
	for _, a := range snap.Files {
		p, err := cache.Path(t.Context(), tbl.Store(), tbl.Key(a.Path), "")
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, warehouse.QuoteString(p))
	}
	rows, err := eng.DB().QueryContext(t.Context(), "SELECT * FROM read_parquet(["+strings.Join(paths, ", ")+"], union_by_name = true, hive_partitioning = false) ORDER BY ALL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestCompactNewestBesideOptimize: stream compaction after each append
// while `medallion optimize` (no table lease) runs over and over on the
// same table: a compaction that loses the race re-reads and retries, or
// gives up without committing when the other removed its files (the
// stream compacts again after its next batch); no row is lost or doubled.
func TestCompactNewestBesideOptimize(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
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
			if _, err := maintenance.Optimize(context.Background(), f.env, f.tbl, maintenance.OptimizeOptions{Force: true}); err != nil && !errors.Is(err, delta.ErrCommitConflict) {
				errc <- err
				return
			}
		}
	}()
	id := 15*5 + 105
	gaveUp := 0
	for i := range 30 {
		f.appendFile(ptr("2026-01-0"+fmt.Sprint(1+i%2)), id, 3)
		id += 3
		_, err := maintenance.CompactNewest(t.Context(), f.env, f.tbl, maintenance.StreamCompactOptions{MaxFiles: 2})
		switch {
		case errors.Is(err, delta.ErrCommitConflict):
			gaveUp++
		case err != nil:
			close(done)
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatalf("optimize beside stream compaction: %v", err)
	}
	t.Logf("%d stream compactions gave up to a concurrent optimize", gaveUp)
	got := f.mustContent(-1)
	if n := strings.Count(got, "\n") - strings.Count(got, "2026-01-0"); n != id {
		t.Fatalf("%d rows, want %d", n, id)
	}
	for i := range id {
		if !strings.Contains(got, fmt.Sprintf("\n%d,n%d,", i, i)) && !strings.HasPrefix(got, fmt.Sprintf("%d,n%d,", i, i)) {
			t.Fatalf("row %d missing", i)
		}
	}
}
