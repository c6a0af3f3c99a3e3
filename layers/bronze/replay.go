package bronze

// Replay: after a rule fix (a value added to accepted:, a wider range, a
// new timestamp format), the rows of bronze._quarantine of one source are
// typed again with the current rules, by the same typing code a run uses
// (typeParts): each quarantined row's raw text is written back into a file
// per original object (a CSV object's header first), typed, checked and
// deduplicated against bronze like a new batch.
//
// Exactly once, in two commits:
//
//  1. bronze: the rows that now pass, with txn appId
//     replay/<source>/<id> and commitInfo operation REPLAY recording the
//     quarantine version read, the filters and a digest of the rows moved;
//  2. bronze._quarantine: the files holding the replayed rows rewritten
//     (moved rows get replayed_at and replay_batch, rows that still fail
//     get their new reason), with the same txn appId.
//
// The id is a hash of the candidate rows (their object, line, batch and
// reason), so a rerun over an unchanged quarantine computes the same id.
// A replay killed between the two commits leaves a bronze txn without its
// quarantine twin; every replay first finishes such a replay from the
// quarantine version it had read, skipping its bronze commit (crash point
// replay.after-bronze), so its rows are in bronze once whatever filters the
// rerun is given.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// Columns replay adds to bronze._quarantine (nullable; tables without them
// gain them on the first replay).
const (
	// ReplayedAtColumn is when a replay moved the row into bronze; NULL
	// while the row is quarantined.
	ReplayedAtColumn = "replayed_at"
	// ReplayBatchColumn is the id of the replay that last changed the row:
	// moved it (the bronze rows it became have _batch_id = this id) or gave
	// it a new reason.
	ReplayBatchColumn = "replay_batch"
)

// ReplayAppID is the txn appId, in both the bronze table and the
// quarantine table, of replay id of source.
func ReplayAppID(source, id string) string { return "replay/" + source + "/" + id }

// ReplayOptions selects the quarantined rows a replay types again; zero
// values select every row of the source not replayed yet.
type ReplayOptions struct {
	// Reason keeps rows whose reason contains it (ignoring case) or whose
	// reason class (ReasonClass) equals it.
	Reason string
	// Batch keeps rows of this batch_id.
	Batch string
}

// ReplayStats is what a replay did. Retyped = Moved + Duplicates + Still.
type ReplayStats struct {
	Table      string
	ID         string // the replay's id ("" when nothing matched)
	Retyped    int64  // quarantined rows typed again
	Moved      int64  // rows written to bronze
	Duplicates int64  // rows that passed but whose key bronze already had
	Still      int64  // rows still failing (kept, with their new reason)
	Changed    int64  // of Still: rows whose reason changed
	// StillByClass counts the rows still failing by reason class.
	StillByClass map[string]int64
	Version      int64    // bronze version after the replay (-1: no commit)
	Resumed      []string // ids of interrupted replays finished first
}

// String is the summary line of a replay.
func (s ReplayStats) String() string {
	if s.Retyped == 0 {
		line := s.Table + ": nothing to replay (no quarantined row matches)"
		if len(s.Resumed) > 0 {
			line += "; finished interrupted replay " + strings.Join(s.Resumed, ", ")
		}
		return line
	}
	line := fmt.Sprintf("%s: replay %s: %d re-typed, %d moved to bronze", s.Table, s.ID, s.Retyped, s.Moved)
	if s.Duplicates > 0 {
		line += fmt.Sprintf(" (+%d already in bronze by key)", s.Duplicates)
	}
	line += fmt.Sprintf(", %d still quarantined", s.Still)
	if s.Still > 0 {
		classes := make([]string, 0, len(s.StillByClass))
		for c := range s.StillByClass {
			classes = append(classes, c)
		}
		sort.Strings(classes)
		var parts []string
		for _, c := range classes {
			parts = append(parts, fmt.Sprintf("%s: %d", c, s.StillByClass[c]))
		}
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if s.Version >= 0 {
		line += fmt.Sprintf(", bronze v%d", s.Version)
	}
	if len(s.Resumed) > 0 {
		line += "; finished interrupted replay " + strings.Join(s.Resumed, ", ") + " first"
	}
	return line
}

// reasonClasses are the classes ReasonClass sorts reasons into.
var reasonClasses = []string{"accepted", "type", "range", "regex", "required", "json", "csv", "encoding", "other"}

// ReasonClasses returns the reason classes --reason takes, in order.
func ReasonClasses() []string { return append([]string(nil), reasonClasses...) }

// ReasonClass sorts a quarantine reason into a class: accepted (not one of
// the accepted values), type (not an int64/double/timestamp/...), range
// (below the minimum, above the maximum, too large), regex, required, json
// (invalid JSON, not an object), csv (column counts, quoting), encoding
// (invalid UTF-8, over-long lines), else other.
func ReasonClass(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, " is not one of "):
		return "accepted"
	case strings.Contains(r, " does not match "):
		return "regex"
	case strings.Contains(r, "required "):
		return "required"
	case strings.Contains(r, "below the minimum"), strings.Contains(r, "above the maximum"),
		strings.Contains(r, "out of range"), strings.Contains(r, "too large"), strings.Contains(r, "without rounding"),
		strings.Contains(r, "not a finite double"):
		return "range"
	case strings.Contains(r, "invalid json"), strings.Contains(r, "not a json object"), strings.Contains(r, "json literal"):
		return "json"
	case strings.Contains(r, "invalid utf-8"), strings.Contains(r, "line longer than"):
		return "encoding"
	case strings.Contains(r, " columns"), strings.Contains(r, "quoting"), strings.Contains(r, "malformed line"), strings.Contains(r, "delimiter"):
		return "csv"
	case strings.Contains(r, " is not a"), strings.Contains(r, " is not an"):
		return "type"
	}
	return "other"
}

