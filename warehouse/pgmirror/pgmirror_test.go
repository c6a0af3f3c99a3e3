package pgmirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// fixture is a lake table written directly: Parquet files made by DuckDB
// COPY, committed with the delta package.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	store lake.Store
	eng   *warehouse.Engine
	ref   warehouse.TableRef
	tbl   *delta.Table
	snap  *delta.Snapshot
	n     int
}

func newFixture(t testing.TB, ref warehouse.TableRef, schema *delta.Schema, partCols ...string) *fixture {
	t.Helper()
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &fixture{t: t, ctx: ctx, store: testenv.LocalStore(t), eng: eng, ref: ref}
	f.tbl = delta.Open(f.store, ref.Dir())
	f.snap, err = f.tbl.Create(ctx, delta.Metadata{SchemaString: schema.String(), PartitionColumns: partCols}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// file writes the rows of a DuckDB query as a data file (partition
// columns must not be in it) and returns its add action.
func (f *fixture) file(query string, partValues map[string]string) delta.Add {
	f.t.Helper()
	f.n++
	name := fmt.Sprintf("part-%05d.parquet", f.n)
	local := filepath.Join(f.t.TempDir(), name)
	if _, err := f.eng.DB().ExecContext(f.ctx, "COPY ("+query+") TO '"+local+"' (FORMAT parquet)"); err != nil {
		f.t.Fatalf("write %s: %v\n%s", name, err, query)
	}
	data, err := os.ReadFile(local)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.Put(f.ctx, f.tbl.Key(name), bytes.NewReader(data), int64(len(data))); err != nil {
		f.t.Fatal(err)
	}
	if partValues == nil {
		partValues = map[string]string{}
	}
	return delta.Add{Path: name, PartitionValues: delta.PartitionStrings(partValues), Size: int64(len(data)),
		ModificationTime: time.Now().UnixMilli() + int64(f.n), DataChange: true}
}

// commit commits adds and the removal of removes; a schema, if given,
// replaces the table's.
func (f *fixture) commit(adds []delta.Add, removes []delta.Add, schema *delta.Schema) {
	f.t.Helper()
	c := delta.Commit{Adds: adds}
	for _, r := range removes {
		c.Removes = append(c.Removes, r.Remove(time.Now().UnixMilli(), true))
	}
	if schema != nil {
		m := f.snap.Metadata
		m.SchemaString = schema.String()
		c.Metadata = &m
	}
	s, err := f.tbl.Commit(f.ctx, f.snap, c)
	if err != nil {
		f.t.Fatal(err)
	}
	f.snap = s
}

func (f *fixture) mirror(dsn string) *pgmirror.Mirror {
	f.t.Helper()
	opts := pgmirror.DefaultOptions()
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	m, err := pgmirror.New(dsn, pgmirror.Deps{Store: f.store, Engine: f.eng, Cache: &lake.Cache{Dir: f.t.TempDir()}}, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func field(name, typ string) delta.Field {
	return delta.Field{Name: name, Type: delta.Primitive(typ), Nullable: true}
}

func schemaOf(fields ...delta.Field) *delta.Schema { return &delta.Schema{Fields: fields} }

func syncOK(t *testing.T, m *pgmirror.Mirror, spec pgmirror.Spec) *pgmirror.Result {
	t.Helper()
	res, err := m.Sync(context.Background(), spec)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	t.Log(res)
	return res
}

// rows generates n rows of (id, grp, val, note) from a DuckDB range.
func rows(from, to int, val string) string {
	return fmt.Sprintf("SELECT CAST(i AS BIGINT) AS id, 'g' || (i %% 7) AS grp, CAST(%s AS DOUBLE) AS val, 'row ' || i AS note FROM range(%d, %d) t(i)", val, from, to)
}

var basicSchema = schemaOf(field("id", "long"), field("grp", "string"), field("val", "double"), field("note", "string"))

// TestIncremental: upserts, duplicate keys in a batch, removed files
// (rewritten and recomputed rows) replaced and deleted, reruns that change
// nothing.
func TestIncremental(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_inc_")
	ref := warehouse.TableRef{Schema: "gold", Name: "usage"}
	f := newFixture(t, ref, basicSchema)
	m := f.mirror(dsn)
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: "usage", Key: []string{"id"}}
	check := func(wantMode pgmirror.Mode, res *pgmirror.Result) {
		t.Helper()
		if res.Mode != wantMode {
			t.Errorf("mode %q, want %q", res.Mode, wantMode)
		}
		pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "usage")
		if v, ok := pgmirrortest.State(t, conn, schema, "usage"); !ok || v != f.snap.Version {
			t.Errorf("state version %d (%v), want %d", v, ok, f.snap.Version)
		}
	}

	// v0: no files yet.
	check(pgmirror.ModeFirstLoad, syncOK(t, m, spec))

	// v1: two files; key 5 is in both and twice in the second: the last
	// file wins, and the batch does not fail.
	a := f.file(rows(0, 1000, "i"), nil)
	b := f.file("SELECT * FROM ("+rows(5, 6, "-1")+" UNION ALL "+rows(5, 6, "-2")+") ORDER BY val DESC", nil)
	f.commit([]delta.Add{a, b}, nil, nil)
	res, err := m.Sync(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != pgmirror.ModeIncremental || res.RowsCopied != 1002 || res.RowsUpserted != 1000 {
		t.Errorf("v1: %s", res)
	}
	var val float64
	if err := conn.QueryRow(context.Background(), "SELECT val FROM "+pgx.Identifier{schema, "usage"}.Sanitize()+" WHERE id = 5").Scan(&val); err != nil || val != -2 {
		t.Errorf("id 5: val %v (%v), want -2 (the last row of the last file)", val, err)
	}

	// The lake holds key 5 twice now; replace both files by one with the
	// rows rewritten (vals changed) and some gone (900..999).
	c := f.file(rows(0, 900, "i * 10"), nil)
	f.commit([]delta.Add{c}, []delta.Add{a, b}, nil)
	res = syncOK(t, m, spec)
	check(pgmirror.ModeIncremental, res)
	if res.RowsDeleted != 100 || res.RowsUpserted != 899 { // id 0 keeps val 0
		t.Errorf("rewrite: %s; want 100 deleted, 899 upserted", res)
	}

	// A partition recomputed with most rows unchanged: only the changed
	// rows are written.
	d := f.file("SELECT * FROM ("+rows(0, 900, "i * 10")+") WHERE id <> 7 UNION ALL "+rows(7, 8, "77"), nil)
	f.commit([]delta.Add{d}, []delta.Add{c}, nil)
	res = syncOK(t, m, spec)
	check(pgmirror.ModeIncremental, res)
	if res.RowsUpserted != 1 || res.RowsDeleted != 0 {
		t.Errorf("recompute: %s; want 1 upserted, 0 deleted", res)
	}

	// Two versions at once, the second removing what the first added.
	e := f.file(rows(2000, 2100, "1"), nil)
	f.commit([]delta.Add{e}, nil, nil)
	f.commit([]delta.Add{f.file(rows(3000, 3010, "2"), nil)}, []delta.Add{e}, nil)
	check(pgmirror.ModeIncremental, syncOK(t, m, spec))

	// Rerunning three times changes nothing: no row version, no state.
	snapshot := func() string {
		var s string
		q := fmt.Sprintf("SELECT (SELECT string_agg(xmin::text || ':' || id, ',' ORDER BY id) FROM %s) || (SELECT mirrored_at::text FROM %s)",
			pgx.Identifier{schema, "usage"}.Sanitize(), pgx.Identifier{schema, pgmirror.StateTable}.Sanitize())
		if err := conn.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	for range 3 {
		check(pgmirror.ModeUpToDate, syncOK(t, m, spec))
	}
	if snapshot() != before {
		t.Error("a rerun with nothing new changed the table or its state")
	}
}

// TestTypesAndQuoting mirrors every Delta type into a schema, table and
// columns whose names need quoting, with a partitioned table.
func TestTypesAndQuoting(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, `Mirror "Q" `)
	ref := warehouse.TableRef{Schema: "silver", Name: "types"}
	point := delta.DataType{Name: "struct", Fields: []delta.Field{field("x", "double"), field("Label", "string")}}
	tags := delta.DataType{Name: "array", ElementType: &delta.DataType{Name: "string"}, ContainsNull: true}
	attrs := delta.DataType{Name: "map", KeyType: &delta.DataType{Name: "string"}, ValueType: &delta.DataType{Name: "long"}, ValueContainsNull: true}
	sch := schemaOf(
		field("Meter ID", "string"), field(`say "hi"`, "long"), field("i", "integer"), field("s", "short"), field("b", "byte"),
		field("d", "double"), field("f", "float"), field("ok", "boolean"), field("day", "date"),
		field("ts", "timestamp"), field("local ts", "timestamp_ntz"), field("amount", "decimal(12,3)"), field("raw", "binary"),
		delta.Field{Name: "Point", Type: point, Nullable: true}, delta.Field{Name: "tags", Type: tags, Nullable: true},
		delta.Field{Name: "attrs", Type: attrs, Nullable: true}, field("Region", "string"),
	)
	f := newFixture(t, ref, sch, "Region")
	q := `SELECT 'm' || i AS "Meter ID", CAST(i * 1000000000000 AS BIGINT) AS "say ""hi""", CAST(i AS INTEGER) AS i,
		CAST(i AS SMALLINT) AS s, CAST(i % 100 AS TINYINT) AS b, i / 3.0 AS d, CAST(i / 7.0 AS FLOAT) AS f, i % 2 = 0 AS ok,
		DATE '2024-02-28' + CAST(i AS INTEGER) AS day, TIMESTAMPTZ '2024-01-01 10:00:00+00' + to_microseconds(i * 1234567) AS ts,
		TIMESTAMP '2024-01-01 10:00:00' + to_seconds(i) AS "local ts", CAST(i * 1.125 AS DECIMAL(12,3)) AS amount,
		CAST('\xAA\x00'::BLOB || CAST(CAST(i AS VARCHAR) AS BLOB) AS BLOB) AS raw,
		{'x': CAST(i * 0.5 AS DOUBLE), 'Label': 'p"' || i} AS "Point", ['a', NULL, 'c' || i] AS tags, MAP {'k': i, 'z': NULL} AS attrs
		FROM range(1, 50) t(i)`
	nulls := `SELECT 'nulls' AS "Meter ID", NULL::BIGINT AS "say ""hi""", NULL::INTEGER AS i, NULL::SMALLINT AS s, NULL::TINYINT AS b,
		'NaN'::DOUBLE AS d, 'inf'::FLOAT AS f, NULL::BOOLEAN AS ok, NULL::DATE AS day, NULL::TIMESTAMPTZ AS ts, NULL::TIMESTAMP AS "local ts",
		NULL::DECIMAL(12,3) AS amount, NULL::BLOB AS raw, NULL::STRUCT(x DOUBLE, "Label" VARCHAR) AS "Point", NULL::VARCHAR[] AS tags,
		NULL::MAP(VARCHAR, BIGINT) AS attrs`
	f.commit([]delta.Add{
		f.file(q, map[string]string{"Region": "Nord Ost"}),
		f.file(nulls, map[string]string{"Region": ""}),
	}, nil, nil)
	table := `Usage "Daily" Mixed`
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: table, Key: []string{"Meter ID", "Region"}}
	m := f.mirror(dsn)
	_, err := m.Sync(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), `null value in column "Region"`) {
		t.Fatalf("a NULL key: want a not-null violation, got %v", err)
	}
	spec.Key = []string{"Meter ID", `say "hi"`}
	if _, err := m.Sync(context.Background(), spec); err == nil {
		t.Fatal("a NULL key column: want an error")
	}
	spec.Key = []string{"Meter ID"}
	syncOK(t, m, spec)
	if n := pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, table); n != 50 {
		t.Errorf("%d rows, want 50", n)
	}

	// The column types.
	rows, err := conn.Query(context.Background(), `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+" "+typ)
	}
	want := []string{"Meter ID text", `say "hi" bigint`, "i integer", "s smallint", "b smallint", "d double precision", "f real",
		"ok boolean", "day date", "ts timestamp with time zone", "local ts timestamp without time zone", "amount numeric(12,3)",
		"raw bytea", "Point jsonb", "tags jsonb", "attrs jsonb", "Region text"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("columns:\n got %s\nwant %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	// A few values, checked by hand.
	var amount, pointText, region string
	var ts time.Time
	err = conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT amount::text, "Point"::text, "Region", ts FROM %s WHERE "Meter ID" = 'm2'`,
		pgx.Identifier{schema, table}.Sanitize())).Scan(&amount, &pointText, &region, &ts)
	if err != nil || amount != "2.250" || pointText != `{"x": 1.0, "Label": "p\"2"}` || region != "Nord Ost" || !ts.Equal(time.Date(2024, 1, 1, 10, 0, 2, 469134000, time.UTC)) {
		t.Errorf("m2: amount %s, Point %s, Region %s, ts %s (%v)", amount, pointText, region, ts, err)
	}
	syncOK(t, m, spec)
}

