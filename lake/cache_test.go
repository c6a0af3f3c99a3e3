package lake_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

// remote hides a local store's LocalPather, so the cache treats it like S3.
type remote struct{ lake.Store }

func TestCachePath(t *testing.T) {
	ctx := context.Background()
	local := testenv.LocalStore(t)
	if _, err := local.Put(ctx, "gold/t/a.parquet", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	c := &lake.Cache{Dir: t.TempDir()}

	// A local lake is read in place: nothing copied.
	p, err := c.Path(ctx, local, "gold/t/a.parquet", "")
	if err != nil {
		t.Fatal(err)
	}
	if p != local.(lake.LocalPather).LocalPath("gold/t/a.parquet") {
		t.Errorf("local path %s is not the lake file", p)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 0 {
		t.Errorf("local lake copied %d files into the cache", len(entries))
	}

	// A remote store: downloaded once, by many goroutines at once.
	store := &countingStore{Store: remote{local}}
	info, err := local.Stat(ctx, "gold/t/a.parquet")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Go(func() {
			p, err := c.Path(ctx, store, "gold/t/a.parquet", info.ETag)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	for _, p := range paths {
		if p != paths[0] || filepath.Dir(p) != c.Dir {
			t.Fatalf("paths differ or are outside the cache: %v", paths)
		}
	}
	if b, err := os.ReadFile(paths[0]); err != nil || string(b) != "hello" {
		t.Errorf("cached content %q, %v", b, err)
	}
	before := store.reads()
	if _, err := c.Path(ctx, store, "gold/t/a.parquet", info.ETag); err != nil {
		t.Fatal(err)
	}
	if store.reads() != before {
		t.Errorf("a cached object was downloaded again")
	}
	// A new ETag is a new entry.
	if p, err := c.Path(ctx, store, "gold/t/a.parquet", "other-etag"); err == nil {
		t.Errorf("object with another etag served from %s", p)
	}
	// Missing objects are ErrNotExist.
	if _, err := c.Path(ctx, store, "gold/t/missing.parquet", "x"); err == nil {
		t.Errorf("missing object: no error")
	}
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".download-") {
			t.Errorf("left a temp file %s", e.Name())
		}
	}
}

func TestCachePrune(t *testing.T) {
	dir := t.TempDir()
	c := &lake.Cache{Dir: dir, MaxBytes: 250}
	old := time.Now().Add(-time.Hour)
	var files []string
	for i, name := range []string{"a", "b", "c", "d"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 100), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := old.Add(time.Duration(i) * time.Minute) // a is the least recently used
		os.Chtimes(p, mt, mt)
		files = append(files, p)
	}
	// a is kept (in use), so b and c go; d is the newest.
	if err := c.Prune([]string{files[0]}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, false, true} {
		_, err := os.Stat(files[i])
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", files[i], err == nil, want)
		}
	}
}

// countingStore counts reads of .parquet objects.
type countingStore struct {
	lake.Store
	mu   sync.Mutex
	gets int
}

func (c *countingStore) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, lake.ObjectInfo, error) {
	if strings.HasSuffix(key, ".parquet") {
		c.mu.Lock()
		c.gets++
		c.mu.Unlock()
	}
	return c.Store.Get(ctx, key)
}
