package warehouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// AsOf selects which version of every table a query reads: the latest, a
// version number, or the last commit at or before a time.
type AsOf struct {
	Version int64     // used when HasVersion
	Time    time.Time // used when not zero
	// HasVersion says Version is set (version 0 is a real version).
	HasVersion bool
}

// Latest reads every table's last committed version.
func Latest() AsOf { return AsOf{} }

// IsLatest reports whether a reads the latest versions.
func (a AsOf) IsLatest() bool { return !a.HasVersion && a.Time.IsZero() }

// String renders a the way ParseAsOf reads it ("" for latest).
func (a AsOf) String() string {
	switch {
	case a.HasVersion:
		return strconv.FormatInt(a.Version, 10)
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// ParseAsOf reads a --as-of value: empty for the latest version, a
// non-negative integer for a table version, or a time: RFC 3339
// ("2024-05-01T10:00:00Z"), "2024-05-01 10:00:00" (UTC) or a date
// ("2024-05-01", meaning its midnight UTC).
func ParseAsOf(s string) (AsOf, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Latest(), nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		if v < 0 {
			return AsOf{}, fmt.Errorf("--as-of %s: a version is 0 or more", s)
		}
		return AsOf{Version: v, HasVersion: true}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return AsOf{Time: t.UTC()}, nil
		}
	}
	return AsOf{}, fmt.Errorf("--as-of %q: want a table version (3) or a time (2024-05-01T10:00:00Z)", s)
}

// Catalog is what Attach made queryable: one view per table that has
// commits, and the local files those views read.
type Catalog struct {
	Tables []AttachedTable
}

// AttachedTable is one table's view.
type AttachedTable struct {
	Ref     TableRef
	Version int64     // the snapshot the view reads
	Time    time.Time // that snapshot's commit time
	Files   int
	paths   []string
}

// Names lists the attached tables as users write them (bronze.meters, ...).
func (c *Catalog) Names() []string {
	out := make([]string, len(c.Tables))
	for i, t := range c.Tables {
		out[i] = t.Ref.String()
	}
	return out
}

// Paths lists every local file the views read.
func (c *Catalog) Paths() []string {
	var out []string
	for _, t := range c.Tables {
		out = append(out, t.paths...)
	}
	return out
}

// DownloadParallelism bounds how many lake objects Attach fetches at once.
const DownloadParallelism = 8

// Attach makes every table in refs queryable by name in eng: it creates the
// schemas bronze, silver and gold and a view <layer>.<name> over the data
// files of the table's snapshot chosen by asOf. See AttachCatalog.
func Attach(ctx context.Context, eng *Engine, store lake.Store, cache *lake.Cache, refs []TableRef, asOf AsOf) error {
	_, err := AttachCatalog(ctx, eng, store, cache, refs, asOf)
	return err
}

// AttachCatalog is Attach returning what it attached.
//
// Each view reads the snapshot's Parquet files with read_parquet (union by
// name, so files written before a column was added read it as NULL), adds
// partition columns as typed constants from each file's partition values
// (one branch per distinct partition, so a filter on a partition column
// skips whole branches), and casts every column to the type of the Delta
// schema (timestamp to TIMESTAMPTZ, date, decimal(p,s), ...). A table with
// no files gets an empty view with the schema's columns.
//
// Tables without commits are skipped. A version or time a table does not
// have is an error naming the table (wrapping delta.ErrNoVersion). Files of
// a store that is not local are fetched through cache, in parallel; files
// already cached are not fetched again. The engine's TimeZone is set to UTC.
func AttachCatalog(ctx context.Context, eng *Engine, store lake.Store, cache *lake.Cache, refs []TableRef, asOf AsOf) (*Catalog, error) {
	var tables []*loadedTable
	for _, ref := range refs {
		tb, err := loadTable(ctx, store, ref, asOf)
		if err != nil {
			return nil, err
		}
		if tb != nil {
			tables = append(tables, tb)
		}
	}
	_, local := store.(lake.LocalPather)
	if err := localPaths(ctx, store, cache, local, tables); err != nil {
		return nil, err
	}
	cat, err := createViews(ctx, eng, tables)
	if err != nil {
		return nil, err
	}
	if !local {
		if err := cache.Prune(cat.Paths()); err != nil {
			return nil, err
		}
	}
	return cat, nil
}

