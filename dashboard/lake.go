package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// snapCache keeps each table's latest snapshot for ttl. After ttl it asks
// the log for the latest version only (the _last_checkpoint read and one
// listing) and replays the log again only when the version moved.
type snapCache struct {
	store lake.Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*snapEntry
}

type snapEntry struct {
	mu      sync.Mutex // held while (re)loading, so concurrent requests share one read
	snap    *delta.Snapshot
	checked time.Time
}

func newSnapCache(store lake.Store, ttl time.Duration, now func() time.Time) *snapCache {
	return &snapCache{store: store, ttl: ttl, now: now, entries: map[string]*snapEntry{}}
}

// get returns the latest snapshot of ref, or nil when the table has no
// commits yet.
func (c *snapCache) get(ctx context.Context, ref layers.TableRef) (*delta.Snapshot, error) {
	c.mu.Lock()
	e := c.entries[ref.String()]
	if e == nil {
		e = &snapEntry{}
		c.entries[ref.String()] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	if !e.checked.IsZero() && now.Sub(e.checked) < c.ttl {
		return e.snap, nil
	}
	t := delta.Open(c.store, ref.Dir())
	if e.snap != nil {
		v, err := t.LatestVersion(ctx)
		if err == nil && v == e.snap.Version {
			e.checked = now
			return e.snap, nil
		}
	}
	snap, err := t.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		e.snap, e.checked = nil, now
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	e.snap, e.checked = snap, now
	return snap, nil
}

// refresh reads ref's latest version now, whatever the TTL (the events
// watcher must not miss a commit made within the TTL).
func (c *snapCache) refresh(ctx context.Context, ref layers.TableRef) (*delta.Snapshot, error) {
	c.mu.Lock()
	if e := c.entries[ref.String()]; e != nil {
		e.mu.Lock()
		e.checked = time.Time{}
		e.mu.Unlock()
	}
	c.mu.Unlock()
	return c.get(ctx, ref)
}

// ttlCache holds one value for ttl.
type ttlCache[T any] struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	v   T
	at  time.Time
	set bool
}

// get returns the cached value or loads a new one (holding the lock, so
// concurrent requests share one load).
func (c *ttlCache[T]) get(load func() (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set && c.now().Sub(c.at) < c.ttl {
		return c.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.v, c.at, c.set = v, c.now(), true
	return v, nil
}

// reader runs the dashboard's queries on its own engine, one at a time.
// Each table is attached as a view at the version the request saw; a view
// is re-attached only when that version changes.
type reader struct {
	eng   *warehouse.Engine
	store lake.Store
	cache *lake.Cache

	mu       sync.Mutex
	attached map[string]int64 // table -> version its view reads
}

func newReader(eng *warehouse.Engine, store lake.Store, cache *lake.Cache) *reader {
	return &reader{eng: eng, store: store, cache: cache, attached: map[string]int64{}}
}

func (r *reader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eng.Close()
}

// with attaches ref at version (unless its view already reads it) and runs
// fn. A failed fn drops the view's version so the next call attaches again
// (its files may have been compacted away).
func (r *reader) with(ctx context.Context, ref layers.TableRef, version int64, fn func(db *sql.DB) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := ref.String()
	if v, ok := r.attached[key]; !ok || v != version {
		delete(r.attached, key)
		cat, err := warehouse.AttachCatalog(ctx, r.eng, r.store, r.cache, []warehouse.TableRef{jobs.WarehouseRef(ref)},
			warehouse.AsOf{Version: version, HasVersion: true})
		if err != nil {
			return err
		}
		if len(cat.Tables) != 1 {
			return fmt.Errorf("attach %s: the table has no commits", ref)
		}
		r.attached[key] = cat.Tables[0].Version
	}
	if err := fn(r.eng.DB()); err != nil {
		delete(r.attached, key)
		return err
	}
	return nil
}

// view is the quoted name of ref's view.
func view(ref layers.TableRef) string {
	return warehouse.QuoteIdent(string(ref.Layer)) + "." + warehouse.QuoteIdent(ref.Name)
}

// versionCache keeps one value per table, computed from the table's log at
// one version (its history, the times of its batches): immutable while the
// version stays, so a page view does not read the same commits again.
type versionCache[T any] struct {
	mu      sync.Mutex
	entries map[string]versioned[T]
}

type versioned[T any] struct {
	version int64
	v       T
}

// get returns the value for ref at version, loading it when the version
// moved.
func (c *versionCache[T]) get(ref layers.TableRef, version int64, load func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.entries[ref.String()]
	c.mu.Unlock()
	if ok && e.version == version {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]versioned[T]{}
	}
	c.entries[ref.String()] = versioned[T]{version, v}
	c.mu.Unlock()
	return v, nil
}
