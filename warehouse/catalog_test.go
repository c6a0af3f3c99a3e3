package warehouse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

var metersRef = TableRef{Schema: "bronze", Name: "meters"}

const metersSchema = `{"type":"struct","fields":[
 {"name":"meter_id","type":"string","nullable":false,"metadata":{}},
 {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
 {"name":"usage","type":"double","nullable":true,"metadata":{}},
 {"name":"amount","type":"decimal(10,2)","nullable":true,"metadata":{}},
 {"name":"event_date","type":"date","nullable":true,"metadata":{}}]}`

// writeParquet writes the rows of query to a Parquet file with DuckDB and
// puts it into store at key; it returns the Delta add action for it.
func writeParquet(t *testing.T, store lake.Store, tableDir, path, query string, part map[string]string) delta.Add {
	t.Helper()
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	local := filepath.Join(t.TempDir(), "f.parquet")
	if _, err := eng.DB().ExecContext(ctx, "COPY ("+query+") TO "+QuoteString(local)+" (FORMAT parquet)"); err != nil {
		t.Fatalf("write parquet: %v", err)
	}
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, tableDir+"/"+path, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return delta.Add{Path: path, PartitionValues: delta.PartitionStrings(part), Size: int64(len(data)), ModificationTime: time.Now().UnixMilli(), DataChange: true}
}

