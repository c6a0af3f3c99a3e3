package warehouse

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"
)

func progressConn(t *testing.T) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	conn, err := eng.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestRawConnectionFound: the C connection handle is found behind a
// duckdb-go connection of the pinned version. If a new duckdb-go moves it,
// this test fails instead of progress going quiet.
func TestRawConnectionFound(t *testing.T) {
	conn := progressConn(t)
	var ok bool
	if err := conn.Raw(func(dc any) error {
		_, ok = rawConnection(dc)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("no C connection handle found behind the duckdb-go connection")
	}
	if _, ok := rawConnection(struct{}{}); ok {
		t.Fatal("a handle found behind a value that is not a duckdb-go connection")
	}
}

// TestWatchProgressLongStatement: a scan of a large table reports fractions
// in [0, 1] that never decrease, never after WatchProgress returned, and
// the connection's settings are back to their defaults after it. A
// statement that ended before the first poll may report nothing.
func TestWatchProgressLongStatement(t *testing.T) {
	ctx := context.Background()
	conn := progressConn(t)
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE big AS SELECT range AS i FROM range(30000000)"); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		seen     []float64
		returned bool
		late     bool
	)
	report := func(f float64) {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			late = true
		}
		seen = append(seen, f)
	}
	var sum int64
	err := WatchProgress(ctx, conn, 10*time.Millisecond, report, func() error {
		return conn.QueryRowContext(ctx, "SELECT sum(hash(i * 7) % 1000)::BIGINT FROM big WHERE i % 3 <> 1").Scan(&sum)
	})
	mu.Lock()
	returned = true
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if sum <= 0 {
		t.Fatalf("sum %d", sum)
	}
	mu.Lock()
	defer mu.Unlock()
	if late {
		t.Error("report called after WatchProgress returned")
	}
	prev := -1.0
	for i, f := range seen {
		if f < 0 || f > 1 || f < prev {
			t.Errorf("report %d: %v after %v, want non-decreasing in [0, 1]", i, f, prev)
		}
		prev = f
	}
	t.Logf("%d reports: %v", len(seen), seen)
	var on string
	if err := conn.QueryRowContext(ctx, "SELECT current_setting('enable_progress_bar')::VARCHAR").Scan(&on); err != nil {
		t.Fatal(err)
	}
	if on != "false" {
		t.Errorf("enable_progress_bar is %q after WatchProgress, want its default false", on)
	}
}

// TestWatchProgressReturnsFnError: fn's error comes back as it is, and a
// failing statement stops the watcher.
func TestWatchProgressReturnsFnError(t *testing.T) {
	ctx := context.Background()
	conn := progressConn(t)
	_, want := conn.ExecContext(ctx, "SELECT * FROM no_such_table")
	if want == nil {
		t.Fatal("no error from a missing table")
	}
	var errFn = errors.New("fn failed")
	err := WatchProgress(ctx, conn, 0, func(float64) {}, func() error {
		if _, err := conn.ExecContext(ctx, "SELECT * FROM no_such_table"); err == nil {
			t.Error("no error from a missing table")
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("error %v, want %v", err, errFn)
	}
}
