package bronze

// Refresh: after a rule fix (a value added to accepted:, a new timestamp
// format, a changed column), every raw object the bronze table has
// consumed is typed again with the current rules, through the code of a
// run (runBatch: the same batches, typing, dedupe, quarantine), into a
// shadow table under bronze/<source>/_refresh/<version>/ with its own
// shadow quarantine table. Then two commits swap the result in:
//
//  1. bronze._quarantine: the files of the source's partition (the table is
//     shared by sources, partitioned by source) are removed and the
//     shadow's quarantine files added, with txn refresh/<source>/<version>;
//  2. bronze.<source>: every live file removed and the shadow's files added
//     in one commit, operation REFRESH, with the same txn.
//
// A refresh killed anywhere is rerun to the same result: the shadow table
// is named by the live table's version, so a rerun resumes typing where it
// stopped (its txns say which objects it holds); a rerun after the
// quarantine commit finds its txn and skips it; a rerun after the bronze
// commit starts a refresh of the refreshed table, which writes the same
// rows again.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// Crash points of a bronze refresh, passed to Env.Crash (and the process
// crash hook, see CrashEnv).
const (
	// PointRefreshShadowed: every consumed object typed into the shadow
	// table, nothing of the live tables changed.
	PointRefreshShadowed = "bronze.refresh-shadowed"
	// PointRefreshQuarantined: bronze._quarantine replaced, bronze not.
	PointRefreshQuarantined = "bronze.refresh-quarantined"
)

// OpRefresh is the commitInfo operation of a refresh commit; silver stops
// on a bronze REFRESH commit it has not read (the rows it consumed were
// replaced).
const OpRefresh = "REFRESH"

// refreshShelf is where, under the table directory, refreshes keep their
// shadow tables.
const refreshShelf = "_refresh/"

// RefreshAppID is the txn appId, in bronze.<source> and bronze._quarantine,
// of the refresh of source from the live table at version.
func RefreshAppID(source string, version int64) string {
	return "refresh/" + source + "/" + strconv.FormatInt(version, 10)
}

// RefreshStats is what a bronze refresh did.
type RefreshStats struct {
	Table             string
	Range             Range // the rows replaced (by event time)
	Objects           int   // raw objects typed again
	RowsRemoved       int64 // rows of the live table replaced
	RowsAdded         int64 // rows written in their place
	QuarantineRemoved int64 // quarantine rows of the source replaced
	QuarantineAdded   int64 // quarantine rows written in their place
	Version           int64 // bronze version of the refresh commit (-1: none)
}

// String is the one-line summary `medallion refresh` prints.
func (s RefreshStats) String() string {
	return fmt.Sprintf("%s: refreshed %s from %d raw objects: %d rows replaced by %d, %d quarantined rows replaced by %d (v%d)",
		s.Table, s.Range, s.Objects, s.RowsRemoved, s.RowsAdded, s.QuarantineRemoved, s.QuarantineAdded, s.Version)
}

// Refresh types every raw object bronze.<src> has consumed again with the
// current rules and replaces the table's rows and the source's quarantine
// rows by the result (see the comment at the top of refresh.go); with a
// range, only the rows whose event time lies in rng are replaced, the
// others stay as they are. The caller holds the table's lease
// (jobs.TableLease).
func Refresh(ctx context.Context, d Deps, src *config.Source, rng Range) (RefreshStats, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: src.Name}
	st := RefreshStats{Table: ref.String(), Range: rng, Version: -1}
	if d.Store == nil || d.DB == nil {
		return st, errors.New("bronze refresh: missing store or database")
	}
	if err := refresh(ctx, d, src, rng, &st); err != nil {
		return st, fmt.Errorf("refresh %s: %w", ref, err)
	}
	return st, nil
}

