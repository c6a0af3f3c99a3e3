package delta

import (
	"maps"
	"slices"
	"sync"

	"github.com/medallion-dev/medallion/lake"
)

// checkpointCache keeps the state decoded from the checkpoint a Table read
// last, so that a Table loading snapshots again and again (a job reading
// its table before and after each batch) decodes each checkpoint once: the
// decoding costs as much as the checkpoint holds (live files, txns within
// their retention, tombstones within theirs), which grows with the table's
// history, while the files are immutable once complete. A hit is a
// checkpoint whose objects have the same keys, sizes and modification
// times; every load gets its own copy.
type checkpointCache struct {
	mu    sync.Mutex
	files []lake.ObjectInfo
	st    *state
}

// get returns a copy of the cached state of files, or nil.
func (c *checkpointCache) get(files []lake.ObjectInfo) *state {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil || !sameObjects(c.files, files) {
		return nil
	}
	return c.st.clone()
}

// put caches a copy of st, decoded from files.
func (c *checkpointCache) put(files []lake.ObjectInfo, st *state) {
	cp := st.clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files, c.st = slices.Clone(files), cp
}

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
