// Package gold builds the gold tables of a pipeline: moving averages (with
// flag columns) over silver tables, and analyst SQL models over any tables,
// each materialised as a Delta table at gold/<name>.
//
// # Moving averages
//
// A moving-average table reads one silver table and, per partition (the
// partition_by columns) ordered by order_by (default window_start), adds the
// moving average of one column and the flag columns. Output columns: the
// partition columns, window_start, window_end, every other silver column
// (remaining group columns and the aggregates), the average (named "ma" or
// as:), then the flags. The average is one of:
//
//   - rows: N, the mean of the current row and the N-1 rows before it:
//     AVG(x) OVER (PARTITION BY p ORDER BY o ROWS BETWEEN N-1 PRECEDING AND CURRENT ROW);
//   - range: D, the mean of the rows of the partition whose order value lies
//     in (t-D, t] for the current row's t: the lower bound is exclusive and
//     the upper inclusive (pandas' rolling("15min"), closed="right"), so
//     range: 15m over 1-minute windows averages the 15 windows ending at t,
//     like rows: 15 does when no window is missing. Rows tying with t are
//     all included;
//   - ema: {alpha: a}, exponential: ema_1 = x_1 and ema_t = a*x_t +
//     (1-a)*ema_{t-1}, computed in order in float64 (exact and
//     deterministic). A NULL x_t carries ema_{t-1} forward; the series is
//     seeded by the first non-NULL value and is NULL before it.
//
// NULL values are ignored by rows and range averages (SQL AVG). The column
// is averaged as DOUBLE, each frame summed oldest row first, so a value
// does not depend on how silver's rows were split between runs. A flag is
// CAST((when) AS BOOLEAN) where when is a DuckDB expression over the output
// row (silver columns and the average), e.g. "avg_usage > ma * 1.5"; it is
// NULL when the expression is.
//
// Rows within a partition are ordered by the order column, then
// window_start, window_end and every other column, so ties cannot make the
// output depend on how DuckDB happened to sort.
//
// # Incremental maintenance
//
// A moving-average table's files are grouped by a hash bucket of the
// partition columns (md5 of their values, modulo the table's bucket count,
// so stable across DuckDB versions and sessions): file
// part-bNNNN-<id>.parquet holds rows of the partitions in bucket NNNN. The
// count is a power of two up to 32 chosen at a full build from the silver
// table's size, one bucket per 64 MiB of silver Parquet (so a small table
// is one file), and kept in the table configuration
// (medallion.gold.buckets); a run over a silver table grown to need four
// times the buckets rebuilds in full with more (see docs/gold-buckets.md). The gold table records the silver version it
// consumed (txn appId "gold/<name>") and, in a state file under _state/,
// each partition's tail: its last order value and what continuing it needs
// (the last rows-1 values for rows, the values within the range for range,
// the running average for ema). Every file a run adds is tagged with the
// state file and the silver version (medallion.gold.state and
// medallion.gold.version); the state of the table is the one its newest
// files name.
//
// A run compares the silver snapshot with the version consumed:
//
//   - silver only added files (append mode) and, in every partition, the
//     new rows come after the processed ones (order value greater than the
//     last one, not NULL): the averages of the new rows are computed from
//     the partition tails plus the new rows alone, and appended as one new
//     file per bucket they touch. A bucket that would have more than
//     maxBucketFiles files is merged into one in the same commit;
//   - silver rewrote or removed files (update mode), or new rows land
//     inside processed windows (late data, a tie with the last window):
//     the buckets of the changed rows are recomputed from the whole silver
//     table and their files replaced;
//   - a change of the gold definition, of the silver schema or of the
//     layout (kept as a hash in the table configuration,
//     medallion.gold.definition), a missing txn or state, an unreadable
//     silver history or a recreated silver table: a full rebuild.
//
// Each way writes its files and the new state first and commits them,
// the removes and the txn in one Delta commit, so the table and its state
// advance together. The values are the same to the bit whichever way a row
// was computed (see pass.go).
//
// # SQL models
//
// A model is any DuckDB SELECT over tables by name (bronze.x, silver.y,
// gold.z). It is rebuilt in full when the version of one of its inputs
// changed since the last build (txn appIds "gold/<name>/<layer.table>" =
// version) or its SQL changed, and skipped otherwise. Its rows are written
// sorted (ORDER BY ALL), so the same inputs give the same files.
//
// # Exactly once
//
// Output files are written under new names first; the commit that adds them
// also removes the files they replace and records the input versions. A
// crash before the commit leaves the table as it was (plus unreferenced
// files); the rerun recomputes the same rows. Running again with no new
// input commits nothing.
package gold

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"github.com/medallion-dev/medallion/internal/randid"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Deps is what a gold run needs: the shared layer environment (Store and
// DB are required) and how SQL models see their inputs.
type Deps struct {
	layers.Env

	// Attach, for SQL models, makes the tables refs queryable by name
	// (bronze.x, silver.y, gold.z) in the default database of DB, e.g. with
	// warehouse.Attach. nil: the run creates the views itself, in a private
	// database it drops afterwards, over exactly the snapshots whose versions
	// it records; prefer nil. With a hook, a commit landing on an input
	// between the version check and the views can make the model read newer
	// data than it records: the next run then rebuilds once more, which is
	// harmless.
	Attach func(ctx context.Context, refs []layers.TableRef) error

	// goPass, for tests, computes every average with the Go pass.
	goPass bool

	// refresh makes the run a full rebuild whatever changed, committed as
	// operation REFRESH (see Refresh).
	refresh bool

	// buckets, for tests, is the bucket count of every full build of a
	// partitioned moving-average table; 0: chosen from silver's size.
	buckets int

	// Unsorted lets a one-bucket moving-average table whose (partition,
	// order) values are unique be written in the window's output order
	// rather than sorted (see docs/gold-buckets.md, round 4). Only a
	// mirror whose key leaves out a partition or the order column
	// repeats keys within such a file and so reads its row order (the
	// last row wins): set it with UnsortedOK. false: files are sorted.
	Unsorted bool
}

// UnsortedOK reports whether the gold table name of p may be written
// unsorted (Deps.Unsorted): it is a moving average and every mirror of it
// has a key holding all its partition columns and its order column, so
// that no mirrored key repeats within a file and no reader depends on the
// file's row order.
func UnsortedOK(p *config.Pipeline, name string) bool {
	g := p.Gold[name]
	if g == nil || g.MovingAverage == nil {
		return false
	}
	ref := layers.TableRef{Layer: layers.Gold, Name: name}.String()
	for _, m := range p.Mirror {
		if m == nil || !strings.EqualFold(m.Table, ref) {
			continue
		}
		for _, c := range append(slices.Clone(g.PartitionBy), cmp.Or(g.OrderBy, defaultOrderBy)) {
			if !slices.ContainsFunc(m.Key, func(k string) bool { return strings.EqualFold(k, c) }) {
				return false
			}
		}
	}
	return true
}

// opRefresh is the operation of a refresh commit.
const opRefresh = "REFRESH"

// Refresh rebuilds the gold table g in full from its inputs as they are,
// through the code of a full run, in one commit (operation REFRESH) that
// removes every file of the table and adds the new ones, with the input
// versions and state a run records: the next run finds it up to date.
// A moving average at t depends on the rows before t, so a gold table is
// always refreshed whole.
func Refresh(ctx context.Context, deps Deps, g *config.Gold) (Stats, error) {
	deps.refresh = true
	st, err := Run(ctx, deps, g)
	if err != nil {
		return st, fmt.Errorf("refresh gold.%s: %w", g.Name, err)
	}
	return st, nil
}

// column is one column of a DuckDB relation as DESCRIBE reports it.
type column = warehouse.Column

// Kind is what a gold table is built from.
type Kind string

// The kinds of gold table.
const (
	KindMovingAverage Kind = "moving_average"
	KindModel         Kind = "sql"
)

// Mode is what a run did.
type Mode string

// The modes of a run.
const (
	ModeSkipped     Mode = "skipped"     // no input changed; nothing committed
	ModeFull        Mode = "full"        // every file rewritten
	ModeIncremental Mode = "incremental" // only the buckets whose input changed rewritten
	ModeAppend      Mode = "append"      // the new rows' averages appended as new files
)

// Stats says what one Run did.
type Stats struct {
	Table  layers.TableRef
	Kind   Kind
	Mode   Mode
	Reason string // why the run was full or skipped, for logs and users
	// Version is the gold table version after the run (the committed one,
	// or the current one when skipped).
	Version int64
	// Inputs are the input table versions the table now reflects, by
	// table name (silver.meter_usage_1m).
	Inputs map[string]int64
	// Buckets is how many partition buckets were recomputed (moving
	// averages; 1 for a model build).
	Buckets      int
	FilesAdded   int
	FilesRemoved int
	RowsWritten  int64 // rows in the files added
	RowsIn       int64 // input rows read for the recomputation
	// Compacted is how many buckets an append merged into one file each.
	Compacted int
}

// ErrNotGold means the table is not declared in the pipeline's gold section.
var ErrNotGold = errors.New("not a gold table of the pipeline")

// Run brings the gold table g (an entry of the pipeline's gold section) up
// to date with its inputs: a full rebuild, an incremental
// rewrite of the changed partitions, or nothing. It is safe to rerun after
// a crash at any point. An input table that does not exist yet is an error
// wrapping delta.ErrNoTable.
func Run(ctx context.Context, deps Deps, g *config.Gold) (Stats, error) {
	if deps.Store == nil || deps.DB == nil {
		return Stats{}, errors.New("gold: Deps needs Store and DB")
	}
	deps.Env = deps.WithDefaults()
	var st Stats
	err := layers.RetryConflicts(ctx, deps.Log, "gold."+g.Name, func(int) error {
		var err error
		st, err = runOnce(ctx, deps, g)
		return err
	})
	if err != nil && errors.Is(err, delta.ErrCommitConflict) {
		return Stats{}, err
	}
	return st, err
}

func runOnce(ctx context.Context, deps Deps, g *config.Gold) (st Stats, err error) {
	ref := layers.TableRef{Layer: layers.Gold, Name: g.Name}
	r := &runner{
		deps:  deps,
		gold:  g,
		ref:   ref,
		tbl:   deps.OpenTable(ref.Dir()),
		log:   deps.Log.With("table", ref.String()),
		id:    randid.Hex(6),
		local: map[string]string{},
	}
	if r.scratch, err = os.MkdirTemp(deps.ScratchDir, "gold-"+g.Name+"-"); err != nil {
		return st, fmt.Errorf("%s: scratch directory: %w", ref, err)
	}
	defer os.RemoveAll(r.scratch)
	defer func() {
		if r.conn != nil {
			r.closeConn()
		}
	}()
	if g.SQL != "" {
		if err = r.pin(ctx); err == nil {
			st, err = r.runModel(ctx)
		}
	} else {
		st, err = r.runMovingAverage(ctx)
	}
	if err != nil {
		r.discardUploads()
		return st, err
	}
	return st, nil
}

// pin takes the DuckDB connection the run's statements share. A moving
// average pins it only after reading its Delta snapshots, which thus
// overlap DuckDB's start when `medallion run` starts it in the background
// (warehouse.OpenBackground).
func (r *runner) pin(ctx context.Context) error {
	conn, err := r.deps.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: duckdb connection: %w", r.ref, err)
	}
	r.conn = conn
	return nil
}