func refresh(ctx context.Context, d Deps, src *config.Source, rng Range, st *RefreshStats) error {
	j, err := newJob(d, src)
	if err != nil {
		return err
	}
	var tc colPlan
	if !rng.Full() {
		if tc, err = j.rangeColumn(); err != nil {
			return err
		}
	}
	live, err := j.snapshot(ctx)
	if err != nil {
		return err
	}
	if live == nil {
		return errors.New("the table has no commits yet: nothing to refresh (run medallion run first)")
	}
	qlive, err := layers.SnapshotOrNil(ctx, j.qtable)
	if err != nil {
		return fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	if legacyQuarantine(qlive) != nil {
		return errors.New("bronze._quarantine still has the old column name \"column\": run medallion replay --migrate first")
	}
	// A replay killed between its two commits is finished first: its
	// quarantine rows are found by the batch ids the refresh rewrites.
	if pending, err := j.interruptedReplays(ctx, live); err != nil {
		return err
	} else if len(pending) > 0 {
		return fmt.Errorf("replay %s stopped between its bronze and quarantine commits: run medallion replay bronze.%s to finish it, then refresh", pending[0].id, src.Name)
	}
	consumed, err := j.consumedObjects(ctx, live)
	if err != nil {
		return err
	}
	st.Objects = len(consumed)

	// The shadow: a job of its own, writing to the shadow tables.
	shelf := j.table.Key(refreshShelf)
	shadowDir := j.table.Dir() + "/" + refreshShelf + fmt.Sprintf("%020d", live.Version)
	dropOtherShadows(ctx, j, shelf, shadowDir+"/")
	sj, err := newJob(d, src)
	if err != nil {
		return err
	}
	opts, err := sj.d.tableOptions()
	if err != nil {
		return err
	}
	sj.table, _ = delta.OpenWith(d.Store, shadowDir, opts)
	sj.qtable, _ = delta.OpenWith(d.Store, shadowDir+"/_quarantine", opts)
	conn, done, err := sj.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := sj.typeInto(ctx, conn, consumed); err != nil {
		return err
	}
	shadow, err := sj.snapshot(ctx)
	if err != nil {
		return err
	}
	if err := j.d.CrashPoint(PointRefreshShadowed); err != nil {
		return err
	}
	qshadow, err := layers.SnapshotOrNil(ctx, sj.qtable)
	if err != nil {
		return fmt.Errorf("read %s: %w", sj.qtable.Dir(), err)
	}
	app := RefreshAppID(src.Name, live.Version)
	if !rng.Full() {
		return j.refreshRange(ctx, conn, live, shadow, qshadow, sj, tc, rng, app, st)
	}

	// 1. bronze._quarantine: the source's partition replaced.
	if err := j.refreshQuarantine(ctx, qshadow, sj.qtable, app, st); err != nil {
		return err
	}
	if err := j.d.CrashPoint(PointRefreshQuarantined); err != nil {
		return err
	}

	// 2. bronze: every file replaced.
	now := j.d.Now().UnixMilli()
	c := delta.Commit{Read: live, Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: now}}}
	for _, f := range live.Files {
		c.Removes = append(c.Removes, f.Remove(now, true))
	}
	if shadow != nil {
		if err := copyFiles(ctx, d.Store, sj.table, j.table, shadow.Files); err != nil {
			return err
		}
		c.Adds = shadow.Files
		if shadow.Metadata.SchemaString != live.Metadata.SchemaString || !sameStrings(shadow.Metadata.PartitionColumns, live.Metadata.PartitionColumns) {
			m := live.Metadata
			m.SchemaString, m.PartitionColumns = shadow.Metadata.SchemaString, shadow.Metadata.PartitionColumns
			c.Metadata = &m
		}
	}
	st.RowsRemoved, st.RowsAdded = rowsOf(live.Files), rowsOf(c.Adds)
	c.Info = refreshInfo(st, rng, src.Name, live.Version, len(c.Removes), len(c.Adds))
	s, err := j.table.Commit(ctx, live, c)
	if err != nil {
		return fmt.Errorf("commit %s: %w", j.table.Dir(), err)
	}
	st.Version = s.Version
	j.log.Info("bronze: refreshed", "version", s.Version, "objects", st.Objects, "rows_removed", st.RowsRemoved, "rows_added", st.RowsAdded)
	deleteUnder(ctx, j, shadowDir+"/")
	return nil
}