// TestSchemaChanges: a new lake column is added; a changed type or key is
// refused with the guiding message; --rebuild swaps in a new table while a
// reader keeps querying it.
func TestSchemaChanges(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_schema_")
	ref := warehouse.TableRef{Schema: "gold", Name: "Meter Stats"}
	f := newFixture(t, ref, basicSchema)
	f.commit([]delta.Add{f.file(rows(0, 50000, "i"), nil)}, nil, nil)
	m := f.mirror(dsn)
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: "stats", Key: []string{"id"}}
	syncOK(t, m, spec)
	// Dashboards read through a role with SELECT only: the grant survives
	// a rebuild.
	role := "medallion_test_reader_" + strings.TrimPrefix(schema, "mirror_schema_")
	ctx := context.Background()
	for _, q := range []string{
		"CREATE ROLE " + pgx.Identifier{role}.Sanitize(),
		"GRANT USAGE ON SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize(),
		"GRANT SELECT ON " + pgx.Identifier{schema, "stats"}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize(),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		conn.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())
	})

	// A new column: added, old rows NULL in both.
	wide := schemaOf(append(basicSchema.Fields, field("Peak Hour", "integer"))...)
	f.commit([]delta.Add{f.file("SELECT *, CAST(id % 24 AS INTEGER) AS \"Peak Hour\" FROM ("+rows(50000, 50100, "i")+")", nil)}, nil, wide)
	res := syncOK(t, m, spec)
	if len(res.AddedColumns) != 1 || res.AddedColumns[0] != "Peak Hour" || res.Mode != pgmirror.ModeIncremental {
		t.Errorf("added columns: %s", res)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "stats")

	// A changed key: refused, with the way out.
	spec.Key = []string{"id", "grp"}
	_, err := m.Sync(ctx, spec)
	if !errors.Is(err, pgmirror.ErrIncompatible) || !strings.Contains(err.Error(), "primary key is (id) but the pipeline's key: is now (id, grp)") ||
		!strings.Contains(err.Error(), "run `medallion mirror --rebuild gold.Meter Stats`") {
		t.Fatalf("changed key: %v", err)
	}
	if pgmirror.Retryable(err) {
		t.Error("an incompatible target must not be retried")
	}

	// A changed type: refused too.
	typed := schemaOf(field("id", "long"), field("grp", "string"), field("val", "decimal(20,2)"), field("note", "string"), field("Peak Hour", "integer"))
	f.commit([]delta.Add{f.file("SELECT id, grp, CAST(val AS DECIMAL(20,2)) AS val, note, 1 AS \"Peak Hour\" FROM ("+rows(0, 60000, "i / 4")+")", nil)},
		f.snap.Files, typed)
	_, err = m.Sync(ctx, spec)
	if !errors.Is(err, pgmirror.ErrIncompatible) {
		t.Fatalf("changed type: %v", err)
	}

	// --rebuild while a reader keeps counting rows.
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	var readErr error
	readerDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(readerDone)
		rc, err := pgx.Connect(ctx, dsn)
		if err != nil {
			readErr = err
			return
		}
		defer rc.Close(ctx)
		if _, err := rc.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			readErr = err
			return
		}
		q := "SELECT count(*) FROM " + pgx.Identifier{schema, "stats"}.Sanitize()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			if err := rc.QueryRow(ctx, q).Scan(&n); err != nil {
				readErr = fmt.Errorf("reader: %w", err)
				return
			}
			if n == 0 {
				readErr = errors.New("reader saw an empty table")
				return
			}
			reads.Add(1)
		}
	}()
	// The reader must be seen reading before the swap and after it, so
	// that "never saw an empty table" covers both sides.
	waitReads := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for reads.Load() < n && time.Now().Before(deadline) {
			select {
			case <-readerDone:
				return
			default:
				runtime.Gosched()
			}
		}
	}
	waitReads(3)
	before := reads.Load()
	res, err = m.Rebuild(ctx, spec)
	after := reads.Load()
	waitReads(after + 3)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	t.Log(res, "; reads before the rebuild:", before, "during:", after-before, "in all:", reads.Load())
	if readErr != nil {
		t.Fatal(readErr)
	}
	if before < 3 || reads.Load() < after+3 {
		t.Fatalf("the reader did not read on both sides of the swap: %d before, %d in all, %d when the rebuild returned", before, reads.Load(), after)
	}
	if res.Mode != pgmirror.ModeRebuild || res.RowsCopied != 60000 {
		t.Errorf("rebuild: %s", res)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "stats")
	if res := syncOK(t, m, spec); res.Mode != pgmirror.ModeUpToDate {
		t.Errorf("after the rebuild: %s", res)
	}
	var pk string
	if err := conn.QueryRow(ctx, `SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`,
		pgx.Identifier{schema, "stats"}.Sanitize()).Scan(&pk); err != nil || pk != "stats_pkey PRIMARY KEY (id, grp)" {
		t.Errorf("primary key after the rebuild: %q (%v)", pk, err)
	}
	// Incremental again on the rebuilt table.
	f.commit([]delta.Add{f.file("SELECT id, grp, CAST(val AS DECIMAL(20,2)) AS val, note, 2 AS \"Peak Hour\" FROM ("+rows(70000, 70010, "1")+")", nil)}, nil, nil)
	syncOK(t, m, spec)
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "stats")
}

