package silver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Range bounds what a refresh replaces: the windows whose window_start
// lies in [From, To).
type Range = layers.TimeRange

// overlaps reports whether a file whose Delta statistics say window_start
// lies in [lo, hi] (µs) may hold rows of the range; a file without
// statistics may.
func overlaps(r Range, stats string) bool {
	lo, hi, ok := windowStartRange(stats)
	if !ok {
		return true
	}
	if !r.From.IsZero() && hi < r.From.UnixMicro() {
		return false
	}
	if !r.To.IsZero() && lo >= r.To.UnixMicro() {
		return false
	}
	return true
}

// Crash points of a refresh, passed to Env.Crash.
const (
	PointRefreshReplayed      = "refresh-replayed"       // shadow table rebuilt, nothing of the live tables changed
	PointRefreshLateCommitted = "refresh-late-committed" // silver._late replaced, silver not yet
)

// Keys of the medallion map of a refresh commit.
const (
	mBatches     = "batches" // the bronze versions every batch read up to, oldest first
	mRefresh     = "refresh" // the range refreshed
	opRefresh    = "REFRESH"
	refreshShelf = "_refresh/" // under the table directory: the shadow tables of refreshes
)

// RefreshStats describes one refresh of a silver table.
type RefreshStats struct {
	Table        string // silver.<name>
	Range        Range
	Batches      int    // batches replayed
	Rebuilt      bool   // rebuilt from scratch in one batch over bronze refreshed, replayed or with columns changed since the table's first batch
	RebuiltWhy   string // when Rebuilt: the bronze commit that made it, e.g. "bronze.meters REPLAY at v2"
	RowsRemoved  int64  // rows of the live table replaced
	RowsAdded    int64  // rows written in their place
	LateReplaced int64  // rows of silver._late replaced
	LateAdded    int64  // late rows written in their place
	Version      int64  // silver version of the refresh commit
}

// String is the one-line summary `medallion refresh` prints.
func (s RefreshStats) String() string {
	if s.Rebuilt {
		return fmt.Sprintf("%s: rebuilt %s in one batch over bronze as it is now (%s, after the table's first batch): %d rows replaced by %d, %d late rows replaced by %d (v%d)",
			s.Table, s.Range, s.RebuiltWhy, s.RowsRemoved, s.RowsAdded, s.LateReplaced, s.LateAdded, s.Version)
	}
	return fmt.Sprintf("%s: refreshed %s from %d batches: %d rows replaced by %d, %d late rows replaced by %d (v%d)",
		s.Table, s.Range, s.Batches, s.RowsRemoved, s.RowsAdded, s.LateReplaced, s.LateAdded, s.Version)
}

// Refresh recomputes the silver table cfg, or the windows of it whose
// window_start lies in r, from bronze through the code of an incremental
// run: it replays, into a shadow table under silver/<name>/_refresh/, every
// batch the table's history records (the same bronze versions, so the same
// rows are late and the same windows final), then replaces the live rows of
// the range by the shadow's in one commit (operation REFRESH), with the
// watermark, state and consumed bronze version of the replay. The late rows
// of the table in the range are replaced in silver._late first, in one
// commit of that table. On unchanged bronze the table comes out as it was.
//
// Refresh is safe to rerun after a crash at any point: the shadow table is
// named by the live table's version, so a rerun resumes the replay, and a
// rerun after the late commit rewrites the same rows. The caller holds the
// table's lease (jobs.TableLease) so that no incremental run interleaves;
// if one commits anyway, the refresh commit fails with
// delta.ErrCommitConflict and nothing of silver changed.
func Refresh(ctx context.Context, deps Deps, cfg *config.Silver, r Range) (RefreshStats, error) {
	st := RefreshStats{Table: "silver." + cfg.Name, Range: r, Version: -1}
	if deps.Store == nil || deps.DB == nil {
		return st, errors.New("silver: Deps needs Store and DB")
	}
	deps.Env = deps.WithDefaults()
	err := refresh(ctx, deps, cfg, r, &st)
	if err != nil {
		return st, fmt.Errorf("silver.%s: refresh: %w", cfg.Name, err)
	}
	return st, nil
}

