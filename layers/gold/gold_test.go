package gold

import (
	"context"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// forEachStore runs fn against a local-directory lake and a MinIO bucket.
func forEachStore(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		fn(t, newFixture(t, testenv.LocalStore(t)))
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		st, _, _ := testenv.S3Store(t)
		fn(t, newFixture(t, st))
	})
}

// fixture is a lake with silver tables built by hand (DuckDB COPY + Delta
// commits, no silver job) and a pipeline whose gold section tests fill in.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store lake.Store
	eng   *warehouse.Engine
	pipe  *config.Pipeline
	dir   string
	// buckets is Deps.buckets of every run: maxBuckets unless a test
	// sets it (0: chosen from silver's size), so tests of small tables
	// still spread meters over many buckets.
	buckets int
	// sorted keeps every run's files sorted (Deps.Unsorted false); by
	// default a one-bucket table with unique keys is written unsorted,
	// as a pipeline without an order-dependent mirror does.
	sorted bool
}

func newFixture(t *testing.T, st lake.Store) *fixture {
	t.Helper()
	eng, err := warehouse.Open(t.Context(), warehouse.Options{MemoryLimit: "1GB", Threads: 2, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &fixture{t: t, ctx: t.Context(), store: st, eng: eng, dir: t.TempDir(),
		pipe: &config.Pipeline{Gold: map[string]*config.Gold{}}, buckets: maxBuckets}
}

func (f *fixture) deps() Deps {
	return Deps{Env: layers.Env{Store: f.store, DB: f.eng.DB(), ScratchDir: f.eng.TempDir()}, buckets: f.buckets, Unsorted: !f.sorted}
}

func (f *fixture) addGold(g *config.Gold) {
	f.pipe.Gold[g.Name] = g
	f.pipe.GoldOrder = append(f.pipe.GoldOrder, g.Name)
}

func (f *fixture) run(table string) Stats {
	f.t.Helper()
	st, err := Run(f.ctx, f.deps(), f.pipe.Gold[table])
	if err != nil {
		f.t.Fatalf("run gold.%s: %v", table, err)
	}
	return st
}

// silverSchema is the shape of the silver tables the tests build.
var silverSchema = (&delta.Schema{Fields: []delta.Field{
	{Name: "window_start", Type: delta.Primitive(delta.TypeTimestamp), Nullable: true},
	{Name: "window_end", Type: delta.Primitive(delta.TypeTimestamp), Nullable: true},
	{Name: "meter_id", Type: delta.Primitive(delta.TypeString), Nullable: true},
	{Name: "readings", Type: delta.Primitive(delta.TypeLong), Nullable: true},
	{Name: "avg_usage", Type: delta.Primitive(delta.TypeDouble), Nullable: true},
	{Name: "max_usage", Type: delta.Primitive(delta.TypeDouble), Nullable: true},
}}).String()

func (f *fixture) createSilver(name string) {
	f.t.Helper()
	_, err := delta.Open(f.store, "silver/"+name).Create(f.ctx, delta.Metadata{SchemaString: silverSchema}, delta.CommitInfo{})
	if err != nil {
		f.t.Fatal(err)
	}
}

// windows is a SELECT of n one-minute silver windows of meter from minute
// `from` on, with avg_usage = value (a SQL expression over the minute i).
func windows(meter string, from, n int, value string) string {
	return fmt.Sprintf(`SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes(i) AS window_start,
		TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes(i + 1) AS window_end,
		'%s' AS meter_id, CAST(i %% 7 + 1 AS BIGINT) AS readings,
		CAST(%s AS DOUBLE) AS avg_usage, CAST((%s) * 2 AS DOUBLE) AS max_usage
		FROM range(%d, %d) AS t(i)`, meter, value, value, from, from+n)
}

// commitSilver writes one file per SELECT into silver/<name> and commits
// them, removing the files at the paths in remove in the same commit.
func (f *fixture) commitSilver(name string, remove []string, selects ...string) []delta.Add {
	f.t.Helper()
	tbl := delta.Open(f.store, "silver/"+name)
	snap, err := tbl.Snapshot(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var adds []delta.Add
	for _, q := range selects {
		rel := "part-" + randid.Hex(8) + ".parquet"
		local := filepath.Join(f.dir, rel)
		if _, err := f.eng.DB().ExecContext(f.ctx, "COPY ("+q+") TO "+warehouse.QuoteString(local)+" (FORMAT parquet)"); err != nil {
			f.t.Fatalf("write silver file: %v\n%s", err, q)
		}
		fh, err := os.Open(local)
		if err != nil {
			f.t.Fatal(err)
		}
		fi, _ := fh.Stat()
		if _, err := f.store.Put(f.ctx, tbl.Key(rel), fh, fi.Size()); err != nil {
			f.t.Fatal(err)
		}
		fh.Close()
		adds = append(adds, delta.Add{Path: rel, Size: fi.Size(), DataChange: true, ModificationTime: time.Now().UnixMilli()})
	}
	var removes []delta.Remove
	for _, p := range remove {
		i := slices.IndexFunc(snap.Files, func(a delta.Add) bool { return a.Path == p })
		if i < 0 {
			f.t.Fatalf("silver file %s not in the table", p)
		}
		removes = append(removes, snap.Files[i].Remove(time.Now().UnixMilli(), true))
	}
	if _, err := tbl.Commit(f.ctx, snap, delta.Commit{Adds: adds, Removes: removes}); err != nil {
		f.t.Fatal(err)
	}
	return adds
}

// scan returns a read_parquet over the current files of a table (an empty
// relation when it has none), downloading them from S3 when needed.
func (f *fixture) scan(dir string) string {
	f.t.Helper()
	tbl := delta.Open(f.store, dir)
	snap, err := tbl.Snapshot(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(snap.Files) == 0 {
		f.t.Fatalf("table %s has no files", dir)
	}
	var paths []string
	for _, a := range snap.Files {
		key := tbl.Key(a.Path)
		if lp, ok := f.store.(lake.LocalPather); ok {
			paths = append(paths, warehouse.QuoteString(lp.LocalPath(key)))
			continue
		}
		local := filepath.Join(f.dir, "dl", filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			f.t.Fatal(err)
		}
		rc, _, err := f.store.Get(f.ctx, key)
		if err != nil {
			f.t.Fatal(err)
		}
		out, _ := os.Create(local)
		_, err = io.Copy(out, rc)
		rc.Close()
		out.Close()
		if err != nil {
			f.t.Fatal(err)
		}
		paths = append(paths, warehouse.QuoteString(local))
	}
	return "read_parquet([" + strings.Join(paths, ", ") + "])"
}

// query runs q with {gold.x} / {silver.x} replaced by scans of those
// tables and returns the rows rendered as text, one string per row.
func (f *fixture) query(q string) []string {
	f.t.Helper()
	for {
		i := strings.Index(q, "{")
		if i < 0 {
			break
		}
		j := strings.Index(q[i:], "}")
		ref, err := layers.ParseTableRef(q[i+1:i+j], "")
		if err != nil {
			f.t.Fatal(err)
		}
		q = q[:i] + f.scan(ref.Dir()) + q[i+j+1:]
	}
	rows, err := f.eng.DB().QueryContext(f.ctx, q)
	if err != nil {
		f.t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			f.t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case time.Time:
				parts[i] = v.UTC().Format("15:04")
			case nil:
				parts[i] = "NULL"
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) snapshot(dir string) *delta.Snapshot {
	f.t.Helper()
	s, err := delta.Open(f.store, dir).Snapshot(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func maTable(name, from string, ma config.MovingAverage, flags ...*config.Flag) *config.Gold {
	return &config.Gold{Name: name, From: from, PartitionBy: []string{"meter_id"}, MovingAverage: &ma, Flags: flags}
}

// bucketOf is the bucket a meter's rows land in.
func (f *fixture) bucketOf(meter string) int {
	f.t.Helper()
	s := &maSpec{part: []string{"meter_id"}, buckets: maxBuckets, partType: map[string]delta.DataType{"meter_id": delta.Primitive(delta.TypeString)}}
	var b int
	if err := f.eng.DB().QueryRowContext(f.ctx, "SELECT "+s.bucketExpr()+" FROM (SELECT ? AS meter_id)", meter).Scan(&b); err != nil {
		f.t.Fatal(err)
	}
	return b
}

// sameRows fails unless two queries return the same multiset of rows.
func (f *fixture) sameRows(a, b string) {
	f.t.Helper()
	n := f.query(fmt.Sprintf("SELECT count(*) FROM ((%s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL %s))", a, b, b, a))
	if n[0] != "0" {
		f.t.Fatalf("%s rows differ between\n%s\nand\n%s", n[0], a, b)
	}
}

const usage = "((i * 7919 + %d) %% 113) / 7.0"

func TestRowsMovingAverageEqualsDuckDBWindow(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("usage_1m")
		// Three commits: meters spread over files, one file with two meters.
		f.commitSilver("usage_1m", nil, windows("m1", 0, 120, fmt.Sprintf(usage, 1)), windows("m2", 0, 60, fmt.Sprintf(usage, 2)))
		f.commitSilver("usage_1m", nil, windows("m2", 60, 90, fmt.Sprintf(usage, 2))+" UNION ALL "+windows("m3", 0, 200, fmt.Sprintf(usage, 3)))
		f.commitSilver("usage_1m", nil, windows("m1", 120, 30, fmt.Sprintf(usage, 1)))
		f.addGold(maTable("usage_ma", "usage_1m", config.MovingAverage{Column: "avg_usage", Rows: 15}))

		st := f.run("usage_ma")
		if st.Mode != ModeFull || st.RowsWritten != 150+150+200 {
			t.Fatalf("stats %+v", st)
		}
		got := "SELECT meter_id, window_start, ma FROM {gold.usage_ma}"
		want := `SELECT meter_id, window_start, avg(avg_usage) OVER (PARTITION BY meter_id ORDER BY window_start
			ROWS BETWEEN 14 PRECEDING AND CURRENT ROW) AS ma FROM {silver.usage_1m}`
		bad := f.query(fmt.Sprintf(`SELECT count(*), count(g.ma) FILTER (abs(g.ma - w.ma) <= 1e-9 * abs(w.ma)) FROM (%s) g FULL JOIN (%s) w USING (meter_id, window_start)`, got, want))
		if bad[0] != "500 500" {
			t.Fatalf("rows, matching moving averages: %s, want 500 500", bad[0])
		}
		// Output columns, in order.
		cols := f.query("SELECT string_agg(column_name, ',') FROM (DESCRIBE SELECT * FROM {gold.usage_ma})")
		if cols[0] != "meter_id,window_start,window_end,readings,avg_usage,max_usage,ma" {
			t.Fatalf("columns %s", cols[0])
		}
	})
}

func TestRangeByHand(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.createSilver("s")
	// Minutes 0, 1, 2 and 4 (3 is missing); range 2m averages (t-2m, t].
	f.commitSilver("s", nil, `SELECT * FROM (`+windows("a", 0, 5, "i + 1")+`) WHERE minute(window_start) <> 3`,
		windows("b", 0, 2, "10 * (i + 1)"))
	f.addGold(maTable("r", "s", config.MovingAverage{Column: "avg_usage", Range: 2 * time.Minute, As: "avg_2m"}))
	f.run("r")
	got := f.query("SELECT meter_id, window_start, avg_usage, avg_2m FROM {gold.r} ORDER BY ALL")
	want := []string{
		"a 00:00 1 1",
		"a 00:01 2 1.5",
		"a 00:02 3 2.5", // minute 0 is exactly 2m before: excluded
		"a 00:04 5 5",   // minute 2 excluded, minute 3 missing
		"b 00:00 10 10",
		"b 00:01 20 15",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEMAAndFlagsByHand(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		// a: 4, 8, NULL, 0, 16; b: 2, 2. alpha 0.25 keeps every value exact in binary.
		f.commitSilver("s", nil,
			windows("a", 0, 5, "CASE i WHEN 0 THEN 4 WHEN 1 THEN 8 WHEN 2 THEN NULL WHEN 3 THEN 0 ELSE 16 END"),
			windows("b", 0, 2, "2"))
		f.addGold(maTable("e", "s", config.MovingAverage{Column: "avg_usage", EMAAlpha: 0.25},
			&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"},
			&config.Flag{Name: "low", When: "avg_usage < 1"}))
		f.run("e")
		got := f.query("SELECT meter_id, window_start, avg_usage, ma, spike, low FROM {gold.e} ORDER BY ALL")
		want := []string{
			"a 00:00 4 4 false false",
			"a 00:01 8 5 true false",       // 0.25*8 + 0.75*4
			"a 00:02 NULL 5 NULL NULL",     // NULL carries the average forward
			"a 00:03 0 3.75 false true",    // 0.75*5
			"a 00:04 16 6.8125 true false", // 0.25*16 + 0.75*3.75
			"b 00:00 2 2 false false",      // seeded per partition
			"b 00:01 2 2 false false",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestIncrementalRewritesOnlyChangedPartition(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		// m1, m2 and m4 hash to different buckets; m3 shares m2's bucket
		// (files are per bucket, so m3's rows are rewritten with m2's).
		buckets := map[int]string{}
		for _, m := range []string{"m1", "m2", "m4"} {
			b := f.bucketOf(m)
			if o, ok := buckets[b]; ok {
				t.Fatalf("meters %s and %s share bucket %d: pick other names", o, m, b)
			}
			buckets[b] = m
		}
		if f.bucketOf("m3") != f.bucketOf("m2") {
			t.Fatal("m3 and m2 should share a bucket: pick other names")
		}
		f.createSilver("s")
		for k, m := range []string{"m1", "m2", "m3", "m4"} {
			f.commitSilver("s", nil, windows(m, 0, 50, fmt.Sprintf(usage, k)))
		}
		f.addGold(maTable("inc", "s", config.MovingAverage{Column: "avg_usage", Rows: 4},
			&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"}))
		st := f.run("inc")
		if st.Mode != ModeFull || st.FilesAdded != 3 {
			t.Fatalf("first run %+v", st)
		}
		before := f.snapshot("gold/inc")

		// New windows for m2 only: appended as one new file of m2's bucket;
		// every existing file stays.
		f.commitSilver("s", nil, windows("m2", 50, 10, fmt.Sprintf(usage, 1)))
		st = f.run("inc")
		if st.Mode != ModeAppend || st.Buckets != 1 || st.FilesAdded != 1 || st.FilesRemoved != 0 || st.RowsWritten != 10 {
			t.Fatalf("incremental run %+v", st)
		}
		after := f.snapshot("gold/inc")
		changed := f.bucketOf("m2")
		for _, a := range before.Files {
			if !slices.ContainsFunc(after.Files, func(x delta.Add) bool { return x.Path == a.Path }) {
				t.Errorf("file %s was removed by an append", a.Path)
			}
		}
		if len(after.Files) != 4 {
			t.Fatalf("files after: %d", len(after.Files))
		}

		// A late window of m3 (between processed windows) cannot be
		// appended: the bucket of m2 and m3 is recomputed and rewritten as
		// one file, the others are untouched.
		f.commitSilver("s", nil, `SELECT window_start + INTERVAL 30 SECOND AS window_start, window_end + INTERVAL 30 SECOND AS window_end,
			meter_id, readings, avg_usage, max_usage FROM (`+windows("m3", 20, 1, "1000")+`)`)
		st = f.run("inc")
		if st.Mode != ModeIncremental || st.Buckets != 1 || st.FilesAdded != 1 || st.FilesRemoved != 2 || st.RowsWritten != 60+51 {
			t.Fatalf("run with a late window %+v", st)
		}
		late := f.snapshot("gold/inc")
		for _, a := range after.Files {
			b, _ := fileBucket(a.Path)
			kept := slices.ContainsFunc(late.Files, func(x delta.Add) bool { return x.Path == a.Path })
			if kept == (b == changed) {
				t.Errorf("file %s of bucket %d (changed bucket %d): kept=%v", a.Path, b, changed, kept)
			}
		}
		if len(late.Files) != 3 {
			t.Fatalf("files after the late window: %d", len(late.Files))
		}

		// Same rows as a full build of the same definition.
		f.addGold(maTable("full", "s", config.MovingAverage{Column: "avg_usage", Rows: 4},
			&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"}))
		f.run("full")
		f.sameRows("SELECT * FROM {gold.inc}", "SELECT * FROM {gold.full}")
		if n := f.query("SELECT count(*) FROM {gold.inc}"); n[0] != "211" {
			t.Fatalf("rows %s", n[0])
		}
	})
}

func TestSilverRewriteIsReflectedNotDuplicated(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		f.commitSilver("s", nil, windows("a", 0, 10, "i"))
		open := f.commitSilver("s", nil, windows("a", 10, 1, "100"), windows("b", 0, 3, "1"))
		f.addGold(maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 2}))
		f.run("g")
		if got := f.query("SELECT ma FROM {gold.g} WHERE meter_id = 'a' AND minute(window_start) = 10"); got[0] != "54.5" {
			t.Fatalf("ma before the rewrite: %v", got)
		}

		// Update mode: window 10 of meter a is rewritten with a new value.
		f.commitSilver("s", []string{open[0].Path}, windows("a", 10, 1, "20"))
		st := f.run("g")
		if st.Mode != ModeIncremental {
			t.Fatalf("stats %+v", st)
		}
		got := f.query("SELECT count(*), max(avg_usage), max(ma) FILTER (minute(window_start) = 10) FROM {gold.g} WHERE meter_id = 'a'")
		if got[0] != "11 20 14.5" {
			t.Fatalf("rows, max usage, ma of the rewritten window: %s, want 11 20 14.5", got[0])
		}
		if n := f.query("SELECT count(*) FROM {gold.g}"); n[0] != "14" {
			t.Fatalf("rows %s, want 14", n[0])
		}
	})
}

func TestNoNewInputCommitsNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		f.commitSilver("s", nil, windows("a", 0, 10, "i"))
		f.addGold(maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 3}))
		f.addGold(&config.Gold{Name: "top", SQL: "SELECT meter_id, avg(avg_usage) AS mean FROM silver.s GROUP BY meter_id;"})
		for _, name := range []string{"g", "top"} {
			first := f.run(name)
			second := f.run(name)
			if second.Mode != ModeSkipped || second.Version != first.Version {
				t.Fatalf("%s: second run %+v after %+v", name, second, first)
			}
			if v := f.snapshot("gold/" + name).Version; v != first.Version {
				t.Fatalf("%s: version %d after the second run, want %d", name, v, first.Version)
			}
		}
		// A silver commit that changes no data (here: only a txn) commits nothing either.
		tbl := delta.Open(f.store, "silver/s")
		if _, err := tbl.Commit(f.ctx, f.snapshot("silver/s"), delta.Commit{Txns: []delta.Txn{{AppID: "x", Version: 1}}}); err != nil {
			t.Fatal(err)
		}
		v := f.snapshot("gold/g").Version
		if st := f.run("g"); st.Mode != ModeSkipped || f.snapshot("gold/g").Version != v {
			t.Fatalf("after a silver commit without data: %+v", st)
		}
	})
}

func TestSQLModelRebuiltOnlyWhenInputsChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		f.commitSilver("s", nil, windows("a", 0, 4, "i"), windows("b", 0, 2, "10"))
		f.createSilver("other")
		f.addGold(&config.Gold{Name: "top", SQL: `
			SELECT meter_id, avg(avg_usage) AS mean_usage, sum(readings) AS readings, count(*) AS n
			FROM silver.s GROUP BY meter_id`, DependsOn: []string{"silver.s"}})
		st := f.run("top")
		if st.Mode != ModeFull || st.RowsWritten != 2 {
			t.Fatalf("first build %+v", st)
		}
		got := f.query("SELECT * FROM {gold.top} ORDER BY meter_id")
		if want := []string{"a 1.5 10 4", "b 10 3 2"}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
		// sum(BIGINT) is HUGEINT in DuckDB: stored as long.
		if ty := f.query("SELECT column_type FROM (DESCRIBE SELECT readings FROM {gold.top})"); ty[0] != "BIGINT" {
			t.Fatalf("readings type %s", ty[0])
		}
		v := st.Version
		// A commit to a table the model does not read changes nothing.
		f.commitSilver("other", nil, windows("z", 0, 1, "1"))
		if st := f.run("top"); st.Mode != ModeSkipped || st.Version != v {
			t.Fatalf("after an unrelated commit %+v", st)
		}
		// A commit to its input rebuilds it.
		f.commitSilver("s", nil, windows("c", 0, 1, "7"))
		st = f.run("top")
		if st.Mode != ModeFull || st.Version != v+1 || st.FilesRemoved != 1 {
			t.Fatalf("after an input commit %+v", st)
		}
		got = f.query("SELECT meter_id, n FROM {gold.top} ORDER BY meter_id")
		if want := []string{"a 4", "b 2", "c 1"}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
		if tx, _ := f.snapshot("gold/top").TxnVersion("gold/top/silver.s"); tx != f.snapshot("silver/s").Version {
			t.Fatalf("txn version %d", tx)
		}
		// The model reads gold tables too (through the inferred inputs).
		f.addGold(maTable("ma", "s", config.MovingAverage{Column: "avg_usage", Rows: 2}))
		f.run("ma")
		f.addGold(&config.Gold{Name: "ma_max", SQL: "SELECT max(ma) AS top FROM gold.ma"})
		f.run("ma_max")
		if got := f.query("SELECT * FROM {gold.ma_max}"); got[0] != "10" {
			t.Fatalf("ma_max %v", got)
		}
	})
}

