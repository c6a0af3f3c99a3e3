package bronze

import (
	"sync"

	"github.com/medallion-dev/medallion/lake/delta"
)

// minStatsGeneration is the fewest lookups a generation of the stats
// cache lasts (see statsGenerations).
const minStatsGeneration = 4096

// statsCache keeps the parsed statistics of existing bronze files, so the
// duplicate check of each batch (and of each micro-batch of stream mode)
// does not parse the statistics of every file of its partitions again.
// It is keyed by the stats text itself: a key shares the add's string
// (no copy), and equal text parses to equal statistics, whatever the file,
// table or snapshot.
var statsCache = &statsGenerations{parse: delta.ParseStats}

type parsedStats struct {
	st  delta.FileStats
	err error
}

// statsGenerations is a cache that forgets what is no longer asked for.
// A process that streams for a day adds a bronze file a micro-batch and
// compaction removes it soon after; a cache keeping every stats text it
// ever parsed held all of them (the whole day's case 12: one of the
// largest parts of a Go heap that grew to 311 MiB). Entries live in two
// generations: a lookup finds cur, or moves the entry from prev to cur;
// a generation ends after max(minStatsGeneration, 2*len(cur)) lookups,
// when cur becomes prev and the old prev is dropped. So an entry asked for
// within a generation (every live file of a partition a batch checks) is
// never parsed again, and one not asked for during two generations (a
// removed file's) is gone: the cache holds the working set and the last
// two generations' new entries, not the table's history.
type statsGenerations struct {
	mu        sync.Mutex
	cur, prev map[string]parsedStats
	lookups   int
	parse     func(string) (delta.FileStats, error)
}

// get is parse(stats), parsed once while it stays in use. The result is
// shared: callers must not modify its maps.
func (c *statsGenerations) get(stats string) (delta.FileStats, error) {
	c.mu.Lock()
	p, ok := c.lookup(stats)
	c.mu.Unlock()
	if ok {
		return p.st, p.err
	}
	st, err := c.parse(stats)
	c.mu.Lock()
	c.cur[stats] = parsedStats{st, err}
	c.mu.Unlock()
	return st, err
}

// lookup finds stats in cur or prev, ending the generation when due; c.mu
// is held.
func (c *statsGenerations) lookup(stats string) (parsedStats, bool) {
	if c.cur == nil {
		c.cur = map[string]parsedStats{}
	}
	c.lookups++
	if c.lookups >= max(minStatsGeneration, 2*len(c.cur)) {
		c.prev, c.cur, c.lookups = c.cur, make(map[string]parsedStats, len(c.cur)), 0
	}
	if p, ok := c.cur[stats]; ok {
		return p, true
	}
	if p, ok := c.prev[stats]; ok {
		c.cur[stats] = p
		return p, true
	}
	return parsedStats{}, false
}

// cachedStats is delta.ParseStats(stats), through statsCache.
func cachedStats(stats string) (delta.FileStats, error) { return statsCache.get(stats) }
