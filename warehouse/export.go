package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

// FileSpec is one data file of a Delta table to read with ReadFile.
type FileSpec struct {
	Schema           *delta.Schema // the table schema the rows are cast to
	PartitionColumns []string      // the table's partition columns (their values come from File)
	File             delta.Add     // the file's add action (partition values)
	Path             string        // a local path of the file (Cache.Path)
	// Columns are the schema columns to read, in this order; nil reads every
	// schema column in schema order.
	Columns []string
}

// FileRows streams the rows of one data file: call Next until it returns
// false, then Err; Close always. It holds one DuckDB connection until Close.
// Not safe for concurrent use.
type FileRows struct {
	conn   *sql.Conn
	rows   *sql.Rows
	vals   []any
	ptrs   []any
	pos    int64
	hasPos bool
	err    error
}

// positionColumn is the row-number column DuckDB's read_parquet adds with
// file_row_number = true.
const positionColumn = "file_row_number"

// ReadFile opens a stream over the rows of one data file of a Delta table,
// with bounded memory (DuckDB hands rows over a chunk at a time).
//
// Every column is cast to its type in the Delta schema, as the table views
// of Attach do: a column the file lacks (added to the table later) reads as
// NULL, partition columns come from the file's partition values. Values are
// plain Go values that need nothing from DuckDB to use: nil for NULL,
// string, int8, int16, int32, int64, float32, float64, bool, []byte,
// time.Time (date: midnight UTC; timestamp: UTC; timestamp_ntz: the wall
// clock as UTC), a decimal as its exact decimal text (string), and a struct,
// array or map as JSON text (string).
func (e *Engine) ReadFile(ctx context.Context, spec FileSpec) (*FileRows, error) {
	q, hasPos, err := fileSQL(spec)
	if err != nil {
		return nil, err
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", spec.Path, err)
	}
	// Partition values of timestamps are UTC, as Delta writes them.
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("read %s: %w", spec.Path, err)
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read %s: %w", spec.Path, err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		conn.Close()
		return nil, fmt.Errorf("read %s: %w", spec.Path, err)
	}
	fr := &FileRows{conn: conn, rows: rows, vals: make([]any, len(cols)), ptrs: make([]any, len(cols)), hasPos: hasPos}
	for i := range fr.vals {
		fr.ptrs[i] = &fr.vals[i]
	}
	return fr, nil
}

// Next advances to the next row. It returns false at the end or on an
// error (see Err).
func (r *FileRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	if r.hasPos {
		last := len(r.vals) - 1
		switch p := r.vals[last].(type) {
		case int64:
			r.pos = p
		default:
			r.pos = 0
		}
	} else {
		r.pos++
	}
	return true
}

// Values are the current row's columns, in FileSpec.Columns order. The
// slice is reused by Next.
func (r *FileRows) Values() []any {
	if r.hasPos {
		return r.vals[:len(r.vals)-1]
	}
	return r.vals
}

// Position is the current row's position in the file, from 0: with
// Position, rows of one file are ordered even when DuckDB reads them in
// parallel.
func (r *FileRows) Position() int64 {
	if r.hasPos {
		return r.pos
	}
	return r.pos - 1
}

// Err is the error that ended Next early, if any.
func (r *FileRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// Close releases the query and its connection.
func (r *FileRows) Close() error {
	err := r.rows.Close()
	if cerr := r.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileSQL builds the query behind ReadFile. hasPos says the last column is
// the row's position in the file (left out when a table column has the
// position column's name).
func fileSQL(spec FileSpec) (string, bool, error) {
	if spec.Schema == nil {
		return "", false, fmt.Errorf("read %s: no schema", spec.Path)
	}
	schema := spec.Schema
	isPart := func(name string) bool {
		return slices.ContainsFunc(spec.PartitionColumns, func(p string) bool { return strings.EqualFold(p, name) })
	}
	hasPos := !slices.ContainsFunc(schema.Fields, func(f delta.Field) bool { return strings.EqualFold(f.Name, positionColumn) })

	// A typed, empty branch first: columns the file lacks read as NULL.
	var seed, consts []string
	for _, f := range schema.Fields {
		typ, err := DuckType(f.Type)
		if err != nil {
			return "", false, fmt.Errorf("column %s: %w", f.Name, err)
		}
		seed = append(seed, fmt.Sprintf("CAST(NULL AS %s) AS %s", typ, QuoteIdent(f.Name)))
		if isPart(f.Name) {
			lit := PartitionLiteral(spec.File.PartitionValues, f.Name, f.Type)
			consts = append(consts, fmt.Sprintf("CAST(%s AS %s) AS %s", lit, typ, QuoteIdent(f.Name)))
		}
	}
	if hasPos {
		seed = append(seed, "CAST(NULL AS BIGINT) AS "+QuoteIdent(positionColumn))
	}
	sel := "*"
	if len(consts) > 0 {
		sel += ", " + strings.Join(consts, ", ")
	}
	opts := "hive_partitioning = false"
	if hasPos {
		opts += ", file_row_number = true"
	}

	cols := spec.Columns
	if cols == nil {
		for _, f := range schema.Fields {
			cols = append(cols, f.Name)
		}
	}
	outer := make([]string, 0, len(cols)+1)
	for _, name := range cols {
		f, ok := fieldFold(schema, name)
		if !ok {
			return "", false, fmt.Errorf("read %s: no column %q in the table schema", spec.Path, name)
		}
		id := QuoteIdent(f.Name)
		switch {
		case !f.Type.IsPrimitive():
			outer = append(outer, fmt.Sprintf("CAST(to_json(%s) AS VARCHAR) AS %s", id, id))
		default:
			typ, err := DuckType(f.Type)
			if err != nil {
				return "", false, fmt.Errorf("column %s: %w", f.Name, err)
			}
			if _, _, isDec := f.Type.Decimal(); isDec {
				outer = append(outer, fmt.Sprintf("CAST(CAST(%s AS %s) AS VARCHAR) AS %s", id, typ, id))
			} else {
				outer = append(outer, fmt.Sprintf("CAST(%s AS %s) AS %s", id, typ, id))
			}
		}
	}
	if hasPos {
		outer = append(outer, QuoteIdent(positionColumn))
	}
	q := fmt.Sprintf("SELECT %s\nFROM (\n  SELECT %s WHERE false\n  UNION ALL BY NAME\n  SELECT %s FROM read_parquet(%s, %s)\n) AS t",
		strings.Join(outer, ", "), strings.Join(seed, ", "), sel, sqlStringList([]string{spec.Path}), opts)
	return q, hasPos, nil
}

func fieldFold(s *delta.Schema, name string) (delta.Field, bool) {
	if f, ok := s.Field(name); ok {
		return f, true
	}
	for _, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return delta.Field{}, false
}
