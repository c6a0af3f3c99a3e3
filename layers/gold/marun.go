package gold

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// maRun is one moving-average run as it moves through its steps: what it
// reads, how it decided to build (full, incremental over some buckets, or
// append), and what it wrote.
type maRun struct {
	srcRef layers.TableRef
	in     *input
	spec   *maSpec
	def    string // the definition recorded in the table's configuration
	appID  string
	sv     int64           // the silver version read
	gsnap  *delta.Snapshot // nil: the table does not exist yet
	st     Stats

	buckets   []int       // with full false: the buckets to recompute
	added     []delta.Add // silver files to append, when silver only added files
	full      bool
	reason    string
	chosen    int    // the bucket count a full build would take now
	state     string // the tail the table's newest files point to, table-relative
	stateFile string // a local copy of it

	out *maOutput
}

// runMovingAverage builds a moving-average table: see the package doc.
func (r *runner) runMovingAverage(ctx context.Context) (Stats, error) {
	m, err := r.openMA(ctx)
	if err != nil {
		return Stats{}, err
	}
	if err := r.pin(ctx); err != nil {
		return m.st, err
	}
	if skip, err := r.planMA(ctx, m); err != nil || skip {
		return m.st, err
	}
	if skip, err := r.tryAppendMA(ctx, m); err != nil || skip {
		return m.st, err
	}
	if m.out == nil {
		if m.full {
			m.buckets, m.stateFile = nil, ""
			m.spec.buckets = m.chosen
			m.st.Mode, m.st.Reason = ModeFull, m.reason
		} else {
			m.st.Mode, m.st.Reason = ModeIncremental, m.reason
		}
		if m.out, err = r.computeMA(ctx, m.in, m.spec, m.gsnap, m.buckets, m.stateFile); err != nil {
			return m.st, err
		}
	}
	r.log.Debug("gold moving average", "mode", m.st.Mode, "reason", m.st.Reason, "silver_version", m.sv)
	return m.st, r.commitMA(ctx, m)
}

// openMA reads the silver input, the spec and the table's snapshot.
func (r *runner) openMA(ctx context.Context) (*maRun, error) {
	g := r.gold
	if g.From == "" {
		return nil, fmt.Errorf("%s: from (the silver table) is not set", r.ref)
	}
	m := &maRun{srcRef: layers.TableRef{Layer: layers.Silver, Name: g.From}, appID: "gold/" + g.Name}
	var err error
	if m.in, err = r.openInput(ctx, m.srcRef); err != nil {
		return nil, err
	}
	if m.spec, err = r.maSpec(m.in); err != nil {
		return nil, err
	}
	m.def = m.spec.definition(m.in)
	m.sv = m.in.snap.Version
	m.st = Stats{Table: r.ref, Kind: KindMovingAverage, Inputs: map[string]int64{m.srcRef.String(): m.sv}, Version: -1}
	if m.gsnap, err = layers.SnapshotOrNil(ctx, r.tbl); err != nil {
		return nil, fmt.Errorf("%s: read table: %w", r.ref, err)
	}
	if m.gsnap != nil {
		m.state, _ = currentState(m.gsnap)
	}
	m.chosen = chooseBuckets(m.spec, m.in.snap.Files, r.deps.buckets)
	m.spec.buckets = m.chosen
	return m, nil
}

// chooseBuckets is the bucket count of a full build over the silver
// files: the power of two that gives each bucket about bucketInputBytes
// of silver Parquet, at most maxBuckets; 1 without partition columns.
// force (tests) overrides it.
func chooseBuckets(spec *maSpec, files []delta.Add, force int) int {
	if len(spec.part) == 0 {
		return 1
	}
	if force > 0 {
		return force
	}
	size := inputBytes(files)
	n := 1
	for n < maxBuckets && int64(n)*bucketInputBytes < size {
		n *= 2
	}
	return n
}

// tableBuckets is the bucket count recorded in a moving-average table's
// configuration; ok is false when it is missing or not a power of two up
// to maxBuckets.
func tableBuckets(snap *delta.Snapshot) (int, bool) {
	n, err := strconv.Atoi(snap.Metadata.Configuration[confBuckets])
	if err != nil || n < 1 || n > maxBuckets || n&(n-1) != 0 {
		return 0, false
	}
	return n, true
}

