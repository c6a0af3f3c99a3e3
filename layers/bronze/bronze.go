// Package bronze promotes landed raw objects into typed, cleaned bronze
// tables (Delta tables of Parquet files at bronze/<source>), and every row
// that fails parsing, typing or a rule into bronze._quarantine with its
// source object, line, column, reason and raw text.
//
// Exactly-once: each raw object consumed is recorded as a Delta txn action
// (appId raw/<source>/<sha256>) in the same commit as its bronze rows; its
// quarantine rows are committed first, with txn appId
// bronze/<source>/<sha256> in the quarantine table, so a rerun after a crash
// between the two commits does not write them twice.
package bronze

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Defaults bounding a batch and a line.
const (
	DefaultMaxBatchBytes   = 256 << 20
	DefaultMaxBatchObjects = 1000
	DefaultMaxLineBytes    = 1 << 20
	// maxFusedObjects bounds the objects of a batch whose typed tables are
	// written by one UNION ALL, without gathering them into one table first.
	maxFusedObjects = 16
)

// Deps is what a bronze run needs: the shared layer environment (Store
// and DB are required) and the batch bounds. ScratchDir holds downloaded raw objects and Parquet files before
// upload; a fresh sub-directory per batch is removed afterwards. Bronze
// data files read for dedupe are kept in Env.Cache's directory (else under
// ScratchDir) at their keys' paths.
type Deps struct {
	layers.Env

	MaxBatchBytes   int64 // default DefaultMaxBatchBytes
	MaxBatchObjects int   // default DefaultMaxBatchObjects
	MaxLineBytes    int   // default DefaultMaxLineBytes
	// DiscoveryGrace is how far before its cursor a run lists landings
	// again (discover.go); default DefaultDiscoveryGrace.
	DiscoveryGrace time.Duration
	// TxnRetention expires the txns of the bronze and quarantine tables
	// (delta.Options.TxnRetention); 0 keeps them all.
	TxnRetention time.Duration

	// precise skips the fast path (tests compare the two paths).
	precise bool
	// progressEvery is how often a typing statement's progress is polled;
	// 0: warehouse.ProgressEvery (tests poll more often).
	progressEvery time.Duration
}

// Stats is the accounting of one run: RowsRead = Written + Quarantined +
// Dropped + Duplicates + Blank.
type Stats struct {
	Table       string
	Objects     int // raw objects promoted
	Batches     int
	RowsRead    int64
	Written     int64
	Quarantined int64
	Dropped     int64
	Duplicates  int64
	// Blank counts the blank lines of NDJSON objects: read (in RowsRead)
	// and skipped, so a line count of the input matches RowsRead.
	Blank   int64
	Files   int   // bronze data files added
	Version int64 // bronze table version after the run (-1: no table)
	Rescued []string
}

// Balanced reports whether the accounting holds.
func (s Stats) Balanced() bool {
	return s.RowsRead == s.Written+s.Quarantined+s.Dropped+s.Duplicates+s.Blank
}

// String is the accounting line printed for every run.
func (s Stats) String() string {
	if s.Objects == 0 {
		return fmt.Sprintf("%s: nothing new", s.Table)
	}
	line := fmt.Sprintf("%s: %d rows read = %d written + %d quarantined + %d dropped + %d duplicates (%d files, v%d)",
		s.Table, s.RowsRead, s.Written, s.Quarantined, s.Dropped, s.Duplicates, s.Files, s.Version)
	if s.Blank > 0 {
		line = strings.Replace(line, " duplicates (", fmt.Sprintf(" duplicates + %d blank lines skipped (", s.Blank), 1)
	}
	if len(s.Rescued) > 0 {
		line += "; unknown columns rescued into _rescued: " + strings.Join(s.Rescued, ", ")
	}
	return line
}

