package pgmirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/internal/redact"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

// Sync brings the target of spec up to the latest version of its lake
// table, in one transaction, creating the target table (and its schema)
// when missing and adding columns the lake table gained. See the package
// documentation. Calling it again with no new version changes nothing.
//
// A target that cannot take the lake table as it is (a changed type or
// key) fails with an *IncompatibleError (errors.Is ErrIncompatible) whose
// message says to run Rebuild. Retryable PostgreSQL failures (see
// Retryable) are retried with backoff up to Options.MaxAttempts; other
// errors are returned at once.
func (m *Mirror) Sync(ctx context.Context, spec Spec) (*Result, error) {
	return m.retry(ctx, spec, false)
}

// Rebuild builds the target of spec from the latest version of its lake
// table in a new table and swaps it in for the old one (DROP, RENAME) in
// the same transaction, with the old table's grants: readers keep reading
// the old table until the commit and then see the new one, never an empty
// or missing table. Use it after a change Sync refuses (a column type, the
// key). Views that depend on the old table make it fail; drop and recreate
// them around it.
func (m *Mirror) Rebuild(ctx context.Context, spec Spec) (*Result, error) {
	return m.retry(ctx, spec, true)
}

func (m *Mirror) retry(ctx context.Context, spec Spec, rebuild bool) (*Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		res, err := m.attempt(ctx, spec, rebuild)
		if err == nil {
			res.Attempts = attempt
			return res, nil
		}
		// No error or log line shows the password, whatever PostgreSQL or pgx quoted.
		err = redact.Error(fmt.Errorf("mirror %s: %w", spec, err), m.cfg.Password)
		if !Retryable(err) || attempt >= m.opts.MaxAttempts {
			if Retryable(err) {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return nil, err
		}
		wait := m.opts.backoff(attempt)
		m.log.Warn("retrying after a transient PostgreSQL error", "target", spec.Target(), "attempt", attempt, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("mirror %s: %w", spec, err)
		}
	}
}

// state is a row of medallion_mirror_state.
type state struct {
	source  string
	version int64
}

