package bronze

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// typedBatch is a batch typed, checked, deduplicated and written as Parquet
// files in the batch's scratch directory, ready to upload and commit.
type typedBatch struct {
	st   Stats
	meta delta.Metadata
	adds []delta.Add         // files under <scratch>/bronze
	bad  map[string][]badRow // quarantine rows by object sha256
	snap *delta.Snapshot     // the bronze snapshot the batch was deduplicated against
}

// runBatch types, checks, dedupes, writes and commits one batch of raw
// objects picked from read (the bronze snapshot that said they are new). It
// returns the batch's accounting and the bronze version after it; an error
// wrapping delta.ErrTxnApplied when another runner promoted one of them
// first (nothing of the batch is then in bronze).
// The fast path (fast.go) is tried first; when it refuses the batch (a bad
// row, a reader error, an unknown key, a duplicate key), the precise path
// types the batch again, locating and quarantining every bad row.
func (j *job) runBatch(ctx context.Context, conn *sql.Conn, ms []manifest, read *delta.Snapshot) (Stats, int64, error) {
	bid := batchID(ms)
	dir, err := os.MkdirTemp(j.d.ScratchDir, "bronze-batch-")
	if err != nil {
		return Stats{Objects: len(ms)}, 0, fmt.Errorf("bronze %s: scratch dir: %w", j.src.Name, err)
	}
	defer os.RemoveAll(dir)
	tb, ok, err := j.fastBatch(ctx, conn, ms, bid, dir)
	if err != nil {
		return tb.st, 0, err
	}
	if !ok {
		if tb, err = j.preciseBatch(ctx, conn, ms, bid, dir); err != nil {
			return tb.st, 0, err
		}
		j.steps.mark("precise")
	}
	st, meta, adds, bad, snap := tb.st, tb.meta, tb.adds, tb.bad, tb.snap
	// Nothing of the batch reaches the lake before its object passed the
	// check running alongside the typing (overlapcheck.go).
	if err := j.awaitCheck(); err != nil {
		return st, 0, err
	}
	j.steps.mark("check_wait")

	// Quarantine rows not already committed by an interrupted earlier run.
	qsnap, qadds, qtxns, err := j.prepareQuarantine(ctx, conn, ms, bad, bid, dir)
	j.steps.mark("quarantine")
	qread := qsnap
	if qread == nil {
		qread = delta.EmptySnapshot()
	}
	if err != nil {
		return st, 0, err
	}

	var typed int64
	for _, m := range ms {
		typed += m.Size
	}
	j.report("writing", typed)
	if err := j.uploadBatch(ctx, dir, adds, qadds); err != nil {
		return st, 0, err
	}
	j.steps.mark("upload")

	now := j.d.Now()
	info := func(table string, rows int64, files []delta.Add) delta.CommitInfo {
		return j.commitInfo(bid, len(ms), st, meta, table, rows, files)
	}
	if len(qtxns) > 0 {
		if err := j.commitQuarantine(ctx, qsnap, qread, qadds, qtxns, info("bronze._quarantine", st.Quarantined, qadds)); err != nil {
			return st, 0, err
		}
	}
	if err := j.d.CrashPoint("bronze.after-quarantine"); err != nil {
		return st, 0, err
	}

	var txns []delta.Txn
	for _, m := range ms {
		txns = append(txns, delta.Txn{AppID: RawAppID(j.src.Name, m.SHA256), Version: 1, LastUpdated: j.disc.txnTime(m.SHA256, now).UnixMilli()})
	}
	txns = append(txns, j.disc.cursorTxns(ms, now)...) // discover.go
	v, err := j.commitBronze(ctx, snap, read, meta, adds, txns, info("bronze."+j.src.Name, st.Written, adds))
	if err != nil {
		return st, 0, err
	}
	j.steps.mark("commit")
	j.steps.log(j.log, "objects", len(ms), "rows", st.RowsRead)
	if err := j.d.CrashPoint("bronze.after-commit"); err != nil {
		return st, 0, err
	}
	return st, v, nil
}

