// Package lake is where every byte of the lakehouse lives: raw objects,
// Parquet data files and Delta logs. Everything above it talks to the small
// Store interface; only the S3 adapter knows about minio-go.
package lake

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors every Store returns (possibly wrapped) so callers can drive
// flow with errors.Is instead of matching SDK error strings.
var (
	// ErrNotExist means the key has no object.
	ErrNotExist = errors.New("object does not exist")
	// ErrExists means a PutIfAbsent lost: an object already has that key.
	ErrExists = errors.New("object already exists")
	// ErrChanged means the object was replaced or deleted while it was being
	// read: the bytes already delivered belong to a version that is gone, so
	// the read as a whole must be started again.
	ErrChanged = errors.New("object changed while reading")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // key relative to the store's root, '/'-separated
	Size    int64     // bytes
	ETag    string    // changes whenever the content changes; used as a cache key
	ModTime time.Time // last modification as the store reports it
}

// Store is a flat key/value object store rooted at a prefix. Keys are
// '/'-separated relative paths without a leading slash ("bronze/meters/_delta_log/00000000000000000000.json").
//
// Every Put of a whole object is atomic: a reader sees the old object, the new
// one, or ErrNotExist, never a partial write.
type Store interface {
	// Get opens the whole object. Returns ErrNotExist if it is missing.
	// Reading the body fails with ErrChanged if the object was replaced
	// while it was read (a remote store then cannot deliver the rest).
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// GetRange opens length bytes from offset (length < 0: to the end).
	// Returns ErrNotExist if the object is missing.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Put writes the object, replacing any previous one. size is the byte
	// count of r, or -1 when unknown (the S3 store then streams in parts).
	Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error)
	// PutIfAbsent writes the object only if no object has that key, atomically
	// against concurrent writers on any machine. Returns ErrExists if it lost.
	// This is what makes a Delta commit and a lease acquisition safe.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error)
	// Stat describes the object. Returns ErrNotExist if it is missing.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix and sorts after
	// startAfter (empty: from the beginning), in ascending key order.
	// Listing a prefix with no objects is not an error.
	List(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error)
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// URL is the store's root as a user wrote it (file:///..., s3://bucket/prefix).
	URL() string
}

// LocalPather is implemented by stores whose objects are plain local files,
// so that DuckDB can read them in place instead of through a cache copy.
type LocalPather interface {
	// LocalPath returns the file that holds key (it may not exist).
	LocalPath(key string) string
}
