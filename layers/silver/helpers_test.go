package silver

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// forEachStore runs f on a local-directory lake and on a real MinIO bucket.
func forEachStore(t *testing.T, f func(t *testing.T, store lake.Store)) {
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		f(t, testenv.LocalStore(t))
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		if testing.Short() {
			t.Skip("MinIO tests skipped in -short mode")
		}
		st, _, _ := testenv.S3Store(t)
		f(t, st)
	})
}

// base is the day every test's events happen on.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ev is one bronze row of the test source "meters".
type ev struct {
	at      string // "HH:MM:SS" on the base day (or "-" for a null event time)
	meter   string
	usage   *float64
	n       int64
	anomaly bool
	tag     string
}

func f64(v float64) *float64 { return &v }

// e makes a row with the usual defaults: usage 1, n 1.
func e(at, meter string) ev { return ev{at: at, meter: meter, usage: f64(1), n: 1, tag: "x"} }

func (r ev) time(t testing.TB) time.Time {
	d, err := time.Parse("15:04:05", r.at)
	if err != nil {
		t.Fatalf("bad test time %q: %v", r.at, err)
	}
	return base.Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute + time.Duration(d.Second())*time.Second)
}

// lakeEnv is a lake with a bronze table "meters" that tests append to.
type lakeEnv struct {
	t      *testing.T
	store  lake.Store
	p      *config.Pipeline
	nfiles int
	// keepEngine, when set, is used for every run instead of a fresh engine.
	keepEngine *warehouse.Engine
}

func newLakeEnv(t *testing.T, store lake.Store, tables ...*config.Silver) *lakeEnv {
	p := &config.Pipeline{Silver: map[string]*config.Silver{}}
	for _, s := range tables {
		p.Silver[s.Name] = s
		p.SilverOrder = append(p.SilverOrder, s.Name)
	}
	return &lakeEnv{t: t, store: store, p: p}
}

// bronzeSchema is the schema of bronze.meters; event_date is the partition
// column, kept in the log only, as the bronze job does.
const bronzeSchema = `{"type":"struct","fields":[` +
	`{"name":"ts","type":"timestamp","nullable":true,"metadata":{}},` +
	`{"name":"meter_id","type":"string","nullable":true,"metadata":{}},` +
	`{"name":"usage","type":"double","nullable":true,"metadata":{}},` +
	`{"name":"n","type":"long","nullable":true,"metadata":{}},` +
	`{"name":"anomaly","type":"boolean","nullable":true,"metadata":{}},` +
	`{"name":"tag","type":"string","nullable":true,"metadata":{}},` +
	`{"name":"_source_file","type":"string","nullable":true,"metadata":{}},` +
	`{"name":"event_date","type":"date","nullable":true,"metadata":{}}]}`

