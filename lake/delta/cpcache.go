package delta

import (
	"maps"
	"path"
	"reflect"
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
	// commits are parsed commits after the checkpoint (cpFiles, at
	// version cpVersion) the newest load started from, by version: a load
	// replays the tail after the checkpoint from them and asks the store
	// only for the versions after the last one. Checkpoints of a table
	// with a long history are far apart (maybeCheckpoint), and a stream
	// job loads its tables several times a micro-batch: reading the whole
	// tail each time would cost what the longer interval saves. Commits
	// are immutable once written (put-if-absent), and log cleanup deletes
	// only versions before the newest checkpoint, which no load replays;
	// they are used only with the same checkpoint objects (a table deleted
	// and created again has other ones).
	commits map[int64]probed
	cpFiles []lake.ObjectInfo
}

// tail returns the cached commits from version v on, as long as they
// follow each other, and the cached commit of version at (found false if
// none), when they were cached with the checkpoint cp.
func (c *tableCache) tail(cp []lake.ObjectInfo, v, at int64) (run []probed, own probed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !sameObjects(c.cpFiles, cp) {
		return nil, probed{}
	}
	for ; ; v++ {
		p, ok := c.commits[v]
		if !ok {
			break
		}
		run = append(run, p)
	}
	return run, c.commits[at]
}

// keepCommits caches the parsed commits got, read after the checkpoint cp
// of version floor, and forgets those before it (or all of them, cached
// with another checkpoint's objects that is not older).
func (c *tableCache) keepCommits(cp []lake.ObjectInfo, floor int64, got map[int64]probed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.commits == nil || !sameObjects(c.cpFiles, cp) {
		c.commits = map[int64]probed{}
		c.cpFiles = slices.Clone(cp)
	}
	maps.DeleteFunc(c.commits, func(v int64, _ probed) bool { return v < floor })
	maps.Copy(c.commits, got)
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

// checkpointCache keeps states decoded from checkpoints, so that loading
// snapshots again and again decodes each checkpoint once: a job reading its
// table before and after each batch, and every other job of the same
// process reading that table (silver reads bronze's snapshot right after
// bronze committed to it, on the same checkpoint). The decoding costs as
// much as the checkpoint holds (live files, txns within their retention,
// tombstones within theirs), which grows with the table's history, while
// the files are immutable once complete. A hit is a checkpoint of the same
// store whose objects have the same keys, sizes, modification times and
// ETags; every load gets its own copy.
//
// The entries, one per table (its newest checkpoint read), are bounded by
// the actions they hold (maxActions, across entries; the most recently
// used entry is always kept), most recently used first.
type checkpointCache struct {
	mu         sync.Mutex
	maxActions int
	entries    []cpEntry // newest first
}

// cpEntry is one decoded checkpoint of one store.
type cpEntry struct {
	store lake.Store
	files []lake.ObjectInfo
	st    *state
}

// sharedCheckpointActions bounds the actions the process-wide cache keeps
// (about 100 MB at a few hundred bytes per add with its statistics): far
// more than the live files of the tables a pipeline reads in a run. A
// Table also keeps the last checkpoint it decoded itself, whatever its
// size (Table.cache), so a long-lived Table of a larger table
// still decodes each checkpoint once.
const sharedCheckpointActions = 1 << 18

// sharedCheckpoints is the process-wide cache of every Table whose store
// can be told apart by identity (see cacheFor).
var sharedCheckpoints = &checkpointCache{maxActions: sharedCheckpointActions}

// cacheFor returns the process-wide checkpoint cache when Tables on store
// can share it, that is when stores compare by identity (pointers, as
// every lake.Store of this module), else nil.
func cacheFor(store lake.Store) *checkpointCache {
	if store != nil && reflect.TypeOf(store).Comparable() {
		return sharedCheckpoints
	}
	return nil
}

// lookup returns the cached state of files in store itself (callers must
// not modify it), or nil, and marks it most recently used.
func (c *checkpointCache) lookup(store lake.Store, files []lake.ObjectInfo) *state {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.entries {
		if e.store == store && sameObjects(e.files, files) {
			// Most recently used first: a process reads the same few
			// tables again and again.
			copy(c.entries[1:i+1], c.entries[:i])
			c.entries[0] = e
			return e.st
		}
	}
	return nil
}

// keep caches st itself, which nobody modifies any more, and drops the
// least recently used entries past the bound (the newest is always kept,
// so a bound of 0 keeps exactly one).
func (c *checkpointCache) keep(store lake.Store, files []lake.ObjectInfo, st *state) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// One checkpoint per table: a newer one replaces the older (a process
	// that keeps running, as serve, would otherwise fill the cache with
	// checkpoints of the same tables it will not read again).
	dir := logDir(files)
	c.entries = slices.DeleteFunc(c.entries, func(e cpEntry) bool {
		return e.store == store && logDir(e.files) == dir
	})
	c.entries = slices.Insert(c.entries, 0, cpEntry{store: store, files: slices.Clone(files), st: st})
	total := 0
	for i, e := range c.entries {
		total += e.st.actions()
		if i > 0 && total > c.maxActions {
			clear(c.entries[i:])
			c.entries = c.entries[:i]
			break
		}
	}
}

// logDir is the log folder of a checkpoint's files.
func logDir(files []lake.ObjectInfo) string {
	if len(files) == 0 {
		return ""
	}
	return path.Dir(files[0].Key)
}

// actions is about how many actions st holds, the measure of its size.
func (st *state) actions() int { return len(st.files) + st.tombstones.len() + len(st.txns) + 2 }

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
	c.tombstones = st.tombstones.clone()
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