func refresh(ctx context.Context, deps Deps, cfg *config.Silver, r Range, st *RefreshStats) error {
	name := cfg.Name
	dir := layers.TableRef{Layer: layers.Silver, Name: name}.Dir()
	liveT := delta.Open(deps.Store, dir)
	live, err := layers.SnapshotOrNil(ctx, liveT)
	if err != nil {
		return err
	}
	appID := AppID(name)
	consumed, ok := int64(-1), false
	if live != nil {
		consumed, ok = live.TxnVersion(appID)
	}
	if !ok {
		return fmt.Errorf("the table has not consumed any bronze data yet: nothing to refresh (run medallion run first)")
	}
	lateT := delta.Open(deps.Store, layers.Late().Dir())
	if ls, err := layers.SnapshotOrNil(ctx, lateT); err != nil {
		return err
	} else if ls != nil {
		if v, ok := ls.TxnVersion(appID); ok && v > consumed {
			return fmt.Errorf("a run of the table stopped after committing its late rows (bronze version %d): run medallion run silver.%s to finish it, then refresh", v, name)
		}
	}
	batches, err := recordedBatches(ctx, liveT)
	if err != nil {
		return err
	}
	if len(batches) == 0 || batches[len(batches)-1] != consumed {
		return fmt.Errorf("the table's history does not record its batches up to bronze version %d (log entries cleaned up?): delete %s/ and run medallion run to rebuild it", consumed, dir)
	}
	// A bronze refresh replaced the rows the batches before it read: replay
	// them and the table would read rows that are no longer bronze's. A
	// bronze column renamed or retyped since: the earlier versions' files
	// have the old column, which the pipeline file no longer names. A
	// bronze replay added rows (fixed quarantined ones) whose event times
	// lie behind the watermark of the batch that read them: replayed, that
	// batch counts them late again, and a user who fixed the rows expects
	// the refresh to count them. Such a table is rebuilt from scratch over
	// bronze as it is now, in one batch (lateness is then judged over that
	// single pass).
	if why, latest, err := bronzeRewrittenSince(ctx, deps, cfg.From, batches[0]); err != nil {
		return err
	} else if why != "" {
		batches, consumed = []int64{latest}, latest
		st.Rebuilt, st.RebuiltWhy = true, why
	}
	st.Batches = len(batches)

	// Replay every batch into the shadow table.
	id := batchID(live.Version)
	shadow := place{dir: dir + "/" + refreshShelf + id, upTo: -1}
	shadow.lateDir = shadow.dir + "/_late"
	shadow.stateDir = shadow.dir + "/_state/"
	shadowT := delta.Open(deps.Store, shadow.dir)
	dropOtherShadows(ctx, deps, dir+"/"+refreshShelf, shadow.dir+"/")
	done := int64(-1)
	if s, err := layers.SnapshotOrNil(ctx, shadowT); err != nil {
		return err
	} else if s != nil {
		if v, ok := s.TxnVersion(appID); ok {
			done = v
		}
	}
	for _, b := range batches {
		if b <= done {
			continue
		}
		pl := shadow
		pl.upTo = b
		if _, err := runAt(ctx, deps, cfg, pl); err != nil {
			return fmt.Errorf("replay the batch up to bronze version %d: %w", b, err)
		}
	}
	ss, err := shadowT.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("shadow table: %w", err)
	}
	if v, _ := ss.TxnVersion(appID); v != consumed {
		return fmt.Errorf("the replay stopped at bronze version %d, not %d", v, consumed)
	}
	prog, err := readProgress(ctx, shadowT, ss.Version, consumed)
	if err != nil {
		return err
	}
	if err := deps.CrashPoint(PointRefreshReplayed); err != nil {
		return err
	}

	sp, err := newSpec(cfg)
	if err != nil {
		return err
	}
	j := &job{deps: deps, sp: sp, now: deps.Now, log: deps.Log.With("table", "silver."+name)}
	if j.scratch, err = os.MkdirTemp(deps.ScratchDir, "silver-refresh-"+name+"-"); err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(j.scratch)
	cache := deps.LocalFiles(filepath.Join(j.scratch, "objects"))
	j.materialize = func(ctx context.Context, key string) (string, error) { return cache.Path(ctx, deps.Store, key, "") }
	if j.conn, err = deps.DB.Conn(ctx); err != nil {
		return fmt.Errorf("duckdb connection: %w", err)
	}
	defer func() {
		j.dropTemps(context.WithoutCancel(ctx))
		j.conn.Close()
	}()

	// Columns: a range refresh keeps the table's; a full one may change them.
	var meta *delta.Metadata
	have, err := live.Schema()
	if err != nil {
		return err
	}
	want, err := ss.Schema()
	if err != nil {
		return err
	}
	if have.String() != want.String() {
		if changes := layers.DiffColumns(have, want, nil); len(changes) > 0 && !r.Full() {
			return fmt.Errorf("the pipeline file changes the table's columns (%s): a range refresh cannot change columns; refresh the whole table (no --from/--to)",
				layers.DescribeChanges(changes))
		}
		m := live.Metadata
		m.SchemaString = want.String()
		meta = &m
	}

	// silver._late first: this table's late rows of the range.
	err = layers.RetryConflicts(ctx, deps.Log, layers.Late().String(), func(int) error {
		return j.refreshLate(ctx, lateT, delta.Open(deps.Store, shadow.lateDir), r, id, st)
	})
	if err != nil {
		return err
	}
	if err := deps.CrashPoint(PointRefreshLateCommitted); err != nil {
		return err
	}

	// The live table: rows of the range from the shadow, the others kept.
	keepFiles, removes := splitFiles(live, r, deps.Now().UnixMilli())
	newFiles := filesIn(ss, r)
	adds, removed, added, err := j.replaceRows(ctx, liveT, live.Version, keepFiles, shadowT, newFiles, r, "part-refresh-"+id+".parquet", false)
	if err != nil {
		return err
	}
	st.RowsRemoved, st.RowsAdded = removed, added

	// The state the replay ended with, under the live table's state prefix.
	stateKey := ""
	if prog.state != "" {
		stateKey = StateDir(name) + id + "-refresh.parquet"
		if err := copyObject(ctx, deps.Store, prog.state, stateKey); err != nil {
			return err
		}
	}
	med := map[string]any{
		mJob:         "silver",
		mBatch:       batchID(consumed),
		mBronze:      consumed,
		mState:       stateKey,
		mStateRows:   prog.stateRows,
		mFingerprint: sp.fingerprint(),
		mBatches:     batches,
		mRefresh:     r.String(),
	}
	if prog.maxEvent != nil {
		med[mMaxEvent] = formatMicros(*prog.maxEvent)
	}
	if prog.watermark != nil {
		med[mWatermark] = formatMicros(*prog.watermark)
	}
	params := map[string]any{"table": "silver." + name, "range": r.String()}
	if !r.From.IsZero() {
		params["from"] = r.From.UTC().Format(time.RFC3339)
	}
	if !r.To.IsZero() {
		params["to"] = r.To.UTC().Format(time.RFC3339)
	}
	snap, err := liveT.Commit(ctx, live, delta.Commit{
		Adds:     adds,
		Removes:  removes,
		Metadata: meta,
		Txns:     []delta.Txn{{AppID: appID, Version: consumed, LastUpdated: deps.Now().UnixMilli()}},
		Read:     live,
		Info: delta.CommitInfo{
			Operation:           opRefresh,
			OperationParameters: params,
			OperationMetrics: map[string]string{
				"numBatches":      strconv.Itoa(len(batches)),
				"numRemovedRows":  strconv.FormatInt(removed, 10),
				"numOutputRows":   strconv.FormatInt(added, 10),
				"numAddedFiles":   strconv.Itoa(len(adds)),
				"numRemovedFiles": strconv.Itoa(len(removes)),
				"bronzeReadTo":    strconv.FormatInt(consumed, 10),
			},
			Medallion: med,
		},
	})
	if err != nil {
		return err
	}
	st.Version = snap.Version
	j.log.Info("silver: refreshed", "version", snap.Version, "range", r.String(), "batches", len(batches), "rows_removed", removed, "rows_added", added)
	// The shadow table is unreferenced now (best effort).
	deleteUnder(ctx, deps.Store, shadow.dir+"/", j.log)
	return nil
}

