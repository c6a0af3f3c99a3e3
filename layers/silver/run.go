package silver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// batch is the state of one silver run as it moves through its steps:
// where silver stands, which bronze versions it reads, the watermarks
// before and after, and what it wrote.
type batch struct {
	st      Stats
	appID   string
	silverT *delta.Table
	lateT   *delta.Table
	bronzeT *delta.Table

	silverSnap *delta.Snapshot // nil: the silver table does not exist yet
	lateSnap   *delta.Snapshot // nil: the late table does not exist yet
	prog       progress        // what the last silver commit recorded
	consumed   int64           // bronze version silver has consumed; -1: none
	target     int64           // bronze version this batch reads up to
	id         string          // batchID(target)

	newMax *int64 // largest event time after the batch, µs
	w1     *int64 // watermark after the batch, µs

	schema    *delta.Schema // the output's columns
	out       output
	stateKey  string
	stateRows int64
}

// run is one silver batch: find where silver stands, read the new bronze
// files, aggregate, then commit late rows, output and state in that order
// (see the package doc for why the order is crash-safe).
func (j *job) run(ctx context.Context) (Stats, error) {
	b := j.newBatch()
	if err := j.position(ctx, b); err != nil {
		return b.st, err
	}
	files, err := j.plan(ctx, b)
	if err != nil || len(files) == 0 {
		return b.st, err
	}
	if j.conn, err = j.deps.DB.Conn(ctx); err != nil {
		return b.st, fmt.Errorf("duckdb connection: %w", err)
	}
	if err := j.compute(ctx, b, files); err != nil {
		return b.st, err
	}
	if err := j.writeLate(ctx, b); err != nil {
		return b.st, err
	}
	n := int64(len(files))
	j.deps.Report(layers.Progress{Step: "writing", Unit: layers.UnitFiles, Done: n, Total: n, Rows: b.st.RowsIn})
	if err := j.writeFiles(ctx, b); err != nil {
		return b.st, err
	}
	if err := j.commit(ctx, b); err != nil {
		return b.st, err
	}
	// Superseded state files (best effort: they are unreferenced now).
	j.cleanState(ctx, b.stateKey)
	return b.st, nil
}

// newBatch opens the tables a run reads and writes.
func (j *job) newBatch() *batch {
	sp := j.sp
	b := &batch{
		appID: AppID(sp.name),
		st:    Stats{Table: "silver." + sp.name, FromVersion: -1, ToVersion: -1, Version: -1, LateVersion: -1, OutputMode: "append"},
	}
	if sp.update {
		b.st.OutputMode = "update"
	}
	b.silverT = j.deps.OpenTable(j.place.dir)
	b.lateT = j.deps.OpenTable(j.place.lateDir)
	b.bronzeT = j.deps.OpenTable(layers.TableRef{Layer: layers.Bronze, Name: sp.from}.Dir())
	return b
}

// position reads where silver stands: the bronze version it consumed and
// the progress its last commit recorded.
func (j *job) position(ctx context.Context, b *batch) error {
	sp := j.sp
	var err error
	if b.silverSnap, err = layers.SnapshotOrNil(ctx, b.silverT); err != nil {
		return err
	}
	b.consumed = -1
	if b.silverSnap != nil {
		if v, ok := b.silverSnap.TxnVersion(b.appID); ok {
			b.consumed = v
			if b.prog, err = readProgress(ctx, b.silverT, b.silverSnap.Version, v); err != nil {
				return err
			}
			if b.prog.fingerprint != sp.fingerprint() && !j.deps.SchemaReplace {
				return j.definitionChanged(b.prog.fingerprint)
			}
		}
	}
	st := &b.st
	st.FromVersion, st.ToVersion = b.consumed, b.consumed
	st.WatermarkBefore, st.WatermarkAfter = microsTime(b.prog.watermark), microsTime(b.prog.watermark)
	st.MaxEventTime = microsTime(b.prog.maxEvent)
	st.StateRows = b.prog.stateRows
	return nil
}