func (s *Stats) add(b Stats) {
	s.Objects += b.Objects
	s.Batches++
	s.RowsRead += b.RowsRead
	s.Written += b.Written
	s.Quarantined += b.Quarantined
	s.Dropped += b.Dropped
	s.Duplicates += b.Duplicates
	s.Blank += b.Blank
	s.Files += b.Files
	for _, r := range b.Rescued {
		if !contains(s.Rescued, r) {
			s.Rescued = append(s.Rescued, r)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// RawAppID is the txn appId recording that a raw object is in bronze.
func RawAppID(source, sha string) string { return "raw/" + source + "/" + sha }

// QuarantineAppID is the txn appId recording that a raw object's bad rows
// are in bronze._quarantine.
func QuarantineAppID(source, sha string) string { return "bronze/" + source + "/" + sha }

// job is one run over one source.
type job struct {
	d        Deps
	src      *config.Source
	plan     *sourcePlan
	table    *delta.Table
	qtable   *delta.Table
	log      *slog.Logger
	maxLine  int
	noHeader bool
	seq      int // temp table counter
	// readerCols maps the CSV reader's column names (c0, c1, ...) of the
	// object being typed to bronze or header names, for reject rows.
	readerCols map[string]string
	// fetched maps the sha256 of each object of the current batch to a
	// local file checked against its manifest (verify.go); fetchDir holds
	// the downloads of an S3 lake's objects.
	fetched map[string]string
	// fetchedData holds the bytes of the small ones among them, read
	// when they were checked.
	fetchedData map[string][]byte
	fetchDir    string
	cacheDir    string // downloads of existing bronze files, at their keys' paths
	// ndjsonFastCols are the columns of the NDJSON fast path's relation,
	// described once a run (fastMetadata).
	ndjsonFastCols []warehouse.Column
	// ndjsonTypedCols are those of the typed read's relation (typedjson.go).
	ndjsonTypedCols []warehouse.Column
	// typedRead is set while fastBatch tries the typed read.
	typedRead bool
	disc      *discovery
	prog      runProgress
	// steps times the current batch's steps (steps.go).
	steps *stepClock
	// checking is the outcome of the check of the current batch's object
	// running while it is typed (overlapcheck.go); nil when none runs.
	checking chan error
}

// runProgress is what a bronze run reports through Env.Report: bytes of
// raw objects done of the run's total, and rows read.
type runProgress struct {
	total int64 // bytes of the objects the run will type
	base  int64 // bytes of the objects of committed batches
	rows  int64 // rows read by committed batches
	shown int64 // the largest Done reported, so Done never goes back
}

// report reports the committed batches plus typed bytes of the current
// batch. Done never goes back: a batch the fast path refused after
// reporting part of it reports no less while the precise path types it
// again.
func (j *job) report(step string, typed int64) {
	done := max(min(j.prog.base+typed, j.prog.total), min(j.prog.shown, j.prog.total))
	j.prog.shown = done
	j.d.Report(layers.Progress{Step: step, Unit: layers.UnitBytes, Done: done, Total: j.prog.total, Rows: j.prog.rows})
}

// watchTyping runs fn, a statement typing size bytes of raw objects after
// typed bytes of the current batch, and reports the part of the size
// DuckDB says the statement has done while it runs (warehouse.WatchProgress),
// so one large object moves the progress mid-statement. It reports less
// than typed+size: the caller reports the whole once fn has returned.
func (j *job) watchTyping(ctx context.Context, conn *sql.Conn, typed, size int64, fn func() error) error {
	if j.d.Progress == nil || size <= 1 {
		return fn()
	}
	return warehouse.WatchProgress(ctx, conn, j.d.progressEvery, func(f float64) {
		j.report("typing", typed+min(int64(f*float64(size)), size-1))
	}, fn)
}

// planned sets the run's total from the objects pending now: a replan
// after another runner's commit keeps what is done and counts what is
// left.
func (j *job) planned(pending []manifest) {
	var left int64
	for _, m := range pending {
		left += m.Size
	}
	j.prog.total = j.prog.base + left
	j.report("typing", 0)
}

// batchDone counts a committed batch of objects ms into the progress.
func (j *job) batchDone(ms []manifest, st *Stats) {
	for _, m := range ms {
		j.prog.base += m.Size
	}
	j.prog.rows = st.RowsRead
	j.report("typing", 0)
}

// Run promotes every landed raw object of the source src not yet in
// bronze.<source>.
// It returns the accounting of what it committed (Objects == 0: nothing
// new). With on_error: fail, a bad row fails the run before anything is
// committed, naming the file, line and column.
func Run(ctx context.Context, d Deps, src *config.Source) (Stats, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: src.Name}
	stats := Stats{Table: ref.String(), Version: -1}
	if d.Store == nil || d.DB == nil {
		return stats, errors.New("bronze: missing store or database")
	}
	j, err := newJob(d, src)
	if err != nil {
		return stats, err
	}
	// The connection is pinned on first use: a run with nothing new reads
	// the Delta log and the landing index alone, so it does not wait for
	// DuckDB, which `medallion run` starts in the background meanwhile
	// (warehouse.OpenBackground).
	conn := &lazyConn{j: j}
	defer conn.close()

	if err := j.checkSchema(ctx, conn.get); err != nil {
		return stats, err
	}
	if err := j.promote(ctx, conn.get, &stats); err != nil {
		return stats, err
	}
	if stats.Objects > 0 {
		j.log.Info("bronze run", "objects", stats.Objects, "read", stats.RowsRead, "written", stats.Written,
			"quarantined", stats.Quarantined, "dropped", stats.Dropped, "duplicates", stats.Duplicates, "version", stats.Version)
	}
	return stats, nil
}

// newJob checks src, fills in d's defaults and opens the source's bronze
// and quarantine tables: what a run and a replay (replay.go) start from.
func newJob(d Deps, src *config.Source) (*job, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: src.Name}
	plan, err := planSource(src)
	if err != nil {
		return nil, err
	}
	d.Env = d.WithDefaults()
	if d.MaxBatchBytes <= 0 {
		d.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if d.MaxBatchObjects <= 0 {
		d.MaxBatchObjects = DefaultMaxBatchObjects
	}
	if d.MaxLineBytes <= 0 {
		d.MaxLineBytes = DefaultMaxLineBytes
	}
	if d.ScratchDir == "" {
		d.ScratchDir = os.TempDir()
	}
	if d.DiscoveryGrace <= 0 {
		d.DiscoveryGrace = DefaultDiscoveryGrace
	}
	opts, err := d.tableOptions()
	if err != nil {
		return nil, err
	}
	table, _ := d.OpenTableWith(ref.Dir(), opts)
	qtable, _ := d.OpenTableWith(layers.Quarantine().Dir(), opts)
	j := &job{
		d: d, src: src, plan: plan,
		table:    table,
		qtable:   qtable,
		log:      d.Log.With("table", ref.String()),
		maxLine:  d.MaxLineBytes,
		noHeader: !src.CSV.Header,
		cacheDir: filepath.Join(d.ScratchDir, "medallion-bronze-cache"),
	}
	if d.Cache != nil && d.Cache.Dir != "" {
		j.cacheDir = d.Cache.Dir
	}
	return j, nil
}

// conn pins the DuckDB connection a job types on, set up for bronze; call
// done when finished with it.
func (j *job) conn(ctx context.Context) (conn *sql.Conn, done func(), err error) {
	conn, err = j.d.DB.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bronze %s: duckdb connection: %w", j.src.Name, err)
	}
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET partitioned_write_flush_threshold = %d", fastFlushThreshold)); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	return conn, func() {
		conn.ExecContext(context.WithoutCancel(ctx), "RESET partitioned_write_flush_threshold")
		conn.Close()
	}, nil
}

