package bronze

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Schema changes of a bronze table (see layers/schemachange.go and
// docs/schema-changes.md).
//
// Before a run promotes anything, checkSchema compares the declared
// columns with the table's: a declared column the table lacks is new (it
// is added by the first commit of rows, in the same commit); a table
// column the pipeline no longer declares, or a declared column whose type
// differs, stops the run with a *layers.SchemaChangeError, unless the
// column says how to carry the earlier values over: renamed_from: OLD (the
// table's column OLD is this one) or cast_from: TYPE (the table's values
// are of TYPE, and every TYPE value is one of the new type).
//
// Such a change is applied by rewriting the table's files in one commit
// (migrate): each file is read and written again with the column renamed
// or cast, the old files removed and the new schema written as a metaData
// action, all with dataChange=false (the rows are the same rows, so
// silver, which reads bronze's changes, reads nothing new). Readers see
// the table before or after, never a mix; a crash before the commit
// leaves only orphan files that vacuum deletes. Rewriting costs one read
// and one write of the table; it keeps every reader (DuckDB, Spark, the
// mirror) correct without column mapping.
//
// A derived column's type is known only once a batch is typed: commitBronze
// compares the batch's whole schema with the table's and refuses anything
// but added columns the same way.

// lineageColumns are the columns bronze adds to every row.
var lineageColumns = []string{"_rescued", "_source_file", "_ingested_at", "_batch_id"}

// checkSchema compares the declared columns with the bronze table's and
// applies renamed_from and cast_from changes; it refuses a removed,
// renamed or retyped column that does not say how to keep its values.
// The comparison needs only the table's metadata, so it starts from the
// table's head (no file list, which grows with the table): the files are
// loaded only when there is a change to apply. pin gives the job's
// connection, which only a migration needs.
func (j *job) checkSchema(ctx context.Context, pin func(context.Context) (*sql.Conn, error)) error {
	if j.d.SchemaReplace {
		return nil
	}
	snap, err := j.head(ctx)
	if err != nil || snap == nil {
		return err
	}
	return j.checkSchemaOn(ctx, pin, snap)
}

// checkSchemaOn is checkSchema on snap.
func (j *job) checkSchemaOn(ctx context.Context, pin func(context.Context) (*sql.Conn, error), snap *delta.Snapshot) error {
	have, err := snap.Schema()
	if err != nil {
		return fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	want, renamed, err := j.declaredSchema()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, d := range j.plan.derived {
		known[strings.ToLower(d.Name)] = true
	}
	for _, c := range lineageColumns {
		known[c] = true
	}
	if j.plan.partCol != "" {
		known[strings.ToLower(j.plan.partCol)] = true
	}
	var apply, refused []layers.ColumnChange
	for _, c := range layers.DiffColumns(have, want, renamed) {
		switch c.Kind {
		case layers.ColumnAdded:
			// Added by the commit of the first batch (commitBronze).
		case layers.ColumnRemoved:
			if !known[strings.ToLower(c.Column)] {
				refused = append(refused, c)
			}
		case layers.ColumnRenamed:
			apply = append(apply, c)
		case layers.ColumnRetyped:
			col := j.column(c.Column)
			if col != nil && col.CastFrom != "" && configType(c.OldType) == col.CastFrom && config.Widens(col.CastFrom, col.Type) {
				apply = append(apply, c)
			} else {
				refused = append(refused, c)
			}
		}
	}
	if len(refused) > 0 {
		return j.schemaError(refused, layers.DiffColumns(have, want, renamed))
	}
	if len(apply) == 0 {
		return nil
	}
	for _, c := range apply {
		if j.plan.partCol != "" && (strings.EqualFold(c.Column, j.plan.partCol) || strings.EqualFold(c.From, j.plan.partCol)) {
			return fmt.Errorf("bronze %s: %s: the partition column cannot be renamed or cast in place; run `medallion refresh bronze.%s`",
				j.src.Name, c, j.src.Name)
		}
	}
	if !snap.FilesLoaded() {
		// Rewriting needs every file: decide again on the whole snapshot,
		// which may be newer than the head.
		full, err := j.snapshot(ctx)
		if err != nil || full == nil {
			return err
		}
		return j.checkSchemaOn(ctx, pin, full)
	}
	conn, err := pin(ctx)
	if err != nil {
		return err
	}
	return j.migrate(ctx, conn, snap, have, apply)
}

// declaredSchema is the Delta schema of the declared columns, and the
// earlier names of those declared with renamed_from.
func (j *job) declaredSchema() (*delta.Schema, map[string]string, error) {
	want := &delta.Schema{}
	renamed := map[string]string{}
	for _, c := range j.plan.cols {
		dt, err := warehouse.DeltaType(c.sqlType)
		if err != nil {
			return nil, nil, fmt.Errorf("bronze %s column %s: %w", j.src.Name, c.name, err)
		}
		want.Fields = append(want.Fields, delta.Field{Name: c.name, Type: dt, Nullable: true})
		if c.col.RenamedFrom != "" {
			renamed[c.name] = c.col.RenamedFrom
		}
	}
	return want, renamed, nil
}

// column returns the declared column named name (case-insensitive), or nil.
func (j *job) column(name string) *config.Column {
	for _, c := range j.src.Schema {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

// configType names a Delta type as the pipeline file does (long is int64).
func configType(t delta.DataType) string {
	switch t.Name {
	case delta.TypeLong:
		return "int64"
	case delta.TypeBoolean:
		return "bool"
	}
	return t.String()
}

// schemaError builds the error refusing changes (all is every difference,
// to pair a removed column with an added one of the same type: a rename).
func (j *job) schemaError(refused, all []layers.ColumnChange) error {
	e := &layers.SchemaChangeError{Table: layers.TableRef{Layer: layers.Bronze, Name: j.src.Name}, Changes: refused, TypeName: configType}
	file := j.d.PipelineFile
	srcPlace := layers.Place(file, j.src.Line, 0)
	for _, c := range all {
		if c.Kind == layers.ColumnAdded && slices.ContainsFunc(refused, func(r layers.ColumnChange) bool { return r.Kind == layers.ColumnRemoved }) {
			e.Changes = append(e.Changes, c)
		}
	}
	first := refused[0]
	switch first.Kind {
	case layers.ColumnRemoved:
		// The column that replaces it: the added one of the same type,
		// else the only added one.
		var added, only *layers.ColumnChange
		n := 0
		for i, c := range all {
			if c.Kind != layers.ColumnAdded {
				continue
			}
			n, only = n+1, &all[i]
			if added == nil && c.NewType.String() == first.OldType.String() {
				added = &all[i]
			}
		}
		if added == nil && n == 1 {
			added = only
		}
		if added != nil {
			col := j.column(added.Column)
			if col != nil {
				e.Place = layers.Place(file, col.Line, col.Col)
			}
			e.Keep = fmt.Sprintf("add `renamed_from: %s` to column %s", first.Column, added.Column)
			if old := configType(first.OldType); added.NewType.String() != first.OldType.String() && col != nil && config.Widens(old, col.Type) {
				e.Keep = fmt.Sprintf("add `renamed_from: %s` and `cast_from: %s` to column %s", first.Column, old, added.Column)
			}
		} else {
			e.Place = srcPlace
			e.Keep = fmt.Sprintf("add `renamed_from: %s` to the column that replaces it, or declare %s again", first.Column, first.Column)
		}
	case layers.ColumnRetyped:
		col := j.column(first.Column)
		if col != nil {
			e.Place = layers.Place(file, col.Line, col.Col)
		}
		old := configType(first.OldType)
		switch {
		case col != nil && config.Widens(old, col.Type):
			e.Keep = fmt.Sprintf("add `cast_from: %s` to column %s (every %s value is a %s)", old, first.Column, old, col.Type)
		case col != nil:
			e.Keep = fmt.Sprintf("declare column %s as %s again (%s cannot hold every %s value, so no cast_from applies)", first.Column, old, col.Type, old)
		}
	}
	return e
}

// migrate rewrites every file of the table on snap with the renames and
// casts of changes applied, and commits the new files, the removal of the
// old ones and the new schema at once.
func (j *job) migrate(ctx context.Context, conn *sql.Conn, snap *delta.Snapshot, have *delta.Schema, changes []layers.ColumnChange) error {
	// exprs maps a file column (lower case) to its select expression.
	rename := map[string]string{} // table name (lower) -> new name
	cast := map[string]delta.DataType{}
	for _, c := range changes {
		switch c.Kind {
		case layers.ColumnRenamed:
			rename[strings.ToLower(c.From)] = c.Column
		case layers.ColumnRetyped:
			cast[strings.ToLower(c.Column)] = c.NewType
		}
	}
	newName := func(n string) string {
		if r, ok := rename[strings.ToLower(n)]; ok {
			return r
		}
		return n
	}
	schema := &delta.Schema{}
	for _, f := range have.Fields {
		f.Name = newName(f.Name)
		if t, ok := cast[strings.ToLower(f.Name)]; ok {
			f.Type = t
		}
		schema.Fields = append(schema.Fields, f)
	}
	dir, err := os.MkdirTemp(j.d.ScratchDir, "bronze-schema-")
	if err != nil {
		return fmt.Errorf("bronze %s: scratch dir: %w", j.src.Name, err)
	}
	defer os.RemoveAll(dir)
	files := j.d.LocalFiles(filepath.Join(dir, "in"))
	now := j.d.Now().UnixMilli()
	var adds []delta.Add
	var removes []delta.Remove
	for i, f := range snap.Files {
		p, err := files.Path(ctx, j.table.Store(), j.table.Key(f.Path), "")
		if err != nil {
			return fmt.Errorf("bronze %s: schema change: read %s: %w", j.src.Name, f.Path, err)
		}
		if err := delta.CheckLocalFile(j.table.Dir(), snap.Version, f, p); err != nil {
			return fmt.Errorf("bronze %s: schema change: %w", j.src.Name, err)
		}
		scan := "read_parquet(" + warehouse.QuoteString(p) + ", hive_partitioning = false)"
		cols, err := warehouse.Describe(ctx, conn, "SELECT * FROM "+scan)
		if err != nil {
			return fmt.Errorf("bronze %s: schema change: columns of %s: %w", j.src.Name, f.Path, err)
		}
		sel := make([]string, len(cols))
		for k, c := range cols {
			n := newName(c.Name)
			expr := warehouse.QuoteIdent(c.Name)
			if t, ok := cast[strings.ToLower(n)]; ok {
				dt, err := warehouse.DuckType(t)
				if err != nil {
					return fmt.Errorf("bronze %s: schema change: column %s: %w", j.src.Name, n, err)
				}
				expr = "CAST(" + expr + " AS " + dt + ")"
			}
			sel[k] = expr + " AS " + warehouse.QuoteIdent(n)
		}
		local := filepath.Join(dir, fmt.Sprintf("out-%d.parquet", i))
		q := "COPY (SELECT " + strings.Join(sel, ", ") + " FROM " + scan + ") TO " + warehouse.QuoteString(local) + " (FORMAT parquet, COMPRESSION zstd)"
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("bronze %s: schema change: rewrite %s: %w", j.src.Name, f.Path, err)
		}
		rel := path.Join(path.Dir(f.Path), "part-"+uuid.NewString()+"-c000.parquet")
		up, err := lake.PutFile(ctx, j.table.Store(), j.table.Key(rel), local)
		if err != nil {
			return fmt.Errorf("bronze %s: schema change: %w", j.src.Name, err)
		}
		adds = append(adds, delta.Add{
			Path: rel, PartitionValues: f.PartitionValues, Size: up.Size,
			ModificationTime: f.ModificationTime, DataChange: false,
			Stats: migrateStats(f.Stats, rename, cast), Tags: delta.WithSHA256(nil, up.SHA256),
		})
		removes = append(removes, f.Remove(now, false))
	}
	m := snap.Metadata
	m.SchemaString = schema.String()
	desc := layers.DescribeChanges(changes)
	op := "RENAME COLUMN"
	if len(rename) == 0 {
		op = "CHANGE COLUMN"
	}
	_, err = j.table.Commit(ctx, snap, delta.Commit{
		Adds: adds, Removes: removes, Metadata: &m,
		Info: delta.CommitInfo{
			Operation:           op,
			OperationParameters: map[string]any{"change": desc},
			OperationMetrics:    map[string]string{"numAddedFiles": fmt.Sprint(len(adds)), "numRemovedFiles": fmt.Sprint(len(removes))},
			Medallion:           map[string]any{"job": "bronze", "source": j.src.Name, layers.SchemaChangeKey: desc},
		},
	})
	if errors.Is(err, delta.ErrCommitConflict) {
		return fmt.Errorf("bronze %s: schema change (%s): another writer committed meanwhile; run again: %w", j.src.Name, desc, err)
	}
	if err != nil {
		return fmt.Errorf("bronze %s: schema change (%s): %w", j.src.Name, desc, err)
	}
	j.log.Info("bronze schema changed", "change", desc, "files", len(adds))
	return nil
}

// migrateStats carries a file's statistics over a rename (the column's
// entries move to the new name) and casts (the bounds of a cast column are
// dropped: they are of the old type; its null count stays).
func migrateStats(stats string, rename map[string]string, cast map[string]delta.DataType) string {
	st, err := delta.ParseStats(stats)
	if err != nil {
		return stats
	}
	move := func(old string) string {
		if n, ok := rename[strings.ToLower(old)]; ok {
			return n
		}
		return old
	}
	st.MinValues = moveKeys(st.MinValues, move, cast)
	st.MaxValues = moveKeys(st.MaxValues, move, cast)
	if st.NullCount != nil {
		nc := make(map[string]int64, len(st.NullCount))
		for k, v := range st.NullCount {
			nc[move(k)] = v
		}
		st.NullCount = nc
	}
	return st.String()
}

func moveKeys[V any](m map[string]V, move func(string) string, cast map[string]delta.DataType) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		n := move(k)
		if _, ok := cast[strings.ToLower(n)]; ok {
			continue
		}
		out[n] = v
	}
	return out
}

// addColumns makes c, a commit of rows on snap, change the table's schema
// to meta's when meta only adds columns (the earlier rows read NULL in
// them), saying so in its commitInfo; any other difference (a derived
// column's new type, a column gone) is refused.
func (j *job) addColumns(snap *delta.Snapshot, meta delta.Metadata, c *delta.Commit) error {
	have, err := snap.Schema()
	if err != nil {
		return fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	want, err := delta.ParseSchema(meta.SchemaString)
	if err != nil {
		return fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	changes := layers.DiffColumns(have, want, nil)
	var refused []layers.ColumnChange
	for _, ch := range changes {
		if ch.Kind != layers.ColumnAdded && !j.d.SchemaReplace {
			refused = append(refused, ch)
		}
	}
	if len(refused) > 0 {
		err := j.schemaError(refused, changes)
		var se *layers.SchemaChangeError
		if errors.As(err, &se) && se.Place == "" {
			for _, d := range j.plan.derived {
				if strings.EqualFold(d.Name, refused[0].Column) {
					se.Place = layers.Place(j.d.PipelineFile, d.Line, d.Col)
				}
			}
		}
		return err
	}
	m := snap.Metadata
	m.SchemaString = meta.SchemaString
	c.Metadata = &m
	c.IsBlindAppend = false
	if len(changes) > 0 {
		desc := layers.DescribeChanges(changes)
		info := c.Info
		info.Medallion = maps.Clone(info.Medallion)
		if info.Medallion == nil {
			info.Medallion = map[string]any{}
		}
		info.Medallion[layers.SchemaChangeKey] = desc
		c.Info = info
		j.log.Info("bronze schema changed", "change", desc)
	}
	return nil
}