// runner is one attempt at building one gold table.
type runner struct {
	deps    Deps
	gold    *config.Gold
	ref     layers.TableRef
	tbl     *delta.Table
	log     *slog.Logger
	conn    *sql.Conn // pinned: temp tables and USE are per connection
	scratch string
	id      string // suffix of this run's temp objects

	mu       sync.Mutex
	local    map[string]string // lake key -> local file
	uploaded []string          // keys written this attempt, deleted if it fails before committing
	temps    []tempObject      // temp tables and views to drop
	restore  string            // database to USE again before giving the connection back
	attached string            // private database to detach
	commited bool
	rowsIn   int64 // input rows the recomputation read
	// files read of the input (and merge) files the run asked for, for
	// Env.Report
	filesDone, filesTotal int64
}

// fileRead counts n more input files to read (n > 0) or one read (n == 0)
// and reports the run's progress.
func (r *runner) fileRead(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 {
		r.filesTotal += int64(n)
	} else {
		r.filesDone++
	}
	r.deps.Report(layers.Progress{Step: "reading", Unit: layers.UnitFiles, Done: r.filesDone, Total: r.filesTotal})
}

// tempObject is a connection-local table or view a run created.
type tempObject struct {
	kind string // TABLE or VIEW
	name string
}

// tempTable returns the quoted name of a new connection-local temp table.
func (r *runner) tempTable(name string) string { return r.temp("TABLE", name) }