// uploadBatch uploads the batch's bronze and quarantine files, between the
// bronze.before-files and bronze.after-files crash points.
func (j *job) uploadBatch(ctx context.Context, dir string, adds, qadds []delta.Add) error {
	if err := j.d.CrashPoint("bronze.before-files"); err != nil {
		return err
	}
	// The batch's files are not read again: a local lake takes them by
	// a rename instead of a copy.
	if err := j.moveUp(ctx, j.table.Dir(), filepath.Join(dir, "bronze"), adds); err != nil {
		return err
	}
	if err := j.moveUp(ctx, j.qtable.Dir(), filepath.Join(dir, "quarantine"), qadds); err != nil {
		return err
	}
	return j.d.CrashPoint("bronze.after-files")
}

// preciseBatch types a batch into temp tables (NDJSON objects many to a
// statement, group.go; others object by object), with DuckDB's
// reject tables and a second pass over an object's lines to locate bad
// rows, so every bad row is quarantined with its line, column and reason.
func (j *job) preciseBatch(ctx context.Context, conn *sql.Conn, ms []manifest, bid, dir string) (typedBatch, error) {
	st := Stats{Objects: len(ms)}
	fail := func(err error) (typedBatch, error) { return typedBatch{st: st}, err }
	var temps []string
	defer func() {
		for _, t := range temps {
			conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+t)
		}
	}()
	// Small batches (the common case: one or a few big objects) keep each
	// object's typed table and add the lineage constants in the final
	// SELECT, with no copy of the batch; a batch of many objects is gathered
	// into one table (a UNION ALL of hundreds of tables would not plan well),
	// dropping each object's table as it goes. NDJSON objects are typed in
	// parts of many objects (typeParts): parts are counted, not objects.
	lin := newLineage(ms, bid)
	good := j.tmpName("good")
	temps = append(temps, good)
	created := false
	var sels []string
	var goodRows int64
	bad := map[string][]badRow{} // by sha
	parts, err := j.typeParts(ctx, conn, ms, dir, &temps)
	if err != nil {
		return fail(err)
	}
	fuse := len(parts) <= maxFusedObjects
	for _, part := range parts {
		for k, i := range part.idx {
			m, res := ms[i], part.res[k]
			goodRows += res.good
			if err := j.account(&st, bad, m, res); err != nil {
				return fail(err)
			}
		}
		sel := j.partSelect(part, ms, lin)
		if fuse {
			sels = append(sels, sel)
			continue
		}
		if err := j.gatherPart(ctx, conn, good, sel, !created, part.table, ms[part.idx[0]].Key); err != nil {
			return fail(err)
		}
		created = true
	}
	rel := good
	if fuse {
		rel = "(" + strings.Join(sels, " UNION ALL ") + ")"
	}

	snap, err := j.snapshot(ctx)
	if err != nil {
		return fail(err)
	}
	final, written, err := j.dedupe(ctx, conn, rel, goodRows, snap, dir)
	if final != rel {
		temps = append(temps, final)
	}
	if err != nil {
		return fail(fmt.Errorf("bronze %s: dedupe: %w", j.src.Name, err))
	}
	st.Written = written
	st.Duplicates = goodRows - written
	if !st.Balanced() {
		return fail(fmt.Errorf("bronze %s: accounting does not balance: %d read != %d written + %d quarantined + %d dropped + %d duplicates + %d blank (a bug)",
			j.src.Name, st.RowsRead, st.Written, st.Quarantined, st.Dropped, st.Duplicates, st.Blank))
	}

	meta, adds, err := j.writeBatch(ctx, conn, final, dir, st.Written)
	if err != nil {
		return fail(err)
	}
	st.Files = len(adds)

	return typedBatch{st: st, meta: meta, adds: adds, bad: bad, snap: snap}, nil
}

// lineage is how a batch's constant lineage columns are written. The
// Parquet writer hashes every string of a column into its dictionary, and
// a 70-byte object key repeated on every row cost a third of an NDJSON
// batch's write; as an ENUM of the batch's keys the writer takes the
// dictionary from the type and writes only the indexes. The files hold
// plain strings either way. The keys are sorted, so ordering by the ENUM
// (dedupe's tie-break) is ordering by the key text.
type lineage struct {
	sourceType string // ENUM('key', ...) of the batch's objects
	batchID    string // the batch id as an ENUM literal
}