func TestSQLModelWithAttachHook(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.createSilver("s")
	f.commitSilver("s", nil, windows("a", 0, 3, "i"))
	f.addGold(&config.Gold{Name: "m", SQL: "SELECT count(*) AS n FROM silver.s", DependsOn: []string{"silver.s"}})
	deps := f.deps()
	var attached []layers.TableRef
	deps.Attach = func(ctx context.Context, refs []layers.TableRef) error {
		attached = refs
		// What a catalog does: views in the default database.
		scan := f.scan("silver/s")
		_, err := f.eng.DB().ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS silver; CREATE OR REPLACE VIEW silver.s AS SELECT * FROM "+scan)
		return err
	}
	if _, err := Run(f.ctx, deps, f.pipe.Gold["m"]); err != nil {
		t.Fatal(err)
	}
	if len(attached) != 1 || attached[0].String() != "silver.s" {
		t.Fatalf("attached %v", attached)
	}
	if got := f.query("SELECT n FROM {gold.m}"); got[0] != "3" {
		t.Fatalf("got %v", got)
	}
}

func TestCrashBeforeCommitLeavesTableAndRerunIsExact(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		f.commitSilver("s", nil, windows("m1", 0, 20, "i"), windows("m2", 0, 20, "2 * i"))
		f.addGold(maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 5}))
		f.run("g")
		before := f.snapshot("gold/g")
		f.commitSilver("s", nil, windows("m1", 20, 5, "100"))

		crash := errors.New("killed")
		deps := f.deps()
		deps.Crash = func(point string) error {
			if point == CrashFilesWritten {
				return crash
			}
			return nil
		}
		if _, err := Run(f.ctx, deps, f.pipe.Gold["g"]); !errors.Is(err, crash) {
			t.Fatalf("err %v", err)
		}
		if s := f.snapshot("gold/g"); s.Version != before.Version {
			t.Fatalf("version %d after a crash, want %d", s.Version, before.Version)
		}
		st := f.run("g")
		if st.Mode != ModeAppend {
			t.Fatalf("rerun %+v", st)
		}
		f.addGold(maTable("ref", "s", config.MovingAverage{Column: "avg_usage", Rows: 5}))
		f.run("ref")
		f.sameRows("SELECT * FROM {gold.g}", "SELECT * FROM {gold.ref}")
		// The aborted attempt's files were cleaned up.
		objs, err := f.store.List(f.ctx, "gold/g/part-", "")
		if err != nil {
			t.Fatal(err)
		}
		live := map[string]bool{}
		for _, a := range f.snapshot("gold/g").Files {
			live["gold/g/"+a.Path] = true
		}
		for _, a := range before.Files {
			live["gold/g/"+a.Path] = true // replaced files stay until vacuum
		}
		for _, o := range objs {
			if !live[o.Key] {
				t.Errorf("orphan file %s", o.Key)
			}
		}
		// And of the state files, only the current one is left.
		states, err := f.store.List(f.ctx, "gold/g/"+stateDir, "")
		if err != nil {
			t.Fatal(err)
		}
		if cur, _ := currentState(f.snapshot("gold/g")); len(states) != 1 || states[0].Key != "gold/g/"+cur {
			t.Errorf("state files %v, current %s", states, cur)
		}
	})
}

