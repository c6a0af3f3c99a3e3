// Package pgmirror keeps chosen lake tables in step with PostgreSQL tables,
// for dashboards: incrementally and exactly once.
//
// Each Sync applies every table version committed since the mirrored one in
// one PostgreSQL transaction: the rows of data files added since then are
// streamed out of DuckDB into a temporary staging table with COPY,
// de-duplicated by key (the last file wins), upserted with INSERT ... ON
// CONFLICT; keys of rows in removed files that were not re-added are
// deleted; and the mirrored version is stored in medallion_mirror_state in
// the same transaction. A crash at any point leaves PostgreSQL at the old
// version or the new one, never between, and the next Sync catches up.
//
// A load into an empty target (a first load, a full reload, a rebuild)
// skips the staging table: the rows are copied straight into the target,
// a new table getting its primary key after the rows (and its rows with
// COPY FREEZE), in a subtransaction that falls back to the staged path
// when the lake table repeats a key. Rows are sent in COPY's binary
// format, encoded a chunk at a time as DuckDB hands them over.
//
// This is the only package that imports pgx.
package pgmirror

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/warehouse"
)

// StateTable is the table, in the schema of each target, holding one row
// per mirrored table: target (schema.table), source_table (layer.name),
// version (the lake table version it equals), mirrored_at (when that
// version was applied), source_committed_at (when the lake committed it:
// the "data as of" time of a dashboard).
const StateTable = "medallion_mirror_state"

// Crash points (see internal/crashpoint), in order.
const (
	CrashDuringCopy   = "mirror.during-copy"   // rows are streaming into the staging table
	CrashBeforeCommit = "mirror.before-commit" // everything applied, not committed
	CrashAfterCommit  = "mirror.after-commit"  // committed
)

// Spec is one mirror: a lake table and the PostgreSQL table it is copied to.
// The pipeline file's mirror: entries are turned into Specs by package jobs
// (jobs.MirrorSpec), so this package does not depend on the configuration.
type Spec struct {
	Source warehouse.TableRef // the lake table, gold.meter_usage_ma
	Schema string             // the PostgreSQL schema of the target
	Table  string             // the PostgreSQL table name
	Key    []string           // primary key columns (lake column names)

	// Columns, when not empty, are the only lake columns copied; Exclude
	// are lake columns left out. Lineage columns (Lineage) are left out
	// unless Columns lists them or an existing target already has them.
	Columns, Exclude []string
	// Lineage are the lake's lineage column names (_source_file...).
	Lineage []string
	// Names is NamesAsDeclared ("" too) or NamesLower.
	Names string
}

// How a mirror names PostgreSQL columns (Spec.Names).
const (
	NamesAsDeclared = "as_declared" // the lake's names, quoted where needed
	NamesLower      = "lower"       // lower case, other characters than letters, digits and _ as _
)

// Target names the PostgreSQL table as schema.table (unquoted: how users
// write it in the pipeline file and how medallion_mirror_state stores it).
func (s Spec) Target() string { return s.Schema + "." + s.Table }

// String is "gold.x -> public.x".
func (s Spec) String() string { return s.Source.String() + " -> " + s.Target() }

func (s Spec) ident() pgx.Identifier { return pgx.Identifier{s.Schema, s.Table} }

// Validate refuses a spec that cannot be mirrored, naming the field.
func (s Spec) Validate() error {
	switch {
	case s.Source.Name == "":
		return errors.New("mirror: no source table")
	case s.Schema == "" || s.Table == "":
		return fmt.Errorf("mirror of %s: the target needs a schema and a table name, got %q", s.Source, s.Target())
	case len(s.Schema) > maxIdent || len(s.Table) > maxIdent:
		return fmt.Errorf("mirror of %s: target %s: PostgreSQL names are at most %d bytes", s.Source, s.Target(), maxIdent)
	case len(s.Key) == 0:
		return fmt.Errorf("mirror of %s: key: the primary key columns are required", s.Source)
	}
	if len(s.Columns) > 0 && len(s.Exclude) > 0 {
		return fmt.Errorf("mirror of %s: columns and exclude cannot both be given", s.Source)
	}
	if s.Names != "" && s.Names != NamesAsDeclared && s.Names != NamesLower {
		return fmt.Errorf("mirror of %s: names %q: want %s or %s", s.Source, s.Names, NamesLower, NamesAsDeclared)
	}
	for i, k := range s.Key {
		if k == "" {
			return fmt.Errorf("mirror of %s: key[%d] is empty", s.Source, i)
		}
		if slices.Contains(s.Key[:i], k) {
			return fmt.Errorf("mirror of %s: key column %q is listed twice", s.Source, k)
		}
	}
	return nil
}

// maxIdent is PostgreSQL's NAMEDATALEN - 1.
const maxIdent = 63

// Options tune a Mirror. Get them from DefaultOptions and change fields.
type Options struct {
	// MaxAttempts bounds how often one Sync is tried when PostgreSQL fails
	// with a retryable error (see Retryable): connection loss,
	// serialization failure, deadlock, administrator shutdown.
	MaxAttempts int
	// MinBackoff is the wait before the second attempt; it doubles after
	// each failure up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives retries and fallbacks (nil: slog.Default()).
	Logger *slog.Logger
}

// DefaultOptions returns the options most callers want: 5 attempts over
// about 4 seconds.
func DefaultOptions() Options {
	return Options{MaxAttempts: 5, MinBackoff: 250 * time.Millisecond, MaxBackoff: 8 * time.Second}
}

