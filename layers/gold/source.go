package gold

import (
	"context"
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// input is one table a gold table reads, at the snapshot the run uses.
type input struct {
	ref    layers.TableRef
	tbl    *delta.Table
	snap   *delta.Snapshot
	schema *delta.Schema
}

// openInput reads the latest snapshot of an input table. A table with no
// log is an error wrapping delta.ErrNoTable that says what to run first.
func (r *runner) openInput(ctx context.Context, ref layers.TableRef) (*input, error) {
	tbl := r.deps.OpenTable(ref.Dir())
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: read input %s: %w (run `medallion run %s` first)", r.ref, ref, err, ref.Layer)
	}
	in := &input{ref: ref, tbl: tbl, snap: snap}
	if snap.Metadata.SchemaString != "" {
		if in.schema, err = snap.Schema(); err != nil {
			return nil, fmt.Errorf("%s: input %s: %w", r.ref, ref, err)
		}
	} else if len(snap.Files) > 0 {
		return nil, fmt.Errorf("%s: input %s has data files but no schema", r.ref, ref)
	}
	return in, nil
}

// relation returns a SELECT yielding the rows of the given data files of
// in (all of them: in.snap.Files), with every column of the table schema in
// schema order: partition values of partitioned tables are put back in,
// and columns no file has yet are NULL. With no files it is an empty
// relation of the right types.
func (r *runner) relation(ctx context.Context, in *input, files []delta.Add) (string, error) {
	if in.schema == nil {
		return "", fmt.Errorf("%s: input %s has no schema yet", r.ref, in.ref)
	}
	types := make([]string, len(in.schema.Fields))
	for i, f := range in.schema.Fields {
		t, err := warehouse.DuckType(f.Type)
		if err != nil {
			return "", fmt.Errorf("%s: input %s column %s: %w", r.ref, in.ref, f.Name, err)
		}
		types[i] = t
	}
	if len(files) == 0 {
		sel := make([]string, len(in.schema.Fields))
		for i, f := range in.schema.Fields {
			sel[i] = "CAST(NULL AS " + types[i] + ") AS " + warehouse.QuoteIdent(f.Name)
		}
		return "SELECT " + strings.Join(sel, ", ") + " WHERE false", nil
	}
	paths, err := r.localFiles(ctx, in.tbl, in.ref.String(), in.snap.Version, files)
	if err != nil {
		return "", fmt.Errorf("%s: read input %s: %w", r.ref, in.ref, err)
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = warehouse.QuoteString(p)
	}
	partCols := in.snap.Metadata.PartitionColumns
	const fileCol = "__medallion_file"
	scan := "read_parquet([" + strings.Join(quoted, ", ") + "], union_by_name = true"
	if len(partCols) > 0 {
		scan += ", filename = " + warehouse.QuoteString(fileCol)
	}
	scan += ")"
	present, err := r.describe(ctx, "SELECT * FROM "+scan)
	if err != nil {
		return "", fmt.Errorf("%s: read input %s: %w", r.ref, in.ref, err)
	}
	has := map[string]bool{}
	for _, c := range present {
		has[strings.ToLower(c.Name)] = true
	}
	isPart := map[string]bool{}
	for _, c := range partCols {
		isPart[strings.ToLower(c)] = true
	}
	sel := make([]string, len(in.schema.Fields))
	for i, f := range in.schema.Fields {
		q := warehouse.QuoteIdent(f.Name)
		switch {
		case isPart[strings.ToLower(f.Name)]:
			sel[i] = "CAST(pv." + q + " AS " + types[i] + ") AS " + q
		case has[strings.ToLower(f.Name)]:
			sel[i] = "d." + q
		default:
			sel[i] = "CAST(NULL AS " + types[i] + ") AS " + q
		}
	}
	query := "SELECT " + strings.Join(sel, ", ") + " FROM " + scan + " AS d"
	if len(partCols) > 0 {
		// Partition values live in the log, not in the files: join them
		// back by file name.
		vals := make([]string, len(files))
		for i, f := range files {
			row := []string{warehouse.QuoteString(paths[i])}
			for _, c := range partCols {
				field, _ := in.schema.Field(c)
				row = append(row, warehouse.PartitionLiteral(f.PartitionValues, c, field.Type)+"::VARCHAR")
			}
			vals[i] = "(" + strings.Join(row, ", ") + ")"
		}
		names := []string{warehouse.QuoteIdent(fileCol)}
		for _, c := range partCols {
			names = append(names, warehouse.QuoteIdent(c))
		}
		query += " JOIN (VALUES " + strings.Join(vals, ", ") + ") AS pv(" + strings.Join(names, ", ") + ") ON d." +
			warehouse.QuoteIdent(fileCol) + " = pv." + warehouse.QuoteIdent(fileCol)
	}
	return query, nil
}
