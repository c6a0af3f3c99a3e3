package pgmirror

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/medallion-dev/medallion/lake/delta"
)

// column is one column of a mirrored table: the lake's name and the
// PostgreSQL type it maps to.
type column struct {
	name    string // in the lake
	pg      string // in PostgreSQL (names: lower changes it)
	pgType  string // as format_type() spells it, which is also valid DDL
	key     bool
	keyPos  int  // position in the pipeline's key:, which orders the primary key's index
	decimal bool // values arrive as decimal text and are sent as numeric
}

// PGType returns the PostgreSQL type of a Delta type, spelled as
// PostgreSQL's format_type() prints it: string -> text, long -> bigint,
// integer -> integer, short and byte -> smallint, double -> double
// precision, float -> real, boolean -> boolean, date -> date, timestamp ->
// timestamp with time zone, timestamp_ntz -> timestamp without time zone,
// decimal(p,s) -> numeric(p,s), binary -> bytea, and struct, array and map
// -> jsonb.
func PGType(t delta.DataType) (string, error) {
	switch t.Name {
	case delta.TypeString:
		return "text", nil
	case delta.TypeLong:
		return "bigint", nil
	case delta.TypeInteger:
		return "integer", nil
	case delta.TypeShort, delta.TypeByte:
		return "smallint", nil
	case delta.TypeDouble:
		return "double precision", nil
	case delta.TypeFloat:
		return "real", nil
	case delta.TypeBoolean:
		return "boolean", nil
	case delta.TypeDate:
		return "date", nil
	case delta.TypeTimestamp:
		return "timestamp with time zone", nil
	case delta.TypeTimestampNTZ:
		return "timestamp without time zone", nil
	case delta.TypeBinary:
		return "bytea", nil
	case "struct", "array", "map":
		return "jsonb", nil
	}
	if p, s, ok := t.Decimal(); ok {
		return fmt.Sprintf("numeric(%d,%d)", p, s), nil
	}
	return "", fmt.Errorf("Delta type %q has no PostgreSQL mapping", t.Name)
}

// lakeColumns maps the lake schema to the columns the spec copies and
// checks the key; existing is the target as it is (nil: none, or rebuilt).
func lakeColumns(s Spec, schema *delta.Schema, existing *pgTable) ([]column, error) {
	cols := make([]column, 0, len(schema.Fields))
	all := make([]string, 0, len(schema.Fields))
	for _, f := range schema.Fields {
		all = append(all, f.Name)
		if !s.selected(f.Name, existing) {
			continue
		}
		typ, err := PGType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("%s column %s: %w", s.Source, f.Name, err)
		}
		_, _, dec := f.Type.Decimal()
		cols = append(cols, column{name: f.Name, pg: s.pgName(f.Name), pgType: typ, decimal: dec})
	}
	if err := checkNames(s, cols, all); err != nil {
		return nil, err
	}
	for pos, k := range s.Key {
		i := slices.IndexFunc(cols, func(c column) bool { return c.name == k })
		if i < 0 {
			return nil, fmt.Errorf("mirror %s: key column %q is not a column of %s (columns: %s); fix key: in medallion.yaml",
				s, k, s.Source, strings.Join(all, ", "))
		}
		cols[i].key = true
		cols[i].keyPos = pos
	}
	return cols, nil
}

// keyColumns returns the key columns in key: order, not table order: the
// primary key's index then serves dashboards filtering on its first column
// (key: [meter_id, window_start] answers WHERE meter_id = $1).
func keyColumns(cols []column) []column {
	var out []column
	for _, c := range cols {
		if c.key {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b column) int { return a.keyPos - b.keyPos })
	return out
}

// pgTable is what the catalog says about an existing target table.
type pgTable struct {
	cols []pgColumn
	pk   []string // primary key columns, in index order
}

type pgColumn struct {
	name, typ string
}

func (t *pgTable) column(name string) (pgColumn, bool) {
	for _, c := range t.cols {
		if c.name == name {
			return c, true
		}
	}
	return pgColumn{}, false
}