func newLineage(ms []manifest, bid string) lineage {
	keys := make([]string, 0, len(ms))
	for _, m := range ms {
		keys = append(keys, warehouse.QuoteString(m.sourceFile()))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b := warehouse.QuoteString(bid)
	return lineage{
		sourceType: "ENUM(" + strings.Join(keys, ", ") + ")",
		batchID:    "CAST(" + b + " AS ENUM(" + b + "))",
	}
}

// bronzeSelect selects the rows of from (a typed object's table or typed
// query) that where keeps, with lineage.
func (j *job) bronzeSelect(from string, m manifest, lin lineage, where string) string {
	return j.bronzeSelectLineage(from, "CAST("+warehouse.QuoteString(m.sourceFile())+" AS "+lin.sourceType+")",
		"CAST("+warehouse.QuoteString(receivedText(m.ReceivedAt))+" AS TIMESTAMPTZ)", lin, where)
}

// bronzeSelectLineage is bronzeSelect with the lineage of each row given
// by expressions: constants for one object, columns of a join for many
// objects read by one statement (group.go).
func (j *job) bronzeSelectLineage(from, sourceFile, ingestedAt string, lin lineage, where string) string {
	var cols []string
	for _, c := range j.plan.cols {
		cols = append(cols, warehouse.QuoteIdent(c.name))
	}
	for _, d := range j.plan.derived {
		cols = append(cols, warehouse.QuoteIdent(d.Name))
	}
	cols = append(cols, "_rescued",
		sourceFile+" AS _source_file",
		ingestedAt+" AS _ingested_at",
		lin.batchID+" AS _batch_id")
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + from + " WHERE " + where
}

// commitBronze commits the batch to the bronze table on snap (the snapshot
// it was deduplicated against), creating the table first if needed. read
// is the snapshot the batch's objects were picked from: if the table has
// recorded one of them since (another runner promoted it), the commit is
// refused with an error wrapping delta.ErrTxnApplied.
func (j *job) commitBronze(ctx context.Context, snap, read *delta.Snapshot, meta delta.Metadata, adds []delta.Add, txns []delta.Txn, info delta.CommitInfo) (int64, error) {
	for attempt := 0; ; attempt++ {
		if snap == nil {
			s, err := j.table.Create(ctx, meta, delta.CommitInfo{Operation: "CREATE TABLE", Medallion: map[string]any{"job": "bronze", "source": j.src.Name}})
			if errors.Is(err, delta.ErrTableExists) {
				s, err = j.table.Snapshot(ctx)
			}
			if err != nil {
				return 0, fmt.Errorf("create %s: %w", j.table.Dir(), err)
			}
			snap = s
		}
		c := delta.Commit{Adds: adds, Txns: txns, Info: info, IsBlindAppend: true, Read: read}
		if snap.Metadata.SchemaString != meta.SchemaString || !sameStrings(snap.Metadata.PartitionColumns, meta.PartitionColumns) {
			if !sameStrings(snap.Metadata.PartitionColumns, meta.PartitionColumns) {
				return 0, fmt.Errorf("bronze %s: partition columns changed from %v to %v: bronze tables cannot be repartitioned in place",
					j.src.Name, snap.Metadata.PartitionColumns, meta.PartitionColumns)
			}
			if err := j.addColumns(snap, meta, &c); err != nil {
				return 0, err
			}
		}
		s, err := j.table.Commit(ctx, snap, c)
		if err == nil {
			return s.Version, nil
		}
		if !errors.Is(err, delta.ErrCommitConflict) || errors.Is(err, delta.ErrTxnApplied) || attempt >= layers.MaxCommitAttempts {
			return 0, fmt.Errorf("commit %s: %w", j.table.Dir(), err)
		}
		// Another writer changed the schema: commit on its snapshot; the
		// txn check against read still holds.
		snap, err = j.table.Snapshot(ctx)
		if err != nil {
			return 0, fmt.Errorf("commit %s: re-read after conflict: %w", j.table.Dir(), err)
		}
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// quarantineRow is one row of bronze._quarantine, as staged in NDJSON.
type quarantineRow struct {
	Source        string  `json:"source"`
	SourceFile    string  `json:"source_file"`
	Line          int64   `json:"line"`
	Column        *string `json:"column_name"`
	Reason        string  `json:"reason"`
	Raw           string  `json:"raw"`
	BatchID       string  `json:"batch_id"`
	QuarantinedAt string  `json:"quarantined_at"`
}

// quarantineSchema is the Delta schema of bronze._quarantine.
func quarantineSchema() *delta.Schema {
	f := func(n, t string, null bool) delta.Field {
		return delta.Field{Name: n, Type: delta.Primitive(t), Nullable: null}
	}
	return &delta.Schema{Fields: []delta.Field{
		f("source", delta.TypeString, true), f("source_file", delta.TypeString, true), f("line", delta.TypeLong, true),
		f(QuarantineColumn, delta.TypeString, true), f("reason", delta.TypeString, true), f("raw", delta.TypeString, true),
		f("batch_id", delta.TypeString, true), f("quarantined_at", delta.TypeTimestamp, true),
	}}
}

// prepareQuarantine writes the Parquet files of the batch's quarantine rows,
// leaving out objects whose rows an earlier, interrupted run committed.
func (j *job) prepareQuarantine(ctx context.Context, conn *sql.Conn, ms []manifest, bad map[string][]badRow, bid, dir string) (*delta.Snapshot, []delta.Add, []delta.Txn, error) {
	if len(bad) == 0 {
		return nil, nil, nil, nil
	}
	qsnap, err := j.qtable.Snapshot(ctx)
	if err != nil && !errors.Is(err, delta.ErrNoTable) {
		return nil, nil, nil, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	if errors.Is(err, delta.ErrNoTable) {
		qsnap = nil
	}
	stage := filepath.Join(dir, "quarantine.ndjson")
	f, err := os.Create(stage)
	if err != nil {
		return nil, nil, nil, err
	}
	enc := json.NewEncoder(f)
	now := j.d.Now().UTC().Format("2006-01-02 15:04:05.000000+00")
	var txns []delta.Txn
	for _, m := range ms {
		rows := bad[m.SHA256]
		if len(rows) == 0 {
			continue
		}
		app := QuarantineAppID(j.src.Name, m.SHA256)
		if qsnap != nil {
			if _, done := qsnap.TxnVersion(app); done {
				continue
			}
		}
		txns = append(txns, delta.Txn{AppID: app, Version: 1, LastUpdated: j.d.Now().UnixMilli()})
		for _, r := range rows {
			q := quarantineRow{Source: j.src.Name, SourceFile: m.sourceFile(), Line: r.line, Reason: r.reason,
				Raw: strings.ToValidUTF8(r.raw, "\uFFFD"), BatchID: bid, QuarantinedAt: now}
			if r.column != "" {
				c := r.column
				q.Column = &c
			}
			if err := enc.Encode(q); err != nil {
				f.Close()
				return nil, nil, nil, err
			}
		}
	}
	if err := f.Close(); err != nil {
		return nil, nil, nil, err
	}
	if len(txns) == 0 {
		return qsnap, nil, nil, nil
	}
	// A quarantine table made before the rename keeps its column name.
	schema, colAs := quarantineSchema(), QuarantineColumn
	if legacy := legacyQuarantine(qsnap); legacy != nil {
		schema, colAs = legacy, LegacyQuarantineColumn
	}
	sel := "SELECT source, source_file, line, column_name AS " + warehouse.QuoteIdent(colAs) + ", reason, raw, batch_id, CAST(quarantined_at AS TIMESTAMPTZ) AS quarantined_at FROM read_json(" +
		warehouse.QuoteString(stage) + ", format='newline_delimited', maximum_object_size=" + fmt.Sprint(8*j.maxLine+1<<16) + ", columns={source: 'VARCHAR', source_file: 'VARCHAR', line: 'BIGINT', " +
		"column_name: 'VARCHAR', reason: 'VARCHAR', raw: 'VARCHAR', batch_id: 'VARCHAR', quarantined_at: 'VARCHAR'})"
	adds, err := j.writeParquet(ctx, conn, sel, filepath.Join(dir, "quarantine"), "source", schema)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bronze %s: write quarantine: %w", j.src.Name, err)
	}
	return qsnap, adds, txns, nil
}

// commitQuarantine commits the batch's quarantine rows on qsnap. qread is
// the quarantine snapshot prepareQuarantine picked the objects from; one
// quarantined since by another runner refuses the commit with an error
// wrapping delta.ErrTxnApplied.
func (j *job) commitQuarantine(ctx context.Context, qsnap, qread *delta.Snapshot, adds []delta.Add, txns []delta.Txn, info delta.CommitInfo) error {
	for attempt := 0; ; attempt++ {
		if qsnap == nil {
			s, err := j.qtable.Create(ctx, delta.Metadata{Name: "_quarantine", SchemaString: quarantineSchema().String(), PartitionColumns: []string{"source"}},
				delta.CommitInfo{Operation: "CREATE TABLE", Medallion: map[string]any{"job": "bronze"}})
			if errors.Is(err, delta.ErrTableExists) {
				s, err = j.qtable.Snapshot(ctx)
			}
			if err != nil {
				return fmt.Errorf("create %s: %w", j.qtable.Dir(), err)
			}
			qsnap = s
		}
		_, err := j.qtable.Commit(ctx, qsnap, delta.Commit{Adds: adds, Txns: txns, Info: info, IsBlindAppend: true, Read: qread})
		if err == nil {
			return nil
		}
		if !errors.Is(err, delta.ErrCommitConflict) || errors.Is(err, delta.ErrTxnApplied) || attempt >= layers.MaxCommitAttempts {
			return fmt.Errorf("commit %s: %w", j.qtable.Dir(), err)
		}
		if qsnap, err = j.qtable.Snapshot(ctx); err != nil {
			return fmt.Errorf("commit %s: re-read after conflict: %w", j.qtable.Dir(), err)
		}
	}
}

// writeParquet writes sel as zstd Parquet under outDir, partitioned by
// partCol when set (Hive layout; partition columns are not stored in the
// files), and returns the add actions (paths relative to outDir), with
// statistics for the columns of schema (the table's schema).
func (j *job) writeParquet(ctx context.Context, conn *sql.Conn, sel, outDir, partCol string, schema *delta.Schema) ([]delta.Add, error) {
	var q string
	if partCol != "" {
		q = fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (%s), FILENAME_PATTERN 'part-{uuid}', RETURN_STATS true)",
			sel, warehouse.QuoteString(outDir), warehouse.QuoteIdent(partCol))
	} else {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, err
		}
		q = fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd, RETURN_STATS true)",
			sel, warehouse.QuoteString(filepath.Join(outDir, "part-"+uuid.NewString()+".parquet")))
	}
	return j.copyParquet(ctx, conn, q, outDir, partCol, schema)
}