// tempView returns the quoted name of a new connection-local temp view.
func (r *runner) tempView(name string) string { return r.temp("VIEW", name) }

func (r *runner) temp(kind, name string) string {
	n := "__gold_" + name + "_" + r.id
	r.temps = append(r.temps, tempObject{kind, n})
	return warehouse.QuoteIdent(n)
}

// exec runs statements on the pinned connection.
func (r *runner) exec(ctx context.Context, query string, args ...any) error {
	start := time.Now()
	_, err := r.conn.ExecContext(ctx, query, args...)
	r.log.Debug("gold statement", "ms", time.Since(start).Milliseconds(), "sql", query[:min(len(query), 100)])
	return err
}

// closeConn drops this run's temp objects, restores the default database
// and gives the connection back; a connection it cannot clean is discarded.
func (r *runner) closeConn() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok := true
	if r.restore != "" {
		if err := r.exec(ctx, "USE "+warehouse.QuoteIdent(r.restore)); err != nil {
			ok = false
		}
	}
	if r.attached != "" {
		if err := r.exec(ctx, "DETACH DATABASE IF EXISTS "+warehouse.QuoteIdent(r.attached)); err != nil {
			ok = false
		}
	}
	for i := len(r.temps) - 1; i >= 0; i-- {
		t := r.temps[i]
		if err := r.exec(ctx, "DROP "+t.kind+" IF EXISTS temp.main."+warehouse.QuoteIdent(t.name)); err != nil {
			ok = false
		}
	}
	if !ok {
		_ = r.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	r.conn.Close()
}