// appendBronze commits rows to bronze.meters as one Parquet file per event
// date, written with DuckDB, in one commit (an empty rows list commits
// nothing).
func (le *lakeEnv) appendBronze(rows ...ev) {
	t := le.t
	t.Helper()
	if len(rows) == 0 {
		return
	}
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	byDate := map[string][]ev{}
	for _, r := range rows {
		d := base.Format("2006-01-02")
		if r.at != "-" {
			d = r.time(t).Format("2006-01-02")
		}
		byDate[d] = append(byDate[d], r)
	}
	tbl := delta.Open(le.store, "bronze/meters")
	snap, err := tbl.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		snap, err = tbl.Create(ctx, delta.Metadata{SchemaString: bronzeSchema, PartitionColumns: []string{"event_date"}}, delta.CommitInfo{})
	}
	if err != nil {
		t.Fatal(err)
	}
	var adds []delta.Add
	for _, d := range slices.Sorted(mapsKeys(byDate)) {
		le.nfiles++
		path := fmt.Sprintf("event_date=%s/part-%05d.parquet", d, le.nfiles)
		var vals []string
		for _, r := range byDate[d] {
			ts := "NULL"
			if r.at != "-" {
				ts = fmt.Sprintf("TIMESTAMPTZ '%s'", r.time(t).Format("2006-01-02 15:04:05.000000+00"))
			}
			usage := "NULL"
			if r.usage != nil {
				usage = fmt.Sprintf("%v", *r.usage)
			}
			vals = append(vals, fmt.Sprintf("(%s, '%s', CAST(%s AS DOUBLE), CAST(%d AS BIGINT), %t, '%s', 'raw/meters/%s.ndjson')",
				ts, r.meter, usage, r.n, r.anomaly, r.tag, path))
		}
		local := filepath.Join(t.TempDir(), "f.parquet")
		q := fmt.Sprintf(`COPY (SELECT CAST(ts AS TIMESTAMPTZ) AS ts, meter_id, usage, n, anomaly, tag, _source_file FROM (VALUES %s) v(ts, meter_id, usage, n, anomaly, tag, _source_file)) TO '%s' (FORMAT parquet)`,
			strings.Join(vals, ", "), local)
		if _, err := eng.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("write bronze file: %v", err)
		}
		up, err := lake.PutFile(ctx, le.store, "bronze/meters/"+path, local)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, delta.Add{Path: path, PartitionValues: delta.PartitionStrings(map[string]string{"event_date": d}), Size: up.Size, DataChange: true, ModificationTime: time.Now().UnixMilli()})
	}
	if _, err := tbl.Commit(ctx, snap, delta.Commit{Adds: adds, IsBlindAppend: true, Info: delta.CommitInfo{Operation: "WRITE"}}); err != nil {
		t.Fatal(err)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// run runs silver table name once, on a fresh engine (a restart between
// runs: everything is read back from the lake) unless keepEngine is set.
func (le *lakeEnv) run(name string) Stats {
	le.t.Helper()
	st, err := le.runWith(name, nil)
	if err != nil {
		le.t.Fatalf("run %s: %v", name, err)
	}
	return st
}

func (le *lakeEnv) runWith(name string, hook func(string) error) (Stats, error) {
	ctx := context.Background()
	eng := le.keepEngine
	if eng == nil {
		var err error
		eng, err = warehouse.Open(ctx, warehouse.Options{MemoryLimit: "512MB", Threads: 2})
		if err != nil {
			le.t.Fatal(err)
		}
		defer eng.Close()
	}
	return Run(ctx, Deps{Env: layers.Env{Store: le.store, DB: eng.DB(), ScratchDir: le.t.TempDir(), Crash: hook}}, le.p.Silver[name])
}

// query reads a Delta table's current rows with DuckDB and renders each row
// as one line (times as HH:MM:SS on the base day, floats with %g), sorted.
// cols is the select list over the table's columns.
func queryTable(t *testing.T, store lake.Store, dir, cols string) []string {
	t.Helper()
	ctx := context.Background()
	tbl := delta.Open(store, dir)
	snap, err := tbl.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) == 0 {
		return nil
	}
	scratch := t.TempDir()
	mat := func(ctx context.Context, key string) (string, error) {
		return (&lake.Cache{Dir: scratch}).Path(ctx, store, key, "")
	}
	var locals []string
	for _, f := range snap.Files {
		p, err := mat(ctx, tbl.Key(f.Path))
		if err != nil {
			t.Fatal(err)
		}
		locals = append(locals, p)
	}
	return queryLines(t, fmt.Sprintf("SELECT %s FROM read_parquet(%s)", cols, literalList(locals)))
}

// queryLines runs q on a fresh engine and renders the rows.
func queryLines(t *testing.T, q string) []string {
	t.Helper()
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rows, err := eng.DB().QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
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
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = render(v)
		}
		out = append(out, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case time.Time:
		x = x.UTC()
		if x.Truncate(24*time.Hour).Equal(base) || x.Equal(base.Add(24*time.Hour)) {
			if x.Nanosecond() != 0 {
				return x.Format("15:04:05.000000")
			}
			return x.Format("15:04:05")
		}
		return x.Format(time.RFC3339Nano)
	case float64:
		return fmt.Sprintf("%g", x)
	case []any:
		s := make([]string, len(x))
		for i, y := range x {
			s[i] = render(y)
		}
		return "[" + strings.Join(s, ",") + "]"
	default:
		return fmt.Sprintf("%v", x)
	}
}

// silverRows renders silver.name as "start-end group aggregates...".
func silverRows(t *testing.T, store lake.Store, name string) []string {
	return queryTable(t, store, "silver/"+name, "*")
}

