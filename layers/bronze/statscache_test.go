package bronze

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
)

// TestCachedStats: the cache answers what ParseStats does, errors
// included.
func TestCachedStats(t *testing.T) {
	for _, s := range []string{
		`{"numRecords":3,"minValues":{"id":"a"},"maxValues":{"id":"z"},"nullCount":{"id":0}}`,
		`{"numRecords":1}`,
		``,
		`{"minValues":`,
	} {
		want, wantErr := delta.ParseStats(s)
		for range 2 {
			got, err := cachedStats(s)
			if !reflect.DeepEqual(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("cachedStats(%q) = %+v, %v; want %+v, %v", s, got, err, want, wantErr)
			}
		}
	}
}

// TestStatsCacheForgetsRemovedFiles plays stream mode: each micro-batch
// adds a file, compaction soon removes the older ones, and the duplicate
// check looks up the stats of the live files. The live files are parsed
// once each however long it runs, and what the cache holds stays near the
// working set instead of growing with every file ever added (a day of
// 86,400 micro-batches held every one before).
func TestStatsCacheForgetsRemovedFiles(t *testing.T) {
	parses := map[string]int{}
	c := &statsGenerations{parse: func(s string) (delta.FileStats, error) {
		parses[s]++
		return delta.ParseStats(s)
	}}
	stats := func(i int) string { return fmt.Sprintf(`{"numRecords":%d}`, i) }
	const batches, live = 50_000, 20
	most := 0
	for b := range batches {
		// The live files: the last `live` added (older ones compacted away).
		for i := max(0, b-live+1); i <= b; i++ {
			st, err := c.get(stats(i))
			if err != nil || st.NumRecords != int64(i) {
				t.Fatalf("batch %d: get(%d) = %+v, %v", b, i, st, err)
			}
		}
		most = max(most, c.len())
	}
	for s, n := range parses {
		if n != 1 {
			t.Fatalf("%s parsed %d times, want once", s, n)
		}
	}
	if len(parses) != batches {
		t.Fatalf("%d distinct stats parsed, want %d", len(parses), batches)
	}
	// A generation is at least minStatsGeneration lookups, `live` a batch:
	// two generations add about 2*minStatsGeneration/live files.
	if limit := live + 2*minStatsGeneration/live + live; most > limit {
		t.Fatalf("cache held up to %d entries over %d batches, want at most %d", most, batches, limit)
	}
}

// TestStatsCacheKeepsAWideWorkingSet: a batch job whose partitions hold
// more files than a generation's minimum still parses each file once
// across many batches (a generation lasts twice the working set).
func TestStatsCacheKeepsAWideWorkingSet(t *testing.T) {
	parses := 0
	c := &statsGenerations{parse: func(s string) (delta.FileStats, error) {
		parses++
		return delta.ParseStats(s)
	}}
	const files = 3 * minStatsGeneration
	for range 10 {
		for i := range files {
			c.get(fmt.Sprintf(`{"numRecords":%d}`, i))
		}
	}
	if parses != files {
		t.Fatalf("%d parses over 10 passes of %d files, want %d", parses, files, files)
	}
}

// len is the number of entries c holds, in both generations.
func (c *statsGenerations) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.cur)
	for k := range c.prev {
		if _, ok := c.cur[k]; !ok {
			n++
		}
	}
	return n
}