// refreshRange swaps the rows of rng in: the source's quarantine rows,
// then bronze's, each in one commit with txn app.
func (j *job) refreshRange(ctx context.Context, conn *sql.Conn, live, shadow, qshadow *delta.Snapshot, sj *job, tc colPlan, rng Range, app string, st *RefreshStats) error {
	if shadow != nil && shadow.Metadata.SchemaString != live.Metadata.SchemaString {
		return errors.New("the pipeline file changes the table's columns: a range refresh cannot change columns; refresh the whole table (no --from/--to)")
	}
	dir, err := os.MkdirTemp(j.d.ScratchDir, "bronze-refresh-")
	if err != nil {
		return fmt.Errorf("scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := j.refreshQuarantineRange(ctx, conn, qshadow, sj.qtable, tc, rng, app, dir, st); err != nil {
		return err
	}
	if err := j.d.CrashPoint(PointRefreshQuarantined); err != nil {
		return err
	}
	if err := j.refreshBronzeRange(ctx, conn, live, shadow, sj.table, rng, app, dir, st); err != nil {
		return err
	}
	if st.Version < 0 {
		st.Version = live.Version
	}
	j.log.Info("bronze: refreshed", "version", st.Version, "range", rng.String(), "objects", st.Objects, "rows_removed", st.RowsRemoved, "rows_added", st.RowsAdded)
	deleteUnder(ctx, j, sj.table.Dir()+"/")
	return nil
}

// consumedObjects returns the manifests of the raw objects snap records
// as promoted, in the order a run picks them (received time, then key):
// those whose txn is in snap, and, since txns expire (txn_retention), those
// landed (raw.IndexEntry) before the table's discovery cursor.
func (j *job) consumedObjects(ctx context.Context, snap *delta.Snapshot) ([]manifest, error) {
	shas, err := listManifests(ctx, j.d.Store, j.src.Name)
	if err != nil {
		return nil, fmt.Errorf("list the manifests of source %s: %w", j.src.Name, err)
	}
	cursor, hasCursor := Cursor(snap, j.src.Name)
	var entries map[string][]raw.IndexEntry
	if hasCursor {
		list, err := raw.ListIndex(ctx, j.d.Store, j.src.Name, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("list the landing index of source %s: %w", j.src.Name, err)
		}
		entries = map[string][]raw.IndexEntry{}
		for _, e := range list {
			entries[e.SHA256] = append(entries[e.SHA256], e)
		}
	}
	var out []manifest
	for _, sha := range shas {
		_, took := snap.TxnVersion(RawAppID(j.src.Name, sha))
		if !took && !hasCursor {
			continue
		}
		m, err := readManifest(ctx, j.d.Store, j.src.Name, sha)
		if err != nil {
			return nil, err
		}
		if !took {
			es := entries[sha]
			if len(es) == 0 {
				es = []raw.IndexEntry{raw.LegacyEntry(m.Manifest)}
			}
			for _, e := range es {
				if e.Lands(m.Manifest) && (cursor.IsZero() && e.Key == "" || e.Stamp.Before(cursor)) {
					took = true
				}
			}
		}
		if took {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].ReceivedAt.Equal(out[b].ReceivedAt) {
			return out[a].ReceivedAt.Before(out[b].ReceivedAt)
		}
		return out[a].Key < out[b].Key
	})
	return out, nil
}

