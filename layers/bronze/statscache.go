package bronze

import (
	"sync"

	"github.com/medallion-dev/medallion/lake/delta"
)

// maxCachedStats bounds the parsed statistics kept; past it the cache
// starts over (a table with more files re-parses, as without a cache).
const maxCachedStats = 1 << 18

// statsCache keeps the parsed statistics of existing bronze files, so the
// duplicate check of each batch (and of each micro-batch of stream mode)
// does not parse the statistics of every file of its partitions again.
// It is keyed by the stats text itself: a key shares the add's string
// (no copy), and equal text parses to equal statistics, whatever the file,
// table or snapshot.
var statsCache = struct {
	sync.Mutex
	m map[string]parsedStats
}{m: map[string]parsedStats{}}

type parsedStats struct {
	st  delta.FileStats
	err error
}

// cachedStats is delta.ParseStats(stats), parsed once per process. The
// result is shared: callers must not modify its maps.
func cachedStats(stats string) (delta.FileStats, error) {
	statsCache.Lock()
	p, ok := statsCache.m[stats]
	statsCache.Unlock()
	if ok {
		return p.st, p.err
	}
	st, err := delta.ParseStats(stats)
	statsCache.Lock()
	if len(statsCache.m) >= maxCachedStats {
		statsCache.m = map[string]parsedStats{}
	}
	statsCache.m[stats] = parsedStats{st, err}
	statsCache.Unlock()
	return st, err
}
