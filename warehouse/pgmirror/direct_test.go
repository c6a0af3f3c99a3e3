package pgmirror_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// tableShape is what a target looks like in the catalog: its columns
// (name, type, NOT NULL) and its constraints and indexes with the table
// name left out.
func tableShape(t *testing.T, conn *pgx.Conn, schema, table string) string {
	t.Helper()
	ctx := context.Background()
	id := pgx.Identifier{schema, table}.Sanitize()
	var cols, cons, idx string
	err := conn.QueryRow(ctx, `SELECT
		(SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
			FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped),
		(SELECT coalesce(string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname), '')
			FROM pg_constraint WHERE conrelid = to_regclass($1)),
		(SELECT coalesce(string_agg(indexdef, ', ' ORDER BY indexname), '')
			FROM pg_indexes WHERE schemaname = $2 AND tablename = $3)`,
		id, schema, table).Scan(&cols, &cons, &idx)
	if err != nil {
		t.Fatalf("catalog of %s: %v", id, err)
	}
	return strings.NewReplacer(schema+"."+table+" ", "T ", table+"_pkey", "T_pkey").Replace(cols + "; " + cons + "; " + idx)
}

// TestDirectLoad: a first load copies straight into the new table and
// builds the key after; the result equals what the staged path (COPY into
// a staging table, upsert) builds from the same files: same rows, types,
// key. A full reload of an existing table is direct too, and a lake table
// that repeats a key falls back to the staged path (the last file wins).
func TestDirectLoad(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_direct_")
	ctx := context.Background()
	ref := warehouse.TableRef{Schema: "silver", Name: "direct"}
	wide := schemaOf(append(basicSchema.Fields, field("day", "date"), field("at", "timestamp"), field("ok", "boolean"),
		field("amount", "decimal(12,3)"), field("n", "integer"), field("raw", "binary"),
		delta.Field{Name: "tags", Type: delta.DataType{Name: "array", ElementType: &delta.DataType{Name: "string"}, ContainsNull: true}, Nullable: true})...)
	f := newFixture(t, ref, wide)
	extra := func(q string) string {
		return `SELECT *, DATE '2024-02-28' + CAST(id AS INTEGER) AS day, TIMESTAMPTZ '2024-01-01 10:00:00+00' + to_microseconds(id * 1234567) AS at,
			id % 3 = 0 AS ok, CAST(id * 1.125 AS DECIMAL(12,3)) AS amount, CAST(id % 1000 AS INTEGER) AS n,
			CAST(CAST(id AS VARCHAR) AS BLOB) AS raw, ['a', NULL, grp] AS tags FROM (` + q + `)`
	}
	m := f.mirror(dsn)
	staged := pgmirror.Spec{Source: ref, Schema: schema, Table: "staged", Key: []string{"id"}}
	direct := pgmirror.Spec{Source: ref, Schema: schema, Table: "direct", Key: []string{"id"}}

	// The staged target is created at v0 (no rows) and gets the rows as an
	// increment; the direct one starts at v1.
	if res := syncOK(t, m, staged); res.Mode != pgmirror.ModeFirstLoad {
		t.Fatalf("v0: %s", res)
	}
	f.commit([]delta.Add{f.file(extra(rows(0, 30000, "i / 3")), nil), f.file(extra(rows(30000, 31000, "NULL")), nil)}, nil, nil)
	if res := syncOK(t, m, staged); res.Mode != pgmirror.ModeIncremental || res.Direct || res.RowsUpserted != 31000 {
		t.Errorf("staged: %s", res)
	}
	res := syncOK(t, m, direct)
	if res.Mode != pgmirror.ModeFirstLoad || !res.Direct || res.RowsCopied != 31000 || res.FilesRead != 2 {
		t.Errorf("direct: %s; want a direct first load of 31000 rows from 2 files", res)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "direct")
	lakeRows, lakeSchema := pgmirrortest.LakeRows(t, f.store, ref, warehouse.Latest())
	if !slices.Equal(pgmirrortest.PGRows(t, conn, schema, "direct", lakeSchema), pgmirrortest.PGRows(t, conn, schema, "staged", lakeSchema)) {
		t.Error("the direct and the staged targets hold different rows")
	}
	if len(lakeRows) != 31000 {
		t.Errorf("%d lake rows", len(lakeRows))
	}
	gotShape, wantShape := tableShape(t, conn, schema, "direct"), tableShape(t, conn, schema, "staged")
	if gotShape != wantShape {
		t.Errorf("direct target:\n%s\nstaged target:\n%s", gotShape, wantShape)
	}
	if !strings.Contains(gotShape, "T_pkey PRIMARY KEY (id)") {
		t.Errorf("no primary key on the direct target: %s", gotShape)
	}
	if res := syncOK(t, m, direct); res.Mode != pgmirror.ModeUpToDate {
		t.Errorf("rerun: %s", res)
	}

	// An existing target without a state row is reloaded (truncated, then
	// copied straight into it, its key index kept).
	forget := func(table string) {
		t.Helper()
		if _, err := conn.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema, pgmirror.StateTable}.Sanitize()+" WHERE target = $1", schema+"."+table); err != nil {
			t.Fatal(err)
		}
	}
	forget("direct")
	if res := syncOK(t, m, direct); res.Mode != pgmirror.ModeFirstLoad || !res.Direct || res.RowsCopied != 31000 {
		t.Errorf("reload: %s", res)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "direct")
	if got := tableShape(t, conn, schema, "direct"); got != wantShape {
		t.Errorf("after the reload:\n%s\nwant:\n%s", got, wantShape)
	}

	// A rebuild is direct.
	if res, err := m.Rebuild(ctx, direct); err != nil || !res.Direct || res.RowsCopied != 31000 {
		t.Errorf("rebuild: %v, %v", res, err)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "direct")
	if got := tableShape(t, conn, schema, "direct"); got != wantShape {
		t.Errorf("after the rebuild:\n%s\nwant:\n%s", got, wantShape)
	}

	// The lake repeats key 5 (in a later file, twice): the first load and
	// a reload fall back to the staged path, where the last row of the
	// last file wins.
	f.commit([]delta.Add{f.file(extra("SELECT * FROM ("+rows(5, 6, "-1")+" UNION ALL "+rows(5, 6, "-2")+") ORDER BY val DESC"), nil)}, nil, nil)
	dup := pgmirror.Spec{Source: ref, Schema: schema, Table: "dup", Key: []string{"id"}}
	checkDup := func(what string, res *pgmirror.Result) {
		t.Helper()
		if res.Mode != pgmirror.ModeFirstLoad || res.Direct || res.RowsCopied != 31002 || res.RowsUpserted != 31000 {
			t.Errorf("%s: %s; want the staged path", what, res)
		}
		var n int64
		var val float64
		q := fmt.Sprintf("SELECT (SELECT count(*) FROM %[1]s), (SELECT val FROM %[1]s WHERE id = 5)", pgx.Identifier{schema, "dup"}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&n, &val); err != nil || n != 31000 || val != -2 {
			t.Errorf("%s: %d rows, id 5 has val %v (%v); want 31000 rows and -2", what, n, val, err)
		}
		if got := tableShape(t, conn, schema, "dup"); got != wantShape {
			t.Errorf("%s:\n%s\nwant:\n%s", what, got, wantShape)
		}
	}
	checkDup("first load", syncOK(t, m, dup))
	forget("dup")
	checkDup("reload", syncOK(t, m, dup))
	if res := syncOK(t, m, dup); res.Mode != pgmirror.ModeUpToDate {
		t.Errorf("rerun: %s", res)
	}
}