func (o ReplayOptions) keeps(reason, batch string) bool {
	if o.Batch != "" && batch != o.Batch {
		return false
	}
	if o.Reason == "" {
		return true
	}
	return strings.EqualFold(ReasonClass(reason), o.Reason) || strings.Contains(strings.ToLower(reason), strings.ToLower(o.Reason))
}

// Replay types the quarantined rows of source src that o selects again
// with the current rules, moves those that now pass into bronze.<src>
// exactly once and rewrites the others with their new reason (see the
// comment at the top of replay.go). The bronze table must exist.
func Replay(ctx context.Context, d Deps, src *config.Source, o ReplayOptions) (ReplayStats, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: src.Name}
	stats := ReplayStats{Table: ref.String(), Version: -1}
	if d.Store == nil || d.DB == nil {
		return stats, errors.New("bronze replay: missing store or database")
	}
	// Rows are typed again whatever on_error says now: a replay quarantines
	// (never drops or fails on) what still fails. A json source's
	// quarantined rows are its documents' objects, one a line.
	rs := *src
	rs.OnError = "quarantine"
	if strings.EqualFold(rs.Format, "json") {
		rs.Format = "ndjson"
	}
	j, err := newJob(d, &rs)
	if err != nil {
		return stats, err
	}
	bsnap, err := j.snapshot(ctx)
	if err != nil {
		return stats, err
	}
	if bsnap == nil {
		return stats, fmt.Errorf("%s has no commits yet: nothing was quarantined from it (run `medallion run` first)", ref)
	}
	conn, done, err := j.conn(ctx)
	if err != nil {
		return stats, err
	}
	defer done()
	// A renamed or retyped column stops a replay as it stops a run: the
	// rows moved now would be typed with columns the table does not have.
	if err := j.checkSchema(ctx, pinnedConn(conn)); err != nil {
		return stats, err
	}

	// Finish replays killed between their two commits first.
	pending, err := j.interruptedReplays(ctx, bsnap)
	if err != nil {
		return stats, err
	}
	for _, info := range pending {
		if _, err := j.replayPass(ctx, conn, info.qversion, info.opts, &info); err != nil {
			return stats, fmt.Errorf("finish interrupted replay %s: %w", info.id, err)
		}
		stats.Resumed = append(stats.Resumed, info.id)
	}
	st, err := j.replayPass(ctx, conn, -1, o, nil)
	st.Table, st.Resumed = stats.Table, stats.Resumed
	return st, err
}

// replayInfo is what a replay's bronze commit records, to finish it after
// a crash before its quarantine commit.
type replayInfo struct {
	id       string
	qversion int64 // the quarantine version the candidates were read at
	opts     ReplayOptions
	digest   string // of the rows moved
}