// copyParquet runs a COPY ... RETURN_STATS into outDir and turns the files
// it wrote into add actions, their statistics from what COPY returns.
func (j *job) copyParquet(ctx context.Context, conn *sql.Conn, q, outDir, partCol string, schema *delta.Schema) ([]delta.Add, error) {
	j.log.Debug("bronze write statement", "sql", q)
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var adds []delta.Add
	now := j.d.Now().UnixMilli()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var name string
		var count, size int64
		var colStats any
		for i, c := range cols {
			switch c {
			case "filename":
				name = fmt.Sprint(vals[i])
			case "count":
				count = toInt64(vals[i])
			case "file_size_bytes":
				size = toInt64(vals[i])
			case "column_statistics":
				colStats = vals[i]
			}
		}
		rel, err := filepath.Rel(outDir, name)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("parquet file %s is outside %s", name, outDir)
		}
		rel = filepath.ToSlash(rel)
		pv, err := partitionValues(rel, partCol, schema)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(name); err == nil {
			size = fi.Size()
		}
		adds = append(adds, delta.Add{Path: rel, PartitionValues: pv, Size: size, ModificationTime: now, DataChange: true,
			Stats: fileStats(count, colStats, schema).String()})
	}
	return adds, rows.Err()
}

// partitionValues reads the partition value of partCol from the
// directories of rel, as DuckDB's partitioned COPY names them: the value
// percent-encoded, __HIVE_DEFAULT_PARTITION__ for NULL. The log records
// the decoded value, NULL (and the empty string, as Spark does) as JSON
// null, dates and timestamps before year 1 in the protocol's notation
// (isoYear).
func partitionValues(rel, partCol string, schema *delta.Schema) (delta.PartitionValues, error) {
	temporal := false
	if schema != nil {
		if f, ok := schema.Field(partCol); ok {
			temporal = f.Type.Name == delta.TypeDate || f.Type.Name == delta.TypeTimestamp || f.Type.Name == delta.TypeTimestampNTZ
		}
	}
	pv := delta.PartitionValues{}
	for _, seg := range strings.Split(rel, "/") {
		k, v, ok, err := delta.ParseHivePartition(seg)
		if err != nil {
			return nil, fmt.Errorf("parquet file %s: %w", rel, err)
		}
		if ok && k == partCol {
			if v != nil && temporal {
				v = delta.PartitionValue(isoYear(*v))
			}
			pv[k] = v
		}
	}
	return pv, nil
}

