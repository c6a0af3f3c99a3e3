// Package silver turns bronze rows into event-time windowed aggregates with
// watermarks, with the semantics of Spark Structured Streaming's
// withWatermark + window: each Run is one micro-batch followed by its
// no-data batch.
//
// # Input
//
// A silver table silver/<name> records in a Delta txn action (appId
// "silver/<name>") the bronze version it has consumed. A run reads the files
// that bronze versions (consumed, latest] added with dataChange=true (a
// compaction's rewritten files carry dataChange=false and are skipped).
//
// # Windows
//
// Tumbling windows (size) start at multiples of size since the Unix epoch;
// hopping windows (size, slide) start at every multiple s of slide with
// s <= t < s+size, so one row can fall in several windows. All window math
// is done on microseconds since the epoch (UTC).
//
// # Watermark
//
// W0, the watermark at the start of a run, is the largest event time seen by
// earlier runs minus the watermark delay (none before the first event). A
// (row, window) pair is late when window_end <= W0: it is not applied and
// goes to silver._late instead. After the batch, the largest event time
// includes this run's rows (late ones too), and W1 = max(W0, max - delay).
// A window is final when window_end <= W1.
//
//   - append: every window that became final in this run is written once;
//     windows are never rewritten.
//   - update: every window that received rows in this run is written with its
//     current value, replacing the row written before (copy-on-write: the
//     files holding the old rows are rewritten in the same commit). Final
//     windows receive no rows (they would be late), so they are never
//     rewritten.
//
// Partial aggregates of windows that are not final are the state: one
// Parquet file under silver/<name>/_state/, named by the batch, referenced
// from the commit's medallion map together with the largest event time and
// the watermark. State of final windows is dropped. Partials: counts and
// count_if as counts, sum/min/max as themselves, avg as (sum, count),
// approx_count_distinct as the list of distinct values (so it is exact).
//
// # Exactly once
//
// Late rows are committed to silver._late first, with txn "silver/<name>" =
// the bronze version V1 the batch read up to; then the silver commit with the
// same txn. A rerun that finds silver._late ahead of silver redoes exactly the
// batch (consumed, V1] and does not write its late rows again. Every file
// name is derived from V1, and every file content from the input, so a rerun
// after a crash rewrites the same objects.
//
// # Refresh
//
// Refresh (refresh.go) recomputes the table, or the windows of a time
// range, by replaying the batches its history records into a shadow table
// under silver/<name>/_refresh/ with this same code, then swapping the
// rows of the range in with one REFRESH commit that records the replay's
// watermark, state and consumed bronze version.
//
// # Output table
//
// Columns: window_start, window_end (timestamp, UTC), the group_by columns
// (types as in bronze), then the aggregates: count, count_if and
// approx_count_distinct as long; sum of integers as long, of decimals as
// decimal(38,s), of floating point as double; avg as double; min and max as
// the input type. The table is not partitioned; every data file carries Delta
// statistics (min/max window_start and window_end) for pruning.
package silver

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// Deps is what a silver run needs from its caller: the shared layer
// environment (Store and DB are required).
type Deps struct {
	layers.Env
}

// Crash points passed to Env.Crash.
const (
	pointLateCommitted = "late-committed" // silver._late committed, silver not
	pointFilesWritten  = "files-written"  // output and state files uploaded, not committed
)