// TestConcurrentSyncs: two mirrors of one target at once take turns.
func TestConcurrentSyncs(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_conc_")
	ref := warehouse.TableRef{Schema: "gold", Name: "c"}
	f := newFixture(t, ref, basicSchema)
	f.commit([]delta.Add{f.file(rows(0, 20000, "i"), nil)}, nil, nil)
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: "c", Key: []string{"id"}}
	var wg sync.WaitGroup
	results := make([]*pgmirror.Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.mirror(dsn).Sync(context.Background(), spec)
		}()
	}
	wg.Wait()
	loads := 0
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if results[i].Mode == pgmirror.ModeFirstLoad {
			loads++
		}
	}
	if loads != 1 {
		t.Errorf("%d first loads, want 1", loads)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "c")
}

// TestRetry: a server that is not there is retried a bounded number of
// times, then reported once.
func TestRetry(t *testing.T) {
	t.Parallel()
	ref := warehouse.TableRef{Schema: "gold", Name: "r"}
	f := newFixture(t, ref, basicSchema)
	m := f.mirror("postgres://postgres@127.0.0.1:1/test?connect_timeout=2")
	start := time.Now()
	_, err := m.Sync(context.Background(), pgmirror.Spec{Source: ref, Schema: "public", Table: "r", Key: []string{"id"}})
	if err == nil || !strings.Contains(err.Error(), "gave up after 5 attempts") || !pgmirror.Retryable(err) {
		t.Fatalf("got %v", err)
	}
	t.Logf("%v after %s", err, time.Since(start))
}