// attempt is one try of a Sync or Rebuild, on its own connection.
func (m *Mirror) attempt(ctx context.Context, spec Spec, rebuild bool) (_ *Result, err error) {
	res := &Result{Spec: spec, FromVersion: -1, Version: -1}
	tbl := delta.Open(m.deps.Store, spec.Source.Dir())
	if _, err := tbl.LatestVersion(ctx); errors.Is(err, delta.ErrNoTable) {
		res.Mode = ModeNoSource
		return res, nil
	}
	conn, err := pgx.ConnectConfig(ctx, m.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() {
		if err != nil && conn.IsClosed() && ctx.Err() == nil {
			err = &connLostError{err}
		}
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		conn.Close(closeCtx)
		cancel()
	}()
	if err := ensureState(ctx, conn, spec.Schema); err != nil {
		return nil, err
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// One writer per target at a time, across processes: the lock is held
	// until the transaction ends.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "medallion_mirror "+spec.ident().Sanitize()); err != nil {
		return nil, fmt.Errorf("lock %s: %w", spec.Target(), err)
	}
	st, hasState, err := readState(ctx, tx, spec)
	if err != nil {
		return nil, err
	}
	// The lake snapshot is read under the lock, after the state: a
	// concurrent mirror of the same target that recorded a newer version
	// before we locked is then seen, not mistaken for a recreated table.
	to, schema, err := lakeSnapshot(ctx, tbl, spec)
	if err != nil {
		return nil, err
	}
	res.Version, res.SourceCommittedAt = to.Version, to.Timestamp
	if hasState {
		res.FromVersion = st.version
	}
	existing, err := describe(ctx, tx, spec.ident())
	if err != nil {
		return nil, err
	}
	kept := existing
	if rebuild {
		kept = nil // a rebuilt table takes only the columns chosen now
	}
	cols, err := lakeColumns(spec, schema, kept)
	if err != nil {
		return nil, err
	}

	a := &apply{m: m, tx: tx, spec: spec, tbl: tbl, to: to, schema: schema, cols: cols, res: res}
	if rebuild {
		err = a.rebuild(ctx, existing)
	} else {
		var done bool
		done, err = a.sync(ctx, existing, st, hasState)
		if err == nil && done {
			return res, tx.Commit(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := commitState(ctx, tx, spec, to); err != nil {
		return nil, err
	}
	return res, nil
}

// commitState records version to in the state table and commits the
// transaction, passing the crash points on either side of the commit.
func commitState(ctx context.Context, tx pgx.Tx, spec Spec, to *delta.Snapshot) error {
	if err := recordState(ctx, tx, spec, to); err != nil {
		return err
	}
	crashpoint.At(CrashBeforeCommit)
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	crashpoint.At(CrashAfterCommit)
	return nil
}

// lakeSnapshot reads the lake table's current snapshot and its schema.
func lakeSnapshot(ctx context.Context, tbl *delta.Table, spec Spec) (*delta.Snapshot, *delta.Schema, error) {
	to, err := tbl.Snapshot(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read lake table %s: %w", spec.Source, err)
	}
	schema, err := to.Schema()
	if err != nil {
		return nil, nil, fmt.Errorf("lake table %s version %d: %w", spec.Source, to.Version, err)
	}
	return to, schema, nil
}

// recordState records in the state table that the target now mirrors
// version to of its source, in the transaction that changed its rows.
func recordState(ctx context.Context, tx pgx.Tx, spec Spec, to *delta.Snapshot) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s AS s (target, source_table, version, mirrored_at, source_committed_at)
		VALUES ($1, $2, $3, clock_timestamp(), $4)
		ON CONFLICT (target) DO UPDATE SET source_table = EXCLUDED.source_table, version = EXCLUDED.version,
			mirrored_at = EXCLUDED.mirrored_at, source_committed_at = EXCLUDED.source_committed_at`, stateIdent(spec.Schema).Sanitize()),
		spec.Target(), spec.Source.String(), to.Version, nullTime(to.Timestamp)); err != nil {
		return fmt.Errorf("record version %d in %s: %w", to.Version, StateTable, err)
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func stateIdent(schema string) pgx.Identifier { return pgx.Identifier{schema, StateTable} }

// ensureState creates the target's schema and its medallion_mirror_state
// table when missing, in a transaction of its own (under a lock, so that
// concurrent first runs do not collide).
func ensureState(ctx context.Context, conn *pgx.Conn, schema string) error {
	id := stateIdent(schema)
	var haveSchema, haveTable bool
	q := "SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL"
	if err := conn.QueryRow(ctx, q, pgx.Identifier{schema}.Sanitize(), id.Sanitize()).Scan(&haveSchema, &haveTable); err != nil {
		return fmt.Errorf("look up %s: %w", id.Sanitize(), err)
	}
	if haveSchema && haveTable {
		return nil
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "medallion_mirror_state "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("lock schema %s: %w", schema, err)
		}
		if !haveSchema {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
		ddl := "CREATE TABLE IF NOT EXISTS " + id.Sanitize() + ` (
			target text PRIMARY KEY,
			source_table text NOT NULL,
			version bigint NOT NULL,
			mirrored_at timestamptz NOT NULL,
			source_committed_at timestamptz)`
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("create %s: %w", id.Sanitize(), err)
		}
		return nil
	})
}

func readState(ctx context.Context, tx pgx.Tx, spec Spec) (state, bool, error) {
	var st state
	err := tx.QueryRow(ctx, "SELECT source_table, version FROM "+stateIdent(spec.Schema).Sanitize()+" WHERE target = $1",
		spec.Target()).Scan(&st.source, &st.version)
	if errors.Is(err, pgx.ErrNoRows) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("read %s: %w", StateTable, err)
	}
	return st, true, nil
}

// apply is the work of one attempt inside its transaction.
type apply struct {
	m      *Mirror
	tx     pgx.Tx
	spec   Spec
	tbl    *delta.Table
	to     *delta.Snapshot
	schema *delta.Schema
	cols   []column
	res    *Result
}

// sync applies the versions after st to an existing or new target. done
// means the target was already up to date: nothing to record.
func (a *apply) sync(ctx context.Context, existing *pgTable, st state, hasState bool) (done bool, err error) {
	spec, res, to := a.spec, a.res, a.to
	var missing []column
	if existing != nil {
		if missing, err = reconcile(spec, a.cols, existing); err != nil {
			return false, err
		}
		if hasState && st.source != spec.Source.String() {
			return false, incompatible(spec, "it mirrors %s, but the pipeline now mirrors %s into it", st.source, spec.Source)
		}
		if hasState && st.version > to.Version {
			return false, incompatible(spec, "it holds version %d of %s but the lake table's latest version is %d (was the lake table recreated?)",
				st.version, spec.Source, to.Version)
		}
		if hasState && st.version == to.Version && len(missing) == 0 {
			res.Mode = ModeUpToDate
			return true, nil
		}
	}

	var adds, removes []delta.Add
	full := true
	switch {
	case existing == nil:
		res.Mode = ModeFirstLoad
		if hasState {
			res.Mode = ModeFullReload // the table was dropped
			a.m.log.Info("target table is missing; loading it again", "target", spec.Target())
		}
		res.FromVersion = -1
		return false, a.loadNew(ctx, spec.ident(), pkName(spec.Table))
	case !hasState:
		res.Mode = ModeFirstLoad
	default:
		adds, removes, full, err = a.changes(ctx, st.version, missing)
		if err != nil {
			return false, err
		}
		res.Mode = ModeIncremental
		if full {
			res.Mode = ModeFullReload
		}
	}
	for _, c := range missing {
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", spec.ident().Sanitize(), pgx.Identifier{c.pg}.Sanitize(), c.pgType)
		if _, err := a.tx.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("add column %s to %s: %w", c.pg, spec.Target(), err)
		}
		res.AddedColumns = append(res.AddedColumns, c.pg)
	}
	if full {
		return false, a.reload(ctx)
	}
	return false, a.load(ctx, spec.ident(), adds, removes)
}

// directSavepoint is the subtransaction of a direct load: rolled back to
// when the lake table repeats a key, to load through the staging table.
const directSavepoint = "medallion_direct"

// errRepeatedKeys says a direct load found a key twice in the lake table.
var errRepeatedKeys = errors.New("the lake table repeats a key")

// loadNew creates the table id and loads the whole version into it. The
// rows are copied straight into the table, with FREEZE (no hint-bit writes
// by the first reader, no freezing by a later vacuum), and the primary key
// pkName is built after them (one sort, not an index insertion per row);
// when the lake table repeats a key, it is created again with
// its key and loaded through the staging table (the last file wins).
func (a *apply) loadNew(ctx context.Context, id pgx.Identifier, pk string) error {
	create := func(ctx context.Context) error {
		if _, err := a.tx.Exec(ctx, createTableSQL(id, "", a.cols)); err != nil {
			return fmt.Errorf("create table %s: %w", id.Sanitize(), err)
		}
		return nil
	}
	addKey := func(ctx context.Context) error {
		q := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY (%s)", id.Sanitize(), pgx.Identifier{pk}.Sanitize(),
			strings.Join(quoted(keyColumns(a.cols)), ", "))
		if _, err := a.tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("create the primary key of %s: %w", id.Sanitize(), err)
		}
		return nil
	}
	err := a.direct(ctx, id, create, addKey, true)
	if !errors.Is(err, errRepeatedKeys) {
		return err
	}
	if _, err := a.tx.Exec(ctx, createTableSQL(id, pk, a.cols)); err != nil {
		return fmt.Errorf("create table %s: %w", id.Sanitize(), err)
	}
	return a.load(ctx, id, slices.Clone(a.to.Files), nil)
}

// reload replaces every row of the existing target by the whole version:
// truncated, then copied straight into it (its indexes are kept), or
// through the staging table when the lake table repeats a key. TRUNCATE
// holds an exclusive lock until the commit: readers wait for the reloaded
// table, they never see it empty.
func (a *apply) reload(ctx context.Context) error {
	id := a.spec.ident()
	truncate := func(ctx context.Context) error {
		if _, err := a.tx.Exec(ctx, "TRUNCATE "+id.Sanitize()); err != nil {
			return fmt.Errorf("truncate %s for a full load: %w", a.spec.Target(), err)
		}
		return nil
	}
	err := a.direct(ctx, id, truncate, nil, false)
	if !errors.Is(err, errRepeatedKeys) {
		return err
	}
	if err := truncate(ctx); err != nil {
		return err
	}
	return a.load(ctx, id, slices.Clone(a.to.Files), nil)
}

// direct copies the rows of every file of the version into the table id,
// which before (run first) leaves empty, and runs after (if not nil), in a
// subtransaction: when a key repeats (a unique violation), it rolls back
// to before and returns errRepeatedKeys. No staging table, no upsert: an
// empty table has nothing to conflict with. freeze copies with FREEZE,
// which needs a plain table created or truncated by before.
func (a *apply) direct(ctx context.Context, id pgx.Identifier, before, after func(context.Context) error, freeze bool) error {
	tx, res := a.tx, a.res
	if _, err := tx.Exec(ctx, "SAVEPOINT "+directSavepoint); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err := func() error {
		if err := before(ctx); err != nil {
			return err
		}
		adds := sortedFiles(a.to.Files)
		files, err := a.fileSpecs(ctx, adds, a.cols)
		if err != nil {
			return err
		}
		n, err := copyFiles(ctx, tx, a.m.deps.Engine, id, files, a.cols, "", freeze, CrashDuringCopy)
		if err != nil {
			return fmt.Errorf("copy rows of %d files: %w", len(adds), err)
		}
		if after != nil {
			if err := after(ctx); err != nil {
				return err
			}
		}
		res.FilesRead, res.RowsCopied, res.RowsUpserted, res.Direct = len(adds), n, n, true
		return nil
	}()
	if err == nil {
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT "+directSavepoint); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" /* unique_violation */ {
		return err
	}
	if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+directSavepoint); err != nil {
		return fmt.Errorf("roll back the direct load: %w", err)
	}
	a.m.log.Info("the lake table repeats a key; loading through the staging table (the last file wins)",
		"target", a.spec.Target(), "detail", pgErr.Detail)
	res.FilesRead, res.RowsCopied, res.RowsUpserted, res.Direct = 0, 0, 0, false
	return errRepeatedKeys
}

// sortedFiles orders data files by commit (modification time, then path):
// the later file wins when keys repeat.
func sortedFiles(files []delta.Add) []delta.Add {
	files = slices.Clone(files)
	slices.SortFunc(files, func(x, y delta.Add) int {
		return cmp.Or(cmp.Compare(x.ModificationTime, y.ModificationTime), strings.Compare(x.Path, y.Path))
	})
	return files
}

// appendedSince is the fast path of changes, read from the commits after
// from (delta.Table.Changes) instead of the snapshot at from: when they
// only appended files, those are the adds, in the order of the target
// snapshot. ok is false when the commits did anything else (removed or
// rewrote files: a compaction, a rebuild; changed the metadata) or are no
// longer in the log (cleaned up after a checkpoint): changes compares
// snapshots then, as it always did.
func (a *apply) appendedSince(ctx context.Context, from int64) (adds []delta.Add, ok bool, err error) {
	adds, ok, err = a.tbl.AppendedSince(ctx, from, a.to)
	if err != nil {
		return nil, false, fmt.Errorf("read lake table %s log since version %d: %w", a.spec.Source, from, err)
	}
	return adds, ok, nil
}

// changes returns the data files added and removed between version from
// and the target version. full says they cannot be known (the log of from
// or a removed file was cleaned up, or a column the table had at from is
// missing in PostgreSQL): the caller reloads the whole table then.
func (a *apply) changes(ctx context.Context, from int64, missing []column) (adds, removes []delta.Add, full bool, err error) {
	if len(missing) == 0 {
		if adds, ok, err := a.appendedSince(ctx, from); err != nil || ok {
			return adds, nil, false, err
		}
	}
	old, err := a.tbl.SnapshotAt(ctx, from)
	if errors.Is(err, delta.ErrNoVersion) {
		a.m.log.Info("mirrored version is no longer in the lake log; reloading", "target", a.spec.Target(), "version", from)
		return nil, nil, true, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("read lake table %s version %d: %w", a.spec.Source, from, err)
	}
	if len(missing) > 0 {
		if oldSchema, err := old.Schema(); err == nil {
			for _, c := range missing {
				if _, had := oldSchema.Field(c.name); had {
					// Rows already mirrored have values for it in the lake.
					a.m.log.Info("column missing in PostgreSQL; reloading", "target", a.spec.Target(), "column", c.name)
					return nil, nil, true, nil
				}
			}
		}
	}
	same := func(x, y delta.Add) bool {
		return x.Size == y.Size && x.ModificationTime == y.ModificationTime
	}
	before := make(map[string]delta.Add, len(old.Files))
	for _, f := range old.Files {
		before[f.Path] = f
	}
	for _, f := range a.to.Files {
		if o, ok := before[f.Path]; ok && same(o, f) {
			delete(before, f.Path)
			continue
		}
		adds = append(adds, f)
	}
	for _, f := range old.Files {
		if _, gone := before[f.Path]; gone {
			removes = append(removes, f)
		}
	}
	// The rows of removed files are read for their keys: they must still
	// be in the lake (a vacuum may have deleted them).
	for _, f := range removes {
		if _, err := a.m.deps.Store.Stat(ctx, a.tbl.Key(f.Path)); errors.Is(err, lake.ErrNotExist) {
			a.m.log.Info("a removed data file is gone from the lake; reloading", "target", a.spec.Target(), "file", f.Path)
			return nil, nil, true, nil
		} else if err != nil {
			return nil, nil, false, fmt.Errorf("lake table %s: %w", a.spec.Source, err)
		}
	}
	return adds, removes, false, nil
}

// load applies adds and removes to the table into: the keys of rows in
// removed files that no added row has are deleted; added rows are upserted,
// the last file (then the last row of it) winning when a key repeats. It is
// a little over 80 lines on purpose: its statements run in this order in
// one transaction, and reading them in sequence is how to check it.
func (a *apply) load(ctx context.Context, into pgx.Identifier, adds, removes []delta.Add) error {
	res, tx := a.res, a.tx
	adds = sortedFiles(adds)
	keys := keyColumns(a.cols)
	ord := ordColumn(a.cols)

	if len(removes) > 0 {
		if _, err := tx.Exec(ctx, stageSQL("medallion_stage_del", keys, "")); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		files, err := a.fileSpecs(ctx, removes, keys)
		if err != nil {
			return err
		}
		// The crash point is in the copy of rows, not of keys.
		if _, err := copyFiles(ctx, tx, a.m.deps.Engine, pgx.Identifier{"medallion_stage_del"}, files, keys, "", false, ""); err != nil {
			return fmt.Errorf("copy keys of %d removed files: %w", len(removes), err)
		}
	}

	if _, err := tx.Exec(ctx, stageSQL("medallion_stage", a.cols, ord)); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	files, err := a.fileSpecs(ctx, adds, a.cols)
	if err != nil {
		return err
	}
	n, err := copyFiles(ctx, tx, a.m.deps.Engine, pgx.Identifier{"medallion_stage"}, files, a.cols, ord, false, CrashDuringCopy)
	if err != nil {
		return fmt.Errorf("copy rows of %d files: %w", len(adds), err)
	}
	res.FilesRead, res.RowsCopied = len(adds), n

	target := into.Sanitize()
	keyList := strings.Join(quoted(keys), ", ")
	if len(removes) > 0 {
		var on []string
		for _, k := range quoted(keys) {
			on = append(on, "t."+k+" = d."+k)
		}
		q := fmt.Sprintf("DELETE FROM %s AS t USING (SELECT %s FROM medallion_stage_del EXCEPT SELECT %s FROM medallion_stage) AS d WHERE %s",
			target, keyList, keyList, strings.Join(on, " AND "))
		tag, err := tx.Exec(ctx, q)
		if err != nil {
			return fmt.Errorf("delete rows of removed files: %w", err)
		}
		res.RowsDeleted = tag.RowsAffected()
	}
	if n == 0 {
		return nil
	}
	if n > 100_000 {
		// Fresh statistics for the de-duplicating sort and the join.
		if _, err := tx.Exec(ctx, "ANALYZE medallion_stage"); err != nil {
			return fmt.Errorf("analyze staging table: %w", err)
		}
	}
	all := strings.Join(quoted(a.cols), ", ")
	var set, old, excluded []string
	for _, c := range a.cols {
		if c.key {
			continue
		}
		id := pgx.Identifier{c.pg}.Sanitize()
		set = append(set, id+" = EXCLUDED."+id)
		old = append(old, "t."+id)
		excluded = append(excluded, "EXCLUDED."+id)
	}
	onConflict := "DO NOTHING"
	if len(set) > 0 {
		// Rows that did not change are left alone: no dead tuples, no
		// write amplification when a whole partition is recomputed.
		onConflict = fmt.Sprintf("DO UPDATE SET %s WHERE ROW(%s) IS DISTINCT FROM ROW(%s)",
			strings.Join(set, ", "), strings.Join(old, ", "), strings.Join(excluded, ", "))
	}
	q := fmt.Sprintf("INSERT INTO %s AS t (%s) SELECT DISTINCT ON (%s) %s FROM medallion_stage ORDER BY %s, %s DESC ON CONFLICT (%s) %s",
		target, all, keyList, all, keyList, pgx.Identifier{ord}.Sanitize(), keyList, onConflict)
	tag, err := tx.Exec(ctx, q)
	if err != nil {
		return fmt.Errorf("upsert rows into %s: %w", a.spec.Target(), err)
	}
	res.RowsUpserted = tag.RowsAffected()
	return nil
}

// fileSpecs gives DuckDB local copies of data files.
func (a *apply) fileSpecs(ctx context.Context, files []delta.Add, cols []column) ([]warehouse.FileSpec, error) {
	var names []string
	if cols != nil {
		names = make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
	}
	out := make([]warehouse.FileSpec, len(files))
	for i, f := range files {
		if strings.Contains(f.Path, "://") {
			return nil, fmt.Errorf("lake table %s: data file %s is outside the lake (absolute paths are not supported)", a.spec.Source, f.Path)
		}
		p, err := a.m.deps.Cache.Path(ctx, a.m.deps.Store, a.tbl.Key(f.Path), "")
		if err != nil {
			return nil, fmt.Errorf("lake table %s: %w", a.spec.Source, err)
		}
		if err := delta.CheckLocalFile(a.spec.Source.String(), a.to.Version, f, p); err != nil {
			return nil, err
		}
		out[i] = warehouse.FileSpec{Schema: a.schema, PartitionColumns: a.to.Metadata.PartitionColumns, File: f, Path: p, Columns: names}
	}
	return out, nil
}

// stageSQL creates a temporary staging table with the columns cols (and a
// bigint order column when ord is not empty), dropped at commit.
func stageSQL(name string, cols []column, ord string) string {
	defs := make([]string, 0, len(cols)+1)
	for _, c := range cols {
		defs = append(defs, pgx.Identifier{c.pg}.Sanitize()+" "+c.pgType)
	}
	if ord != "" {
		defs = append(defs, pgx.Identifier{ord}.Sanitize()+" bigint")
	}
	return fmt.Sprintf("CREATE TEMP TABLE %s (%s) ON COMMIT DROP", pgx.Identifier{name}.Sanitize(), strings.Join(defs, ", "))
}

// ordColumn is a name for the staging order column that no column has.
func ordColumn(cols []column) string {
	name := "_medallion_ord"
	for slices.ContainsFunc(cols, func(c column) bool { return c.pg == name }) {
		name += "_"
	}
	return name
}

func quoted(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = pgx.Identifier{c.pg}.Sanitize()
	}
	return out
}