// opReplay is the operation of a bronze replay's commit (bronze.Replay).
const opReplay = "REPLAY"

// bronzeRewrittenSince says which commit of bronze.<from> after version
// first (the first batch a replay of the table's batches would read up
// to) makes replaying the batches wrong: the newest REFRESH, REPLAY or
// schema change (a commit recording layers.SchemaChangeKey), as
// "bronze.<from> OPERATION at vN"; "" when there is none. It also returns
// bronze's latest version.
func bronzeRewrittenSince(ctx context.Context, deps Deps, from string, first int64) (string, int64, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: from}
	bt := delta.Open(deps.Store, ref.Dir())
	hist, err := bt.History(ctx, 0)
	if err != nil {
		return "", 0, fmt.Errorf("read the history of %s: %w", ref, err)
	}
	if len(hist) == 0 {
		return "", 0, nil
	}
	for _, h := range hist {
		if h.Version <= first {
			continue
		}
		if h.Operation == opRefresh || h.Operation == opReplay || h.Medallion[layers.SchemaChangeKey] != nil {
			return fmt.Sprintf("%s %s at v%d", ref, h.Operation, h.Version), hist[0].Version, nil
		}
	}
	return "", hist[0].Version, nil
}

// recordedBatches returns the bronze versions the table's batches read up
// to, oldest first: the list of the newest refresh commit, then every
// batch committed after it.
func recordedBatches(ctx context.Context, t *delta.Table) ([]int64, error) {
	hist, err := t.History(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []int64
	// Without version 0 or a refresh commit (which lists the batches
	// before it), the first batches are unknown: replaying them as one
	// would find other rows late.
	complete := len(hist) > 0 && hist[len(hist)-1].Version == 0
	for i := len(hist) - 1; i >= 0; i-- {
		m := hist[i].Medallion
		if m == nil || m[mJob] != "silver" || m[mBronze] == nil {
			continue
		}
		if list, ok := m[mBatches].([]any); ok {
			complete = true
			out = out[:0]
			for _, x := range list {
				v, ok := asInt(x)
				if !ok {
					return nil, fmt.Errorf("%s version %d: %s holds %v, not a version", t.Dir(), hist[i].Version, mBatches, x)
				}
				out = append(out, v)
			}
			continue
		}
		v, ok := asInt(m[mBronze])
		if !ok {
			return nil, fmt.Errorf("%s version %d: %s holds %v, not a version", t.Dir(), hist[i].Version, mBronze, m[mBronze])
		}
		if len(out) == 0 || v > out[len(out)-1] {
			out = append(out, v)
		}
	}
	if !complete {
		return nil, nil
	}
	return out, nil
}

// splitFiles returns the files of s that may hold rows of r (their rows
// outside r are kept, the others replaced) with their remove actions.
func splitFiles(s *delta.Snapshot, r Range, now int64) ([]delta.Add, []delta.Remove) {
	var files []delta.Add
	var removes []delta.Remove
	for _, f := range s.Files {
		if overlaps(r, f.Stats) {
			files = append(files, f)
			removes = append(removes, f.Remove(now, true))
		}
	}
	return files, removes
}

// filesIn returns the files of s that may hold rows of r.
func filesIn(s *delta.Snapshot, r Range) []delta.Add {
	files, _ := splitFiles(s, r, 0)
	return files
}

// replaceRows writes one file at path under t: the rows of old (files of
// t) outside r and the rows of repl (files of src) inside r, sorted. It
// returns the add action (none when no row is left), the rows of old it
// replaced and the rows of repl it took.
func (j *job) replaceRows(ctx context.Context, t *delta.Table, version int64, old []delta.Add, src *delta.Table, repl []delta.Add, r Range, path string, late bool) ([]delta.Add, int64, int64, error) {
	local := func(tt *delta.Table, files []delta.Add) ([]string, error) {
		var out []string
		for _, f := range files {
			p, err := j.materialize(ctx, tt.Key(f.Path))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", tt.Key(f.Path), err)
			}
			if tt == t {
				if err := delta.CheckLocalFile(t.Dir(), version, f, p); err != nil {
					return nil, err
				}
			}
			out = append(out, p)
		}
		return out, nil
	}
	oldL, err := local(t, old)
	if err != nil {
		return nil, 0, 0, err
	}
	newL, err := local(src, repl)
	if err != nil {
		return nil, 0, 0, err
	}
	cond := r.Cond("window_start")
	var parts []string
	var removed, added int64
	if len(oldL) > 0 {
		if err := j.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FILTER (WHERE %s) FROM read_parquet(%s)", cond, literalList(oldL))).Scan(&removed); err != nil {
			return nil, 0, 0, fmt.Errorf("count rows replaced: %w", err)
		}
		parts = append(parts, fmt.Sprintf("SELECT * FROM read_parquet(%s) WHERE NOT (%s)", literalList(oldL), cond))
	}
	if len(newL) > 0 {
		if err := j.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FILTER (WHERE %s) FROM read_parquet(%s)", cond, literalList(newL))).Scan(&added); err != nil {
			return nil, 0, 0, fmt.Errorf("count replacement rows: %w", err)
		}
		parts = append(parts, fmt.Sprintf("SELECT * FROM read_parquet(%s) WHERE %s", literalList(newL), cond))
	}
	if len(parts) == 0 {
		return nil, removed, added, nil
	}
	order := j.outputOrder()
	if late {
		order = "window_start, event_time, group_key, bronze_file"
	}
	file := j.scratchFile(strings.ReplaceAll(path, "/", "_"))
	if err := j.exec(ctx, "write refreshed rows", fmt.Sprintf("COPY (SELECT * FROM (%s) ORDER BY %s) TO %s (FORMAT parquet, COMPRESSION zstd)",
		strings.Join(parts, " UNION ALL BY NAME "), order, warehouse.QuoteString(file))); err != nil {
		return nil, 0, 0, err
	}
	var n int64
	var minS, maxS, minE, maxE *int64
	if err := j.conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), min(epoch_us(window_start)), max(epoch_us(window_start)), min(epoch_us(window_end)), max(epoch_us(window_end)) FROM read_parquet(%s)`, warehouse.QuoteString(file))).
		Scan(&n, &minS, &maxS, &minE, &maxE); err != nil {
		return nil, 0, 0, fmt.Errorf("refreshed file statistics: %w", err)
	}
	if n == 0 {
		return nil, removed, added, nil
	}
	up, err := lake.PutFile(ctx, j.deps.Store, t.Key(path), file)
	if err != nil {
		return nil, 0, 0, err
	}
	return []delta.Add{{
		Path:             path,
		Size:             up.Size,
		Tags:             delta.WithSHA256(nil, up.SHA256),
		ModificationTime: j.now().UnixMilli(),
		DataChange:       true,
		Stats:            fileStats(n, *minS, *maxS, *minE, *maxE),
	}}, removed, added, nil
}

// refreshLate replaces the late rows of the table in r in silver._late by
// the shadow's, in one commit of silver._late. Rerun after it committed,
// it writes the same rows again under a new name.
func (j *job) refreshLate(ctx context.Context, lateT, shadowLate *delta.Table, r Range, id string, st *RefreshStats) error {
	name := j.sp.name
	lateSnap, err := layers.SnapshotOrNil(ctx, lateT)
	if err != nil {
		return err
	}
	shadowSnap, err := layers.SnapshotOrNil(ctx, shadowLate)
	if err != nil {
		return err
	}
	own := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-(\d{20}|refresh-\d{20}-\d+)\.parquet$`)
	var old []delta.Add
	var removes []delta.Remove
	now := j.now().UnixMilli()
	if lateSnap != nil {
		for _, f := range lateSnap.Files {
			if own.MatchString(f.Path) && overlaps(r, f.Stats) {
				old = append(old, f)
				removes = append(removes, f.Remove(now, true))
			}
		}
	}
	var repl []delta.Add
	if shadowSnap != nil {
		repl = filesIn(shadowSnap, r)
	}
	if len(old) == 0 && len(repl) == 0 {
		return nil
	}
	if lateSnap == nil {
		lateSnap, err = lateT.Create(ctx, delta.Metadata{SchemaString: LateSchema().String()}, delta.CommitInfo{
			Operation: "CREATE TABLE", Medallion: map[string]any{mJob: "silver"},
		})
		if errors.Is(err, delta.ErrTableExists) {
			return delta.ErrCommitConflict // plan again from the table as it is
		}
		if err != nil {
			return fmt.Errorf("%s: %w", layers.Late(), err)
		}
	}
	path := fmt.Sprintf("%s-refresh-%s-%d.parquet", name, id, lateSnap.Version)
	adds, removed, added, err := j.replaceRows(ctx, lateT, lateSnap.Version, old, shadowLate, repl, r, path, true)
	if err != nil {
		return err
	}
	if _, err := lateT.Commit(ctx, lateSnap, delta.Commit{
		Adds:    adds,
		Removes: removes,
		Read:    lateSnap,
		Info: delta.CommitInfo{
			Operation:           opRefresh,
			OperationParameters: map[string]any{"table": "silver." + name, "range": r.String()},
			OperationMetrics:    map[string]string{"numRemovedRows": strconv.FormatInt(removed, 10), "numOutputRows": strconv.FormatInt(added, 10)},
			Medallion:           map[string]any{mJob: "silver", "table": "silver." + name, mRefresh: r.String()},
		},
	}); err != nil {
		return fmt.Errorf("%s: %w", layers.Late(), err)
	}
	st.LateReplaced, st.LateAdded = removed, added
	return nil
}