// interruptedReplays returns the replays whose bronze commit is in bsnap
// and whose quarantine commit is not, oldest first.
func (j *job) interruptedReplays(ctx context.Context, bsnap *delta.Snapshot) ([]replayInfo, error) {
	prefix := ReplayAppID(j.src.Name, "")
	var ids []string
	for _, tx := range bsnap.Txns() {
		if strings.HasPrefix(tx.AppID, prefix) {
			ids = append(ids, strings.TrimPrefix(tx.AppID, prefix))
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	qsnap, err := layers.SnapshotOrNil(ctx, j.qtable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	want := map[string]bool{}
	for _, id := range ids {
		if qsnap == nil {
			want[id] = true
		} else if _, ok := qsnap.TxnVersion(ReplayAppID(j.src.Name, id)); !ok {
			want[id] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	hist, err := j.table.History(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", j.table.Dir(), err)
	}
	var out []replayInfo
	for i := len(hist) - 1; i >= 0; i-- {
		m := hist[i].Medallion
		id, _ := m["replay_id"].(string)
		if !want[id] {
			continue
		}
		info := replayInfo{id: id, qversion: -2}
		if v, ok := m["quarantine_version"].(float64); ok {
			info.qversion = int64(v)
		}
		info.opts.Reason, _ = m["reason_filter"].(string)
		info.opts.Batch, _ = m["batch_filter"].(string)
		info.digest, _ = m["moved_digest"].(string)
		if info.qversion < 0 {
			return nil, fmt.Errorf("replay %s of bronze.%s: its bronze commit (version %d) does not record the quarantine version it read", id, j.src.Name, hist[i].Version)
		}
		out = append(out, info)
		delete(want, id)
	}
	for id := range want {
		return nil, fmt.Errorf("replay %s of bronze.%s: its txn is in bronze but its commit is no longer in the log; its quarantine rows cannot be marked", id, j.src.Name)
	}
	return out, nil
}

// qrow is one quarantined row a replay selected.
type qrow struct {
	sourceFile string
	line       int64
	batchID    string
	reason     string
	column     string
	raw        string
}

func (r qrow) key() string {
	return r.sourceFile + "\x00" + strconv.FormatInt(r.line, 10) + "\x00" + r.batchID
}

// outcome is what typing a quarantined row again gave.
type outcome struct {
	fails          bool
	column, reason string
}

// replayPass runs one replay over the quarantine at version qversion (-1:
// the latest). resume is the replay being finished after a crash (its
// bronze commit is done), nil for a new one.
func (j *job) replayPass(ctx context.Context, conn *sql.Conn, qversion int64, o ReplayOptions, resume *replayInfo) (ReplayStats, error) {
	st := ReplayStats{Version: -1, StillByClass: map[string]int64{}}
	var qread *delta.Snapshot
	var err error
	if qversion >= 0 {
		qread, err = j.qtable.SnapshotAt(ctx, qversion)
	} else {
		qread, err = layers.SnapshotOrNil(ctx, j.qtable)
	}
	if err != nil {
		return st, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	if qread == nil {
		return st, nil
	}
	rows, err := j.quarantinedRows(ctx, conn, qread, o)
	if err != nil || len(rows) == 0 {
		return st, err
	}
	id := replayID(j.src.Name, rows)
	st.ID = id
	if resume != nil && id != resume.id {
		return st, fmt.Errorf("the quarantine at version %d gives replay id %s, not %s (a bug)", qversion, id, resume.id)
	}
	dir, err := os.MkdirTemp(j.d.ScratchDir, "bronze-replay-")
	if err != nil {
		return st, fmt.Errorf("bronze %s: scratch dir: %w", j.src.Name, err)
	}
	defer os.RemoveAll(dir)

	tb, outcomes, err := j.retype(ctx, conn, rows, id, dir, resume != nil)
	if err != nil {
		return st, err
	}
	st.Retyped = int64(len(rows))
	var moved []string
	for _, r := range rows {
		oc := outcomes[r.key()]
		if !oc.fails {
			moved = append(moved, r.key())
			continue
		}
		st.Still++
		st.StillByClass[ReasonClass(oc.reason)]++
		if oc.reason != r.reason || oc.column != r.column {
			st.Changed++
		}
	}
	digest := digestOf(moved)
	st.Moved, st.Duplicates = tb.st.Written, int64(len(moved))-tb.st.Written

	// 1. bronze.
	if resume != nil {
		if digest != resume.digest {
			return st, fmt.Errorf("the rules of source %s changed since replay %s moved its rows into bronze: the same rows no longer pass. "+
				"Put the rules back as they were, run `medallion replay bronze.%s` to finish that replay, then change them again", j.src.Name, id, j.src.Name)
		}
	} else if len(moved) > 0 {
		bsnap := tb.snap
		info := j.replayCommitInfo(id, qread.Version, o, digest, st, tb.meta, tb.adds)
		txns := []delta.Txn{{AppID: ReplayAppID(j.src.Name, id), Version: 1, LastUpdated: j.d.Now().UnixMilli()}}
		if err := j.upload(ctx, j.table.Dir(), filepath.Join(dir, "bronze"), tb.adds); err != nil {
			return st, err
		}
		v, err := j.commitBronze(ctx, bsnap, bsnap, tb.meta, tb.adds, txns, info)
		if err != nil {
			return st, err
		}
		st.Version = v
	}
	if err := j.d.CrashPoint("replay.after-bronze"); err != nil {
		return st, err
	}

	// 2. bronze._quarantine.
	if len(moved) == 0 && st.Changed == 0 {
		return st, nil
	}
	if err := j.rewriteQuarantine(ctx, conn, qread, rows, outcomes, id, dir); err != nil {
		return st, err
	}
	return st, nil
}

// quarantinedRows reads the rows of src's partition of the quarantine at
// qsnap that no replay moved yet and that o keeps, one per (object, line,
// batch), ordered by object and line.
func (j *job) quarantinedRows(ctx context.Context, conn *sql.Conn, qsnap *delta.Snapshot, o ReplayOptions) ([]qrow, error) {
	files, _, err := j.quarantineFiles(ctx, qsnap)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	q := "SELECT source_file, line, batch_id, reason, COALESCE(column_name, \"column\"), raw FROM " + quarantineScan(files) +
		" WHERE replayed_at IS NULL ORDER BY source_file, line, batch_id"
	res, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	defer res.Close()
	var out []qrow
	seen := map[string]bool{}
	for res.Next() {
		var sf, bid, reason, col, rawText sql.NullString
		var line sql.NullInt64
		if err := res.Scan(&sf, &line, &bid, &reason, &col, &rawText); err != nil {
			return nil, err
		}
		r := qrow{sourceFile: sf.String, line: line.Int64, batchID: bid.String, reason: reason.String, column: col.String, raw: rawText.String}
		if !o.keeps(r.reason, r.batchID) || seen[r.key()] || r.sourceFile == "" {
			continue
		}
		seen[r.key()] = true
		out = append(out, r)
	}
	return out, res.Err()
}

// quarantineFiles returns local copies of the quarantine files of src's
// partition in qsnap, and the add path of each local path.
func (j *job) quarantineFiles(ctx context.Context, qsnap *delta.Snapshot) ([]string, map[string]string, error) {
	var files []string
	byLocal := map[string]string{}
	for _, f := range qsnap.Files {
		if v, ok := f.PartitionValues.Value("source"); !ok || v != j.src.Name {
			continue
		}
		p, err := j.existingFile(ctx, j.qtable.Key(f.Path))
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
		}
		if err := delta.CheckLocalFile("bronze._quarantine", qsnap.Version, f, p); err != nil {
			return nil, nil, err
		}
		files = append(files, p)
		byLocal[p] = f.Path
	}
	return files, byLocal, nil
}

// quarantineScan reads quarantine files with every column a quarantine
// file may have: old files lack replayed_at and replay_batch, and hold the
// column name as "column" (before the rename) or column_name.
func quarantineScan(files []string) string {
	seed := "SELECT CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS VARCHAR) AS source_file, CAST(NULL AS BIGINT) AS line, " +
		"CAST(NULL AS VARCHAR) AS column_name, CAST(NULL AS VARCHAR) AS \"column\", CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS raw, " +
		"CAST(NULL AS VARCHAR) AS batch_id, CAST(NULL AS TIMESTAMPTZ) AS quarantined_at, CAST(NULL AS TIMESTAMPTZ) AS replayed_at, " +
		"CAST(NULL AS VARCHAR) AS replay_batch WHERE false"
	return "(" + seed + " UNION ALL BY NAME SELECT * FROM read_parquet(" + fileList(files) +
		", union_by_name = true, hive_partitioning = false, filename = true))"
}

// replayID is the deterministic id of a replay of rows.
func replayID(source string, rows []qrow) string {
	h := sha256.New()
	io.WriteString(h, "replay\x00"+source)
	for _, r := range rows {
		io.WriteString(h, "\x00"+r.key()+"\x00"+r.reason)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// digestOf hashes the keys of the rows moved.
func digestOf(keys []string) string {
	h := sha256.New()
	for _, k := range keys {
		io.WriteString(h, k+"\x01")
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// replayObject is the file of one original object's quarantined rows.
type replayObject struct {
	m     manifest
	path  string
	lines []int64 // start line in the file of each row, ascending
	rows  []qrow
}

// retype writes each original object's rows into a file, types the files
// as a batch (typeParts) and dedupes the good rows against bronze; it
// returns the batch written under dir/bronze (unless dry: finishing a
// replay, whose rows are in bronze already) and each row's outcome.
func (j *job) retype(ctx context.Context, conn *sql.Conn, rows []qrow, bid, dir string, dry bool) (typedBatch, map[string]outcome, error) {
	fail := func(err error) (typedBatch, map[string]outcome, error) { return typedBatch{}, nil, err }
	// A row with no text (a document-level error) has nothing to type
	// again: it stays as it is.
	outcomes := map[string]outcome{}
	typed := make([]qrow, 0, len(rows))
	for _, r := range rows {
		if strings.TrimSpace(r.raw) == "" {
			outcomes[r.key()] = outcome{fails: true, column: r.column, reason: r.reason}
			continue
		}
		typed = append(typed, r)
	}
	all := len(rows)
	rows = typed
	objs, err := j.replayObjects(ctx, rows, dir)
	if err != nil {
		return fail(err)
	}
	ms := make([]manifest, len(objs))
	j.fetched = map[string]string{}
	defer clear(j.fetched)
	for i, o := range objs {
		ms[i] = o.m
		j.fetched[o.m.SHA256] = o.path
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+t)
		}
	}()
	parts, err := j.typeParts(ctx, conn, ms, dir, &temps)
	if err != nil {
		return fail(err)
	}
	lin := newLineage(ms, bid)
	var sels []string
	var good int64
	for _, part := range parts {
		for k, i := range part.idx {
			res := part.res[k]
			good += res.good
			if int64(len(res.bad)) != res.badCount {
				return fail(fmt.Errorf("bronze %s: replay of %s: located %d of %d bad rows (a bug)", j.src.Name, objs[i].m.Key, len(res.bad), res.badCount))
			}
			for _, b := range res.bad {
				r, ok := objs[i].rowAt(b.line)
				if !ok {
					return fail(fmt.Errorf("bronze %s: replay of %s: a bad row at line %d of the replay file is no quarantined row (a bug)", j.src.Name, objs[i].m.Key, b.line))
				}
				outcomes[r.key()] = outcome{fails: true, column: b.column, reason: b.reason}
			}
			if res.blank > 0 {
				return fail(fmt.Errorf("bronze %s: replay of %s: %d quarantined rows are blank lines (a bug)", j.src.Name, objs[i].m.Key, res.blank))
			}
		}
		sels = append(sels, j.partSelect(part, ms, lin))
	}
	if want := int64(all - len(outcomes)); good != want {
		return fail(fmt.Errorf("bronze %s: replay typed %d good rows of %d that did not fail (a bug)", j.src.Name, good, want))
	}
	snap, err := j.snapshot(ctx)
	if err != nil {
		return fail(err)
	}
	tb := typedBatch{snap: snap}
	if dry || good == 0 {
		return tb, outcomes, nil
	}
	final, written, err := j.dedupe(ctx, conn, "("+strings.Join(sels, " UNION ALL ")+")", good, snap, dir)
	if strings.HasPrefix(final, "dedup_") {
		temps = append(temps, final)
	}
	if err != nil {
		return fail(fmt.Errorf("bronze %s: dedupe: %w", j.src.Name, err))
	}
	tb.st.Written = written
	tb.st.Duplicates = good - written
	tb.st.RowsRead = int64(all)
	tb.st.Quarantined = int64(len(outcomes))
	if tb.meta, tb.adds, err = j.writeBatch(ctx, conn, final, dir, written); err != nil {
		return fail(err)
	}
	tb.st.Files = len(tb.adds)
	return tb, outcomes, nil
}

// rowAt returns the row whose text starts at line of the replay file (or
// spans it: a CSV record over several lines).
func (o replayObject) rowAt(line int64) (qrow, bool) {
	i := sort.Search(len(o.lines), func(i int) bool { return o.lines[i] > line }) - 1
	if i < 0 {
		return qrow{}, false
	}
	return o.rows[i], true
}

// replayObjects writes the rows of each original object (rows are ordered
// by object and line) into a file under dir: a CSV object's header line
// first, then each row's raw text on its own line.
func (j *job) replayObjects(ctx context.Context, rows []qrow, dir string) ([]replayObject, error) {
	format := strings.ToLower(j.src.Format)
	if format == "" {
		format = "ndjson"
	}
	idx := &manifestIndex{}
	var out []replayObject
	for start := 0; start < len(rows); {
		end := start
		for end < len(rows) && rows[end].sourceFile == rows[start].sourceFile {
			end++
		}
		sf := rows[start].sourceFile
		sum := sha256.Sum256([]byte("replay\x00" + sf))
		o := replayObject{rows: rows[start:end], path: filepath.Join(dir, fmt.Sprintf("replay-%d.%s", len(out), format))}
		var b strings.Builder
		line := int64(1)
		if format == "csv" && j.hasHeader() {
			h, err := j.objectHeader(ctx, sf, idx)
			if err != nil {
				return nil, err
			}
			b.WriteString(h + "\n")
			line++
		}
		for _, r := range o.rows {
			o.lines = append(o.lines, line)
			text := strings.TrimRight(r.raw, "\r\n")
			if format != "csv" {
				// A JSON object is one line; a line break outside its
				// strings is white space (inside, it is escaped).
				text = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text)
			}
			b.WriteString(text + "\n")
			line += 1 + int64(strings.Count(text, "\n"))
		}
		if err := os.WriteFile(o.path, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("bronze %s: replay file: %w", j.src.Name, err)
		}
		at, err := j.receivedAt(ctx, sf, idx)
		if err != nil {
			return nil, err
		}
		o.m = manifest{raw.Manifest{Source: j.src.Name, Key: sf, SHA256: hex.EncodeToString(sum[:]), Size: int64(b.Len()),
			ReceivedAt: at, Name: path.Base(sf), Format: format}}
		out = append(out, o)
		start = end
	}
	return out, nil
}

// receivedAt is the received time of the object sf (a raw key or a file
// referenced in place), the _ingested_at of its rows: from the key's file
// name (raw.ObjectKey starts it with the time), else from its manifest.
func (j *job) receivedAt(ctx context.Context, sf string, idx *manifestIndex) (time.Time, error) {
	base := path.Base(sf)
	if len(base) >= len(receivedLayout) {
		if t, err := time.Parse(receivedLayout, base[:len(receivedLayout)]); err == nil {
			return t.UTC(), nil
		}
	}
	m, err := j.manifestOf(ctx, sf, idx)
	if err != nil {
		return time.Time{}, err
	}
	return m.ReceivedAt, nil
}

// manifestIndex is the source's manifests by object (sourceFile), read
// once by a replay that needs one.
type manifestIndex struct {
	byFile map[string]manifest
}

// manifestOf returns the manifest of the object sf.
func (j *job) manifestOf(ctx context.Context, sf string, idx *manifestIndex) (manifest, error) {
	if idx.byFile == nil {
		shas, err := listManifests(ctx, j.d.Store, j.src.Name)
		if err != nil {
			return manifest{}, fmt.Errorf("bronze %s: list manifests: %w", j.src.Name, err)
		}
		idx.byFile = make(map[string]manifest, len(shas))
		for _, sha := range shas {
			m, err := readManifest(ctx, j.d.Store, j.src.Name, sha)
			if err != nil {
				return manifest{}, err
			}
			idx.byFile[m.sourceFile()] = m
		}
	}
	m, ok := idx.byFile[sf]
	if !ok {
		return manifest{}, fmt.Errorf("bronze %s: no manifest for quarantined object %s: it was landed, then deleted from raw", j.src.Name, sf)
	}
	return m, nil
}

// objectHeader reads the header line of the CSV object sf.
func (j *job) objectHeader(ctx context.Context, sf string, idx *manifestIndex) (string, error) {
	m := manifest{raw.Manifest{Key: sf, Name: path.Base(sf)}}
	if strings.Contains(sf, "://") {
		var err error
		if m, err = j.manifestOf(ctx, sf, idx); err != nil {
			return "", err
		}
	}
	rc, err := j.openObject(ctx, m)
	if err != nil {
		return "", fmt.Errorf("bronze %s: replay needs the header of %s: %w", j.src.Name, sf, err)
	}
	defer rc.Close()
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for len(buf) < j.maxLine {
		n, err := rc.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			return strings.TrimRight(string(buf[:i]), "\r"), nil
		}
		if err == io.EOF {
			return strings.TrimRight(string(buf), "\r"), nil
		}
		if err != nil {
			return "", fmt.Errorf("bronze %s: read the header of %s: %w", j.src.Name, sf, err)
		}
	}
	return "", fmt.Errorf("bronze %s: the header of %s is longer than %d bytes", j.src.Name, sf, j.maxLine)
}

// replayCommitInfo is the commit info of a replay's bronze commit.
func (j *job) replayCommitInfo(id string, qversion int64, o ReplayOptions, digest string, st ReplayStats, meta delta.Metadata, adds []delta.Add) delta.CommitInfo {
	info := j.commitInfo(id, 0, Stats{RowsRead: st.Retyped, Written: st.Moved, Quarantined: st.Retyped - st.Moved - st.Duplicates, Duplicates: st.Duplicates},
		meta, "bronze."+j.src.Name, st.Moved, adds)
	info.Operation = "REPLAY"
	info.OperationParameters = map[string]any{"source": "bronze._quarantine", "reason": o.Reason, "batch": o.Batch}
	info.Medallion["job"] = "replay"
	info.Medallion["replay_id"] = id
	info.Medallion["quarantine_version"] = qversion
	info.Medallion["reason_filter"] = o.Reason
	info.Medallion["batch_filter"] = o.Batch
	info.Medallion["moved_digest"] = digest
	delete(info.Medallion, "objects")
	return info
}

// replaySchema is the quarantine schema with the replay columns, and
// whether it differs from the table's.
func replaySchema(qsnap *delta.Snapshot) (*delta.Schema, bool, error) {
	s, err := qsnap.Schema()
	if err != nil {
		return nil, false, fmt.Errorf("bronze._quarantine: %w", err)
	}
	out := &delta.Schema{Fields: append([]delta.Field(nil), s.Fields...)}
	changed := false
	for _, f := range []delta.Field{
		{Name: ReplayedAtColumn, Type: delta.Primitive(delta.TypeTimestamp), Nullable: true},
		{Name: ReplayBatchColumn, Type: delta.Primitive(delta.TypeString), Nullable: true},
	} {
		if _, ok := out.Field(f.Name); !ok {
			out.Fields = append(out.Fields, f)
			changed = true
		}
	}
	return out, changed, nil
}

// rewriteQuarantine rewrites the quarantine files holding rows: moved rows
// get replayed_at and replay_batch, failing rows their new column and
// reason (and replay_batch when it changed), in one commit with the
// replay's txn. It commits on the latest quarantine snapshot, finding the
// rows there by object, line and batch: bronze runs of other sources may
// have added files since qread, an optimize may have compacted them.
func (j *job) rewriteQuarantine(ctx context.Context, conn *sql.Conn, qread *delta.Snapshot, rows []qrow, outcomes map[string]outcome, id, dir string) error {
	upd := j.tmpName("qupd")
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+upd)
	vt, err := newValuesTable(ctx, conn, upd, "source_file VARCHAR, line VARCHAR, batch_id VARCHAR, moved VARCHAR, new_column VARCHAR, new_reason VARCHAR")
	if err != nil {
		return err
	}
	for _, r := range rows {
		oc := outcomes[r.key()]
		if oc.fails && oc.reason == r.reason && oc.column == r.column {
			continue
		}
		if err := vt.add(r.sourceFile, strconv.FormatInt(r.line, 10), r.batchID, strconv.FormatBool(!oc.fails), oc.column, oc.reason); err != nil {
			return err
		}
	}
	if err := vt.flush(); err != nil {
		return err
	}
	app := ReplayAppID(j.src.Name, id)
	for attempt := 1; ; attempt++ {
		qsnap, err := j.qtable.Snapshot(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
		}
		if _, done := qsnap.TxnVersion(app); done {
			return nil // another replay of the same rows finished first
		}
		schema, changed, err := replaySchema(qsnap)
		if err != nil {
			return err
		}
		on := " u ON q.replayed_at IS NULL AND q.source_file = u.source_file AND CAST(q.line AS VARCHAR) = u.line AND q.batch_id IS NOT DISTINCT FROM u.batch_id"
		old, locals, err := j.filesHolding(ctx, conn, qsnap, upd, on)
		if err != nil {
			return err
		}
		if len(old) == 0 {
			return fmt.Errorf("bronze._quarantine version %d holds none of the rows replay %s re-typed (a bug)", qsnap.Version, id)
		}
		colName := QuarantineColumn
		if legacyQuarantine(qsnap) != nil {
			colName = LegacyQuarantineColumn
		}
		now := warehouse.QuoteString(j.d.Now().UTC().Format("2006-01-02 15:04:05.000000") + "+00")
		bidQ := warehouse.QuoteString(id)
		hit := "u.source_file IS NOT NULL"
		sel := "SELECT " + warehouse.QuoteString(j.src.Name) + " AS source, q.source_file, q.line, " +
			"CASE WHEN " + hit + " AND u.moved = 'false' THEN NULLIF(u.new_column, '') ELSE COALESCE(q.column_name, q.\"column\") END AS " + warehouse.QuoteIdent(colName) + ", " +
			"CASE WHEN " + hit + " AND u.moved = 'false' THEN u.new_reason ELSE q.reason END AS reason, q.raw, q.batch_id, q.quarantined_at, " +
			"CASE WHEN " + hit + " AND u.moved = 'true' THEN CAST(" + now + " AS TIMESTAMPTZ) ELSE q.replayed_at END AS " + ReplayedAtColumn + ", " +
			"CASE WHEN " + hit + " THEN " + bidQ + " ELSE q.replay_batch END AS " + ReplayBatchColumn +
			" FROM " + quarantineScan(locals) + " q LEFT JOIN " + upd + on
		out := filepath.Join(dir, fmt.Sprintf("quarantine-%d", attempt))
		adds, err := j.writeParquet(ctx, conn, sel, out, "source", schema)
		if err != nil {
			return fmt.Errorf("bronze %s: rewrite quarantine: %w", j.src.Name, err)
		}
		var before int64
		for _, f := range old {
			st, err := delta.ParseStats(f.Stats)
			if err != nil || st.NumRecords == 0 {
				before = -1
				break
			}
			before += st.NumRecords
		}
		if before >= 0 && addedRows(adds) != before {
			return fmt.Errorf("bronze %s: rewrote %d quarantine rows, read %d (a bug)", j.src.Name, addedRows(adds), before)
		}
		if err := j.upload(ctx, j.qtable.Dir(), out, adds); err != nil {
			return err
		}
		c := delta.Commit{Adds: adds, Txns: []delta.Txn{{AppID: app, Version: 1, LastUpdated: j.d.Now().UnixMilli()}}, Read: qread,
			Info: delta.CommitInfo{Operation: "REPLAY", OperationParameters: map[string]any{"source": j.src.Name},
				OperationMetrics: map[string]string{"numRemovedFiles": fmt.Sprint(len(old)), "numAddedFiles": fmt.Sprint(len(adds))},
				Medallion:        map[string]any{"job": "replay", "source": j.src.Name, "replay_id": id}}}
		ts := j.d.Now().UnixMilli()
		for _, f := range old {
			c.Removes = append(c.Removes, f.Remove(ts, true))
		}
		if changed {
			m := qsnap.Metadata
			m.SchemaString = schema.String()
			c.Metadata = &m
		}
		_, err = j.qtable.Commit(ctx, qsnap, c)
		if errors.Is(err, delta.ErrTxnApplied) {
			return nil
		}
		if err == nil || !errors.Is(err, delta.ErrCommitConflict) || attempt >= layers.MaxCommitAttempts {
			if err != nil {
				return fmt.Errorf("commit %s: %w", j.qtable.Dir(), err)
			}
			return nil
		}
		j.log.Info("replay: quarantine commit lost to another writer; trying again", "attempt", attempt, "err", err)
	}
}

// filesHolding returns the files of src's partition in qsnap holding a row
// of upd not replayed yet (joined as q and u by on), with their local
// copies.
func (j *job) filesHolding(ctx context.Context, conn *sql.Conn, qsnap *delta.Snapshot, upd, on string) ([]delta.Add, []string, error) {
	files, byLocal, err := j.quarantineFiles(ctx, qsnap)
	if err != nil || len(files) == 0 {
		return nil, nil, err
	}
	res, err := conn.QueryContext(ctx, "SELECT DISTINCT q.filename FROM "+quarantineScan(files)+" q JOIN "+upd+on+" ORDER BY 1")
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", j.qtable.Dir(), err)
	}
	defer res.Close()
	live := map[string]delta.Add{}
	for _, f := range qsnap.Files {
		live[f.Path] = f
	}
	var old []delta.Add
	var locals []string
	for res.Next() {
		var fn string
		if err := res.Scan(&fn); err != nil {
			return nil, nil, err
		}
		old = append(old, live[byLocal[fn]])
		locals = append(locals, fn)
	}
	return old, locals, res.Err()
}
