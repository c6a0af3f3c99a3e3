// Package warehouse is the only place that talks to DuckDB: it opens engines
// with bounded memory for the layer jobs, and the read-only analyst engine
// behind `medallion query`.
package warehouse

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Options bound what one engine may use. Zero values mean defaults.
type Options struct {
	MemoryLimit string // DuckDB memory_limit, e.g. "2GB"
	Threads     int    // 0: DuckDB's default (all cores)
	TempDir     string // spill directory; default a fresh directory under os.TempDir
}

// DefaultOptions returns the limits used when the pipeline file sets none.
func DefaultOptions() Options {
	return Options{MemoryLimit: "2GB"}
}

// Engine is one in-memory DuckDB database. It holds no database file, so any
// number of processes can open engines over the same lake without locking
// each other out.
type Engine struct {
	db      *sql.DB
	conn    *startingConnector // db's connector
	tempDir string
	ownTemp bool
}

// Open starts an in-memory DuckDB with the given limits, and returns once
// it is up: an error opening it or applying a limit comes back here.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	e, err := OpenBackground(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := e.conn.wait(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// OpenBackground is Open without waiting: DuckDB starts in a goroutine the
// engine owns, and the first use of DB waits for it. DuckDB's start takes
// about 25 ms of one core (its catalog of built-in functions), as long as
// the upstream checks of a small `medallion run gold`; a command with lake
// work to do before its first statement (leases, Delta logs) overlaps the
// two this way. An error starting DuckDB or applying a limit comes back
// from every use of DB (wrapped as Open wraps it) instead of from here.
func OpenBackground(ctx context.Context, opts Options) (*Engine, error) {
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = DefaultOptions().MemoryLimit
	}
	e := &Engine{tempDir: opts.TempDir}
	if e.tempDir == "" {
		dir, err := os.MkdirTemp("", "medallion-duckdb-")
		if err != nil {
			return nil, fmt.Errorf("open duckdb: temp dir: %w", err)
		}
		e.tempDir, e.ownTemp = dir, true
	}
	settings := []string{
		fmt.Sprintf("SET memory_limit = '%s'", strings.ReplaceAll(opts.MemoryLimit, "'", "")),
		fmt.Sprintf("SET temp_directory = '%s'", strings.ReplaceAll(filepath.Clean(e.tempDir), "'", "''")),
		"SET preserve_insertion_order = false",
		// DuckDB's file cache keeps the bytes of every file read in its
		// buffer pool, up to the memory limit: the lake's files are local
		// (or in lake.Cache) and in the OS page cache already, so in a
		// long stream-mode process it only grew the RSS (bench case 12,
		// 2,500 micro-batches: 450 MiB with it, 154 MiB without, and less
		// CPU without).
		"SET enable_external_file_cache = false",
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	e.conn = &startingConnector{ready: make(chan struct{})}
	go e.conn.start(context.WithoutCancel(ctx), settings)
	e.db = sql.OpenDB(e.conn)
	return e, nil
}

// startingConnector is the engine's database/sql connector while DuckDB
// may still be starting: Connect waits for the start, then hands out
// DuckDB's own connections (so conn.Raw still sees a DuckDB connection).
type startingConnector struct {
	ready chan struct{} // closed once c or err is set
	c     *duckdb.Connector
	err   error
}

var _ driver.Connector = (*startingConnector)(nil)

// start opens the database and applies settings (global DuckDB options) on
// a first connection, then closes ready.
func (s *startingConnector) start(ctx context.Context, settings []string) {
	defer close(s.ready)
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		s.err = fmt.Errorf("open duckdb: %w", err)
		return
	}
	if err := applySettings(ctx, c, settings); err != nil {
		c.Close()
		s.err = err
		return
	}
	s.c = c
}

// applySettings runs each statement of settings on one connection of c.
func applySettings(ctx context.Context, c *duckdb.Connector, settings []string) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return fmt.Errorf("open duckdb: connect: %w", err)
	}
	defer conn.Close()
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("open duckdb: connection %T cannot run statements", conn)
	}
	for _, st := range settings {
		if _, err := ex.ExecContext(ctx, st, nil); err != nil {
			return fmt.Errorf("open duckdb: %s: %w", st, err)
		}
	}
	return nil
}

// wait returns once DuckDB has started (its error, if it failed) or ctx
// is done.
func (s *startingConnector) wait(ctx context.Context) error {
	select {
	case <-s.ready:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connect waits for DuckDB's start, then opens one of its connections.
func (s *startingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.c.Connect(ctx)
}

// Driver is DuckDB's driver.
func (s *startingConnector) Driver() driver.Driver { return duckdb.Driver{} }

// Close waits for the start to end, then closes the database. sql.DB.Close
// calls it.
func (s *startingConnector) Close() error {
	<-s.ready
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// DB is the database handle. Every connection of the pool shares the same
// in-memory database.
func (e *Engine) DB() *sql.DB { return e.db }

// TempDir is the engine's spill and scratch directory.
func (e *Engine) TempDir() string { return e.tempDir }

// Close closes the database (waiting for a start OpenBackground began) and
// removes a temp directory Open or OpenBackground created.
func (e *Engine) Close() error {
	var err error
	if e.db != nil {
		err = e.db.Close()
	}
	e.cleanup()
	return err
}

func (e *Engine) cleanup() {
	if e.ownTemp {
		os.RemoveAll(e.tempDir)
	}
}
