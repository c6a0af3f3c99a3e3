package warehouse

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// snapshotFiles returns the absolute paths of a snapshot's data files, as a
// DuckDB list literal.
func snapshotFiles(t *testing.T, st *lake.Local, tbl *delta.Table, s *delta.Snapshot) string {
	t.Helper()
	var quoted []string
	for _, f := range s.Files {
		quoted = append(quoted, "'"+strings.ReplaceAll(st.LocalPath(tbl.Key(f.Path)), "'", "''")+"'")
	}
	if len(quoted) == 0 {
		t.Fatalf("%s version %d has no files", tbl.Dir(), s.Version)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// TestDeltaGoldenRowCounts reads the Spark-written golden tables through
// our Delta log and counts their rows with DuckDB: the row counts prove the
// log was reconciled the way Spark wrote it.
func TestDeltaGoldenRowCounts(t *testing.T) {
	ctx := t.Context()
	st, err := lake.NewLocal(filepath.Join(testenv.RepoRoot(t), "testdata", "delta-golden"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, Options{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	cases := []struct {
		table   string
		version int64 // -1: latest
		rows    int64
		check   string // optional query over t that must return true
	}{
		{"snapshot-data0", -1, 10, "SELECT bool_and(col2 LIKE 'data-0-%') FROM t"},
		{"snapshot-data1", -1, 20, ""},
		{"snapshot-data2", -1, 10, "SELECT bool_and(col2 LIKE 'data-2-%') FROM t"},
		{"snapshot-data3", -1, 30, ""},
		{"snapshot-data3", 1, 20, "SELECT bool_and(col2 LIKE 'data-0-%' OR col2 LIKE 'data-1-%') FROM t"},
		{"snapshot-data3", 0, 10, ""},
		{"snapshot-data2-deleted", -1, 20, "SELECT bool_and(col2 LIKE 'data-3-%') FROM t"},
		{"snapshot-repartitioned", -1, 20, "SELECT bool_and(col2 LIKE 'data-3-%') FROM t"},
		{"snapshot-vacuumed", -1, 20, "SELECT bool_and(col2 LIKE 'data-3-%') FROM t"},
		{"basic-with-inserts-deletes-checkpoint", -1, 41,
			"SELECT list(id ORDER BY id) = (SELECT list(i ORDER BY i) FROM range(0, 66) r(i) WHERE i >= 50 OR i % 10 < 5) FROM t"},
		{"multi-part-checkpoint", -1, 31, ""},
		{"data-reader-primitives", -1, 11, "SELECT count(*) FILTER (WHERE as_int IS NULL AND as_string IS NULL) = 1 FROM t"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s@%d", c.table, c.version), func(t *testing.T) {
			tbl := delta.Open(st, c.table)
			var s *delta.Snapshot
			var err error
			if c.version < 0 {
				s, err = tbl.Snapshot(ctx)
			} else {
				s, err = tbl.SnapshotAt(ctx, c.version)
			}
			if err != nil {
				t.Fatal(err)
			}
			conn, err := e.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			view := "CREATE OR REPLACE TEMP VIEW t AS SELECT * FROM read_parquet(" + snapshotFiles(t, st, tbl, s) + ", union_by_name = true)"
			if _, err := conn.ExecContext(ctx, view); err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.rows {
				t.Errorf("%d rows, want %d", n, c.rows)
			}
			if c.check != "" {
				var ok bool
				if err := conn.QueryRowContext(ctx, c.check).Scan(&ok); err != nil {
					t.Fatal(err)
				}
				if !ok {
					t.Errorf("check failed: %s", c.check)
				}
			}
		})
	}
}

// TestDeltaCheckpointReadableByDuckDB checks that the checkpoints we write
// have the column layout other engines read: one action per row, the struct
// columns of Spark's checkpoint schema.
func TestDeltaCheckpointReadableByDuckDB(t *testing.T) {
	ctx := t.Context()
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tbl := delta.Open(st, "bronze/cp")
	s, err := tbl.Create(ctx, delta.Metadata{
		SchemaString:     `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"dt","type":"string","nullable":true,"metadata":{}}]}`,
		PartitionColumns: []string{"dt"},
	}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		path := fmt.Sprintf("dt=2024-01-0%d/part %d.parquet", i%3+1, i)
		body := []byte("x")
		if _, err := st.Put(ctx, tbl.Key(path), bytes.NewReader(body), 1); err != nil {
			t.Fatal(err)
		}
		c := delta.Commit{
			Adds: []delta.Add{{Path: path, PartitionValues: delta.PartitionStrings(map[string]string{"dt": fmt.Sprintf("2024-01-0%d", i%3+1)}),
				Size: 1, ModificationTime: time.Now().UnixMilli(), DataChange: true, Stats: `{"numRecords":1}`}},
			Txns: []delta.Txn{{AppID: "job", Version: int64(i)}},
		}
		if i == 9 {
			c.Removes = []delta.Remove{s.Files[0].Remove(time.Now().UnixMilli(), true)}
		}
		if s, err = tbl.Commit(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	cp := st.LocalPath("bronze/cp/_delta_log/00000000000000000010.checkpoint.parquet")
	e, err := Open(ctx, Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	q := func(query string, dest ...any) {
		t.Helper()
		if err := e.DB().QueryRowContext(ctx, strings.ReplaceAll(query, "CP", "'"+cp+"'")).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	var rows, adds, removes, txns, metas, protos, multi int64
	q(`SELECT count(*), count(add), count(remove), count(txn), count(metaData), count(protocol),
		count(*) FILTER (WHERE (add IS NOT NULL)::int + (remove IS NOT NULL)::int + (txn IS NOT NULL)::int
		                     + (metaData IS NOT NULL)::int + (protocol IS NOT NULL)::int <> 1)
		FROM read_parquet(CP)`, &rows, &adds, &removes, &txns, &metas, &protos, &multi)
	if adds != 9 || removes != 1 || txns != 1 || metas != 1 || protos != 1 || multi != 0 || rows != 13 {
		t.Errorf("checkpoint rows %d: %d adds, %d removes, %d txns, %d metaData, %d protocol, %d rows with not exactly one action",
			rows, adds, removes, txns, metas, protos, multi)
	}
	var path, dt, stats string
	var size int64
	q(`SELECT add.path, add.partitionValues['dt'], add.size, add.stats FROM read_parquet(CP) WHERE add IS NOT NULL ORDER BY add.path LIMIT 1`,
		&path, &dt, &size, &stats)
	if path != "dt=2024-01-01/part%203.parquet" || dt != "2024-01-01" || size != 1 || stats != `{"numRecords":1}` {
		t.Errorf("first add: %q %q %d %q", path, dt, size, stats)
	}
	var minReader, minWriter int32
	var partCols string
	var txnVersion int64
	q(`SELECT protocol.minReaderVersion, protocol.minWriterVersion FROM read_parquet(CP) WHERE protocol IS NOT NULL`, &minReader, &minWriter)
	q(`SELECT array_to_string(metaData.partitionColumns, ',') FROM read_parquet(CP) WHERE metaData IS NOT NULL`, &partCols)
	q(`SELECT txn.version FROM read_parquet(CP) WHERE txn.appId = 'job'`, &txnVersion)
	if minReader != 1 || minWriter != 2 || partCols != "dt" || txnVersion != 9 {
		t.Errorf("protocol %d/%d, partition columns %q, txn %d", minReader, minWriter, partCols, txnVersion)
	}
	var typ string
	q(`SELECT type FROM parquet_schema(CP) WHERE name = 'minReaderVersion'`, &typ)
	if typ != "INT32" {
		t.Errorf("protocol.minReaderVersion stored as %s, want INT32 as Spark writes", typ)
	}
	got, err := tbl.Snapshot(ctx)
	if err != nil || !slices.EqualFunc(got.Files, s.Files, func(a, b delta.Add) bool { return a.Path == b.Path }) {
		t.Errorf("snapshot from our checkpoint: %v", err)
	}
}