// localFiles returns local files for the data files of a table (named
// table, read at version), in order, each checked against its add's size.
func (r *runner) localFiles(ctx context.Context, tbl *delta.Table, table string, version int64, files []delta.Add) ([]string, error) {
	out := make([]string, len(files))
	if len(files) > 0 {
		r.fileRead(len(files))
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i, f := range files {
		key := tbl.Key(f.Path)
		eg.Go(func() error {
			p, err := r.localFile(ctx, key)
			if err != nil {
				return err
			}
			if err := delta.CheckLocalFile(table, version, f, p); err != nil {
				return err
			}
			out[i] = p
			r.fileRead(0)
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *runner) localFile(ctx context.Context, key string) (string, error) {
	r.mu.Lock()
	p, ok := r.local[key]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := r.deps.LocalFiles(filepath.Join(r.scratch, "in")).Path(ctx, r.deps.Store, key, "")
	if err == nil {
		if _, serr := os.Stat(p); serr != nil {
			err = fmt.Errorf("read %s: %w", key, lake.ErrNotExist)
		}
	}
	r.mu.Lock()
	r.local[key] = p
	r.mu.Unlock()
	return p, nil
}

// upload puts a finished local file at the table-relative path rel and
// returns its size and SHA-256 (hashed as it is uploaded).
func (r *runner) upload(ctx context.Context, local, rel string) (lake.PutFileInfo, error) {
	key := r.tbl.Key(rel)
	r.mu.Lock()
	r.uploaded = append(r.uploaded, key)
	r.mu.Unlock()
	info, err := lake.PutFile(ctx, r.deps.Store, key, local)
	if err != nil {
		return lake.PutFileInfo{}, fmt.Errorf("%s: write %s: %w", r.ref, key, err)
	}
	return info, nil
}

// discardUploads deletes the files of an attempt that did not commit. It is
// only called when the commit surely did not happen (an error before it, or
// a lost race), never after an ambiguous commit error: a file a committed
// version references must not be deleted.
func (r *runner) discardUploads() {
	if r.commited {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range r.uploaded {
		if err := r.deps.Store.Delete(ctx, k); err != nil {
			r.log.Debug("could not delete an uncommitted gold file", "key", k, "err", err)
		}
	}
}

// commit writes the next version of the gold table (creating the table
// first if base is nil) and returns it.
func (r *runner) commit(ctx context.Context, base *delta.Snapshot, meta delta.Metadata, c delta.Commit) (*delta.Snapshot, error) {
	if err := r.deps.CrashPoint(CrashFilesWritten); err != nil {
		return nil, err
	}
	if base == nil {
		var err error
		base, err = r.tbl.Create(ctx, meta, delta.CommitInfo{Operation: "CREATE TABLE"})
		if err != nil {
			if errors.Is(err, delta.ErrTableExists) {
				return nil, fmt.Errorf("%s: %w: created concurrently", r.ref, delta.ErrCommitConflict)
			}
			return nil, fmt.Errorf("%s: create table: %w", r.ref, err)
		}
	} else if !sameMetadata(base.Metadata, meta) {
		if err := r.checkSchema(base, meta, &c); err != nil {
			return nil, err
		}
		m := base.Metadata
		m.SchemaString, m.PartitionColumns, m.Configuration = meta.SchemaString, meta.PartitionColumns, meta.Configuration
		c.Metadata = &m
	}
	snap, err := r.tbl.Commit(ctx, base, c)
	if err != nil {
		if !errors.Is(err, delta.ErrCommitConflict) && !errors.Is(err, delta.ErrFenced) {
			// The commit may have landed (e.g. a timeout after the put): keep the files.
			r.commited = true
		}
		return nil, fmt.Errorf("%s: commit: %w", r.ref, err)
	}
	r.commited = true
	if err := r.deps.CrashPoint(CrashCommitted); err != nil {
		return nil, err
	}
	return snap, nil
}

func sameMetadata(a, b delta.Metadata) bool {
	if a.SchemaString != b.SchemaString || len(a.PartitionColumns) != len(b.PartitionColumns) || len(a.Configuration) != len(b.Configuration) {
		return false
	}
	for i := range a.PartitionColumns {
		if a.PartitionColumns[i] != b.PartitionColumns[i] {
			return false
		}
	}
	for k, v := range a.Configuration {
		if b.Configuration[k] != v {
			return false
		}
	}
	return true
}

// fileStats is the Delta stats JSON of a file with n rows.
func fileStats(n int64) string { return delta.FileStats{NumRecords: n}.String() }

// describe returns the columns of a query's result.
func (r *runner) describe(ctx context.Context, query string) ([]column, error) {
	return warehouse.Describe(ctx, r.conn, query)
}

// schemaOf turns result columns into a Delta schema and the select list
// that casts each column to the type the schema stores (see deltaType).
func schemaOf(cols []column) (*delta.Schema, []string, error) {
	s := &delta.Schema{}
	sel := make([]string, len(cols))
	for i, c := range cols {
		dt, err := warehouse.DeltaType(c.Type)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		back, err := warehouse.DuckType(dt)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		sel[i] = warehouse.QuoteIdent(c.Name)
		if !strings.EqualFold(strings.ReplaceAll(back, `"`, ""), strings.ReplaceAll(c.Type, `"`, "")) {
			sel[i] = "CAST(" + warehouse.QuoteIdent(c.Name) + " AS " + back + ") AS " + warehouse.QuoteIdent(c.Name)
		}
		s.Fields = append(s.Fields, delta.Field{Name: c.Name, Type: dt, Nullable: true})
	}
	return s, sel, nil
}

// String is the line printed for a run.
func (s Stats) String() string {
	switch s.Mode {
	case ModeSkipped:
		return fmt.Sprintf("%s: nothing new (v%d)", s.Table, s.Version)
	case ModeAppend:
		line := fmt.Sprintf("%s: appended, %d partition buckets, %d rows in, %d rows written", s.Table, s.Buckets, s.RowsIn, s.RowsWritten)
		if s.Compacted > 0 {
			line += fmt.Sprintf(", %d buckets merged into one file", s.Compacted)
		}
		return line + fmt.Sprintf(" (v%d)", s.Version)
	}
	return fmt.Sprintf("%s: %s rebuild, %d partitions recomputed, %d rows in, %d rows written (v%d)",
		s.Table, s.Mode, s.Buckets, s.RowsIn, s.RowsWritten, s.Version)
}

// Result is the run in the shape every layer reports. A skipped run reads
// and writes nothing, whatever its figures say.
func (s Stats) Result() layers.Result {
	res := layers.Result{Table: s.Table, Summary: s.String(), Version: s.Version}
	if s.Mode != ModeSkipped {
		res.RowsIn, res.RowsOut = s.RowsIn, s.RowsWritten
	}
	return res
}

// Job runs the gold table name of p for the job runner: a table whose
// input has no commits yet (nothing ingested) is waiting for input, not a
// failure.
func Job(ctx context.Context, env layers.Env, p *config.Pipeline, name string) (layers.Result, error) {
	g, ok := p.Gold[name]
	if !ok || g == nil {
		return layers.Result{}, fmt.Errorf("gold.%s: %w", name, ErrNotGold)
	}
	env.PipelineFile = cmp.Or(env.PipelineFile, p.Path)
	st, err := Run(ctx, Deps{Env: env, Unsorted: UnsortedOK(p, name)}, g)
	if errors.Is(err, delta.ErrNoTable) {
		ref := layers.TableRef{Layer: layers.Gold, Name: name}
		return layers.Result{Table: ref, Version: -1, Summary: fmt.Sprintf("%s: waiting for input (%v)", ref, humanize.FirstLine(err))}, nil
	}
	if err != nil {
		return layers.Result{}, err
	}
	return st.Result(), nil
}
