// Package warehouse is the only place that talks to DuckDB: it opens engines
// with bounded memory for the layer jobs, and the read-only analyst engine
// behind `medallion query`.
package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
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
	tempDir string
	ownTemp bool
}

// Open starts an in-memory DuckDB with the given limits.
func Open(ctx context.Context, opts Options) (*Engine, error) {
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
	db, err := sql.Open("duckdb", "")
	if err != nil {
		e.cleanup()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	e.db = db
	settings := []string{
		fmt.Sprintf("SET memory_limit = '%s'", strings.ReplaceAll(opts.MemoryLimit, "'", "")),
		fmt.Sprintf("SET temp_directory = '%s'", strings.ReplaceAll(filepath.Clean(e.tempDir), "'", "''")),
		"SET preserve_insertion_order = false",
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	for _, s := range settings {
		if _, err := db.ExecContext(ctx, s); err != nil {
			e.Close()
			return nil, fmt.Errorf("open duckdb: %s: %w", s, err)
		}
	}
	return e, nil
}

// DB is the database handle. Every connection of the pool shares the same
// in-memory database.
func (e *Engine) DB() *sql.DB { return e.db }

// TempDir is the engine's spill and scratch directory.
func (e *Engine) TempDir() string { return e.tempDir }

// Close closes the database and removes a temp directory Open created.
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