// typeInto promotes the objects ms into the job's (shadow) tables batch by
// batch, as a run does, skipping those they already hold (a rerun).
func (j *job) typeInto(ctx context.Context, conn *sql.Conn, ms []manifest) error {
	snap, err := j.snapshot(ctx)
	if err != nil {
		return err
	}
	read := snap
	if read == nil {
		read = delta.EmptySnapshot()
	}
	var todo []manifest
	for _, m := range ms {
		if _, ok := read.TxnVersion(RawAppID(j.src.Name, m.SHA256)); !ok {
			todo = append(todo, m)
		}
	}
	defer func() {
		if j.fetchDir != "" {
			os.RemoveAll(j.fetchDir)
			j.fetchDir = ""
		}
	}()
	for _, batch := range j.batches(todo) {
		ready, err := j.fetchObjects(ctx, batch)
		if err != nil {
			return fmt.Errorf("the raw objects the table consumed must still be in the lake: %w", err)
		}
		_, v, err := j.runBatch(ctx, conn, ready, read)
		j.releaseObjects()
		if err != nil {
			return err
		}
		if read, err = j.table.SnapshotAt(ctx, v); err != nil {
			return fmt.Errorf("read %s: %w", j.table.Dir(), err)
		}
	}
	return nil
}

// refreshQuarantine replaces the source's partition of bronze._quarantine
// by the shadow quarantine's files in one commit with txn app, unless a
// commit with app is there already (a rerun).
func (j *job) refreshQuarantine(ctx context.Context, qshadow *delta.Snapshot, shadowT *delta.Table, app string, st *RefreshStats) error {
	return layers.RetryConflicts(ctx, j.log, "bronze._quarantine", func(int) error {
		qlive, err := layers.SnapshotOrNil(ctx, j.qtable)
		if err != nil {
			return fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
		}
		var adds []delta.Add
		if qshadow != nil {
			adds = qshadow.Files
		}
		if qlive != nil {
			if _, done := qlive.TxnVersion(app); done {
				return nil
			}
		}
		if qlive == nil && len(adds) == 0 {
			return nil
		}
		if qlive == nil {
			if qlive, err = j.createQuarantineAs(ctx, qshadow.Metadata); err != nil {
				return err
			}
		}
		now := j.d.Now().UnixMilli()
		c := delta.Commit{Read: qlive, Adds: adds, Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: now}}}
		var old []delta.Add
		for _, f := range qlive.Files {
			if v, ok := f.PartitionValues.Value("source"); ok && v == j.src.Name {
				old = append(old, f)
				c.Removes = append(c.Removes, f.Remove(now, true))
			}
		}
		if err := copyFiles(ctx, j.d.Store, shadowT, j.qtable, adds); err != nil {
			return err
		}
		st.QuarantineRemoved, st.QuarantineAdded = rowsOf(old), rowsOf(adds)
		c.Info = delta.CommitInfo{Operation: OpRefresh, OperationParameters: map[string]any{"source": j.src.Name},
			OperationMetrics: map[string]string{"numRemovedFiles": strconv.Itoa(len(old)), "numAddedFiles": strconv.Itoa(len(adds)),
				"numRemovedRows": strconv.FormatInt(st.QuarantineRemoved, 10), "numOutputRows": strconv.FormatInt(st.QuarantineAdded, 10)},
			Medallion: map[string]any{"job": "bronze", "source": j.src.Name, "refresh": "full"}}
		if _, err := j.qtable.Commit(ctx, qlive, c); err != nil {
			if errors.Is(err, delta.ErrTxnApplied) {
				return nil
			}
			return fmt.Errorf("commit %s: %w", j.qtable.Dir(), err)
		}
		return nil
	})
}

// copyFiles copies the data files files of table from to the same paths
// under table to.
func copyFiles(ctx context.Context, s lake.Store, from, to *delta.Table, files []delta.Add) error {
	for _, f := range files {
		rc, info, err := s.Get(ctx, from.Key(f.Path))
		if err != nil {
			return fmt.Errorf("read %s: %w", from.Key(f.Path), err)
		}
		_, err = s.Put(ctx, to.Key(f.Path), rc, info.Size)
		rc.Close()
		if err != nil {
			return fmt.Errorf("write %s: %w", to.Key(f.Path), err)
		}
	}
	return nil
}

// rowsOf sums the row counts of files' statistics.
func rowsOf(files []delta.Add) int64 {
	n, _ := delta.NumRecords(files)
	return n
}