// TestPrimaryKeyInKeyOrder: the primary key lists its columns as key: does,
// not in table order, whichever path creates the table, so its index
// serves a filter on the first key column.
func TestPrimaryKeyInKeyOrder(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_keyorder_")
	ctx := context.Background()
	ref := warehouse.TableRef{Schema: "silver", Name: "keyorder"}
	f := newFixture(t, ref, basicSchema)
	m := f.mirror(dsn)
	staged := pgmirror.Spec{Source: ref, Schema: schema, Table: "staged", Key: []string{"grp", "id"}}
	syncOK(t, m, staged) // created at v0, before any row
	f.commit([]delta.Add{f.file(rows(0, 100, "i"), nil)}, nil, nil)
	direct := pgmirror.Spec{Source: ref, Schema: schema, Table: "direct", Key: []string{"grp", "id"}}
	if res := syncOK(t, m, direct); !res.Direct {
		t.Fatalf("want a direct first load: %s", res)
	}
	syncOK(t, m, staged)
	for _, table := range []string{"staged", "direct"} {
		var def string
		err := conn.QueryRow(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`,
			pgx.Identifier{schema, table}.Sanitize()).Scan(&def)
		if err != nil {
			t.Fatalf("%s: primary key: %v", table, err)
		}
		if def != "PRIMARY KEY (grp, id)" {
			t.Errorf("%s: %s, want PRIMARY KEY (grp, id)", table, def)
		}
	}
}
