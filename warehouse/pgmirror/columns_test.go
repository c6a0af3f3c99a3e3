package pgmirror_test

import (
	"context"
	"errors"
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

var lineage = []string{"_rescued", "_source_file", "_ingested_at", "_batch_id"}

// pgColumns lists the columns of a PostgreSQL table in order.
func pgColumns(t *testing.T, conn *pgx.Conn, schema, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// TestMirrorColumnChoice: lineage columns are left out unless asked,
// columns: and exclude: choose, names: lower gives plain names that
// dashboards use unquoted, and the key is always there.
func TestMirrorColumnChoice(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_cols_")
	ref := warehouse.TableRef{Schema: "bronze", Name: "meters"}
	lakeSchema := schemaOf(field("Meter ID", "string"), field("Usage", "double"), field("note", "string"),
		field("_source_file", "string"), field("_batch_id", "string"))
	f := newFixture(t, ref, lakeSchema)
	f.commit([]delta.Add{f.file(`SELECT 'm' || i AS "Meter ID", CAST(i AS DOUBLE) AS "Usage", 'n' AS note,
		'raw/x.csv' AS _source_file, 'b1' AS _batch_id FROM range(0, 50) t(i)`, nil)}, nil, nil)
	m := f.mirror(dsn)
	base := pgmirror.Spec{Source: ref, Schema: schema, Key: []string{"Meter ID"}, Lineage: lineage}

	for _, tc := range []struct {
		table string
		edit  func(*pgmirror.Spec)
		want  []string
	}{
		{"as_declared", func(s *pgmirror.Spec) {}, []string{"Meter ID", "Usage", "note"}},
		{"lower", func(s *pgmirror.Spec) { s.Names = pgmirror.NamesLower }, []string{"meter_id", "usage", "note"}},
		{"exclude", func(s *pgmirror.Spec) { s.Exclude = []string{"note"}; s.Names = pgmirror.NamesLower }, []string{"meter_id", "usage"}},
		{"columns", func(s *pgmirror.Spec) { s.Columns = []string{"Usage", "_source_file"} }, []string{"Meter ID", "Usage", "_source_file"}},
	} {
		spec := base
		spec.Table = tc.table
		tc.edit(&spec)
		syncOK(t, m, spec)
		if got := pgColumns(t, conn, schema, tc.table); !slices.Equal(got, tc.want) {
			t.Errorf("%s: columns %q, want %q", tc.table, got, tc.want)
		}
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{schema, tc.table}.Sanitize()).Scan(&n); err != nil || n != 50 {
			t.Errorf("%s: %d rows (%v), want 50", tc.table, n, err)
		}
	}
	// Unquoted names work with names: lower, and an upsert after a new
	// version writes the chosen columns only.
	f.commit([]delta.Add{f.file(`SELECT 'm1' AS "Meter ID", 99.0 AS "Usage", 'changed' AS note, 'raw/y.csv' AS _source_file, 'b2' AS _batch_id`, nil)}, nil, nil)
	spec := base
	spec.Table, spec.Names = "lower", pgmirror.NamesLower
	syncOK(t, m, spec)
	var usage float64
	if err := conn.QueryRow(context.Background(), "SELECT usage FROM "+schema+".lower WHERE meter_id = 'm1'").Scan(&usage); err != nil || usage != 99 {
		t.Errorf("unquoted query: usage %v (%v), want 99", usage, err)
	}

	// A target made with lineage columns (before they were left out by
	// default) keeps them rather than failing; leaving out a column the
	// target has asks for a rebuild, which drops it.
	old := base
	old.Table, old.Columns = "old", []string{"Meter ID", "Usage", "note", "_source_file", "_batch_id"}
	syncOK(t, m, old)
	old.Columns = nil
	syncOK(t, m, old)
	if got := pgColumns(t, conn, schema, "old"); len(got) != 5 {
		t.Errorf("existing lineage columns were not kept: %q", got)
	}
	old.Exclude = []string{"note"}
	_, err := m.Sync(context.Background(), old)
	if !errors.Is(err, pgmirror.ErrIncompatible) || !strings.Contains(err.Error(), "--rebuild") {
		t.Fatalf("excluding a mirrored column: %v; want an incompatible error asking for --rebuild", err)
	}
	if _, err := m.Rebuild(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if got := pgColumns(t, conn, schema, "old"); !slices.Equal(got, []string{"Meter ID", "Usage"}) {
		t.Errorf("after rebuild: %q, want the chosen columns without lineage", got)
	}

	// Two lake names that are one PostgreSQL name, and unknown columns, are refused.
	bad := base
	bad.Table, bad.Names, bad.Columns = "bad", pgmirror.NamesLower, []string{"nope"}
	if _, err := m.Sync(context.Background(), bad); err == nil || !strings.Contains(err.Error(), `column nope is not a column of bronze.meters`) {
		t.Errorf("unknown column: %v", err)
	}
}