// lazyConn is a job's connection (job.conn), pinned by the first get.
type lazyConn struct {
	j    *job
	conn *sql.Conn
	done func()
}

// get pins the connection on the first call and returns it.
func (l *lazyConn) get(ctx context.Context) (*sql.Conn, error) {
	if l.conn == nil {
		conn, done, err := l.j.conn(ctx)
		if err != nil {
			return nil, err
		}
		l.conn, l.done = conn, done
	}
	return l.conn, nil
}

// close gives a pinned connection back.
func (l *lazyConn) close() {
	if l.done != nil {
		l.done()
	}
}

// pinnedConn is a connection getter for a caller that has pinned its
// connection already.
func pinnedConn(conn *sql.Conn) func(context.Context) (*sql.Conn, error) {
	return func(context.Context) (*sql.Conn, error) { return conn, nil }
}

// maxReplans bounds how often a run starts over after another writer
// promoted objects it had picked: each time, that writer made progress.
const maxReplans = 20

// promote picks the pending objects from a snapshot and commits them batch
// by batch. A commit refused because another runner promoted one of the
// batch's objects first (delta.ErrTxnApplied: that object's rows are in
// bronze already) is not an error: the run picks again from the table as
// it is now, and reports only what it committed itself.
func (j *job) promote(ctx context.Context, pin func(context.Context) (*sql.Conn, error), stats *Stats) error {
	for replans := 0; ; replans++ {
		snap, err := j.head(ctx)
		if err != nil {
			return err
		}
		read := snap
		if snap == nil {
			read = delta.EmptySnapshot()
		} else if snap.Version > stats.Version {
			stats.Version = snap.Version
		}
		start := time.Now()
		pending, err := j.pending(ctx, snap)
		if err != nil {
			return err
		}
		j.log.Debug("bronze: discovered", "pending", len(pending), "took", time.Since(start))
		j.planned(pending)
		if len(pending) == 0 {
			return nil
		}
		conn, err := pin(ctx)
		if err != nil {
			return err
		}
		again, err := j.promoteBatches(ctx, conn, stats, pending, read, replans < maxReplans)
		if err != nil || !again {
			return err
		}
	}
}

