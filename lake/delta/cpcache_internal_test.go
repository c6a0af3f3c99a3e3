package delta

import (
	"fmt"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// TestCheckpointCacheBound: the cache keeps entries newest first up to
// maxActions in all, always the newest one, and a hit moves an entry to
// the front.
func TestCheckpointCacheBound(t *testing.T) {
	c := &checkpointCache{maxActions: 25}
	st := lake.Store(&lake.Local{})
	files := func(i int) []lake.ObjectInfo {
		return []lake.ObjectInfo{{Key: fmt.Sprintf("t%d/_delta_log/00000000000000000010.checkpoint.parquet", i), Size: 1, ModTime: time.Unix(int64(i), 0)}}
	}
	state := func(n int) *state {
		s := newState()
		for i := range n {
			s.files[fmt.Sprint(i)] = Add{Path: fmt.Sprint(i)}
		}
		return s
	}
	c.keep(st, files(1), state(8)) // 10 actions each
	c.keep(st, files(2), state(8))
	if c.lookup(st, files(1)) == nil || c.lookup(st, files(2)) == nil {
		t.Fatal("entries within the bound were dropped")
	}
	c.lookup(st, files(1))         // 1 is now the most recently used
	c.keep(st, files(3), state(8)) // 30 actions: 2, the least recently used, goes
	if c.lookup(st, files(2)) != nil {
		t.Error("least recently used entry kept past the bound")
	}
	if c.lookup(st, files(1)) == nil || c.lookup(st, files(3)) == nil {
		t.Error("recently used entries dropped")
	}
	c.keep(st, files(4), state(100)) // over the bound alone: kept, the rest go
	if c.lookup(st, files(4)) == nil || c.lookup(st, files(1)) != nil || len(c.entries) != 1 {
		t.Errorf("after a large entry: %d entries", len(c.entries))
	}
	if c.lookup(&lake.Local{}, files(4)) != nil {
		t.Error("hit on another store")
	}
	// A newer checkpoint of the same table replaces the older one.
	newer := []lake.ObjectInfo{{Key: "t4/_delta_log/00000000000000000020.checkpoint.parquet", Size: 1}}
	c.keep(st, newer, state(1))
	if c.lookup(st, files(4)) != nil || c.lookup(st, newer) == nil || len(c.entries) != 1 {
		t.Errorf("older checkpoint of the same table kept: %d entries", len(c.entries))
	}
}