// loadedTable is a table's snapshot as AttachCatalog attaches it.
type loadedTable struct {
	ref    TableRef
	snap   *delta.Snapshot
	schema *delta.Schema
	paths  []string // local path per snap.Files[i]
}

// loadTable reads the snapshot of ref as of asOf; nil when the table has
// no commits.
func loadTable(ctx context.Context, store lake.Store, ref TableRef, asOf AsOf) (*loadedTable, error) {
	t := delta.Open(store, ref.Dir())
	var snap *delta.Snapshot
	var err error
	switch {
	case asOf.HasVersion:
		snap, err = t.SnapshotAt(ctx, asOf.Version)
	case !asOf.Time.IsZero():
		snap, err = t.SnapshotAsOf(ctx, asOf.Time)
	default:
		snap, err = t.Snapshot(ctx)
	}
	if errors.Is(err, delta.ErrNoTable) {
		return nil, nil
	}
	if errors.Is(err, delta.ErrNoVersion) {
		return nil, fmt.Errorf("table %s has no version as of %s: %w", ref, asOf, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", ref, err)
	}
	schema, err := snap.Schema()
	if err != nil {
		return nil, fmt.Errorf("table %s version %d: %w", ref, snap.Version, err)
	}
	return &loadedTable{ref: ref, snap: snap, schema: schema, paths: make([]string, len(snap.Files))}, nil
}

// localPaths fills in the local path of every data file of tables: in
// place for a local lake, else through the cache, fetching in parallel.
func localPaths(ctx context.Context, store lake.Store, cache *lake.Cache, local bool, tables []*loadedTable) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(DownloadParallelism)
	for _, tb := range tables {
		var listed map[string]lake.ObjectInfo
		if !local && len(tb.snap.Files) > 0 {
			// One listing gives every file's ETag: no HEAD per file.
			objs, err := store.List(ctx, tb.ref.Dir()+"/", "")
			if err != nil {
				return fmt.Errorf("list table %s: %w", tb.ref, err)
			}
			listed = make(map[string]lake.ObjectInfo, len(objs))
			for _, o := range objs {
				listed[o.Key] = o
			}
		}
		name, version := tb.ref.String(), tb.snap.Version
		for i, f := range tb.snap.Files {
			if strings.Contains(f.Path, "://") {
				return fmt.Errorf("table %s: data file %s is outside the lake (absolute paths are not supported)", tb.ref, f.Path)
			}
			key := tb.ref.Dir() + "/" + f.Path
			if local {
				tb.paths[i], _ = cache.Path(ctx, store, key, "")
				err := delta.CheckLocalFile(name, version, f, tb.paths[i])
				if errors.Is(err, lake.ErrNotExist) {
					return missingFile(tb, key)
				}
				if err != nil {
					return err
				}
				continue
			}
			o, ok := listed[key]
			if !ok {
				return missingFile(tb, key)
			}
			// The listing's size refuses a damaged file before downloading
			// it; the check of the local copy catches a damaged cache entry.
			if err := delta.CheckSize(name, version, f, o.Size); err != nil {
				return err
			}
			g.Go(func() error {
				p, err := cache.Path(gctx, store, key, o.ETag)
				if err != nil {
					return fmt.Errorf("table %s: %w", tb.ref, err)
				}
				if err := delta.CheckLocalFile(name, version, f, p); err != nil {
					return err
				}
				tb.paths[i] = p
				return nil
			})
		}
	}
	return g.Wait()
}

// missingFile is the error for a data file of tb that is not in the lake.
func missingFile(tb *loadedTable, key string) error {
	return fmt.Errorf("table %s version %d: data file %s is missing from the lake (removed by a vacuum?)", tb.ref, tb.snap.Version, key)
}

