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
	"sort"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
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
	Objects           int   // raw objects typed again
	RowsRemoved       int64 // rows of the live table replaced
	RowsAdded         int64 // rows written in their place
	QuarantineRemoved int64 // quarantine rows of the source replaced
	QuarantineAdded   int64 // quarantine rows written in their place
	Version           int64 // bronze version of the refresh commit (-1: none)
}

// String is the one-line summary `medallion refresh` prints.
func (s RefreshStats) String() string {
	return fmt.Sprintf("%s: refreshed full from %d raw objects: %d rows replaced by %d, %d quarantined rows replaced by %d (v%d)",
		s.Table, s.Objects, s.RowsRemoved, s.RowsAdded, s.QuarantineRemoved, s.QuarantineAdded, s.Version)
}

// Refresh types every raw object bronze.<src> has consumed again with the
// current rules and replaces the table's rows and the source's quarantine
// rows by the result (see the comment at the top of refresh.go). The caller
// holds the table's lease (jobs.TableLease).
func Refresh(ctx context.Context, d Deps, src *config.Source) (RefreshStats, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: src.Name}
	st := RefreshStats{Table: ref.String(), Version: -1}
	if d.Store == nil || d.DB == nil {
		return st, errors.New("bronze refresh: missing store or database")
	}
	if err := refresh(ctx, d, src, &st); err != nil {
		return st, fmt.Errorf("refresh %s: %w", ref, err)
	}
	return st, nil
}

func refresh(ctx context.Context, d Deps, src *config.Source, st *RefreshStats) error {
	j, err := newJob(d, src)
	if err != nil {
		return err
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
	c.Info = delta.CommitInfo{
		Operation:           OpRefresh,
		OperationParameters: map[string]any{"table": st.Table, "range": "full"},
		OperationMetrics: map[string]string{
			"numObjects":      strconv.Itoa(st.Objects),
			"numRemovedRows":  strconv.FormatInt(st.RowsRemoved, 10),
			"numOutputRows":   strconv.FormatInt(st.RowsAdded, 10),
			"numRemovedFiles": strconv.Itoa(len(c.Removes)),
			"numAddedFiles":   strconv.Itoa(len(c.Adds)),
		},
		Medallion: map[string]any{"job": "bronze", "source": src.Name, "refresh": "full", "refreshed_from": live.Version},
	}
	s, err := j.table.Commit(ctx, live, c)
	if err != nil {
		return fmt.Errorf("commit %s: %w", j.table.Dir(), err)
	}
	st.Version = s.Version
	j.log.Info("bronze: refreshed", "version", s.Version, "objects", st.Objects, "rows_removed", st.RowsRemoved, "rows_added", st.RowsAdded)
	deleteUnder(ctx, j, shadowDir+"/")
	return nil
}

// consumedObjects returns the manifests of the raw objects snap records
// as promoted, in the order a run picks them (received time, then key).
func (j *job) consumedObjects(ctx context.Context, snap *delta.Snapshot) ([]manifest, error) {
	shas, err := listManifests(ctx, j.d.Store, j.src.Name)
	if err != nil {
		return nil, fmt.Errorf("list the manifests of source %s: %w", j.src.Name, err)
	}
	var out []manifest
	for _, sha := range shas {
		if _, ok := snap.TxnVersion(RawAppID(j.src.Name, sha)); !ok {
			continue
		}
		m, err := readManifest(ctx, j.d.Store, j.src.Name, sha)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
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
			s, err := j.qtable.Create(ctx, qshadow.Metadata, delta.CommitInfo{Operation: "CREATE TABLE", Medallion: map[string]any{"job": "bronze"}})
			if errors.Is(err, delta.ErrTableExists) {
				return delta.ErrCommitConflict
			}
			if err != nil {
				return fmt.Errorf("create %s: %w", j.qtable.Dir(), err)
			}
			qlive = s
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
