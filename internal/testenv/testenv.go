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
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func repoRoot() (string, error) {
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