// lateRows renders silver._late (without the file columns).
func lateRows(t *testing.T, store lake.Store) []string {
	return queryTable(t, store, "silver/_late", `"table", event_time, window_start, window_end, watermark, lateness_ms, window_closed_ms, group_key, batch`)
}

// stateRows renders the current state file of silver.name (nil: no state).
func stateRows(t *testing.T, store lake.Store, name string) []string {
	t.Helper()
	ctx := context.Background()
	key := currentStateKey(t, store, name)
	if key == "" {
		return nil
	}
	p, err := (&lake.Cache{Dir: t.TempDir()}).Path(ctx, store, key, "")
	if err != nil {
		t.Fatal(err)
	}
	return queryLines(t, fmt.Sprintf("SELECT * FROM read_parquet(%s)", warehouse.QuoteString(p)))
}

// currentStateKey is the state file the newest silver commit references.
func currentStateKey(t *testing.T, store lake.Store, name string) string {
	t.Helper()
	h, err := delta.Open(store, "silver/"+name).History(context.Background(), 1)
	if errors.Is(err, delta.ErrNoTable) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h[0].Medallion[mState].(string)
	return s
}

// watermark returns the watermark the newest silver commit records.
func watermark(t *testing.T, store lake.Store, name string) string {
	t.Helper()
	h, err := delta.Open(store, "silver/"+name).History(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h[0].Medallion[mWatermark].(string)
	if s == "" {
		return "none"
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return render(ts)
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s:\n got:\n  %s\n want:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
}

// objectsUnder lists keys under prefix.
func objectsUnder(t *testing.T, store lake.Store, prefix string) []string {
	t.Helper()
	objs, err := store.List(context.Background(), prefix, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

// prefixed is store with every key under prefix/, so one test can hold
// several independent lakes in one bucket.
func prefixed(store lake.Store, prefix string) lake.Store {
	p := prefixStore{Store: store, p: prefix + "/"}
	if lp, ok := store.(lake.LocalPather); ok {
		return localPrefixStore{p, lp}
	}
	return p
}

type prefixStore struct {
	lake.Store
	p string
}

func (s prefixStore) Get(ctx context.Context, key string) (io.ReadCloser, lake.ObjectInfo, error) {
	rc, oi, err := s.Store.Get(ctx, s.p+key)
	oi.Key = key
	return rc, oi, err
}
func (s prefixStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return s.Store.GetRange(ctx, s.p+key, off, n)
}
func (s prefixStore) Put(ctx context.Context, key string, r io.Reader, size int64) (lake.ObjectInfo, error) {
	oi, err := s.Store.Put(ctx, s.p+key, r, size)
	oi.Key = key
	return oi, err
}
func (s prefixStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (lake.ObjectInfo, error) {
	oi, err := s.Store.PutIfAbsent(ctx, s.p+key, r, size)
	oi.Key = key
	return oi, err
}
func (s prefixStore) Stat(ctx context.Context, key string) (lake.ObjectInfo, error) {
	oi, err := s.Store.Stat(ctx, s.p+key)
	oi.Key = key
	return oi, err
}
func (s prefixStore) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	if startAfter != "" {
		startAfter = s.p + startAfter
	}
	objs, err := s.Store.List(ctx, s.p+prefix, startAfter)
	for i := range objs {
		objs[i].Key = strings.TrimPrefix(objs[i].Key, s.p)
	}
	return objs, err
}
func (s prefixStore) Delete(ctx context.Context, key string) error {
	return s.Store.Delete(ctx, s.p+key)
}
func (s prefixStore) URL() string {
	return strings.TrimSuffix(s.Store.URL(), "/") + "/" + strings.TrimSuffix(s.p, "/")
}

type localPrefixStore struct {
	prefixStore
	lp lake.LocalPather
}

func (s localPrefixStore) LocalPath(key string) string { return s.lp.LocalPath(s.p + key) }

func openEngine(t *testing.T) *warehouse.Engine {
	t.Helper()
	eng, err := warehouse.Open(context.Background(), warehouse.Options{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func localStore(t *testing.T) lake.Store { return testenv.LocalStore(t) }

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