// dropOtherShadows deletes the shadow tables under shelf other than keep:
// those of refreshes interrupted and never rerun before the table moved on
// (best effort).
func dropOtherShadows(ctx context.Context, j *job, shelf, keep string) {
	objs, err := j.d.Store.List(ctx, shelf, "")
	if err != nil {
		j.log.Warn("bronze: list old refresh shadow tables", "prefix", shelf, "err", err)
		return
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, keep) {
			if err := j.d.Store.Delete(ctx, o.Key); err != nil {
				j.log.Warn("bronze: delete an old refresh shadow table", "key", o.Key, "err", err)
			}
		}
	}
}

// deleteUnder deletes every object under prefix (best effort).
func deleteUnder(ctx context.Context, j *job, prefix string) {
	dropOtherShadows(ctx, j, prefix, "\x00")
}

// Range bounds a bronze refresh: the rows whose event time (the source's
// first timestamp column, the one the default partition is taken from)
// lies in [From, To).
type Range = layers.TimeRange

// rangeColumn returns the plan of the column a range refresh selects rows
// by, or an error saying why the source cannot be refreshed by range.
func (j *job) rangeColumn() (colPlan, error) {
	if f := strings.ToLower(j.src.Format); f != "" && f != "ndjson" {
		return colPlan{}, fmt.Errorf("a range refresh reads the event time of quarantined rows from their raw JSON text: source %s is %s; refresh the whole table (no --from/--to)", j.src.Name, j.src.Format)
	}
	if j.plan.firstTS == "" {
		return colPlan{}, fmt.Errorf("source %s has no timestamp column to select a range by; refresh the whole table (no --from/--to)", j.src.Name)
	}
	if strings.EqualFold(j.plan.partCol, j.plan.firstTS) {
		return colPlan{}, fmt.Errorf("source %s is partitioned by its timestamp column %s: a range refresh is not supported; refresh the whole table (no --from/--to)", j.src.Name, j.plan.firstTS)
	}
	for _, c := range j.plan.cols {
		if c.name == j.plan.firstTS {
			return c, nil
		}
	}
	return colPlan{}, fmt.Errorf("source %s: timestamp column %s is derived: a range refresh is not supported; refresh the whole table (no --from/--to)", j.src.Name, j.plan.firstTS)
}

// dataScan reads the data files files of table t (local copies) with the
// partition column filled from their partition values and each row's
// local file name (filename); byLocal maps those names to the files.
func (j *job) dataScan(ctx context.Context, t *delta.Table, version int64, files []delta.Add) (scan string, byLocal map[string]delta.Add, err error) {
	pc, pt := j.plan.partCol, j.plan.partType
	if pt == "" {
		pt = "VARCHAR"
		for _, c := range j.plan.cols {
			if strings.EqualFold(c.name, pc) {
				pt = c.sqlType
			}
		}
	}
	byLocal = map[string]delta.Add{}
	var parts []string
	for _, f := range files {
		p, err := j.existingFile(ctx, t.Key(f.Path))
		if err != nil {
			return "", nil, fmt.Errorf("read %s: %w", t.Key(f.Path), err)
		}
		if err := delta.CheckLocalFile(t.Dir(), version, f, p); err != nil {
			return "", nil, err
		}
		byLocal[p] = f
		sel := "SELECT *"
		if pc != "" {
			v := "NULL"
			if s, ok := f.PartitionValues.Value(pc); ok && f.PartitionValues[pc] != nil {
				v = warehouse.QuoteString(s)
			}
			sel += ", CAST(" + v + " AS " + pt + ") AS " + warehouse.QuoteIdent(pc)
		}
		parts = append(parts, sel+" FROM read_parquet("+warehouse.QuoteString(p)+", filename = true, hive_partitioning = false)")
	}
	if len(parts) == 0 {
		return "", byLocal, nil
	}
	return "(" + strings.Join(parts, " UNION ALL BY NAME ") + ")", byLocal, nil
}

