package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/duckdb/duckdb-go/v2/mapping"
)

// ProgressEvery is how often WatchProgress asks DuckDB how far the
// statement has got.
const ProgressEvery = 200 * time.Millisecond

// WatchProgress runs fn, which runs one long statement on conn, while a
// goroutine asks DuckDB every interval how far the statement running on
// conn has got and calls report with the fraction done, in [0, 1]. The
// fractions passed to report never decrease and report is never called
// after WatchProgress returns (the goroutine is stopped and awaited before
// it does); report is called on that goroutine, never concurrently with
// itself. A statement that ends before the first poll gets no report.
//
// DuckDB tracks a statement's progress only while enable_progress_bar is
// set: WatchProgress sets it (with enable_progress_bar_print off, so
// nothing is printed) on conn for the time of fn and resets both after.
// The fraction is DuckDB's own estimate (bytes of a CSV or NDJSON file
// read, rows of a table scanned), so it can stand still while a sort or a
// write runs after the scan.
//
// duckdb-go v2.10503 exposes duckdb_query_progress only through its
// mapping package, which needs the C connection handle that *duckdb.Conn
// keeps in an unexported field. WatchProgress reads that handle with
// reflect; if a later duckdb-go changes the field, fn still runs and
// nothing is reported (a test in this package fails then, not a run).
//
// fn's error is returned as it is; an error setting up the tracking is
// returned wrapped, before fn runs.
func WatchProgress(ctx context.Context, conn *sql.Conn, every time.Duration, report func(fraction float64), fn func() error) error {
	if every <= 0 {
		every = ProgressEvery
	}
	var (
		handle mapping.Connection
		ok     bool
	)
	if err := conn.Raw(func(dc any) error {
		handle, ok = rawConnection(dc)
		return nil
	}); err != nil {
		return fmt.Errorf("watch progress: %w", err)
	}
	if !ok {
		return fn()
	}
	if _, err := conn.ExecContext(ctx, "SET enable_progress_bar = true; SET enable_progress_bar_print = false"); err != nil {
		return fmt.Errorf("watch progress: enable progress tracking: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "RESET enable_progress_bar; RESET enable_progress_bar_print")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		last := -1.0
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			p := mapping.QueryProgress(handle)
			pct, _, _ := mapping.QueryProgressTypeMembers(&p)
			// -1 (or NaN): no statement running, or not one DuckDB can
			// estimate.
			if !(pct >= 0) {
				continue
			}
			f := min(pct/100, 1)
			if f <= last {
				continue
			}
			last = f
			report(f)
		}
	})
	err := fn()
	close(stop)
	wg.Wait()
	return err
}

// rawConnection returns the C connection handle behind a duckdb-go driver
// connection, or false when dc is not one or its layout is not the one
// this version of duckdb-go has (the handle in the field conn of type
// mapping.Connection, whose Ptr is the duckdb_connection).
func rawConnection(dc any) (mapping.Connection, bool) {
	c, ok := dc.(*duckdb.Conn)
	if !ok || c == nil {
		return mapping.Connection{}, false
	}
	f := reflect.ValueOf(c).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[mapping.Connection]() {
		return mapping.Connection{}, false
	}
	p := f.FieldByName("Ptr")
	if !p.IsValid() || p.Kind() != reflect.UnsafePointer || p.IsNil() {
		return mapping.Connection{}, false
	}
	return mapping.Connection{Ptr: p.UnsafePointer()}, true
}
