package main

import (
	"context"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/warehouse"
)

// loadPipeline finds and loads the pipeline file (-f, else ./medallion.yaml).
func (a *app) loadPipeline() (*config.Pipeline, error) {
	path, err := config.Find(a.pipelineFile)
	if err != nil {
		return nil, err
	}
	return config.Load(path)
}

// pipelineLake loads the pipeline file and opens its lake (never creating
// one): what the read-only commands start with.
func (a *app) pipelineLake(ctx context.Context) (*config.Pipeline, lake.Store, error) {
	p, err := a.loadPipeline()
	if err != nil {
		return nil, nil, err
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	return p, st, nil
}

// pipelineWorkspace loads the pipeline file and opens its workspace.
// Close the workspace when done.
func (a *app) pipelineWorkspace(ctx context.Context) (*config.Pipeline, *workspace, error) {
	p, err := a.loadPipeline()
	if err != nil {
		return nil, nil, err
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	return p, ws, nil
}

// lakeCache is the local cache for lake objects: the pipeline's cache:
// directory, else $XDG_CACHE_HOME/medallion or ~/.cache/medallion.
func lakeCache(p *config.Pipeline) (*lake.Cache, error) {
	dir := p.Cache
	if dir == "" {
		d, err := lake.DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return &lake.Cache{Dir: dir}, nil
}

// workspace is what a command that runs DuckDB over the lake needs: the
// lake, an engine with the pipeline's memory limits, and the local cache of
// lake objects.
type workspace struct {
	store lake.Store
	eng   *warehouse.Engine
	cache *lake.Cache
}

// openWorkspace opens the pipeline's lake, a DuckDB engine and the cache.
// Close the workspace when done.
func (a *app) openWorkspace(ctx context.Context, p *config.Pipeline) (*workspace, error) {
	// DuckDB starts first, in the background, while the command reads the
	// lake: a run's leases and upstream checks come before its first
	// statement.
	eng, err := warehouse.OpenBackground(ctx, warehouse.Options{
		MemoryLimit: p.DuckDB.MemoryLimit, Threads: p.DuckDB.Threads, TempDir: p.DuckDB.TempDir,
	})
	if err != nil {
		return nil, err
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		eng.Close()
		return nil, err
	}
	cache, err := lakeCache(p)
	if err != nil {
		eng.Close()
		return nil, err
	}
	return &workspace{store: st, eng: eng, cache: cache}, nil
}

// Close closes the engine (the lake and cache hold nothing open).
func (w *workspace) Close() error { return w.eng.Close() }

// runner is a jobs.Runner over the workspace with the environment's lease
// options, owned by this process: what run, refresh, replay and serve run
// their jobs with, so that they take the same table leases.
func (ws *workspace) runner(a *app, p *config.Pipeline, wait time.Duration) (*jobs.Runner, error) {
	lo, err := leaseOptions()
	if err != nil {
		return nil, err
	}
	return &jobs.Runner{Store: ws.store, Pipeline: p, Engine: ws.eng, Cache: ws.cache, Log: a.log,
		Owner: jobs.DefaultOwner(), Lease: lo, LeaseWait: wait}, nil
}