// filesWhere returns the files of scan (a dataScan or quarantineScan) that
// hold a row for which cond holds.
func filesWhere(ctx context.Context, conn *sql.Conn, scan, cond string, byLocal map[string]delta.Add) ([]delta.Add, error) {
	if scan == "" {
		return nil, nil
	}
	res, err := conn.QueryContext(ctx, "SELECT DISTINCT filename FROM "+scan+" WHERE "+cond+" ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("find the files holding rows of the range: %w", err)
	}
	defer res.Close()
	var out []delta.Add
	for res.Next() {
		var fn string
		if err := res.Scan(&fn); err != nil {
			return nil, err
		}
		f, ok := byLocal[fn]
		if !ok {
			return nil, fmt.Errorf("file %s is not one of the table's (a bug)", fn)
		}
		out = append(out, f)
	}
	return out, res.Err()
}

// count returns the rows of scan for which cond holds (0 for no scan).
func count(ctx context.Context, conn *sql.Conn, scan, cond string) (int64, error) {
	if scan == "" {
		return 0, nil
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+scan+" WHERE "+cond).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of the range: %w", err)
	}
	return n, nil
}

// fieldList is the quoted names of schema's fields, comma separated.
func fieldList(schema *delta.Schema) string {
	var cols []string
	for _, f := range schema.Fields {
		cols = append(cols, warehouse.QuoteIdent(f.Name))
	}
	return strings.Join(cols, ", ")
}

// refreshBronzeRange replaces, in one commit with txn app, the rows of live
// in rng by the shadow's: the live files holding rows of the range are
// rewritten with their rows outside it and the shadow's rows inside it
// whose dedupe key no row kept outside the range has.
func (j *job) refreshBronzeRange(ctx context.Context, conn *sql.Conn, live, shadow *delta.Snapshot, shadowT *delta.Table, rng Range, app, dir string, st *RefreshStats) error {
	schema, err := live.Schema()
	if err != nil {
		return fmt.Errorf("read %s: %w", j.table.Dir(), err)
	}
	in := rng.Cond(warehouse.QuoteIdent(j.plan.firstTS))
	liveScan, byLocal, err := j.dataScan(ctx, j.table, live.Version, live.Files)
	if err != nil {
		return err
	}
	var shadowScan string
	if shadow != nil {
		if shadowScan, _, err = j.dataScan(ctx, shadowT, shadow.Version, shadow.Files); err != nil {
			return err
		}
	}
	affected, err := filesWhere(ctx, conn, liveScan, in, byLocal)
	if err != nil {
		return err
	}
	if st.RowsRemoved, err = count(ctx, conn, liveScan, in); err != nil {
		return err
	}
	var sels []string
	if len(affected) > 0 {
		names := make([]string, 0, len(affected))
		for l, f := range byLocal {
			for _, a := range affected {
				if a.Path == f.Path {
					names = append(names, warehouse.QuoteString(l))
				}
			}
		}
		sels = append(sels, "SELECT "+fieldList(schema)+" FROM "+liveScan+" WHERE filename IN ("+strings.Join(names, ", ")+") AND NOT "+in)
	}
	if shadowScan != "" {
		cond := in
		if len(j.src.Dedupe) > 0 && liveScan != "" {
			var on []string
			for _, k := range j.src.Dedupe {
				on = append(on, "k."+warehouse.QuoteIdent(k)+" IS NOT DISTINCT FROM s."+warehouse.QuoteIdent(k))
			}
			cond += " AND NOT EXISTS (SELECT 1 FROM " + liveScan + " k WHERE NOT " + strings.ReplaceAll(in, warehouse.QuoteIdent(j.plan.firstTS), "k."+warehouse.QuoteIdent(j.plan.firstTS)) +
				" AND " + strings.Join(on, " AND ") + ")"
		}
		if st.RowsAdded, err = count(ctx, conn, shadowScan+" s", cond); err != nil {
			return err
		}
		sels = append(sels, "SELECT "+fieldList(schema)+" FROM "+shadowScan+" s WHERE "+cond)
	}
	if len(affected) == 0 && st.RowsAdded == 0 {
		return nil
	}
	var adds []delta.Add
	if len(sels) > 0 {
		out := filepath.Join(dir, "bronze-range")
		if adds, err = j.writeParquet(ctx, conn, strings.Join(sels, " UNION ALL BY NAME "), out, j.plan.partCol, schema); err != nil {
			return fmt.Errorf("write the refreshed rows: %w", err)
		}
		if err := j.upload(ctx, j.table.Dir(), out, adds); err != nil {
			return err
		}
	}
	now := j.d.Now().UnixMilli()
	c := delta.Commit{Read: live, Adds: adds, Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: now}}}
	for _, f := range affected {
		c.Removes = append(c.Removes, f.Remove(now, true))
	}
	c.Info = refreshInfo(st, rng, j.src.Name, live.Version, len(c.Removes), len(c.Adds))
	s, err := j.table.Commit(ctx, live, c)
	if err != nil {
		return fmt.Errorf("commit %s: %w", j.table.Dir(), err)
	}
	st.Version = s.Version
	return nil
}

