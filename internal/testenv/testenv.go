// Package testenv is the integration-test harness: a real MinIO server (the
// one from S3_ENDPOINT, or one started on a free loopback port per test
// binary), fresh buckets and local lakes per test, and the PostgreSQL URL.
//
// Nothing here skips a test: a missing dependency fails it with one line
// saying how to provide it, because integration tests are part of make test.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/medallion-dev/medallion/lake"
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory (go test runs each package in its own directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

// FindRepoRoot returns the directory holding go.mod, above the working
// directory (for callers outside a test, like the bench).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LocalStore returns an empty local-directory store in a fresh temp
// directory, removed when the test ends.
func LocalStore(t testing.TB) lake.Store {
	t.Helper()
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatalf("testenv: local store: %v", err)
	}
	return st
}

// ForEachStore runs fn as two parallel subtests: "local" on a
// local-directory store and "minio" on a fresh bucket of a real MinIO. The
// acceptance tests of everything built on lake.Store run this way.
func ForEachStore(t *testing.T, fn func(t *testing.T, st lake.Store)) {
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		fn(t, LocalStore(t))
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		st, _, _ := S3Store(t)
		fn(t, st)
	})
}