// promoteBatches promotes pending in batches, each committed against read.
// It answers again when another runner promoted objects of a batch first
// (and replan allows picking again). An object that cannot be read or does
// not match its manifest stops the run; the objects before it are
// promoted first.
func (j *job) promoteBatches(ctx context.Context, conn *sql.Conn, stats *Stats, pending []manifest, read *delta.Snapshot, replan bool) (again bool, err error) {
	defer func() {
		if j.fetchDir != "" {
			os.RemoveAll(j.fetchDir)
			j.fetchDir = ""
		}
	}()
	batches := j.batches(pending)
	var prefetched func() []hashedObject
	defer func() {
		if prefetched != nil {
			prefetched() // let it finish before the run's files go
		}
	}()
	for bi, batch := range batches {
		j.steps = newStepClock()
		start := time.Now()
		if prefetched != nil {
			j.keepHashed(prefetched())
			prefetched = nil
		}
		var (
			ready []manifest
			ferr  error
		)
		if j.startCheck(batch) {
			ready = batch
		} else {
			ready, ferr = j.fetchObjects(ctx, batch)
		}
		j.steps.mark("fetch_check")
		if ferr != nil && ctx.Err() != nil {
			return false, ferr
		}
		j.log.Debug("bronze: fetched", "objects", len(ready), "took", time.Since(start))
		if len(ready) > 0 {
			if ferr == nil && bi+1 < len(batches) {
				prefetched = j.prefetchHashes(batches[bi+1])
			}
			start = time.Now()
			b, v, err := j.runBatch(ctx, conn, ready, read)
			if cerr := j.awaitCheck(); cerr != nil {
				// The object did not match its manifest: nothing of the
				// batch was written (runBatch waited for the check first),
				// and whatever typing it made of the bytes is beside the point.
				err = cerr
			}
			j.log.Debug("bronze: batch", "objects", len(ready), "took", time.Since(start))
			j.releaseObjects()
			if errors.Is(err, delta.ErrTxnApplied) && replan {
				j.log.Info("bronze: another runner promoted objects of this batch first; picking again", "err", err)
				return true, nil
			}
			if err != nil {
				return false, err
			}
			stats.add(b)
			stats.Version = v
			read = j.disc.committed(ready, read)
			j.batchDone(ready, stats)
		}
		if ferr != nil {
			return false, ferr
		}
	}
	return false, nil
}

