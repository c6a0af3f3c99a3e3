package delta

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/medallion-dev/medallion/lake"
)

// Cache shares what Tables keep between snapshot loads (the state decoded
// from the last checkpoint read, the newest version seen) among every Table
// of the same table opened with it (Options.Cache). A process that opens a
// fresh Table for each run of a job (stream mode's micro-batches) passes
// one Cache to all of them, so that each checkpoint is still decoded once.
// What it holds is only ever a copy of immutable log files, checked against
// the files' identity on each use, so sharing it is safe whatever the
// Tables' other options. The zero value is ready to use; safe for
// concurrent use.
type Cache struct {
	mu     sync.Mutex
	tables map[string]*tableCache // by store URL and table directory
}

// entry returns the cache of the table at dir in store.
func (c *Cache) entry(store lake.Store, dir string) *tableCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables == nil {
		c.tables = map[string]*tableCache{}
	}
	k := store.URL() + "\x00" + dir
	e, ok := c.tables[k]
	if !ok {
		e = &tableCache{}
		c.tables[k] = e
	}
	return e
}

// tableCache is what the Tables of one table keep between loads.
//
// The checkpoint state saves decoding: the decoding costs as much as the
// checkpoint holds (live files, txns within their retention, tombstones
// within theirs), which grows with the table's history, while the files are
// immutable once complete. A hit is a checkpoint whose objects have the
// same keys, sizes and modification times; every load gets its own copy.
//
// latest is a hint only: how many commits past the checkpoint the next
// load probes for at once (probe.go). A wrong hint costs requests, never
// correctness.
type tableCache struct {
	mu     sync.Mutex
	files  []lake.ObjectInfo
	st     *state
	latest atomic.Int64 // newest version a load saw, plus one (0: none)
}

// get returns a copy of the cached state of files, or nil.
func (c *tableCache) get(files []lake.ObjectInfo) *state {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil || !sameObjects(c.files, files) {
		return nil
	}
	return c.st.clone()
}

// put caches a copy of st, decoded from files.
func (c *tableCache) put(files []lake.ObjectInfo, st *state) {
	cp := st.clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files, c.st = slices.Clone(files), cp
}

// saw records that a load found version v.
func (c *tableCache) saw(v int64) { c.latest.Store(v + 1) }

// seen returns the newest version a load found, or -1.
func (c *tableCache) seen() int64 { return c.latest.Load() - 1 }

func sameObjects(a, b []lake.ObjectInfo) bool {
	return slices.EqualFunc(a, b, func(x, y lake.ObjectInfo) bool {
		return x.Key == y.Key && x.Size == y.Size && x.ModTime.Equal(y.ModTime) && x.ETag == y.ETag
	})
}

// clone copies st deeply enough that applying commits to the copy, or
// expiring its txns, leaves st as it was.
func (st *state) clone() *state {
	c := *st
	c.files = maps.Clone(st.files)
	c.tombstones = maps.Clone(st.tombstones)
	c.txns = maps.Clone(st.txns)
	if st.protocol != nil {
		p := *st.protocol
		p.ReaderFeatures, p.WriterFeatures = slices.Clone(p.ReaderFeatures), slices.Clone(p.WriterFeatures)
		c.protocol = &p
	}
	if st.metadata != nil {
		m := *st.metadata
		m.Configuration = maps.Clone(m.Configuration)
		m.PartitionColumns = slices.Clone(m.PartitionColumns)
		c.metadata = &m
	}
	return &c
}