// copyObject copies the lake object from to key to.
func copyObject(ctx context.Context, s lake.Store, from, to string) error {
	rc, info, err := s.Get(ctx, from)
	if err != nil {
		return fmt.Errorf("read state %s: %w", from, err)
	}
	defer rc.Close()
	if _, err := s.Put(ctx, to, rc, info.Size); err != nil {
		return fmt.Errorf("write state %s: %w", to, err)
	}
	return nil
}

// dropOtherShadows deletes the shadow tables under shelf other than keep:
// those of refreshes that were interrupted and never rerun before the
// table moved on (best effort).
func dropOtherShadows(ctx context.Context, deps Deps, shelf, keep string) {
	objs, err := deps.Store.List(ctx, shelf, "")
	if err != nil {
		deps.Log.Warn("silver: list old refresh shadow tables", "prefix", shelf, "err", err)
		return
	}
	for _, o := range objs {
		if strings.HasPrefix(o.Key, keep) {
			continue
		}
		if err := deps.Store.Delete(ctx, o.Key); err != nil {
			deps.Log.Warn("silver: delete an old refresh shadow table", "key", o.Key, "err", err)
		}
	}
}

// deleteUnder deletes every object under prefix, logging what it cannot.
func deleteUnder(ctx context.Context, s lake.Store, prefix string, log interface{ Warn(string, ...any) }) {
	objs, err := s.List(ctx, prefix, "")
	if err != nil {
		log.Warn("silver: list the refresh's shadow table", "prefix", prefix, "err", err)
		return
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			log.Warn("silver: delete the refresh's shadow table", "key", o.Key, "err", err)
		}
	}
}