// snapshot returns the bronze table's latest snapshot, or nil when there is
// no table yet.
func (j *job) snapshot(ctx context.Context) (*delta.Snapshot, error) {
	return j.load(ctx, j.table.Snapshot)
}

// head is snapshot without the table's files (delta.Table.Head): enough to
// decide what is new (txns, metadata) and to be a commit's Read, without
// decoding the file list, which grows with the table's history. A batch
// commits on a whole snapshot it loads itself (runBatch).
func (j *job) head(ctx context.Context) (*delta.Snapshot, error) {
	return j.load(ctx, j.table.Head)
}

func (j *job) load(ctx context.Context, get func(context.Context) (*delta.Snapshot, error)) (*delta.Snapshot, error) {
	s, err := get(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.table.Dir(), err)
	}
	return s, nil
}

// pending returns the landed objects not yet promoted, ordered by received
// time then key.
func (j *job) pending(ctx context.Context, snap *delta.Snapshot) ([]manifest, error) {
	out, err := j.discover(ctx, snap)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].ReceivedAt.Equal(out[b].ReceivedAt) {
			return out[a].ReceivedAt.Before(out[b].ReceivedAt)
		}
		return out[a].Key < out[b].Key
	})
	return out, nil
}

// batches splits pending objects into batches bounded by bytes and count;
// an object larger than the byte bound is a batch of its own.
func (j *job) batches(ms []manifest) [][]manifest {
	var out [][]manifest
	for _, r := range sizeRuns(ms, j.d.MaxBatchObjects, j.d.MaxBatchBytes) {
		out = append(out, ms[r[0]:r[1]])
	}
	return out
}

// sizeRuns splits ms, in order, into index ranges [from, to) of at most
// maxObjects objects and maxBytes bytes; an object larger than maxBytes is
// a run of its own.
func sizeRuns(ms []manifest, maxObjects int, maxBytes int64) [][2]int {
	var out [][2]int
	from, size := 0, int64(0)
	for i, m := range ms {
		if i > from && (size+m.Size > maxBytes || i-from >= maxObjects) {
			out = append(out, [2]int{from, i})
			from, size = i, 0
		}
		size += m.Size
	}
	if from < len(ms) {
		out = append(out, [2]int{from, len(ms)})
	}
	return out
}

// batchID is deterministic from the batch's raw objects, so a rerun after a
// crash writes identical rows.
func batchID(ms []manifest) string {
	h := sha256.New()
	for _, m := range ms {
		io.WriteString(h, m.SHA256)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// exec runs statements on the job's connection.
func exec(ctx context.Context, conn *sql.Conn, q string, args ...any) error {
	if _, err := conn.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (j *job) tmpName(prefix string) string {
	j.seq++
	return fmt.Sprintf("%s_%d", prefix, j.seq)
}

// Result is the run in the shape every layer reports.
func (s Stats) Result() layers.Result {
	return layers.Result{
		Table:   layers.TableRef{Layer: layers.Bronze, Name: strings.TrimPrefix(s.Table, "bronze.")},
		Summary: s.String(), RowsIn: s.RowsRead, RowsOut: s.Written, Version: s.Version,
		Counters: map[string]int64{layers.CounterQuarantined: s.Quarantined},
	}
}

// Job runs the bronze table of source name of p for the job runner.
func Job(ctx context.Context, env layers.Env, p *config.Pipeline, name string) (layers.Result, error) {
	src, ok := p.Sources[name]
	if !ok {
		return layers.Result{}, fmt.Errorf("bronze: no source %q in the pipeline", name)
	}
	env.PipelineFile = cmp.Or(env.PipelineFile, p.Path)
	st, err := Run(ctx, Deps{Env: env, DiscoveryGrace: p.Bronze.DiscoveryGrace, TxnRetention: p.Bronze.TxnRetention}, src)
	return st.Result(), err
}