// buildMeters commits bronze.meters in three versions:
//
//	v0: created, no files
//	v1: m1 (two rows, 2024-05-01) and m2 (2024-05-02, ts stored without zone)
//	v2: m3 added (2024-05-02), m1's file removed
func buildMeters(t *testing.T, store lake.Store) []*delta.Snapshot {
	t.Helper()
	ctx := context.Background()
	tbl := delta.Open(store, metersRef.Dir())
	s0, err := tbl.Create(ctx, delta.Metadata{SchemaString: metersSchema, PartitionColumns: []string{"event_date"}}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	a1 := writeParquet(t, store, metersRef.Dir(), "event_date=2024-05-01/part-1.parquet",
		`SELECT 'm1' AS meter_id, TIMESTAMPTZ '2024-05-01 10:00:00+00' + to_minutes(i::BIGINT) AS ts, 1.5 * i AS usage, CAST(12.5 AS DECIMAL(10,2)) AS amount FROM range(2) t(i)`,
		map[string]string{"event_date": "2024-05-01"})
	a2 := writeParquet(t, store, metersRef.Dir(), "event_date=2024-05-02/part-2.parquet",
		`SELECT 'm2' AS meter_id, TIMESTAMP '2024-05-02 08:30:00' AS ts, 7.25 AS usage, CAST(NULL AS DECIMAL(10,2)) AS amount`,
		map[string]string{"event_date": "2024-05-02"})
	s1, err := tbl.Commit(ctx, s0, delta.Commit{Adds: []delta.Add{a1, a2}, Info: delta.CommitInfo{Operation: "WRITE"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	a3 := writeParquet(t, store, metersRef.Dir(), "event_date=2024-05-02/part-3.parquet",
		`SELECT 'm3' AS meter_id, TIMESTAMPTZ '2024-05-02 09:00:00+00' AS ts, 3.0 AS usage, CAST(1.05 AS DECIMAL(10,2)) AS amount`,
		map[string]string{"event_date": "2024-05-02"})
	s2, err := tbl.Commit(ctx, s1, delta.Commit{Adds: []delta.Add{a3}, Removes: []delta.Remove{a1.Remove(time.Now().UnixMilli(), true)}, Info: delta.CommitInfo{Operation: "WRITE"}})
	if err != nil {
		t.Fatal(err)
	}
	return []*delta.Snapshot{s0, s1, s2}
}

// queryCSV attaches the lake as of asOf in a fresh, locked-down engine and
// returns the query's result as CSV.
func queryCSV(t *testing.T, store lake.Store, cache *lake.Cache, asOf AsOf, query string) string {
	t.Helper()
	out, err := tryQueryCSV(store, cache, asOf, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func tryQueryCSV(store lake.Store, cache *lake.Cache, asOf AsOf, query string) (string, error) {
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		return "", err
	}
	defer eng.Close()
	refs := []TableRef{metersRef, {Schema: "bronze", Name: "_quarantine"}, {Schema: "silver", Name: "not_yet"}}
	cat, err := AttachCatalog(ctx, eng, store, cache, refs, asOf)
	if err != nil {
		return "", err
	}
	if got := strings.Join(cat.Names(), ","); got != "bronze.meters" {
		return "", errors.New("attached " + got + ", want only bronze.meters (the others have no commits)")
	}
	if err := LockDown(ctx, eng, cat); err != nil {
		return "", err
	}
	var b strings.Builder
	if _, err := eng.Query(ctx, query, FormatCSV, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

const metersQuery = `SELECT meter_id, ts, usage, amount, event_date, typeof(ts) AS ts_type, typeof(event_date) AS d_type, typeof(amount) AS a_type
FROM bronze.meters ORDER BY meter_id, ts`

func checkMeters(t *testing.T, store lake.Store, cache *lake.Cache) {
	snaps := buildMeters(t, store)
	types := "TIMESTAMP WITH TIME ZONE,DATE,\"DECIMAL(10,2)\"\n"
	header := "meter_id,ts,usage,amount,event_date,ts_type,d_type,a_type\n"
	latest := header +
		"m2,2024-05-02T08:30:00Z,7.25,,2024-05-02," + types +
		"m3,2024-05-02T09:00:00Z,3,1.05,2024-05-02," + types
	v1 := header +
		"m1,2024-05-01T10:00:00Z,0,12.50,2024-05-01," + types +
		"m1,2024-05-01T10:01:00Z,1.5,12.50,2024-05-01," + types +
		"m2,2024-05-02T08:30:00Z,7.25,,2024-05-02," + types

	if got := queryCSV(t, store, cache, Latest(), metersQuery); got != latest {
		t.Errorf("latest:\n%s\nwant:\n%s", got, latest)
	}
	if got := queryCSV(t, store, cache, AsOf{Version: 1, HasVersion: true}, metersQuery); got != v1 {
		t.Errorf("as of version 1:\n%s\nwant:\n%s", got, v1)
	}
	asOfTime, err := ParseAsOf(snaps[1].Timestamp.UTC().Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	if got := queryCSV(t, store, cache, asOfTime, metersQuery); got != v1 {
		t.Errorf("as of %s:\n%s\nwant:\n%s", asOfTime, got, v1)
	}
	// Version 0 has no files: an empty view with the schema's columns.
	if got, want := queryCSV(t, store, cache, AsOf{HasVersion: true}, "SELECT * FROM bronze.meters"), "meter_id,ts,usage,amount,event_date\n"; got != want {
		t.Errorf("as of version 0: %q, want %q", got, want)
	}
	// A partition filter works (and prunes the other branches).
	if got, want := queryCSV(t, store, cache, Latest(), "SELECT count(*) AS n FROM bronze.meters WHERE event_date = DATE '2024-05-02'"), "n\n2\n"; got != want {
		t.Errorf("partition filter: %q, want %q", got, want)
	}
	// A version the table does not have is an error naming the table.
	_, err = tryQueryCSV(store, cache, AsOf{Version: 9, HasVersion: true}, metersQuery)
	if !errors.Is(err, delta.ErrNoVersion) || !strings.Contains(err.Error(), "bronze.meters") {
		t.Errorf("as of version 9: %v, want an error naming bronze.meters wrapping ErrNoVersion", err)
	}
	// An unknown table is DuckDB's catalog error.
	_, err = tryQueryCSV(store, cache, Latest(), "SELECT * FROM gold.nope")
	var se *SQLError
	if !errors.As(err, &se) || !se.UnknownName || strings.Contains(se.Msg, "\n") {
		t.Errorf("unknown table: %v (%T), want a one-line *SQLError with UnknownName", err, err)
	}
}

func TestAttachLocal(t *testing.T) {
	checkMeters(t, testenv.LocalStore(t), nil)
}

func TestAttachMinIO(t *testing.T) {
	s3, _, _ := testenv.S3Store(t)
	checkMeters(t, s3, &lake.Cache{Dir: t.TempDir()})
}

// countingStore counts reads of .parquet objects.
type countingStore struct {
	lake.Store
	mu   sync.Mutex
	gets int
}

func (c *countingStore) count(key string) {
	if strings.HasSuffix(key, ".parquet") {
		c.mu.Lock()
		c.gets++
		c.mu.Unlock()
	}
}

func (c *countingStore) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, lake.ObjectInfo, error) {
	c.count(key)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.count(key)
	return c.Store.GetRange(ctx, key, off, n)
}

func TestSecondQueryDownloadsNothing(t *testing.T) {
	s3, _, _ := testenv.S3Store(t)
	store := &countingStore{Store: s3}
	buildMeters(t, store)
	cache := &lake.Cache{Dir: t.TempDir()}

	before := store.reads()
	first := queryCSV(t, store, cache, Latest(), metersQuery)
	if n := store.reads() - before; n != 2 {
		t.Errorf("first query read %d data files, want 2", n)
	}
	before = store.reads()
	second := queryCSV(t, store, cache, Latest(), metersQuery)
	if n := store.reads() - before; n != 0 {
		t.Errorf("second query read %d data files, want 0", n)
	}
	if first != second {
		t.Errorf("second query differs:\n%s\nfirst:\n%s", second, first)
	}
	// Time travel needs the removed file: one more download, then none.
	before = store.reads()
	queryCSV(t, store, cache, AsOf{Version: 1, HasVersion: true}, metersQuery)
	queryCSV(t, store, cache, AsOf{Version: 1, HasVersion: true}, metersQuery)
	if n := store.reads() - before; n != 1 {
		t.Errorf("two as-of queries read %d data files, want 1", n)
	}
}

func TestParseAsOf(t *testing.T) {
	for in, want := range map[string]AsOf{
		"":                          Latest(),
		"3":                         {Version: 3, HasVersion: true},
		"0":                         {HasVersion: true},
		"2024-05-01T10:00:00Z":      {Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		"2024-05-01T12:00:00+02:00": {Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		"2024-05-01 10:00:00":       {Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		"2024-05-01":                {Time: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := ParseAsOf(in)
		if err != nil || got.HasVersion != want.HasVersion || got.Version != want.Version || !got.Time.Equal(want.Time) {
			t.Errorf("ParseAsOf(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "yesterday", "2024-13-01"} {
		if _, err := ParseAsOf(bad); err == nil {
			t.Errorf("ParseAsOf(%q) accepted", bad)
		}
	}
}
