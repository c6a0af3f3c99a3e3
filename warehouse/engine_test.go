package warehouse

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestOpenBackground checks the engine that starts in the background: it
// applies the limits as Open does, a start that fails is reported by every
// use of the handle (not lost), and Close waits for the start and removes
// the temp directory.
func TestOpenBackground(t *testing.T) {
	ctx := context.Background()
	t.Run("limits", func(t *testing.T) {
		eng, err := OpenBackground(ctx, Options{MemoryLimit: "300MB", Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		dir := eng.TempDir()
		var threads int64
		var order, fileCache bool
		if err := eng.DB().QueryRowContext(ctx, "SELECT current_setting('threads'), current_setting('preserve_insertion_order'), current_setting('enable_external_file_cache')").Scan(&threads, &order, &fileCache); err != nil {
			t.Fatal(err)
		}
		if threads != 1 || order || fileCache {
			t.Errorf("threads %d, preserve_insertion_order %v, enable_external_file_cache %v; want 1, false, false", threads, order, fileCache)
		}
		var limit string
		if err := eng.DB().QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&limit); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(limit, "286") { // 300 MB in MiB
			t.Errorf("memory_limit %q, want 286.1 MiB", limit)
		}
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("temp dir %s left behind (%v)", dir, err)
		}
	})
	t.Run("bad limit", func(t *testing.T) {
		eng, err := OpenBackground(ctx, Options{MemoryLimit: "lots"})
		if err != nil {
			t.Fatalf("OpenBackground returned %v; want the error at first use", err)
		}
		for range 2 {
			_, err := eng.DB().ExecContext(ctx, "SELECT 1")
			if err == nil || !strings.Contains(err.Error(), "memory_limit") {
				t.Errorf("query on an engine that failed to start: %v; want the memory_limit error", err)
			}
		}
		if err := eng.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if _, err := Open(ctx, Options{MemoryLimit: "lots"}); err == nil || !strings.Contains(err.Error(), "memory_limit") {
			t.Errorf("Open: %v; want the memory_limit error", err)
		}
	})
	t.Run("close before use", func(t *testing.T) {
		eng, err := OpenBackground(ctx, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
