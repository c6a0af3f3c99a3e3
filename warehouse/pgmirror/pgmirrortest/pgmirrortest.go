// Package pgmirrortest holds test helpers for the PostgreSQL mirror: a
// fresh PostgreSQL schema per test, and the comparison of a mirrored table
// with its lake table, row by row, by a query on each side.
package pgmirrortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

// Schema creates a PostgreSQL schema for one test, named prefix plus a
// random suffix, dropped with everything in it when the test ends. It
// returns the name and a connection, closed when the test ends.
func Schema(t testing.TB, dsn, prefix string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		conn.Close(ctx)
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
		conn.Close(ctx)
	})
	return name, conn
}

// State returns the mirrored version of schema.table from
// medallion_mirror_state, and whether there is a row (or a state table).
func State(t testing.TB, conn *pgx.Conn, schema, table string) (int64, bool) {
	t.Helper()
	var v int64
	var exists bool
	id := pgx.Identifier{schema, pgmirror.StateTable}.Sanitize()
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", id).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return 0, false
	}
	err := conn.QueryRow(context.Background(), "SELECT version FROM "+pgx.Identifier{schema, pgmirror.StateTable}.Sanitize()+" WHERE target = $1",
		schema+"."+table).Scan(&v)
	if err == pgx.ErrNoRows {
		return 0, false
	}
	if err != nil {
		t.Fatalf("read mirror state of %s.%s: %v", schema, table, err)
	}
	return v, true
}

// LakeRows returns the rows of a lake table at asOf, as canonical text
// lines (sorted), and the table's Delta schema.
func LakeRows(t testing.TB, store lake.Store, ref warehouse.TableRef, asOf warehouse.AsOf) ([]string, *delta.Schema) {
	t.Helper()
	return lakeRows(t, store, ref, asOf, nil)
}

// lakeRows is LakeRows of the columns keep keeps (nil: all).
func lakeRows(t testing.TB, store lake.Store, ref warehouse.TableRef, asOf warehouse.AsOf, keep func(string) bool) ([]string, *delta.Schema) {
	t.Helper()
	ctx := context.Background()
	tbl := delta.Open(store, ref.Dir())
	var snap *delta.Snapshot
	var err error
	if asOf.HasVersion {
		snap, err = tbl.SnapshotAt(ctx, asOf.Version)
	} else {
		snap, err = tbl.Snapshot(ctx)
	}
	if err != nil {
		t.Fatalf("lake table %s: %v", ref, err)
	}
	schema, err := snap.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if keep != nil {
		kept := &delta.Schema{}
		for _, f := range schema.Fields {
			if keep(f.Name) {
				kept.Fields = append(kept.Fields, f)
			}
		}
		schema = kept
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cache := &lake.Cache{Dir: t.TempDir()}
	if err := warehouse.Attach(ctx, eng, store, cache, []warehouse.TableRef{ref}, warehouse.AsOf{Version: snap.Version, HasVersion: true}); err != nil {
		t.Fatalf("attach %s: %v", ref, err)
	}
	exprs := make([]string, len(schema.Fields))
	for i, f := range schema.Fields {
		id := pgx.Identifier{f.Name}.Sanitize() // DuckDB quotes the same way
		_, _, dec := f.Type.Decimal()
		switch {
		case !f.Type.IsPrimitive():
			exprs[i] = "CAST(to_json(" + id + ") AS VARCHAR)"
		case dec:
			exprs[i] = "CAST(" + id + " AS VARCHAR)"
		case f.Type.Name == delta.TypeBinary:
			exprs[i] = "lower(hex(" + id + "))"
		default:
			exprs[i] = id
		}
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + pgx.Identifier{ref.Schema, ref.Name}.Sanitize()
	rows, err := eng.DB().QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("query %s: %v\n%s", ref, err, q)
	}
	defer rows.Close()
	var out []string
	vals := make([]any, len(exprs))
	ptrs := make([]any, len(exprs))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, line(schema, vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out, schema
}

// PGRows returns the rows of schema.table in the columns of the lake
// schema, as canonical text lines (sorted).
func PGRows(t testing.TB, conn *pgx.Conn, schema, table string, lakeSchema *delta.Schema) []string {
	t.Helper()
	exprs := make([]string, len(lakeSchema.Fields))
	for i, f := range lakeSchema.Fields {
		id := pgx.Identifier{f.Name}.Sanitize()
		_, _, dec := f.Type.Decimal()
		switch {
		case !f.Type.IsPrimitive(), dec:
			exprs[i] = id + "::text"
		case f.Type.Name == delta.TypeBinary:
			exprs[i] = "encode(" + id + ", 'hex')"
		default:
			exprs[i] = id
		}
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + pgx.Identifier{schema, table}.Sanitize()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("query %s.%s: %v", schema, table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, line(lakeSchema, vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// AssertEqual fails t unless PostgreSQL's schema.table holds exactly the
// rows of the lake table at asOf (duplicates counted), in every lake
// column but the lineage ones (_source_file...) a mirror leaves out by
// default. It returns the number of rows.
func AssertEqual(t testing.TB, store lake.Store, ref warehouse.TableRef, asOf warehouse.AsOf, conn *pgx.Conn, schema, table string) int {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2`, schema, table)
	if err != nil {
		t.Fatalf("columns of %s.%s: %v", schema, table, err)
	}
	pgCols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("columns of %s.%s: %v", schema, table, err)
	}
	keep := func(name string) bool {
		if slices.Contains(pgCols, name) {
			return true
		}
		if !strings.HasPrefix(name, "_") {
			t.Errorf("%s.%s lacks lake column %s of %s", schema, table, name, ref)
		}
		return false
	}
	want, lakeSchema := lakeRows(t, store, ref, asOf, keep)
	got := PGRows(t, conn, schema, table, lakeSchema)
	if slices.Equal(got, want) {
		return len(got)
	}
	extra, missing := diff(got, want)
	t.Errorf("%s.%s differs from %s (%d rows in PostgreSQL, %d in the lake)\nonly in PostgreSQL (%d):\n%s\nonly in the lake (%d):\n%s",
		schema, table, ref, len(got), len(want), len(extra), head(extra), len(missing), head(missing))
	return len(got)
}

func diff(got, want []string) (extra, missing []string) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		if count[g] > 0 {
			count[g]--
			continue
		}
		extra = append(extra, g)
	}
	for _, w := range want {
		if count[w] > 0 {
			count[w]--
			missing = append(missing, w)
		}
	}
	return extra, missing
}

func head(lines []string) string {
	if len(lines) > 10 {
		return strings.Join(lines[:10], "\n") + fmt.Sprintf("\n... %d more", len(lines)-10)
	}
	return strings.Join(lines, "\n")
}

// line renders one row canonically, so that DuckDB's and pgx's Go values
// of the same data print the same.
func line(schema *delta.Schema, vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = canon(v, !schema.Fields[i].Type.IsPrimitive())
	}
	return strings.Join(parts, " | ")
}

func canon(v any, isJSON bool) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("%d", x)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return hex.EncodeToString(x)
	case string:
		if isJSON {
			return canonJSON(x)
		}
		return strconv.Quote(x)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func canonJSON(s string) string {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "bad json " + strconv.Quote(s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
