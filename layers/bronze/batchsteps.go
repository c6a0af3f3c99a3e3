package bronze

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	"github.com/medallion-dev/medallion/lake/delta"
)

// commitInfo is the commit info of a bronze or quarantine commit of batch
// bid: Delta's WRITE operation and metrics, and medallion's batch
// accounting (st) under the Medallion key.
func (j *job) commitInfo(bid string, objects int, st Stats, meta delta.Metadata, table string, rows int64, files []delta.Add) delta.CommitInfo {
	var bytes int64
	for _, a := range files {
		bytes += a.Size
	}
	return delta.CommitInfo{
		Operation:           "WRITE",
		OperationParameters: map[string]any{"mode": "Append", "partitionBy": meta.PartitionColumns},
		OperationMetrics: map[string]string{
			"numFiles":        fmt.Sprint(len(files)),
			"numOutputRows":   fmt.Sprint(rows),
			"numOutputBytes":  fmt.Sprint(bytes),
			"rowsRead":        fmt.Sprint(st.RowsRead),
			"rowsWritten":     fmt.Sprint(st.Written),
			"rowsQuarantined": fmt.Sprint(st.Quarantined),
			"rowsDropped":     fmt.Sprint(st.Dropped),
			"rowsDuplicate":   fmt.Sprint(st.Duplicates),
			"rowsBlank":       fmt.Sprint(st.Blank),
		},
		Medallion: map[string]any{
			"job": "bronze", "source": j.src.Name, "table": table, "batch_id": bid,
			"objects": objects, "rows_read": st.RowsRead, "rows_written": st.Written,
			"rows_quarantined": st.Quarantined, "rows_dropped": st.Dropped, "rows_duplicate": st.Duplicates, "rows_blank": st.Blank,
			"rescued_columns": st.Rescued,
		},
	}
}

// account adds one typed object's counts and rescued columns to st and,
// by on_error, quarantines its bad rows into bad, drops them, or fails
// with the first one's file, line and column.
func (j *job) account(st *Stats, bad map[string][]badRow, m manifest, res objResult) error {
	st.RowsRead += res.read
	st.Blank += res.blank
	for _, r := range res.rescued {
		if !contains(st.Rescued, r) {
			st.Rescued = append(st.Rescued, r)
		}
	}
	if res.badCount > 0 {
		switch j.src.OnError {
		case "fail":
			b := res.firstBad
			col := ""
			if b.column != "" {
				col = " column " + b.column
			}
			return fmt.Errorf("%s line %d%s: %s (on_error: fail; nothing committed)", m.fileName(), b.line, col, b.reason)
		case "drop":
			st.Dropped += res.badCount
		default:
			st.Quarantined += res.badCount
			bad[m.SHA256] = res.bad
		}
	}
	return nil
}

// writeBatch reads the table metadata of the batch's final relation and,
// when it has rows, writes them as Parquet under dir/bronze, checking the
// files hold the written rows.
func (j *job) writeBatch(ctx context.Context, conn *sql.Conn, final, dir string, written int64) (delta.Metadata, []delta.Add, error) {
	meta, outSel, err := j.tableMetadata(ctx, conn, final)
	if err != nil {
		return meta, nil, err
	}
	var adds []delta.Add
	if written > 0 {
		schema, err := delta.ParseSchema(meta.SchemaString)
		if err != nil {
			return meta, nil, fmt.Errorf("bronze %s: %w", j.src.Name, err)
		}
		adds, err = j.writeParquet(ctx, conn, outSel, filepath.Join(dir, "bronze"), j.plan.partCol, schema)
		if err != nil {
			return meta, nil, fmt.Errorf("bronze %s: write parquet: %w", j.src.Name, err)
		}
		if n := addedRows(adds); n != written {
			return meta, nil, fmt.Errorf("bronze %s: wrote %d rows, expected %d (a bug)", j.src.Name, n, written)
		}
	}
	return meta, adds, nil
}

// gatherPart adds a part's typed rows (sel) to the batch's table good,
// creating it for the first part, and drops the part's own table. key
// names the part's first object in errors.
func (j *job) gatherPart(ctx context.Context, conn *sql.Conn, good, sel string, first bool, table, key string) error {
	var err error
	if first {
		err = exec(ctx, conn, "CREATE TEMP TABLE "+good+" AS "+sel)
	} else {
		err = exec(ctx, conn, "INSERT INTO "+good+" "+sel)
	}
	if err != nil {
		return fmt.Errorf("bronze %s: %s: %w", j.src.Name, key, err)
	}
	return exec(ctx, conn, "DROP TABLE "+table)
}
