package silver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// LateSchema is the schema of silver._late, shared by every silver table.
// One row per late (row, window) pair: with hopping windows a row can be
// late for some of its windows and on time for others.
//
//   - table: the silver table (silver.<name>)
//   - event_time, window_start, window_end: the row's event time and the
//     window it was late for
//   - watermark: W0, the watermark when the row was processed
//   - lateness_ms: how far the event time was behind the watermark,
//     watermark - event_time in milliseconds (always > 0 for a late row)
//   - window_closed_ms: how long the window had been final,
//     watermark - window_end in milliseconds (>= 0; 0 means the window closed
//     exactly at the watermark)
//   - group_key: the group_by values as a JSON object ("{}" without group_by)
//   - source_file: the raw object the row came from (bronze _source_file),
//     when bronze has that column
//   - bronze_file: the bronze data file (lake key) holding the row
//   - batch: the batch that found it late (the bronze version it read up to)
func LateSchema() *delta.Schema {
	f := func(name, typ string) delta.Field {
		return delta.Field{Name: name, Type: delta.Primitive(typ), Nullable: true}
	}
	return &delta.Schema{Fields: []delta.Field{
		f("table", delta.TypeString),
		f("event_time", delta.TypeTimestamp),
		f("window_start", delta.TypeTimestamp),
		f("window_end", delta.TypeTimestamp),
		f("watermark", delta.TypeTimestamp),
		f("lateness_ms", delta.TypeLong),
		f("window_closed_ms", delta.TypeLong),
		f("group_key", delta.TypeString),
		f("source_file", delta.TypeString),
		f("bronze_file", delta.TypeString),
		f("batch", delta.TypeString),
	}}
}

// commitLate writes the batch's late pairs to silver._late with the txn
// (silver/<name>, bronzeVersion), creating the table if needed. If another
// silver table commits at the same time, the blind append is retried by the
// delta package; if a txn for this table already covers bronzeVersion, it
// commits nothing. read is the _late snapshot the run decided from: if
// another run of this table recorded late rows since, the commit is refused
// with an error wrapping delta.ErrTxnApplied (its rows would overlap).
func (j *job) commitLate(ctx context.Context, t *delta.Table, read *delta.Snapshot, batch string, bronzeVersion, w0 int64) (int64, error) {
	sp := j.sp
	var kv []string
	for _, g := range sp.groupBy {
		kv = append(kv, warehouse.QuoteString(g), warehouse.QuoteIdent(g))
	}
	groupKey := "'{}'"
	if len(kv) > 0 {
		groupKey = fmt.Sprintf("CAST(json_object(%s) AS VARCHAR)", strings.Join(kv, ", "))
	}
	path := fmt.Sprintf("%s-%s.parquet", sp.name, batch)
	local := j.scratchFile("late-" + path)
	q := fmt.Sprintf(`COPY (SELECT %s AS "table", %s AS event_time, %s AS window_start, %s AS window_end, %s AS watermark,
		CAST((%d - __t) // 1000 AS BIGINT) AS lateness_ms, CAST((%d - __we) // 1000 AS BIGINT) AS window_closed_ms,
		%s AS group_key, __src AS source_file, __file AS bronze_file, %s AS batch
		FROM s_late ORDER BY __ws, __t, group_key, bronze_file) TO %s (FORMAT parquet, COMPRESSION zstd)`,
		warehouse.QuoteString("silver."+sp.name), tsFromMicros("__t"), tsFromMicros("__ws"), tsFromMicros("__we"), tsFromMicros(strconv.FormatInt(w0, 10)),
		w0, w0, groupKey, warehouse.QuoteString(batch), warehouse.QuoteString(local))
	if err := j.exec(ctx, "write late rows", q); err != nil {
		return -1, err
	}
	var n, minS, maxS, minE, maxE int64
	if err := j.conn.QueryRowContext(ctx, "SELECT count(*), min(__ws), max(__ws), min(__we), max(__we) FROM s_late").Scan(&n, &minS, &maxS, &minE, &maxE); err != nil {
		return -1, fmt.Errorf("late rows statistics: %w", err)
	}
	up, err := lake.PutFile(ctx, j.deps.Store, t.Key(path), local)
	if err != nil {
		return -1, err
	}

	snap, err := t.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		snap, err = t.Create(ctx, delta.Metadata{SchemaString: LateSchema().String()}, delta.CommitInfo{
			Operation: "CREATE TABLE", Medallion: map[string]any{mJob: "silver"},
		})
		if errors.Is(err, delta.ErrTableExists) {
			snap, err = t.Snapshot(ctx)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", layers.Late(), err)
	}
	if v, ok := snap.TxnVersion(AppID(sp.name)); ok && v >= bronzeVersion {
		return -1, nil // already there
	}
	nowMs := j.now().UnixMilli()
	next, err := t.Commit(ctx, snap, delta.Commit{
		Adds: []delta.Add{{
			Path: path, Size: up.Size, ModificationTime: nowMs, DataChange: true, Tags: delta.WithSHA256(nil, up.SHA256),
			Stats: fileStats(n, minS, maxS, minE, maxE),
		}},
		Txns: []delta.Txn{{AppID: AppID(sp.name), Version: bronzeVersion, LastUpdated: nowMs}},
		Read: read,
		Info: delta.CommitInfo{
			Operation:           "WRITE",
			OperationParameters: map[string]any{"mode": "Append", "table": "silver." + sp.name, "batch": batch},
			OperationMetrics:    map[string]string{"numOutputRows": strconv.FormatInt(n, 10), "numFiles": "1"},
			Medallion:           map[string]any{mJob: "silver", "table": "silver." + sp.name, mBatch: batch, mBronze: bronzeVersion},
		},
		IsBlindAppend: true,
	})
	if err != nil {
		return -1, fmt.Errorf("%s: %w", layers.Late(), err)
	}
	j.log.Info("silver: late rows committed", "late_version", next.Version, "rows", n, "watermark", formatMicros(w0))
	return next.Version, nil
}