func TestDefinitionChangeRebuildsInFull(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.createSilver("s")
	f.commitSilver("s", nil, windows("a", 0, 6, "i"))
	g := maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 2})
	f.addGold(g)
	f.run("g")
	g.MovingAverage.Rows = 3
	st := f.run("g")
	if st.Mode != ModeFull || !strings.Contains(st.Reason, "definition") {
		t.Fatalf("stats %+v", st)
	}
	if got := f.query("SELECT ma FROM {gold.g} WHERE minute(window_start) = 5"); got[0] != "4" {
		t.Fatalf("ma %v, want 4 (mean of 3, 4, 5)", got)
	}
	// A new flag changes the schema too.
	g.Flags = []*config.Flag{{Name: "high", When: "avg_usage > 3"}}
	if st := f.run("g"); st.Mode != ModeFull {
		t.Fatalf("stats %+v", st)
	}
	if got := f.query("SELECT count(*) FILTER (high) FROM {gold.g}"); got[0] != "2" {
		t.Fatalf("high %v", got)
	}
}

func TestEmptySilverAndErrors(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.addGold(maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 2}))
	if _, err := Run(f.ctx, f.deps(), f.pipe.Gold["g"]); !errors.Is(err, delta.ErrNoTable) {
		t.Fatalf("missing silver: %v", err)
	}
	f.createSilver("s")
	st := f.run("g")
	if st.Mode != ModeFull || st.FilesAdded != 0 {
		t.Fatalf("empty silver %+v", st)
	}
	if s := f.snapshot("gold/g"); !strings.Contains(s.Metadata.SchemaString, `"ma"`) {
		t.Fatalf("schema %s", s.Metadata.SchemaString)
	}
	if _, err := Job(f.ctx, f.deps().Env, f.pipe, "nope"); !errors.Is(err, ErrNotGold) {
		t.Fatalf("unknown table: %v", err)
	}
	for _, tc := range []struct {
		g    *config.Gold
		want string
	}{
		{maTable("b1", "s", config.MovingAverage{Column: "nope", Rows: 2}), `column "nope" is not a column`},
		{maTable("b2", "s", config.MovingAverage{Column: "meter_id", Rows: 2}), "not a number"},
		{maTable("b3", "s", config.MovingAverage{Column: "avg_usage", Rows: 2, EMAAlpha: 0.5}), "exactly one"},
		{maTable("b4", "s", config.MovingAverage{Column: "avg_usage", EMAAlpha: 1.5}), "alpha"},
		{maTable("b5", "s", config.MovingAverage{Column: "avg_usage", Rows: 2, As: "readings"}), "clashes"},
		{maTable("b6", "s", config.MovingAverage{Column: "avg_usage", Rows: 2}, &config.Flag{Name: "x", When: "1; DROP TABLE y"}), "one expression"},
		{maTable("b7", "s", config.MovingAverage{Column: "avg_usage", Rows: 2}, &config.Flag{Name: "hot", When: "temperature > ma"}), "flag hot"},
		{&config.Gold{Name: "b8", SQL: "SELECT * FROM gold.b8"}, "reads the table it builds"},
	} {
		f.addGold(tc.g)
		_, err := Run(f.ctx, f.deps(), f.pipe.Gold[tc.g.Name])
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.g.Name, err, tc.want)
		}
	}
}