// Stats describes one run.
type Stats struct {
	Table            string    // silver.<name>
	FromVersion      int64     // bronze version consumed before the run (-1: none)
	ToVersion        int64     // bronze version consumed after the run
	Files            int       // new bronze files read
	RowsIn           int64     // new bronze rows read
	RowsNoEventTime  int64     // rows with a null event time (ignored, as Spark does)
	LatePairs        int64     // (row, window) pairs that were late (written to silver._late unless Redo)
	RowsOut          int64     // window rows written to the silver table
	FilesRemoved     int       // files rewritten away (update mode)
	StateRows        int64     // windows x groups kept in state after the run
	MaxEventTime     time.Time // largest event time seen so far (zero: none)
	WatermarkBefore  time.Time // W0 (zero: none yet)
	WatermarkAfter   time.Time // W1 (zero: none yet)
	Version          int64     // silver table version committed by this run; -1: nothing committed
	LateVersion      int64     // silver._late version committed by this run; -1: nothing committed
	Redo             bool      // the run finished a batch whose late rows a crashed run had committed
	OutputMode       string    // append | update
	WindowsFinalized int64     // windows x groups that became final in this run
}

// AppID is the txn appId under which silver/<name> and silver._late record
// the bronze version consumed.
func AppID(table string) string { return "silver/" + table }

// StateDir is the key prefix of a silver table's state files.
func StateDir(table string) string {
	return layers.TableRef{Layer: layers.Silver, Name: table}.Dir() + "/_state/"
}