// plan picks the bronze version the batch reads up to (the one a crashed
// run already committed late rows for, else bronze's latest) and returns
// the bronze files added since the consumed version; none: nothing to do.
func (j *job) plan(ctx context.Context, b *batch) ([]bronzeFile, error) {
	sp := j.sp
	var err error
	if b.lateSnap, err = layers.SnapshotOrNil(ctx, b.lateT); err != nil {
		return nil, err
	}
	b.target = -1
	if b.lateSnap != nil {
		if v, ok := b.lateSnap.TxnVersion(b.appID); ok && v > b.consumed {
			b.target, b.st.Redo = v, true
		}
	}
	if b.target < 0 {
		latest, err := b.bronzeT.LatestVersion(ctx)
		if errors.Is(err, delta.ErrNoTable) {
			j.log.Info("silver: bronze table has no data yet; nothing to do", "bronze", "bronze."+sp.from)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		b.target = latest
		if j.place.upTo >= 0 && latest > j.place.upTo {
			b.target = j.place.upTo
		}
	}
	if b.target < b.consumed {
		return nil, fmt.Errorf("bronze.%s is at version %d but silver has consumed up to version %d: was the bronze table recreated? delete %s/ to rebuild silver",
			sp.from, b.target, b.consumed, b.silverT.Dir())
	}
	if b.target == b.consumed {
		// No new data: the no-data batch cannot move the watermark, and every
		// window final at this watermark was emitted by the previous run.
		j.log.Debug("silver: no new bronze data", "consumed", b.consumed)
		return nil, nil
	}
	files, err := newBronzeFiles(ctx, b.bronzeT, b.consumed, b.target)
	if re := (*BronzeRefreshedError)(nil); errors.As(err, &re) {
		re.Table = "silver." + sp.name
	}
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		// Only compactions or metadata changes in bronze: nothing to read.
		// Commit nothing; the next run looks at these versions again.
		j.log.Debug("silver: no new bronze files", "from", b.consumed, "to", b.target)
		return nil, nil
	}
	b.id = batchID(b.target)
	b.st.Files = len(files)
	j.log.Info("silver: batch", "batch", b.id, "bronze_from", b.consumed, "bronze_to", b.target, "files", len(files), "redo", b.st.Redo)
	return files, nil
}