// TestSplitRunsGiveSameGold: silver input arriving in 1, 3 or 10 commits,
// with a gold run after each, gives identical gold tables for every kind of
// moving average.
func TestSplitRunsGiveSameGold(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	averages := map[string]config.MovingAverage{
		"rows":  {Column: "avg_usage", Rows: 7},
		"range": {Column: "avg_usage", Range: 5 * time.Minute},
		"ema":   {Column: "avg_usage", EMAAlpha: 0.3},
	}
	meters := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	for _, parts := range []int{1, 3, 10} {
		silver := fmt.Sprintf("s%d", parts)
		f.createSilver(silver)
		for name, ma := range averages {
			f.addGold(maTable(fmt.Sprintf("%s_%d", name, parts), silver, ma,
				&config.Flag{Name: "spike", When: "avg_usage > ma * 1.2"}))
		}
		// 60 windows per meter, split by time into `parts` commits; each
		// commit also touches only some meters.
		per := 60 / parts
		for p := 0; p < parts; p++ {
			var sels []string
			for k, m := range meters {
				sels = append(sels, windows(m, p*per, per, fmt.Sprintf(usage, k)))
			}
			f.commitSilver(silver, nil, strings.Join(sels, " UNION ALL "))
			for name := range averages {
				f.run(fmt.Sprintf("%s_%d", name, parts))
			}
		}
	}
	for name := range averages {
		for _, parts := range []int{3, 10} {
			f.sameRows(fmt.Sprintf("SELECT * FROM {gold.%s_1}", name), fmt.Sprintf("SELECT * FROM {gold.%s_%d}", name, parts))
		}
		if n := f.query(fmt.Sprintf("SELECT count(*), count(*) FILTER (spike) > 0 FROM {gold.%s_10}", name)); n[0] != "360 true" {
			t.Fatalf("%s: rows, any spike: %s", name, n[0])
		}
	}
}