// createViews creates one view per table, in the schema of its layer.
func createViews(ctx context.Context, eng *Engine, tables []*loadedTable) (*Catalog, error) {
	db := eng.db
	stmts := []string{
		"SET TimeZone = 'UTC'",
		"CREATE SCHEMA IF NOT EXISTS bronze",
		"CREATE SCHEMA IF NOT EXISTS silver",
		"CREATE SCHEMA IF NOT EXISTS gold",
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("attach tables: %s: %w", s, err)
		}
	}
	cat := &Catalog{}
	for _, tb := range tables {
		view, err := viewSQL(tb.schema, tb.snap.Metadata.PartitionColumns, tb.snap.Files, tb.paths)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tb.ref, err)
		}
		q := fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS\n%s", QuoteIdent(tb.ref.Schema), QuoteIdent(tb.ref.Name), view)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("attach table %s version %d: %w", tb.ref, tb.snap.Version, err)
		}
		cat.Tables = append(cat.Tables, AttachedTable{
			Ref: tb.ref, Version: tb.snap.Version, Time: tb.snap.Timestamp,
			Files: len(tb.snap.Files), paths: slices.Clone(tb.paths),
		})
	}
	return cat, nil
}

// viewSQL builds the SELECT behind a table's view.
func viewSQL(schema *delta.Schema, partCols []string, files []delta.Add, paths []string) (string, error) {
	isPart := func(name string) bool {
		return slices.ContainsFunc(partCols, func(p string) bool { return strings.EqualFold(p, name) })
	}
	// The outer select: every schema column, cast to its Delta type.
	outer := make([]string, len(schema.Fields))
	seed := make([]string, len(schema.Fields))
	for i, f := range schema.Fields {
		typ, err := DuckType(f.Type)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", f.Name, err)
		}
		seed[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", typ, QuoteIdent(f.Name))
		if f.Type.IsPrimitive() {
			outer[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", QuoteIdent(f.Name), typ, QuoteIdent(f.Name))
		} else {
			outer[i] = QuoteIdent(f.Name)
		}
	}
	// A typed, empty branch first: every column exists even when no file
	// has it (a new column, or no files at all).
	branches := []string{"SELECT " + strings.Join(seed, ", ") + " WHERE false"}

	// Group the files by their partition values.
	type group struct {
		values delta.PartitionValues
		paths  []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for i, f := range files {
		var kb strings.Builder
		for _, p := range partCols {
			v, ok := f.PartitionValues.Value(p)
			if ok {
				kb.WriteString(strconv.Quote(v))
			} else {
				kb.WriteString("null")
			}
			kb.WriteByte(0)
		}
		k := kb.String()
		g := byKey[k]
		if g == nil {
			g = &group{values: f.PartitionValues}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.paths = append(g.paths, paths[i])
	}
	for _, g := range groups {
		sel := "*"
		if len(partCols) > 0 {
			// Data files do not hold partition columns; add them as typed
			// constants.
			var consts []string
			for _, f := range schema.Fields {
				if !isPart(f.Name) {
					continue
				}
				typ, err := DuckType(f.Type)
				if err != nil {
					return "", fmt.Errorf("partition column %s: %w", f.Name, err)
				}
				// TimeZone is UTC: a bare timestamp is UTC, as Delta writes it.
				lit := PartitionLiteral(g.values, f.Name, f.Type)
				consts = append(consts, fmt.Sprintf("CAST(%s AS %s) AS %s", lit, typ, QuoteIdent(f.Name)))
			}
			sel = "*, " + strings.Join(consts, ", ")
		}
		branches = append(branches, fmt.Sprintf("SELECT %s FROM read_parquet(%s, hive_partitioning = false, union_by_name = true)",
			sel, sqlStringList(g.paths)))
	}
	return "SELECT " + strings.Join(outer, ", ") + "\nFROM (\n  " + strings.Join(branches, "\n  UNION ALL BY NAME\n  ") + "\n) AS t", nil
}