// compute loads the new bronze rows, moves the watermark and aggregates
// them into the open windows.
func (j *job) compute(ctx context.Context, b *batch, files []bronzeFile) error {
	bronzeSnap, err := b.bronzeT.SnapshotAt(ctx, b.target)
	if err != nil {
		return err
	}
	if err := j.loadInput(ctx, files, bronzeSnap); err != nil {
		return err
	}
	st := &b.st
	var batchMax sql.NullInt64
	if err := j.conn.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE __t IS NULL), max(__t) FROM s_fast`).
		Scan(&st.RowsIn, &st.RowsNoEventTime, &batchMax); err != nil {
		return fmt.Errorf("read new bronze rows: %w", err)
	}
	n := int64(len(files))
	j.deps.Report(layers.Progress{Step: "aggregating", Unit: layers.UnitFiles, Done: n, Total: n, Rows: st.RowsIn})
	b.newMax, b.w1 = advanceWatermark(b.prog, batchMax, j.sp.delay)
	st.MaxEventTime, st.WatermarkAfter = microsTime(b.newMax), microsTime(b.w1)
	j.wAfter = b.w1
	st.LatePairs, err = j.aggregate(ctx, b.prog.state, b.prog.watermark)
	return err
}

// advanceWatermark returns the largest event time and the watermark after
// a batch whose largest event time is batchMax: the watermark trails the
// largest event time by delay and never moves back.
func advanceWatermark(prog progress, batchMax sql.NullInt64, delay int64) (newMax, w1 *int64) {
	newMax = prog.maxEvent
	if batchMax.Valid && (newMax == nil || batchMax.Int64 > *newMax) {
		newMax = &batchMax.Int64
	}
	w1 = prog.watermark
	if newMax != nil {
		cand := *newMax - delay
		if w1 == nil || cand > *w1 {
			w1 = &cand
		}
	}
	return newMax, w1
}

// writeLate commits the late rows first (unless a crashed run already did).
func (j *job) writeLate(ctx context.Context, b *batch) error {
	if b.st.LatePairs > 0 && !b.st.Redo {
		w0 := *b.prog.watermark
		if err := j.loadLate(ctx, w0); err != nil {
			return err
		}
		v, err := j.commitLate(ctx, b.lateT, orEmpty(b.lateSnap), b.id, b.target, w0)
		if err != nil {
			return err
		}
		b.st.LateVersion = v
	}
	return j.crashPoint(pointLateCommitted)
}

// writeFiles writes the output and state files of the batch, after
// checking the output's columns against the table's.
func (j *job) writeFiles(ctx context.Context, b *batch) error {
	sp := j.sp
	schema, err := j.outputSchema(ctx)
	if err != nil {
		return err
	}
	b.schema = schema
	if b.silverSnap != nil {
		have, err := b.silverSnap.Schema()
		if err != nil {
			return err
		}
		if changes := layers.DiffColumns(have, schema, nil); len(changes) > 0 && !j.deps.SchemaReplace {
			return &layers.SchemaChangeError{Table: layers.TableRef{Layer: layers.Silver, Name: sp.name}, Changes: changes,
				Place: layers.Place(j.deps.PipelineFile, sp.line, 0)}
		}
	}
	if b.out, err = j.writeOutput(ctx, b.silverT, b.silverSnap, b.id); err != nil {
		return err
	}
	b.st.RowsOut, b.st.FilesRemoved = b.out.rows, len(b.out.removes)
	if b.stateRows, b.st.WindowsFinalized, err = j.countMerged(ctx, b.w1); err != nil {
		return err
	}
	if b.stateKey, err = j.writeState(ctx, b.id, b.w1, b.stateRows); err != nil {
		return err
	}
	b.st.StateRows = b.stateRows
	return j.crashPoint(pointFilesWritten)
}

// commit makes the silver commit: output, txn and progress at once,
// checked against the snapshot the batch was planned from.
func (j *job) commit(ctx context.Context, b *batch) error {
	read := orEmpty(b.silverSnap)
	base := b.silverSnap
	if base == nil {
		var err error
		base, err = b.silverT.Create(ctx, delta.Metadata{SchemaString: b.schema.String()}, delta.CommitInfo{
			Operation: "CREATE TABLE", Medallion: map[string]any{mJob: "silver"},
		})
		if errors.Is(err, delta.ErrTableExists) {
			base, err = b.silverT.Snapshot(ctx)
		}
		if err != nil {
			return err
		}
	}
	c := delta.Commit{
		Adds:          b.out.adds,
		Removes:       b.out.removes,
		Txns:          []delta.Txn{{AppID: b.appID, Version: b.target, LastUpdated: j.now().UnixMilli()}},
		Info:          j.commitInfo(b),
		IsBlindAppend: !j.sp.update,
		Read:          read,
	}
	if j.deps.SchemaReplace && base.Metadata.SchemaString != b.schema.String() {
		// A rebuild may change the columns (writeFiles refuses that
		// otherwise): the commit writes the new ones.
		m := base.Metadata
		m.SchemaString = b.schema.String()
		c.Metadata, c.IsBlindAppend = &m, false
	}
	snap, err := b.silverT.Commit(ctx, base, c)
	if err != nil {
		return err
	}
	st := &b.st
	st.Version, st.ToVersion = snap.Version, b.target
	j.log.Info("silver: committed", "version", snap.Version, "bronze_version", b.target, "rows_in", st.RowsIn,
		"late", st.LatePairs, "rows_out", st.RowsOut, "state_rows", b.stateRows, "watermark", st.WatermarkAfter)
	return nil
}

// commitInfo is the commitInfo of a silver commit: Spark's streaming
// fields and metrics, and the progress (medallion map) the next run starts
// from.
func (j *job) commitInfo(b *batch) delta.CommitInfo {
	sp, st := j.sp, &b.st
	med := map[string]any{
		mJob:         "silver",
		mBatch:       b.id,
		mBronze:      b.target,
		mState:       b.stateKey,
		mStateRows:   b.stateRows,
		mFingerprint: sp.fingerprint(),
	}
	if b.newMax != nil {
		med[mMaxEvent] = formatMicros(*b.newMax)
	}
	if b.w1 != nil {
		med[mWatermark] = formatMicros(*b.w1)
	}
	return delta.CommitInfo{
		Operation: "STREAMING UPDATE",
		OperationParameters: map[string]any{
			"outputMode": map[bool]string{false: "Append", true: "Update"}[sp.update],
			"queryId":    b.appID,
			"epochId":    strconv.FormatInt(b.target, 10),
		},
		OperationMetrics: map[string]string{
			"numSourceFiles":   strconv.Itoa(st.Files),
			"numSourceRows":    strconv.FormatInt(st.RowsIn, 10),
			"numLateRows":      strconv.FormatInt(st.LatePairs, 10),
			"numOutputRows":    strconv.FormatInt(st.RowsOut, 10),
			"numAddedFiles":    strconv.Itoa(len(b.out.adds)),
			"numRemovedFiles":  strconv.Itoa(len(b.out.removes)),
			"numStateRows":     strconv.FormatInt(b.stateRows, 10),
			"numFinalWindows":  strconv.FormatInt(st.WindowsFinalized, 10),
			"numNoEventTime":   strconv.FormatInt(st.RowsNoEventTime, 10),
			"bronzeReadFrom":   strconv.FormatInt(b.consumed, 10),
			"bronzeReadTo":     strconv.FormatInt(b.target, 10),
			"watermarkAtStart": formatMicrosOr(b.prog.watermark, ""),
		},
		Medallion: med,
	}
}