// planMA decides how the run builds: a full build (with the reason), an
// incremental one from the table's state, or nothing (skip: the table is
// up to date, m.st says why).
func (r *runner) planMA(ctx context.Context, m *maRun) (skip bool, err error) {
	switch {
	case m.gsnap == nil:
		m.full, m.reason = true, "first build"
		return false, nil
	case r.deps.refresh:
		m.full, m.reason = true, "refresh"
		return false, nil
	case m.gsnap.Metadata.Configuration[confDefinition] != m.def:
		m.full, m.reason = true, "the gold definition, the silver schema or the file layout changed"
		return false, nil
	}
	m.st.Version = m.gsnap.Version
	consumed, ok := m.gsnap.TxnVersion(m.appID)
	switch {
	case !ok:
		m.full, m.reason = true, "no record of the silver version consumed"
	case consumed == m.sv:
		m.st.Mode, m.st.Reason = ModeSkipped, fmt.Sprintf("%s is still at version %d", m.srcRef, m.sv)
		return true, nil
	case consumed > m.sv:
		m.full, m.reason = true, fmt.Sprintf("%s is at version %d, before version %d that gold consumed (recreated?)", m.srcRef, m.sv, consumed)
	default:
		return r.planIncrementalMA(ctx, m, consumed)
	}
	return false, nil
}

// planIncrementalMA plans a run over a table that consumed silver version
// consumed: from the table's state and the silver files changed since.
func (r *runner) planIncrementalMA(ctx context.Context, m *maRun, consumed int64) (skip bool, err error) {
	stored, ok := tableBuckets(m.gsnap)
	if !ok {
		m.full, m.reason = true, "the table records no bucket count"
		return false, nil
	}
	if stored < m.chosen && m.chosen >= stored*regrowFactor {
		m.full, m.reason = true, fmt.Sprintf("%s has grown: %d partition buckets instead of %d", m.srcRef, m.chosen, stored)
		return false, nil
	}
	m.spec.buckets = stored
	if _, ok := filesByBucket(m.gsnap.Files, stored); !ok {
		m.full, m.reason = true, "the table has files this version did not write"
		return false, nil
	}
	if s, v := currentState(m.gsnap); s == "" || v != consumed {
		m.full, m.reason = true, "no incremental state for the version consumed (empty table, or written by an older version)"
		return false, nil
	}
	if m.stateFile, err = r.stateFile(ctx, m.state); err != nil {
		return false, err
	}
	if m.stateFile == "" {
		m.full, m.reason = true, "the incremental state file is gone"
		return false, nil
	}
	diff, reason, err := r.silverDiff(ctx, m.in, consumed)
	if err != nil {
		return false, err
	}
	unchanged := fmt.Sprintf("no data changed in %s between versions %d and %d", m.srcRef, consumed, m.sv)
	switch {
	case reason != "":
		m.full, m.reason = true, reason
	case len(diff.added) == 0 && len(diff.removed) == 0:
		m.st.Mode, m.st.Reason = ModeSkipped, unchanged
		return true, nil
	case len(diff.removed) == 0:
		m.added = diff.added
	default:
		m.buckets, reason, err = r.changedBuckets(ctx, m.in, m.spec, append(slices.Clone(diff.added), diff.removed...))
		switch {
		case err != nil:
			return false, err
		case reason != "":
			m.full, m.reason = true, reason
		case len(m.buckets) == 0:
			m.st.Mode, m.st.Reason = ModeSkipped, unchanged
			return true, nil
		default:
			m.reason = fmt.Sprintf("%s rewrote or removed files: %d partition bucket(s) recomputed", m.srcRef, len(m.buckets))
		}
	}
	return false, nil
}

