package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Cache keeps local copies of lake objects so that DuckDB can read them as
// files and a second query downloads nothing. Entries are keyed by the
// store, the object key and its ETag, so a changed object is a new entry.
//
// Several processes may share one cache directory: every entry is written to
// a temp file and renamed into place, so a reader sees a whole file or none.
type Cache struct {
	// Dir holds the entries; created on first use.
	Dir string
	// MaxBytes bounds the directory's size (0: unbounded). Prune removes
	// the least recently used entries (by modification time, which Path
	// refreshes on every hit) until the total is under the bound.
	MaxBytes int64
}

// DefaultCacheDir is the cache directory used when the pipeline file sets
// none: $XDG_CACHE_HOME/medallion, else ~/.cache/medallion (the OS's user
// cache directory elsewhere).
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory (set cache: in medallion.yaml): %w", err)
	}
	return filepath.Join(base, "medallion"), nil
}

// Path returns a local file holding the object key of store whose ETag is
// etag. For a store whose objects are local files (LocalPather) it is
// the file itself, nothing is copied. Otherwise it is the cache entry
// <Dir>/<sha256(store URL, key)>-<etag>, downloaded first if absent; an empty
// etag is looked up with Stat. Returns an error wrapping ErrNotExist if
// the object is missing. Safe for concurrent use by goroutines and processes.
func (c *Cache) Path(ctx context.Context, store Store, key, etag string) (string, error) {
	if lp, ok := store.(LocalPather); ok {
		return lp.LocalPath(key), nil
	}
	if c == nil || c.Dir == "" {
		return "", errors.New("cache: no cache directory for a remote lake (set cache: in medallion.yaml)")
	}
	if etag == "" {
		info, err := store.Stat(ctx, key)
		if err != nil {
			return "", fmt.Errorf("cache %s: %w", key, err)
		}
		etag = info.ETag
	}
	path := filepath.Join(c.Dir, entryName(store.URL(), key, etag))
	if _, err := os.Stat(path); err == nil {
		now := time.Now()
		_ = os.Chtimes(path, now, now) // LRU: a hit is a use
		return path, nil
	}
	if err := c.download(ctx, store, key, etag, path); err != nil {
		return "", err
	}
	return path, nil
}

func entryName(storeURL, key, etag string) string {
	h := sha256.Sum256([]byte(storeURL + "\x00" + key))
	e := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return -1
	}, etag)
	if len(e) > 64 {
		s := sha256.Sum256([]byte(etag))
		e = hex.EncodeToString(s[:8])
	}
	name := hex.EncodeToString(h[:]) + "-" + e
	if ext := filepath.Ext(key); ext != "" && len(ext) <= 10 {
		name += ext // DuckDB and humans like to see .parquet
	}
	return name
}

func (c *Cache) download(ctx context.Context, store Store, key, etag, path string) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := Download(ctx, store, key, etag, path); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Download copies the object key of store into the local file path
// (creating its directory), through a temp file renamed into place so a
// reader sees a whole file or none. A non-empty etag must match the
// object's. Callers that need the key's own layout on disk (DuckDB's
// hive partitioning reads partition values from the path) use it directly;
// others use a Cache.
func Download(ctx context.Context, store Store, key, etag, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	rc, info, err := store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	defer rc.Close()
	if info.ETag != "" && etag != "" && info.ETag != etag {
		return fmt.Errorf("download %s: %w (etag %s, want %s)", key, ErrChanged, info.ETag, etag)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".download-*")
	if err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := io.Copy(tmp, ctxReader{ctx: ctx, r: rc}); err != nil {
		tmp.Close()
		return fmt.Errorf("download %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	return nil
}

// pruneGrace protects entries used this recently from eviction: another
// process may be about to read them.
const pruneGrace = time.Minute

// Prune removes least recently used entries until the cache holds at most
// MaxBytes, never removing the files in keep (the current query's) nor
// entries used in the last minute (another process may be reading them).
// Unfinished downloads older than an hour are removed too. With MaxBytes 0
// it does nothing.
func (c *Cache) Prune(keep []string) error {
	if c == nil || c.MaxBytes <= 0 || c.Dir == "" {
		return nil
	}
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune cache: %w", err)
	}
	type entry struct {
		path  string
		size  int64
		mtime time.Time
	}
	var all []entry
	var total int64
	now := time.Now()
	for _, de := range entries {
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(c.Dir, de.Name())
		if strings.HasPrefix(de.Name(), ".download-") {
			if now.Sub(fi.ModTime()) > time.Hour {
				os.Remove(p)
			}
			continue
		}
		all = append(all, entry{p, fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	slices.SortFunc(all, func(a, b entry) int { return a.mtime.Compare(b.mtime) })
	for _, e := range all {
		if total <= c.MaxBytes {
			break
		}
		if slices.Contains(keep, e.path) || now.Sub(e.mtime) < pruneGrace {
			continue
		}
		if err := os.Remove(e.path); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= e.size
		}
	}
	return nil
}