// isoYear rewrites DuckDB's text of a date or timestamp before year 1
// ("0045-03-15 (BC)", "0045-03-15 (BC) 12:00:00+00") with the signed,
// astronomical year of ISO 8601 and the Delta protocol ("-0044-03-15",
// year 0 is 1 BC), which DuckDB, Spark and Go all parse back to the same
// day. Other text is returned unchanged.
func isoYear(v string) string {
	rest, ok := strings.CutSuffix(v, " (BC)")
	if !ok {
		before, after, found := strings.Cut(v, " (BC) ")
		if !found {
			return v
		}
		rest = before + " " + after
	}
	y, tail, ok := strings.Cut(rest, "-")
	n, err := strconv.Atoi(y)
	if !ok || err != nil || n < 1 {
		return v
	}
	astro := 1 - n // 1 BC is year 0
	if astro == 0 {
		return "0000-" + tail
	}
	return fmt.Sprintf("-%04d-%s", -astro, tail)
}

// addedRows sums the row counts writeParquet recorded in the adds' stats.
func addedRows(adds []delta.Add) int64 {
	var n int64
	for _, a := range adds {
		if st, err := delta.ParseStats(a.Stats); err == nil {
			n += st.NumRecords
		}
	}
	return n
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case uint64:
		return int64(x)
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

// moveUp is upload for files the batch no longer needs: a local lake on
// their filesystem takes them by a rename (lake.MoveFile), other stores
// by an upload as upload does; a file a core, so that hashing, fsyncing
// or uploading one overlaps the next. On bench case 1 (10M rows, about 300 MB of
// Parquet) the step went from 1.15 to 0.38 s (docs/bronze-csv-profile.md,
// decision 9).
func (j *job) moveUp(ctx context.Context, tableDir, localDir string, adds []delta.Add) error {
	errs := make([]error, len(adds))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range adds {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p := filepath.Join(localDir, filepath.FromSlash(adds[i].Path))
			info, err := lake.MoveFile(ctx, j.d.Store, tableDir+"/"+adds[i].Path, p)
			if err != nil {
				errs[i] = err
				return
			}
			uploaded(&adds[i], info)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// upload puts the files of adds (under localDir) into the table at tableDir
// and records each file's size and SHA-256 (hashed as it is uploaded) in
// its add action.
func (j *job) upload(ctx context.Context, tableDir, localDir string, adds []delta.Add) error {
	for i := range adds {
		p := filepath.Join(localDir, filepath.FromSlash(adds[i].Path))
		info, err := lake.PutFile(ctx, j.d.Store, tableDir+"/"+adds[i].Path, p)
		if err != nil {
			return err
		}
		uploaded(&adds[i], info)
	}
	return nil
}

// uploaded records in a what the upload of its file learned: its size,
// its SHA-256 and the time.
func uploaded(a *delta.Add, info lake.PutFileInfo) {
	a.Size = info.Size
	a.Tags = delta.WithSHA256(a.Tags, info.SHA256)
	a.ModificationTime = time.Now().UnixMilli()
}