// tryAppendMA appends the rows of the silver files added, when silver only
// added files; when it cannot, it leaves m.out nil and says why in m
// (skip: the added files hold no rows).
func (r *runner) tryAppendMA(ctx context.Context, m *maRun) (skip bool, err error) {
	if m.full || m.added == nil {
		return false, nil
	}
	out, fb, err := r.appendMA(ctx, m.in, m.spec, m.gsnap, m.stateFile, m.added)
	switch {
	case err != nil:
		return false, err
	case out != nil:
		m.out = out
		m.st.Mode = ModeAppend
		m.st.Reason = fmt.Sprintf("new rows of %s appended to %d partition bucket(s), %d compacted", m.srcRef, len(out.buckets), out.compacted)
	case fb.empty:
		m.st.Mode = ModeSkipped
		m.st.Reason = fmt.Sprintf("the files %s added hold no rows", m.srcRef)
		return true, nil
	case fb.full != "":
		m.full, m.reason = true, fb.full
	default:
		m.buckets, m.reason = fb.buckets, fb.reason
	}
	return false, nil
}

// commitMA commits the files of m.out, then deletes the superseded state
// file, and fills m.st.
func (r *runner) commitMA(ctx context.Context, m *maRun) error {
	out, st := m.out, &m.st
	now := r.deps.Now().UnixMilli()
	removes := make([]delta.Remove, len(out.removes))
	for i, f := range out.removes {
		removes[i] = f.Remove(now, true)
	}
	adds := make([]delta.Add, len(out.files))
	var rowsOut int64
	for i, w := range out.files {
		adds[i] = delta.Add{Path: w.path, Size: w.size, ModificationTime: now, DataChange: true, Stats: fileStats(w.rows),
			Tags: map[string]string{tagState: out.tail, tagVersion: strconv.FormatInt(m.sv, 10), delta.TagSHA256: w.sha256}}
		rowsOut += w.rows
	}
	meta := delta.Metadata{
		SchemaString: out.schema.String(),
		Configuration: map[string]string{
			confDefinition: m.def,
			confKind:       string(KindMovingAverage),
			confLayout:     maLayout,
			confSource:     m.srcRef.String(),
			confBuckets:    strconv.Itoa(m.spec.buckets),
		},
	}
	snap, err := r.commit(ctx, m.gsnap, meta, delta.Commit{
		Adds:    adds,
		Removes: removes,
		Txns:    []delta.Txn{{AppID: m.appID, Version: m.sv, LastUpdated: now}},
		Info:    r.maCommitInfo(m, len(adds), len(removes), rowsOut),
	})
	if err != nil {
		return err
	}
	if m.state != "" && m.state != out.tail {
		// The previous tail is unreferenced by the newest files now (older
		// files may still name it; only the newest count).
		if err := r.deps.Store.Delete(ctx, r.tbl.Key(m.state)); err != nil {
			r.log.Debug("could not delete a superseded gold state file", "key", m.state, "err", err)
		}
	}
	st.Version = snap.Version
	st.Buckets = len(out.buckets)
	if m.full {
		st.Buckets = m.spec.buckets
	}
	st.FilesAdded, st.FilesRemoved = len(adds), len(removes)
	st.RowsWritten, st.RowsIn = rowsOut, r.rowsIn
	st.Compacted = out.compacted
	return nil
}

// maCommitInfo is the commitInfo of a moving-average commit.
func (r *runner) maCommitInfo(m *maRun, adds, removes int, rowsOut int64) delta.CommitInfo {
	writeMode := "Overwrite"
	if m.st.Mode == ModeAppend && removes == 0 {
		writeMode = "Append"
	}
	op := "WRITE"
	params := map[string]any{
		"mode":    writeMode,
		"gold":    string(m.st.Mode),
		"source":  fmt.Sprintf("%s@%d", m.srcRef, m.sv),
		"buckets": bucketList(m.out.buckets, m.full),
	}
	if r.deps.refresh {
		op, params["range"] = opRefresh, "full"
	}
	return delta.CommitInfo{
		Operation:           op,
		OperationParameters: params,
		OperationMetrics: map[string]string{
			"numFiles":        strconv.Itoa(adds),
			"numAddedFiles":   strconv.Itoa(adds),
			"numRemovedFiles": strconv.Itoa(removes),
			"numOutputRows":   strconv.FormatInt(rowsOut, 10),
		},
		Medallion: map[string]any{
			"rows_in":        r.rowsIn,
			"mode":           string(m.st.Mode),
			"reason":         m.st.Reason,
			"input_versions": m.st.Inputs,
			"state":          m.out.tail,
		},
	}
}
