package layers

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// Env is what every layer job (bronze, silver, gold) needs from its caller,
// spelled once so that a fix to how a layer reaches the lake or the engine
// reaches all three.
type Env struct {
	// Store is the lake.
	Store lake.Store
	// DB is a DuckDB database (warehouse.Engine.DB()) with memory_limit
	// and temp_directory set. A run pins one connection and keeps its work
	// in temporary tables of that connection, so runs of different tables
	// may share one engine.
	DB *sql.DB
	// ScratchDir is where a run writes files before uploading them; each
	// run uses a fresh sub-directory and removes it. Empty: the OS temp
	// directory.
	ScratchDir string
	// Cache gives DuckDB local files for lake objects: the store's own file
	// on a local lake, an ETag-keyed download otherwise. Nil: each run
	// downloads into its scratch directory and forgets the copies.
	Cache *lake.Cache
	// Log receives the run's progress; nil: slog.Default().
	Log *slog.Logger
	// Now stamps txn and remove actions; nil: time.Now.
	Now func() time.Time
	// PipelineFile is the path of the pipeline file the run's table is
	// declared in; errors about a column name their place in it. The
	// layers' Job functions fill it from the pipeline.
	PipelineFile string
	// SchemaReplace, set by a rebuild of the whole table (medallion
	// refresh), lets the run write columns that differ from the table's in
	// any way. Other runs refuse a removed, renamed or retyped column with a
	// *SchemaChangeError (schemachange.go).
	SchemaReplace bool
	// Progress, if set, receives how far the run has got, as it goes (see
	// Progress); nil: nothing is reported. Call it through Report.
	Progress func(Progress)
	// Tables, if set, is shared by the delta Tables the run opens
	// (OpenTable; delta.Options.Cache): a process that runs the same jobs
	// again and again (stream mode's micro-batches) then decodes each
	// checkpoint once, not once per run. nil: each run's Tables keep
	// their own.
	Tables *delta.Cache
	// Crash, set only by tests, is called at each named crash point of a
	// run; an error stops the run there as if the process had died. The
	// process-level crash points (internal/crashpoint) exist only in
	// binaries built with -tags crashpoints.
	Crash crashpoint.Hook
}

// Progress is how far a running job has got. A layer reports between its
// steps: bronze after each group of raw objects it types (bytes of raw
// objects done of the run's total) and, while one statement types a group,
// from DuckDB's estimate of that statement's progress
// (warehouse.WatchProgress); silver and gold after each input file they
// read (files done of total). Done never exceeds Total when Total is known; a consumer should
// still not trust it to (a run may find more work as it goes).
type Progress struct {
	// Step is what the job is doing now: "typing", "reading",
	// "aggregating", "writing".
	Step string
	// Unit is what Done and Total count: UnitBytes or UnitFiles.
	Unit  string
	Done  int64
	Total int64 // 0: not known
	// Rows is the input rows read so far (0: not counted yet).
	Rows int64
}

// Units of Progress.Done and Progress.Total.
const (
	UnitBytes = "bytes"
	UnitFiles = "files"
)

// Report passes p to e.Progress when it is set. It is called on the job's
// goroutines; the callback must be quick and safe for concurrent use.
func (e Env) Report(p Progress) {
	if e.Progress != nil {
		e.Progress(p)
	}
}

// WithDefaults returns e with Log and Now set.
func (e Env) WithDefaults() Env {
	if e.Log == nil {
		e.Log = slog.Default()
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	return e
}

// LocalFiles returns the cache a run reads lake objects through: e.Cache,
// or, when it is nil, one in dir (the run's scratch directory).
func (e Env) LocalFiles(dir string) *lake.Cache {
	if e.Cache != nil {
		return e.Cache
	}
	return &lake.Cache{Dir: dir}
}

// OpenTable returns the delta table at dir with the default options,
// sharing e.Tables.
func (e Env) OpenTable(dir string) *delta.Table {
	t, _ := e.OpenTableWith(dir, delta.DefaultOptions()) // defaults are valid
	return t
}

// OpenTableWith returns the delta table at dir with opts, sharing e.Tables
// (unless opts names a cache of its own); it refuses invalid options.
func (e Env) OpenTableWith(dir string, opts delta.Options) (*delta.Table, error) {
	if opts.Cache == nil {
		opts.Cache = e.Tables
	}
	return delta.OpenWith(e.Store, dir, opts)
}

// CrashPoint is a crash point named point: the test hook's error, if any.
// A binary built with -tags crashpoints may also die here (see
// internal/crashpoint).
func (e Env) CrashPoint(point string) error { return e.Crash.Pass(point) }

// MaxCommitAttempts bounds how often a layer run tries to commit when it
// keeps losing the race to another writer of the same table
// (delta.ErrCommitConflict). Every layer uses it.
const MaxCommitAttempts = 5

// RetryConflicts calls attempt until it returns an error other than a
// commit conflict, or MaxCommitAttempts times. A run that plans again from
// the tables as they are after a lost race (silver, gold) finds nothing
// left to do when the winner already did its work (delta.ErrTxnApplied).
func RetryConflicts(ctx context.Context, log *slog.Logger, table string, attempt func(n int) error) error {
	var err error
	for n := 1; n <= MaxCommitAttempts; n++ {
		err = attempt(n)
		if err == nil || !errors.Is(err, delta.ErrCommitConflict) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return err
		}
		if log != nil && n < MaxCommitAttempts {
			log.Info("commit lost to another writer; trying again", "table", table, "attempt", n, "err", err)
		}
	}
	return err
}
