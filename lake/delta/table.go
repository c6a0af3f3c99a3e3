// Package delta is the Delta Lake transaction log of every medallion table,
// on top of a lake.Store: create, atomic commits with put-if-absent, snapshots,
// time travel, txn (exactly-once) bookkeeping and Parquet checkpoints that
// Spark, delta-rs and DuckDB read.
//
// A table lives under a key prefix (its root, e.g. "bronze/meters"); the log
// is root + "/_delta_log/". Data files are written by the caller before a
// commit; a commit creates the next log entry with lake.Store.PutIfAbsent,
// so at most one writer wins each version.
package delta

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrCommitConflict means a concurrent writer committed something this
	// commit cannot be reconciled with; re-read the table and try again.
	ErrCommitConflict = errors.New("delta commit conflict")
	// ErrTxnApplied means the snapshot a commit would land on records
	// progress for one of its txn appIds that the writer did not read:
	// another writer applied that input in between. It wraps
	// ErrCommitConflict; the writer re-plans from a fresh snapshot.
	ErrTxnApplied = fmt.Errorf("%w: input already applied by another writer", ErrCommitConflict)
	// ErrFenced means a commit carrying a fence (WithFence) met a higher
	// fence version in the table: a newer lease holder has committed, so
	// this writer has lost its lease. Retrying cannot help.
	ErrFenced = errors.New("delta commit fenced by a newer lease holder")
	// ErrTableExists means Create found a table already there.
	ErrTableExists = errors.New("delta table already exists")
	// ErrNoTable means there is no Delta log under the table root. It also
	// matches lake.ErrNotExist.
	ErrNoTable = fmt.Errorf("no delta table: %w", lake.ErrNotExist)
	// ErrUnsupportedProtocol means the table needs a newer reader or writer
	// than this package.
	ErrUnsupportedProtocol = errors.New("unsupported delta protocol")
	// ErrNoVersion means the asked-for version or timestamp is not in the
	// log (in the future, before the table, or cleaned up).
	ErrNoVersion = errors.New("delta version not found")
)

// The protocol versions this package reads and writes.
const (
	ReaderVersion = 1
	WriterVersion = 2
)

// Options tune a Table. Get them from DefaultOptions and change fields.
type Options struct {
	// CheckpointInterval: after committing version v with v%CheckpointInterval
	// == 0 (v > 0), a Parquet checkpoint of v is written. 0 disables them.
	CheckpointInterval int64
	// MaxCommitAttempts bounds how often a blind append is retried at a
	// newer version after losing races to other writers.
	MaxCommitAttempts int
	// TxnRetention drops txn actions last updated longer than this before
	// the table's newest txn when a snapshot is built (Delta's
	// delta.setTransactionRetentionDuration, which applies when this is 0).
	// 0 keeps them all.
	TxnRetention time.Duration
	// TxnExpires says which txns the retention applies to (nil: all), and
	// so which ones it is measured from (a writer's other progress records,
	// and lease fences, are kept and stay out of the reference).
	TxnExpires func(appID string) bool
	// IgnoreCheckpoints makes readers replay the JSON log only (for tests
	// and for recovering from a damaged checkpoint by hand).
	IgnoreCheckpoints bool
	// Logger receives debug messages (failed checkpoint writes). nil means
	// slog.Default().
	Logger *slog.Logger
	// Cache, if set, is shared with every other Table of the same table
	// opened with it: a checkpoint one of them decoded is not decoded
	// again by the others. nil: the Table keeps its own.
	Cache *Cache
}

// DefaultOptions returns the options Open uses.
func DefaultOptions() Options {
	return Options{CheckpointInterval: 10, MaxCommitAttempts: 1000}
}

// Validate refuses options that cannot work, naming the field.
func (o Options) Validate() error {
	if o.CheckpointInterval < 0 {
		return fmt.Errorf("delta options: CheckpointInterval %d is negative", o.CheckpointInterval)
	}
	if o.TxnRetention < 0 {
		return fmt.Errorf("delta options: TxnRetention %s is negative", o.TxnRetention)
	}
	if o.MaxCommitAttempts < 1 {
		return fmt.Errorf("delta options: MaxCommitAttempts %d must be at least 1", o.MaxCommitAttempts)
	}
	return nil
}

// Table is one Delta table in a store. It holds no state besides its
// location, options and caches of immutable log files (which it checks on
// every use), so any number of Tables (in any number of processes) may use
// the same table at once. Safe for concurrent use.
type Table struct {
	store lake.Store
	dir   string
	opts  Options
	log   *slog.Logger
	// cache is what loads keep for the next ones: the last checkpoint
	// decoded, whatever its size, and the newest version seen
	// (cpcache.go). Shared with other Tables through Options.Cache.
	// checkpoints is the bounded process-wide cache shared with every
	// Table of the same store (cacheFor; nil: none). Both are safe for
	// concurrent use.
	cache       *tableCache
	checkpoints *checkpointCache
}

// Open returns the table rooted at dir ("bronze/meters") in store, with
// DefaultOptions. It does no I/O: a table that does not exist yet is fine.
func Open(store lake.Store, dir string) *Table {
	t, _ := OpenWith(store, dir, DefaultOptions()) // defaults are valid
	return t
}

// OpenWith is Open with options; it refuses invalid options.
func OpenWith(store lake.Store, dir string, opts Options) (*Table, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := opts.Logger
	if l == nil {
		l = slog.Default()
	}
	dir = strings.Trim(dir, "/")
	cache := &tableCache{}
	if opts.Cache != nil {
		cache = opts.Cache.entry(store, dir)
	}
	return &Table{store: store, dir: dir, opts: opts, log: l.With("table", dir), cache: cache, checkpoints: cacheFor(store)}, nil
}

// Dir is the table root key prefix, without a trailing slash.
func (t *Table) Dir() string { return t.dir }

// Store is the store holding the table.
func (t *Table) Store() lake.Store { return t.store }

// Key returns the store key of a file path taken from an Add or Remove
// (relative to the table root).
func (t *Table) Key(path string) string {
	if t.dir == "" {
		return path
	}
	return t.dir + "/" + path
}

// logPrefix is the key prefix of the log: "<dir>/_delta_log/".
func (t *Table) logPrefix() string { return t.Key("_delta_log/") }

func (t *Table) commitKey(v int64) string {
	return fmt.Sprintf("%s%020d.json", t.logPrefix(), v)
}

// checkpointKey is the key of the single-file checkpoint of version v.
func (t *Table) checkpointKey(v int64) string {
	return fmt.Sprintf("%s%020d.checkpoint.parquet", t.logPrefix(), v)
}

func (t *Table) lastCheckpointKey() string { return t.logPrefix() + "_last_checkpoint" }

// name is how errors name the table.
func (t *Table) name() string {
	if t.dir == "" {
		return "delta table at the store root"
	}
	return "delta table " + t.dir
}