// TestLargeBuild builds a moving average over 216k silver rows (100 meters,
// 2160 one-minute windows) and reports how long a full and an incremental
// run take beside DuckDB computing the same window directly.
func TestLargeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("large build")
	}
	f := newFixture(t, testenv.LocalStore(t))
	f.createSilver("big")
	var sels []string
	for m := range 100 {
		sels = append(sels, windows(fmt.Sprintf("meter-%03d", m), 0, 2160, fmt.Sprintf(usage, m)))
	}
	f.commitSilver("big", nil, strings.Join(sels, " UNION ALL "))
	f.addGold(maTable("big_ma", "big", config.MovingAverage{Column: "avg_usage", Rows: 15},
		&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"}))
	f.addGold(maTable("big_ema", "big", config.MovingAverage{Column: "avg_usage", EMAAlpha: 0.2}))

	scan := f.scan("silver/big")
	start := time.Now()
	f.query("SELECT count(*) FROM (SELECT *, avg(avg_usage) OVER (PARTITION BY meter_id ORDER BY window_start ROWS BETWEEN 14 PRECEDING AND CURRENT ROW) AS ma, avg_usage > ma * 1.5 AS spike FROM " + scan + ")")
	direct := time.Since(start)

	start = time.Now()
	st := f.run("big_ma")
	full := time.Since(start)
	start = time.Now()
	f.run("big_ema")
	ema := time.Since(start)
	f.commitSilver("big", nil, windows("meter-007", 2160, 10, "1"))
	start = time.Now()
	inc := f.run("big_ma")
	incr := time.Since(start)
	t.Logf("216k rows: DuckDB window directly %v; gold rows full %v (%d files, %.1fx), ema full %v (%.1fx), incremental one meter %v (%d rows rewritten)",
		direct, full, st.FilesAdded, float64(full)/float64(direct), ema, float64(ema)/float64(direct), incr, inc.RowsWritten)
}

// TestUnsortedOK: a one-bucket file may be unsorted unless a mirror of the
// table has a key that leaves out a partition or the order column (its
// keys would repeat within the file, and the last row of the file wins).
func TestUnsortedOK(t *testing.T) {
	gold := map[string]*config.Gold{
		"ma":  {PartitionBy: []string{"meter_id"}, MovingAverage: &config.MovingAverage{Column: "avg_usage", Rows: 15}},
		"top": {SQL: "SELECT 1"},
	}
	mirror := func(key ...string) *config.Pipeline {
		return &config.Pipeline{Gold: gold, Mirror: []*config.Mirror{
			{Table: "gold.other", Key: []string{"x"}},
			{Table: "gold.ma", Key: key},
		}}
	}
	for _, c := range []struct {
		p    *config.Pipeline
		want bool
	}{
		{&config.Pipeline{Gold: gold}, true},
		{mirror("meter_id", "window_start"), true},
		{mirror("Window_Start", "METER_ID", "flag"), true},
		{mirror("meter_id"), false},
		{mirror("window_start"), false},
	} {
		if got := UnsortedOK(c.p, "ma"); got != c.want {
			t.Errorf("mirrors %d: UnsortedOK = %v, want %v", len(c.p.Mirror), got, c.want)
		}
	}
	if UnsortedOK(&config.Pipeline{Gold: gold}, "top") {
		t.Error("a SQL model: UnsortedOK = true")
	}
}

// TestOrderColumnWrittenPlain: a gold row group holds thousands of windows
// of a few meters, so its order column has thousands of distinct values;
// DuckDB's default dictionary limit encoded that column one way or the
// other depending on where thread scheduling cut the row groups (a file
// ~20% larger and slower to write in about a third of the runs). maParquet writes it
// plain in every row group, in the one-file and the bucketed path, while
// the meter column keeps its dictionary.
func TestOrderColumnWrittenPlain(t *testing.T) {
	for _, buckets := range []int{1, 2} {
		t.Run(fmt.Sprintf("buckets=%d", buckets), func(t *testing.T) {
			f := newFixture(t, testenv.LocalStore(t))
			f.buckets = buckets
			f.createSilver("wide")
			var sels []string
			for m := range 12 {
				sels = append(sels, windows(fmt.Sprintf("meter-%02d", m), 0, 15000, fmt.Sprintf(usage, m)))
			}
			f.commitSilver("wide", nil, strings.Join(sels, " UNION ALL "))
			f.addGold(maTable("wide_ma", "wide", config.MovingAverage{Column: "avg_usage", Rows: 15}))
			f.run("wide_ma")
			files := strings.TrimSuffix(strings.TrimPrefix(f.scan("gold/wide_ma"), "read_parquet("), ")")
			got := f.query(`SELECT path_in_schema, bool_or(encodings LIKE '%DICTIONARY%'), count(*) FROM parquet_metadata(` + files + `)
				WHERE path_in_schema IN ('window_start', 'meter_id') GROUP BY ALL ORDER BY ALL`)
			if len(got) != 2 || !strings.HasPrefix(got[0], "meter_id true ") || !strings.HasPrefix(got[1], "window_start false ") {
				t.Fatalf("column, any dictionary-encoded row group, row groups: %q; want meter_id with a dictionary, window_start without", got)
			}
		})
	}
}