// Validate refuses options that cannot work, naming the field.
func (o Options) Validate() error {
	switch {
	case o.MaxAttempts < 1:
		return fmt.Errorf("pgmirror options: MaxAttempts %d must be at least 1", o.MaxAttempts)
	case o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff:
		return fmt.Errorf("pgmirror options: want 0 <= MinBackoff (%s) <= MaxBackoff (%s)", o.MinBackoff, o.MaxBackoff)
	}
	return nil
}

// Deps is what a Mirror reads the lake with.
type Deps struct {
	Store  lake.Store
	Engine *warehouse.Engine // DuckDB, to read data files
	Cache  *lake.Cache       // local copies of objects of a remote lake
}

// Mirror copies lake tables into one PostgreSQL database. It holds no
// connection between calls (each attempt of a Sync opens its own), so it
// needs no Close. Safe for concurrent use; concurrent Syncs of one target,
// in any number of processes, take turns (a transaction-level advisory lock).
type Mirror struct {
	cfg  *pgx.ConnConfig
	deps Deps
	opts Options
	log  *slog.Logger
}

// New returns a Mirror writing to the PostgreSQL database of dsn (a URL or a
// "key=value" connection string; only from the pipeline's postgres:). It
// does no I/O.
func New(dsn string, deps Deps, opts Options) (*Mirror, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("mirror: postgres: is empty (set it in medallion.yaml, e.g. postgres: ${DATABASE_URL})")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Engine == nil {
		return nil, errors.New("mirror: needs a lake store and a DuckDB engine")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the connection string, password included.
		return nil, errors.New("mirror: postgres: is not a valid connection string (want postgres://user@host:5432/db or host=... dbname=...)")
	}
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		if strings.Contains(h, "@") {
			// The rest of the password would be dialled, and printed, as a host name.
			return nil, errors.New("mirror: postgres: the password holds an unescaped @: write it as %40 in the URL")
		}
	}
	l := opts.Logger
	if l == nil {
		l = slog.Default()
	}
	return &Mirror{cfg: cfg, deps: deps, opts: opts, log: l.WithGroup("mirror")}, nil
}

// Mode says what a Sync did.
type Mode string

// The modes of a Result.
const (
	ModeNoSource    Mode = "no lake table yet" // the lake table has no commits: nothing done
	ModeUpToDate    Mode = "up to date"        // the target already equals the latest version
	ModeFirstLoad   Mode = "first load"        // no state row: the whole table was loaded
	ModeIncremental Mode = "incremental"       // files added and removed since the mirrored version applied
	ModeFullReload  Mode = "full reload"       // the changes could not be read (log or files cleaned up): reloaded
	ModeRebuild     Mode = "rebuild"           // built in a new table and swapped in
)

// Result is what one Sync or Rebuild did.
type Result struct {
	Spec              Spec
	Mode              Mode
	FromVersion       int64 // the version mirrored before; -1: none
	Version           int64 // the version the target equals now; -1: none
	SourceCommittedAt time.Time
	FilesRead         int      // data files whose rows were copied
	RowsCopied        int64    // rows streamed into the staging table
	RowsUpserted      int64    // rows inserted or changed
	RowsDeleted       int64    // rows deleted (their files were removed and their keys not re-added)
	AddedColumns      []string // columns added with ALTER TABLE
	// Direct says the rows were copied straight into an empty target (a
	// first load, a full reload, a rebuild), not through the staging
	// table and an upsert.
	Direct   bool
	Attempts int // 1 unless retryable errors happened
}

// String is the one line `medallion run` and `medallion mirror` print.
func (r *Result) String() string {
	head := "mirror " + r.Spec.String() + ": "
	switch r.Mode {
	case ModeNoSource:
		return head + r.Spec.Source.String() + " has no commits yet, nothing to mirror"
	case ModeUpToDate:
		return fmt.Sprintf("%sup to date (v%d)", head, r.Version)
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(string(r.Mode))
	if r.FromVersion >= 0 {
		fmt.Fprintf(&b, " v%d -> v%d", r.FromVersion, r.Version)
	} else {
		fmt.Fprintf(&b, " of v%d", r.Version)
	}
	if r.Direct {
		fmt.Fprintf(&b, ": %d rows copied from %d files straight into the table", r.RowsCopied, r.FilesRead)
	} else {
		fmt.Fprintf(&b, ": %d rows copied from %d files, %d upserted, %d deleted", r.RowsCopied, r.FilesRead, r.RowsUpserted, r.RowsDeleted)
	}
	if len(r.AddedColumns) > 0 {
		fmt.Fprintf(&b, ", added columns %s", strings.Join(r.AddedColumns, ", "))
	}
	if r.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", r.Attempts)
	}
	return b.String()
}

// ErrIncompatible is matched (errors.Is) by every IncompatibleError.
var ErrIncompatible = errors.New("mirror target is incompatible with the lake table")

// IncompatibleError says the target table cannot take the lake table as it
// is now (a changed column type or key, a dropped column, another source):
// a permanent error whose message says what to do.
type IncompatibleError struct {
	Spec   Spec
	Reason string
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("%s: %s; run `medallion mirror --rebuild %s` to rebuild it from the lake (readers keep the old table until it is swapped in one transaction)",
		e.Spec.Target(), e.Reason, e.Spec.Source)
}

// Is makes errors.Is(err, ErrIncompatible) true.
func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }

func incompatible(s Spec, format string, args ...any) error {
	return &IncompatibleError{Spec: s, Reason: fmt.Sprintf(format, args...)}
}