// refreshInfo is the commit info of a bronze refresh commit.
func refreshInfo(st *RefreshStats, rng Range, source string, from int64, removed, added int) delta.CommitInfo {
	params := map[string]any{"table": st.Table, "range": rng.String()}
	if !rng.From.IsZero() {
		params["from"] = rng.From.UTC().Format(time.RFC3339)
	}
	if !rng.To.IsZero() {
		params["to"] = rng.To.UTC().Format(time.RFC3339)
	}
	return delta.CommitInfo{
		Operation:           OpRefresh,
		OperationParameters: params,
		OperationMetrics: map[string]string{
			"numObjects":      strconv.Itoa(st.Objects),
			"numRemovedRows":  strconv.FormatInt(st.RowsRemoved, 10),
			"numOutputRows":   strconv.FormatInt(st.RowsAdded, 10),
			"numRemovedFiles": strconv.Itoa(removed),
			"numAddedFiles":   strconv.Itoa(added),
		},
		Medallion: map[string]any{"job": "bronze", "source": source, "refresh": rng.String(), "refreshed_from": from},
	}
}

// refreshQuarantineRange replaces, in one commit with txn app, the
// source's quarantine rows in rng (by the event time read from their raw
// JSON with the current rules; a row without one is outside every range)
// by the shadow quarantine's rows in rng, rewriting the files holding them
// with their other rows.
func (j *job) refreshQuarantineRange(ctx context.Context, conn *sql.Conn, qshadow *delta.Snapshot, shadowT *delta.Table, tc colPlan, rng Range, app, dir string, st *RefreshStats) error {
	v := "CASE WHEN json_valid(raw) THEN json_extract_string(raw, " + warehouse.QuoteString("$."+strconv.Quote(tc.srcName)) + ") END"
	in := rng.Cond(tc.castExpr(tc.valueExpr(v)))
	return layers.RetryConflicts(ctx, j.log, "bronze._quarantine", func(attempt int) error {
		qlive, err := layers.SnapshotOrNil(ctx, j.qtable)
		if err != nil {
			return fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
		}
		if qlive != nil {
			if _, done := qlive.TxnVersion(app); done {
				return nil
			}
		}
		var liveScan, shadowScan string
		byLocal := map[string]delta.Add{}
		if qlive != nil {
			files, paths, err := j.quarantineFiles(ctx, qlive)
			if err != nil {
				return err
			}
			live := map[string]delta.Add{}
			for _, f := range qlive.Files {
				live[f.Path] = f
			}
			for l, p := range paths {
				byLocal[l] = live[p]
			}
			if len(files) > 0 {
				liveScan = quarantineScan(files)
			}
		}
		if qshadow != nil && len(qshadow.Files) > 0 {
			var files []string
			for _, f := range qshadow.Files {
				p, err := j.existingFile(ctx, shadowT.Key(f.Path))
				if err != nil {
					return fmt.Errorf("read %s: %w", shadowT.Key(f.Path), err)
				}
				files = append(files, p)
			}
			shadowScan = quarantineScan(files)
		}
		affected, err := filesWhere(ctx, conn, liveScan, in, byLocal)
		if err != nil {
			return err
		}
		if st.QuarantineRemoved, err = count(ctx, conn, liveScan, in); err != nil {
			return err
		}
		if st.QuarantineAdded, err = count(ctx, conn, shadowScan, in); err != nil {
			return err
		}
		if len(affected) == 0 && st.QuarantineAdded == 0 {
			return nil
		}
		if qlive == nil {
			if qlive, err = j.createQuarantineAs(ctx, qshadow.Metadata); err != nil {
				return err
			}
		}
		schema, err := qlive.Schema()
		if err != nil {
			return fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
		}
		var cols []string
		for _, f := range schema.Fields {
			if f.Name == "source" {
				cols = append(cols, warehouse.QuoteString(j.src.Name)+" AS source")
			} else {
				cols = append(cols, warehouse.QuoteIdent(f.Name))
			}
		}
		sel := strings.Join(cols, ", ")
		var sels []string
		if len(affected) > 0 {
			var names []string
			for l, f := range byLocal {
				for _, a := range affected {
					if a.Path == f.Path {
						names = append(names, warehouse.QuoteString(l))
					}
				}
			}
			sels = append(sels, "SELECT "+sel+" FROM "+liveScan+" WHERE filename IN ("+strings.Join(names, ", ")+") AND NOT "+in)
		}
		if shadowScan != "" {
			sels = append(sels, "SELECT "+sel+" FROM "+shadowScan+" WHERE "+in)
		}
		out := filepath.Join(dir, fmt.Sprintf("quarantine-range-%d", attempt))
		adds, err := j.writeParquet(ctx, conn, strings.Join(sels, " UNION ALL BY NAME "), out, "source", schema)
		if err != nil {
			return fmt.Errorf("write the refreshed quarantine rows: %w", err)
		}
		if err := j.upload(ctx, j.qtable.Dir(), out, adds); err != nil {
			return err
		}
		now := j.d.Now().UnixMilli()
		c := delta.Commit{Read: qlive, Adds: adds, Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: now}}}
		for _, f := range affected {
			c.Removes = append(c.Removes, f.Remove(now, true))
		}
		c.Info = delta.CommitInfo{Operation: OpRefresh, OperationParameters: map[string]any{"source": j.src.Name, "range": rng.String()},
			OperationMetrics: map[string]string{"numRemovedFiles": strconv.Itoa(len(c.Removes)), "numAddedFiles": strconv.Itoa(len(adds)),
				"numRemovedRows": strconv.FormatInt(st.QuarantineRemoved, 10), "numOutputRows": strconv.FormatInt(st.QuarantineAdded, 10)},
			Medallion: map[string]any{"job": "bronze", "source": j.src.Name, "refresh": rng.String()}}
		if _, err := j.qtable.Commit(ctx, qlive, c); err != nil {
			if errors.Is(err, delta.ErrTxnApplied) {
				return nil
			}
			return fmt.Errorf("commit %s: %w", j.qtable.Dir(), err)
		}
		return nil
	})
}

// createQuarantineAs creates bronze._quarantine, missing from the lake, with
// the shadow quarantine's metadata. Another runner creating it first is a
// commit conflict: the refresh starts over on the table as it now is.
func (j *job) createQuarantineAs(ctx context.Context, meta delta.Metadata) (*delta.Snapshot, error) {
	s, err := j.qtable.Create(ctx, meta, delta.CommitInfo{Operation: "CREATE TABLE", Medallion: map[string]any{"job": "bronze"}})
	if errors.Is(err, delta.ErrTableExists) {
		return nil, delta.ErrCommitConflict
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", j.qtable.Dir(), err)
	}
	return s, nil
}
