package lake

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// Counts are the calls a store wrapped by Count received: what the bench
// reports per run (how many objects a run listed and read) and what tests
// use to show that a reader's work is bounded. Safe for concurrent use.
type Counts struct {
	Lists   atomic.Int64 // List calls
	Listed  atomic.Int64 // keys those List calls returned
	Gets    atomic.Int64 // Get and GetRange calls
	Puts    atomic.Int64 // Put and PutIfAbsent calls
	Stats   atomic.Int64 // Stat calls
	Deletes atomic.Int64 // Delete calls

	mu   sync.Mutex
	read map[string]int // Get and GetRange calls per key
}

// CountsSummary is a copy of Counts' totals, for printing as JSON.
type CountsSummary struct {
	Lists   int64 `json:"lists"`
	Listed  int64 `json:"listed"`
	Gets    int64 `json:"gets"`
	Puts    int64 `json:"puts"`
	Stats   int64 `json:"stats"`
	Deletes int64 `json:"deletes"`
}

// Summary copies the totals.
func (c *Counts) Summary() CountsSummary {
	return CountsSummary{Lists: c.Lists.Load(), Listed: c.Listed.Load(), Gets: c.Gets.Load(),
		Puts: c.Puts.Load(), Stats: c.Stats.Load(), Deletes: c.Deletes.Load()}
}

// ReadKeys returns how many distinct keys starting with prefix and ending
// with suffix were read (Get or GetRange).
func (c *Counts) ReadKeys(prefix, suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.read {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			n++
		}
	}
	return n
}

// Reads returns how many times key was read (Get or GetRange).
func (c *Counts) Reads(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read[key]
}

// Reset sets every count back to zero.
func (c *Counts) Reset() {
	c.Lists.Store(0)
	c.Listed.Store(0)
	c.Gets.Store(0)
	c.Puts.Store(0)
	c.Stats.Store(0)
	c.Deletes.Store(0)
	c.mu.Lock()
	c.read = nil
	c.mu.Unlock()
}

func (c *Counts) got(key string) {
	c.Gets.Add(1)
	c.mu.Lock()
	if c.read == nil {
		c.read = map[string]int{}
	}
	c.read[key]++
	c.mu.Unlock()
}

// Count wraps st so that every call adds to c (several stores may share
// one Counts). The wrapper is a LocalPather when st is one, so readers
// that use local paths directly (DuckDB on a local lake) keep doing so.
func Count(st Store, c *Counts) Store {
	cs := &countingStore{Store: st, c: c}
	if lp, ok := st.(LocalPather); ok {
		return &countingLocal{countingStore: cs, lp: lp}
	}
	return cs
}

type countingStore struct {
	Store
	c *Counts
}

func (s *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	s.c.got(key)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	s.c.got(key)
	return s.Store.GetRange(ctx, key, offset, length)
}

func (s *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	s.c.Puts.Add(1)
	return s.Store.Put(ctx, key, r, size)
}

func (s *countingStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	s.c.Puts.Add(1)
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

func (s *countingStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	s.c.Stats.Add(1)
	return s.Store.Stat(ctx, key)
}

func (s *countingStore) List(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	objs, err := s.Store.List(ctx, prefix, startAfter)
	s.c.Lists.Add(1)
	s.c.Listed.Add(int64(len(objs)))
	return objs, err
}

func (s *countingStore) Delete(ctx context.Context, key string) error {
	s.c.Deletes.Add(1)
	return s.Store.Delete(ctx, key)
}

type countingLocal struct {
	*countingStore
	lp LocalPather
}

func (s *countingLocal) LocalPath(key string) string { return s.lp.LocalPath(key) }