// describe reads the columns and primary key of a table; nil when it does
// not exist.
func describe(ctx context.Context, tx pgx.Tx, id pgx.Identifier) (*pgTable, error) {
	var oid pgtype.Uint32
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1)::oid", id.Sanitize()).Scan(&oid); err != nil {
		return nil, fmt.Errorf("look up %s: %w", id.Sanitize(), err)
	}
	if !oid.Valid {
		return nil, nil
	}
	t := &pgTable{}
	rows, err := tx.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid.Uint32)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", id.Sanitize(), err)
	}
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("columns of %s: %w", id.Sanitize(), err)
		}
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", id.Sanitize(), err)
	}
	rows, err = tx.Query(ctx, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n`, oid.Uint32)
	if err != nil {
		return nil, fmt.Errorf("primary key of %s: %w", id.Sanitize(), err)
	}
	t.pk, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("primary key of %s: %w", id.Sanitize(), err)
	}
	return t, nil
}

// reconcile compares an existing target with the lake columns: it returns
// the lake columns the target lacks (to add), or an IncompatibleError for
// a changed type, a column the lake no longer has, or another key.
func reconcile(s Spec, cols []column, t *pgTable) ([]column, error) {
	if len(t.pk) == 0 {
		return nil, incompatible(s, "the table has no primary key (the pipeline's key: is %s)", keyList(s.Key))
	}
	var pgKey []string
	for _, c := range keyColumns(cols) {
		pgKey = append(pgKey, c.pg)
	}
	if !sameSet(t.pk, pgKey) {
		return nil, incompatible(s, "its primary key is %s but the pipeline's key: is now %s", keyList(t.pk), keyList(pgKey))
	}
	var missing []column
	for _, c := range cols {
		pc, ok := t.column(c.pg)
		if !ok {
			missing = append(missing, c)
			continue
		}
		if pc.typ != c.pgType {
			return nil, incompatible(s, "column %s is %s but %s now has %s (mapped to %s)", quoteName(c.pg), pc.typ, s.Source, c.name, c.pgType)
		}
	}
	for _, pc := range t.cols {
		if !slices.ContainsFunc(cols, func(c column) bool { return c.pg == pc.name }) {
			return nil, incompatible(s, "column %s is no longer in %s (or no longer chosen by columns:, exclude: or names:)", quoteName(pc.name), s.Source)
		}
	}
	return missing, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func keyList(k []string) string {
	q := make([]string, len(k))
	for i, s := range k {
		q[i] = quoteName(s)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// quoteName shows a column name in a message: bare when it is a plain
// lower-case name, quoted otherwise.
func quoteName(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return pgx.Identifier{s}.Sanitize()
}

// createTableSQL is the DDL of a target table named id with the primary
// key constraint pkName; none when pkName is empty (a direct load adds it
// after the rows).
func createTableSQL(id pgx.Identifier, pkName string, cols []column) string {
	defs := make([]string, 0, len(cols)+1)
	for _, c := range cols {
		def := pgx.Identifier{c.pg}.Sanitize() + " " + c.pgType
		if c.key {
			// As the primary key would: a NULL key fails the COPY at
			// once, naming the column.
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	if pkName != "" {
		defs = append(defs, "CONSTRAINT "+pgx.Identifier{pkName}.Sanitize()+" PRIMARY KEY ("+strings.Join(quoted(keyColumns(cols)), ", ")+")")
	}
	return "CREATE TABLE " + id.Sanitize() + " (" + strings.Join(defs, ", ") + ")"
}

// pkName is the primary key constraint name of table: table_pkey, the
// table name shortened to fit PostgreSQL's 63 bytes.
func pkName(table string) string { return fitName(table, "_pkey") }

// fitName appends suffix to name, cutting name (at a character boundary)
// so that the result fits in 63 bytes.
func fitName(name, suffix string) string {
	limit := maxIdent - len(suffix)
	if len(name) > limit {
		cut := 0
		for i := range name {
			if i > limit {
				break
			}
			cut = i
		}
		name = name[:cut]
	}
	return name + suffix
}