// RunAll runs every silver table of the pipeline in declaration order and
// stops at the first error.
func RunAll(ctx context.Context, deps Deps, p *config.Pipeline) ([]Stats, error) {
	var out []Stats
	for _, name := range p.SilverOrder {
		st, err := Run(ctx, deps, p.Silver[name])
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Run processes the bronze rows the silver table cfg has not consumed yet as one
// batch plus its no-data batch (see the package doc), and commits the result.
// A run with no new bronze data commits nothing. Run is safe to repeat after
// a failure or crash at any point: nothing is lost or doubled. Two runs of
// the same table should not overlap (the job runner's lease ensures it); if
// they do, the one whose commit loses (delta.ErrCommitConflict: the other
// consumed the same bronze versions) plans again from the tables as they
// are then, up to layers.MaxCommitAttempts times.
func Run(ctx context.Context, deps Deps, cfg *config.Silver) (Stats, error) {
	table := cfg.Name
	var st Stats
	err := layers.RetryConflicts(ctx, deps.Log, "silver."+table, func(int) error {
		var err error
		st, err = runOnce(ctx, deps, cfg)
		return err
	})
	return st, err
}

func runOnce(ctx context.Context, deps Deps, cfg *config.Silver) (Stats, error) {
	return runAt(ctx, deps, cfg, place{})
}

// place is where a job writes and how far it reads: the zero place is the
// table itself, reading bronze up to its latest version. A refresh replays
// the table's batches into a shadow place (see refresh.go).
type place struct {
	dir      string // table directory; "": silver/<name>
	lateDir  string // late table directory; "": silver._late
	stateDir string // state files prefix; "": StateDir(name)
	upTo     int64  // read bronze up to this version at most; -1: no bound
}

// runAt runs one batch of cfg at place pl.
func runAt(ctx context.Context, deps Deps, cfg *config.Silver, pl place) (Stats, error) {
	if deps.Store == nil || deps.DB == nil {
		return Stats{}, errors.New("silver: Deps needs Store and DB")
	}
	table := cfg.Name
	sp, err := newSpec(cfg)
	if err != nil {
		return Stats{}, err
	}
	deps.Env = deps.WithDefaults()
	j := &job{deps: deps, sp: sp, place: pl}
	// A run of the live table names it in its errors; a refresh's replay
	// into a shadow table leaves that to Refresh, which names it once.
	named := func(err error) error { return fmt.Errorf("silver.%s: %w", table, err) }
	if j.place.dir != "" {
		named = func(err error) error { return err }
	}
	if j.place.dir == "" {
		j.place = place{
			dir:      layers.TableRef{Layer: layers.Silver, Name: table}.Dir(),
			lateDir:  layers.Late().Dir(),
			stateDir: StateDir(table),
			upTo:     -1,
		}
	}
	j.log = deps.Log.With("table", "silver."+table)
	j.now = deps.Now
	j.scratch, err = os.MkdirTemp(deps.ScratchDir, "silver-"+table+"-")
	if err != nil {
		return Stats{}, named(fmt.Errorf("scratch directory: %w", err))
	}
	defer os.RemoveAll(j.scratch)
	cache := deps.LocalFiles(filepath.Join(j.scratch, "objects"))
	j.materialize = func(ctx context.Context, key string) (string, error) {
		return cache.Path(ctx, deps.Store, key, "")
	}
	// j.run pins the connection once it has bronze files to read: a run
	// with nothing new reads Delta logs alone, so it does not wait for
	// DuckDB, which `medallion run` starts in the background meanwhile
	// (warehouse.OpenBackground).
	defer func() {
		if j.conn != nil {
			j.dropTemps(context.WithoutCancel(ctx))
			j.conn.Close()
		}
	}()
	st, err := j.run(ctx)
	if err != nil {
		return st, named(err)
	}
	return st, nil
}

// job is one run of one silver table.
type job struct {
	deps        Deps
	sp          *spec
	place       place
	log         *slog.Logger
	now         func() time.Time
	scratch     string
	materialize func(ctx context.Context, key string) (string, error) // a local file holding a lake object
	conn        *sql.Conn
	temps       []string    // temporary tables and views to drop
	wAfter      *int64      // W1, the watermark after the batch
	in          *inputFiles // the batch's bronze files (loadInput)
	inSel       []string    // s_fast's columns, which s_in starts with
}

// progress is what a silver commit records about the stream (its medallion
// map) besides the txn.
type progress struct {
	maxEvent    *int64 // largest event time seen, µs
	watermark   *int64 // µs
	state       string // state file key; "" when no window is open
	stateRows   int64
	fingerprint string
}

// Keys of the medallion map in silver commits.
const (
	mJob         = "job"
	mMaxEvent    = "max_event_time"
	mWatermark   = "watermark"
	mState       = "state"
	mStateRows   = "state_rows"
	mFingerprint = "fingerprint"
	mBatch       = "batch"
	mBronze      = "bronze_version"
)

// orEmpty is s, or the empty snapshot of a table that did not exist when
// it was read.
func orEmpty(s *delta.Snapshot) *delta.Snapshot {
	if s == nil {
		return delta.EmptySnapshot()
	}
	return s
}

func (j *job) crashPoint(p string) error { return j.deps.CrashPoint(p) }

// batchID names a batch by the bronze version it consumed up to. File names
// derive from it, so a rerun of the same batch writes the same objects.
func batchID(bronzeVersion int64) string { return fmt.Sprintf("%020d", bronzeVersion) }

// readProgress finds the medallion map of the silver commit that recorded
// bronze version consumed: the newest silver commit at or before version
// latest (the snapshot the caller read the txn from). It walks back one
// commit at a time, since only the few commits other writers made after
// it (stream compaction after nearly every micro-batch, maintenance) lie
// between: reading the whole history instead, as it did, cost each
// micro-batch after a compaction time that grew with every commit of the
// day (case 12).
func readProgress(ctx context.Context, t *delta.Table, latest, consumed int64) (progress, error) {
	for v := latest; v >= 0; v-- {
		ci, err := t.CommitInfoAt(ctx, v)
		if errors.Is(err, lake.ErrNotExist) {
			break // cleaned up: older commits are gone too
		}
		if err != nil {
			return progress{}, err
		}
		m := ci.Medallion
		if m == nil || m[mJob] != "silver" || m[mBronze] == nil {
			continue
		}
		if got, ok := asInt(m[mBronze]); !ok || got != consumed {
			return progress{}, fmt.Errorf("%s version %d records bronze version %v but the table's txn says %d: the log was written by something else; delete %s/ to rebuild",
				t.Dir(), ci.Version, m[mBronze], consumed, t.Dir())
		}
		var p progress
		if s, ok := m[mMaxEvent].(string); ok {
			if p.maxEvent, err = parseMicros(s); err != nil {
				return p, fmt.Errorf("%s version %d: %s: %w", t.Dir(), ci.Version, mMaxEvent, err)
			}
		}
		if s, ok := m[mWatermark].(string); ok {
			if p.watermark, err = parseMicros(s); err != nil {
				return p, fmt.Errorf("%s version %d: %s: %w", t.Dir(), ci.Version, mWatermark, err)
			}
		}
		p.state, _ = m[mState].(string)
		p.stateRows, _ = asInt(m[mStateRows])
		p.fingerprint, _ = m[mFingerprint].(string)
		return p, nil
	}
	return progress{}, fmt.Errorf("%s records bronze version %d in its txn but no commit holds the silver progress (watermark, state)", t.Dir(), consumed)
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func formatMicros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

func formatMicrosOr(us *int64, def string) string {
	if us == nil {
		return def
	}
	return formatMicros(*us)
}

func parseMicros(s string) (*int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, err
	}
	us := t.UnixMicro()
	return &us, nil
}

func microsTime(us *int64) time.Time {
	if us == nil {
		return time.Time{}
	}
	return time.UnixMicro(*us).UTC()
}

// cleanState deletes state files other than keep.
func (j *job) cleanState(ctx context.Context, keep string) {
	objs, err := j.deps.Store.List(ctx, j.place.stateDir, "")
	if err != nil {
		j.log.Warn("silver: list old state files", "err", err)
		return
	}
	for _, o := range objs {
		if o.Key == keep {
			continue
		}
		if err := j.deps.Store.Delete(ctx, o.Key); err != nil {
			j.log.Warn("silver: delete old state file", "key", o.Key, "err", err)
		}
	}
}

// scratchFile is a fresh path in the scratch directory.
func (j *job) scratchFile(name string) string { return filepath.Join(j.scratch, name) }

// finalCond is the SQL condition on s_merged rows whose window is final at
// watermark w (none when there is no watermark yet).
func finalCond(sp *spec, w *int64) string {
	if w == nil {
		return "false"
	}
	return fmt.Sprintf("__ws + %d <= %d", sp.size, *w)
}

// String is the one-line summary `medallion run` prints.
func (s Stats) String() string {
	if s.Files == 0 && s.Version < 0 {
		return fmt.Sprintf("%s: nothing new (watermark %s)", s.Table, fmtTime(s.WatermarkAfter))
	}
	out := fmt.Sprintf("%s: %d rows in, %d late, %d windows written, watermark %s -> %s",
		s.Table, s.RowsIn, s.LatePairs, s.RowsOut, fmtTime(s.WatermarkBefore), fmtTime(s.WatermarkAfter))
	if s.Version >= 0 {
		out += fmt.Sprintf(" (v%d)", s.Version)
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// Result is the run in the shape every layer reports. Version is the
// silver table's version after the run when this run committed, else -1.
func (s Stats) Result() layers.Result {
	return layers.Result{
		Table:   layers.TableRef{Layer: layers.Silver, Name: strings.TrimPrefix(s.Table, "silver.")},
		Summary: s.String(), RowsIn: s.RowsIn, RowsOut: s.RowsOut, Version: s.Version,
		Counters: map[string]int64{layers.CounterLate: s.LatePairs}, Watermark: s.WatermarkAfter,
	}
}

// Job runs the silver table name of p for the job runner.
func Job(ctx context.Context, env layers.Env, p *config.Pipeline, name string) (layers.Result, error) {
	cfg, ok := p.Silver[name]
	if !ok {
		return layers.Result{}, fmt.Errorf("silver.%s: no such silver table in the pipeline file", name)
	}
	if cfg.Name == "" {
		c := *cfg
		c.Name = name
		cfg = &c
	}
	env.PipelineFile = cmp.Or(env.PipelineFile, p.Path)
	st, err := Run(ctx, Deps{Env: env}, cfg)
	return st.Result(), err
}
