package silver

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// exec runs one statement on the run's connection.
func (j *job) exec(ctx context.Context, what, q string, args ...any) error {
	if _, err := j.conn.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// temp creates (or replaces) a temporary table or view and remembers to drop it.
func (j *job) temp(ctx context.Context, what, kind, name, body string) error {
	j.temps = append(j.temps, kind+" "+name)
	return j.exec(ctx, what, fmt.Sprintf("CREATE OR REPLACE TEMP %s %s AS %s", kind, name, body))
}

// dropTemps drops the temporary tables and views, in one call (a call per
// statement is a fixed cost of every micro-batch); should one statement
// fail, the others are dropped one by one.
func (j *job) dropTemps(ctx context.Context) {
	drops := make([]string, 0, len(j.temps))
	for i := len(j.temps) - 1; i >= 0; i-- {
		kind, name, _ := strings.Cut(j.temps[i], " ")
		drops = append(drops, fmt.Sprintf("DROP %s IF EXISTS %s", kind, name))
	}
	j.temps = nil
	if len(drops) == 0 {
		return
	}
	if _, err := j.conn.ExecContext(ctx, strings.Join(drops, "; ")); err == nil {
		return
	}
	for _, d := range drops {
		j.conn.ExecContext(ctx, d)
	}
}

// describe returns the column names of a query's result, in order, and
// their DuckDB types.
func (j *job) describe(ctx context.Context, what, q string) ([]string, map[string]string, error) {
	cols, err := warehouse.Describe(ctx, j.conn, q)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	names := make([]string, len(cols))
	types := make(map[string]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		types[c.Name] = c.Type
	}
	return names, types, nil
}

// Column names the run adds to bronze rows while reading them.
const (
	colFile = "__medallion_file" // DuckDB's filename column
	colKey  = "__medallion_key"  // the bronze file's lake key
)

// loadInput makes s_fast over the new bronze rows, one row per
// bronze row with the event time in microseconds (__t), the group columns
// and every aggregate's argument (__a<i>). It is what the aggregate reads:
// the Parquet files directly, joined to the file list only when a
// partition column (which lives in the log, not in the files) is used by
// the event time, the group or an argument. The same rows with their
// lineage, s_in, only late rows need: loadLate makes it.
func (j *job) loadInput(ctx context.Context, files []bronzeFile, snap *delta.Snapshot) error {
	sp := j.sp
	in, err := j.inputFiles(ctx, files, snap)
	if err != nil {
		return err
	}
	sel := []string{fmt.Sprintf("epoch_us(%s) AS __t", warehouse.QuoteIdent(sp.eventTime))}
	sel = append(sel, sp.groupCols()...)
	for i, a := range sp.aggs {
		if a.hasArg() {
			sel = append(sel, fmt.Sprintf("(%s) AS %s", a.arg, aggArg(i)))
		}
	}
	j.in, j.inSel = in, sel
	fast := fmt.Sprintf("SELECT * FROM read_parquet(%s, union_by_name = true)", in.list)
	if in.needParts {
		if fast, err = in.joined(sp.from, false); err != nil {
			return err
		}
	}
	// s_fast is read three times (described, counted, aggregated): a view
	// binds the files' metadata each time, so a small batch (a stream
	// micro-batch) reads them once into a table; a large one stays a view,
	// not held in memory.
	kind := "VIEW"
	if inputBytes(files) <= smallInputBytes {
		kind = "TABLE"
	}
	if err := j.temp(ctx, j.readWhat(), kind, "s_fast", fmt.Sprintf("SELECT %s FROM (%s) src", strings.Join(sel, ", "), fast)); err != nil {
		return err
	}
	_, types, err := j.describe(ctx, "describe input", "SELECT * FROM s_fast")
	if err != nil {
		return err
	}
	for i, a := range sp.aggs {
		if err := a.setArgType(sp.name, types[aggArg(i)]); err != nil {
			return err
		}
	}
	return nil
}

// smallInputBytes is the size of bronze files up to which loadInput reads
// the new rows into a table rather than a view.
const smallInputBytes = 4 << 20

// inputBytes is the size of files.
func inputBytes(files []bronzeFile) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// readWhat names the reading of the new bronze rows in errors.
func (j *job) readWhat() string {
	sp := j.sp
	return fmt.Sprintf("read bronze.%s (event_time %q, group_by %v, aggregate arguments)", sp.from, sp.eventTime, sp.groupBy)
}

// loadLineage makes the view s_in: s_fast's columns plus the bronze
// _source_file (__src) and the file's lake key (__file), joining every row
// to the file list by file name. Only late rows need it, so it is made for
// the batches that have some: binding it reads the files' metadata again.
func (j *job) loadLineage(ctx context.Context) error {
	in, sp := j.in, j.sp
	if err := in.describe(ctx, j, sp); err != nil {
		return err
	}
	full, err := in.joined(sp.from, true)
	if err != nil {
		return err
	}
	lineage := "CAST(NULL AS VARCHAR) AS __src"
	if in.inFile["_source_file"] {
		lineage = `CAST("_source_file" AS VARCHAR) AS __src`
	}
	sel := append(slices.Clip(j.inSel), lineage, warehouse.QuoteIdent(colKey)+" AS __file")
	return j.temp(ctx, j.readWhat(), "VIEW", "s_in", fmt.Sprintf("SELECT %s FROM (%s) src", strings.Join(sel, ", "), full))
}

// inputFiles is the new bronze files of a batch as local files, with what
// loadInput needs to know about their columns.
type inputFiles struct {
	schema    *delta.Schema
	files     []bronzeFile
	paths     []string        // local copies, in files order
	list      string          // paths as a SQL list
	partCols  []string        // the table's partition columns
	described bool            // whether describe has set the three below
	inFile    map[string]bool // columns in the files, lower case
	logParts  []string        // partition columns missing from the files
	needParts bool            // whether the aggregate uses one of logParts
}

// inputFiles checks the event time's type, gets local copies of files
// (checked against the log) and, when the aggregate uses a partition
// column, finds which partition columns live only in the log.
func (j *job) inputFiles(ctx context.Context, files []bronzeFile, snap *delta.Snapshot) (*inputFiles, error) {
	sp := j.sp
	schema, err := snap.Schema()
	if err != nil {
		return nil, fmt.Errorf("bronze.%s: %w", sp.from, err)
	}
	// event_time may name a derived column, whose type only bronze knows.
	if f, ok := schema.Field(sp.eventTime); ok && f.Type.Name != delta.TypeTimestamp && f.Type.Name != delta.TypeTimestampNTZ {
		return nil, fmt.Errorf("silver.%s: event_time %q of bronze.%s is %s, not a timestamp: derive it with strptime(...) or a cast to TIMESTAMP", sp.name, sp.eventTime, sp.from, f.Type.Name)
	}
	in := &inputFiles{schema: schema, files: files, paths: make([]string, len(files)), inFile: map[string]bool{},
		partCols: snap.Metadata.PartitionColumns}
	for i, f := range files {
		local, err := j.materialize(ctx, f.Key)
		if err != nil {
			return nil, fmt.Errorf("bronze.%s: %w", sp.from, err)
		}
		if err := delta.CheckLocalFile("bronze."+sp.from, snap.Version, delta.Add{Path: f.Path, Size: f.Size}, local); err != nil {
			return nil, err
		}
		in.paths[i] = local
		j.deps.Report(layers.Progress{Step: "reading", Unit: layers.UnitFiles, Done: int64(i + 1), Total: int64(len(files))})
	}
	in.list = literalList(in.paths)
	// Which columns the files hold matters to s_fast only when the
	// aggregate uses a partition column (the files may lack it); else it
	// is found when s_in needs it, sparing most micro-batches a statement
	// that reads the files' metadata.
	for _, p := range snap.Metadata.PartitionColumns {
		if sp.mentions(p) {
			if err := in.describe(ctx, j, sp); err != nil {
				return nil, err
			}
			break
		}
	}
	return in, nil
}

// describe finds the columns of the files and the partition columns they
// lack (logParts), and whether the aggregate uses one (needParts); once.
func (in *inputFiles) describe(ctx context.Context, j *job, sp *spec) error {
	if in.described {
		return nil
	}
	fileCols, _, err := j.describe(ctx, "read bronze files", fmt.Sprintf("SELECT * FROM read_parquet(%s, union_by_name = true)", in.list))
	if err != nil {
		return fmt.Errorf("bronze.%s: %w", sp.from, err)
	}
	for _, c := range fileCols {
		in.inFile[strings.ToLower(c)] = true
	}
	for _, p := range in.partCols {
		if in.inFile[strings.ToLower(p)] {
			continue
		}
		in.logParts = append(in.logParts, p)
		if sp.mentions(p) {
			in.needParts = true
		}
	}
	in.described = true
	return nil
}

// joined reads the files joined to the file list, which carries each
// file's partition values (a VALUES list, so no statement per file) and,
// withKey, its lake key. from names the bronze table in errors.
func (in *inputFiles) joined(from string, withKey bool) (string, error) {
	src := []string{fmt.Sprintf("r.* EXCLUDE (%s)", warehouse.QuoteIdent(colFile))}
	if withKey {
		src = append(src, "f.__key AS "+warehouse.QuoteIdent(colKey))
	}
	for _, p := range in.logParts {
		f, ok := in.schema.Field(p)
		if !ok {
			return "", fmt.Errorf("bronze.%s: partition column %q is not in the table schema", from, p)
		}
		typ, err := warehouse.DuckType(f.Type)
		if err != nil {
			return "", fmt.Errorf("bronze.%s: partition column %q: %w", from, p, err)
		}
		src = append(src, fmt.Sprintf("CAST(f.%s AS %s) AS %s", warehouse.QuoteIdent("__pv_"+p), typ, warehouse.QuoteIdent(p)))
	}
	rows := make([]string, len(in.files))
	for i, f := range in.files {
		vals := []string{warehouse.QuoteString(in.paths[i]), warehouse.QuoteString(f.Key)}
		for _, p := range in.logParts {
			field, _ := in.schema.Field(p)
			vals = append(vals, "CAST("+warehouse.PartitionLiteral(f.PartitionValues, p, field.Type)+" AS VARCHAR)")
		}
		rows[i] = "(" + strings.Join(vals, ", ") + ")"
	}
	names := []string{"__path", "__key"}
	for _, p := range in.logParts {
		names = append(names, warehouse.QuoteIdent("__pv_"+p))
	}
	return fmt.Sprintf("SELECT %s FROM read_parquet(%s, filename = %s, union_by_name = true) r JOIN (VALUES %s) AS f(%s) ON r.%s = f.__path",
		strings.Join(src, ", "), in.list, warehouse.QuoteString(colFile), strings.Join(rows, ", "), strings.Join(names, ", "), warehouse.QuoteIdent(colFile)), nil
}

// lateCond is the SQL condition on a window start __ws whose window closed
// at or before watermark w0: its pairs are late. Lateness depends on the
// window only, so whole (window, group) aggregates are late or not.
func (j *job) lateCond(w0 *int64) string {
	if w0 == nil {
		return "false"
	}
	return fmt.Sprintf("__ws + %d <= %d", j.sp.size, *w0)
}

// aggregate makes s_agg (this batch's partial aggregates, late or not) and
// s_merged (state + s_part, with __touched set on windows
// that received rows in this batch), and returns how many (row, window)
// pairs were late. The new rows are read once: they are aggregated by window
// and group whether late or not, and the late aggregates set apart (see
// lateCond); the late rows themselves are read again by loadLate only
// when there are some.
func (j *job) aggregate(ctx context.Context, stateKey string, w0 *int64) (int64, error) {
	sp := j.sp
	groupKey := append([]string{"__ws"}, sp.groupCols()...)
	if err := j.temp(ctx, "aggregate new rows", "TABLE", "s_agg",
		fmt.Sprintf("SELECT %s, %s, count(*) AS __pairs FROM (%s) GROUP BY %s",
			strings.Join(groupKey, ", "), strings.Join(sp.partials(), ", "), sp.pairs("s_fast", ""), strings.Join(groupKey, ", "))); err != nil {
		return 0, err
	}
	late := j.lateCond(w0)
	var latePairs int64
	if w0 != nil {
		if err := j.conn.QueryRowContext(ctx, "SELECT coalesce(sum(__pairs), 0) FROM s_agg WHERE "+late).Scan(&latePairs); err != nil {
			return 0, fmt.Errorf("count late rows: %w", err)
		}
	}
	// This batch's partial aggregates of pairs that are not late: a
	// subquery, not a view, which would cost two more statements a batch.
	part := fmt.Sprintf("SELECT * EXCLUDE (__pairs) FROM s_agg WHERE NOT (%s)", late)
	state := "SELECT * FROM (" + part + ") LIMIT 0"
	if stateKey != "" {
		local, err := j.materialize(ctx, stateKey)
		if err != nil {
			return 0, fmt.Errorf("read state: %w", err)
		}
		state = fmt.Sprintf("SELECT * FROM read_parquet(%s)", warehouse.QuoteString(local))
	}
	if err := j.temp(ctx, "merge state", "TABLE", "s_merged",
		fmt.Sprintf("SELECT %s, %s, bool_or(__touched) AS __touched FROM (SELECT *, false AS __touched FROM (%s) UNION ALL BY NAME SELECT *, true AS __touched FROM (%s)) GROUP BY %s",
			strings.Join(groupKey, ", "), strings.Join(sp.merges(), ", "), state, part, strings.Join(groupKey, ", "))); err != nil {
		return 0, err
	}
	return latePairs, nil
}

// loadLate makes s_late: the late (row, window) pairs with their lineage,
// reading the new rows a second time (only rows before w0 can be late).
func (j *job) loadLate(ctx context.Context, w0 int64) error {
	if err := j.loadLineage(ctx); err != nil {
		return err
	}
	return j.temp(ctx, "find late rows", "TABLE", "s_late",
		fmt.Sprintf("SELECT * FROM (%s) WHERE %s", j.sp.pairs("s_in", fmt.Sprintf("__t < %d", w0)), j.lateCond(&w0)))
}

// outputSelect renders merged rows matching cond as output rows.
func (j *job) outputSelect(cond string) string {
	sp := j.sp
	sel := []string{
		tsFromMicros("__ws") + " AS " + warehouse.QuoteIdent(colWindowStart),
		tsFromMicros(fmt.Sprintf("__ws + %d", sp.size)) + " AS " + warehouse.QuoteIdent(colWindowEnd),
	}
	sel = append(sel, sp.groupCols()...)
	sel = append(sel, sp.finals()...)
	return fmt.Sprintf("SELECT %s FROM s_merged WHERE %s", strings.Join(sel, ", "), cond)
}

// outputOrder is the row order of every output file.
func (j *job) outputOrder() string {
	return strings.Join(append([]string{warehouse.QuoteIdent(colWindowStart)}, j.sp.groupCols()...), ", ")
}

// outputSchema is the Delta schema of the silver table.
func (j *job) outputSchema(ctx context.Context) (*delta.Schema, error) {
	names, types, err := j.describe(ctx, "output schema", j.outputSelect("false"))
	if err != nil {
		return nil, err
	}
	s := &delta.Schema{}
	for _, n := range names {
		t, err := warehouse.DeltaType(types[n])
		if err != nil {
			return nil, fmt.Errorf("output column %s: %w", n, err)
		}
		s.Fields = append(s.Fields, delta.Field{Name: n, Type: t, Nullable: true})
	}
	return s, nil
}

// output is what a batch changes in the silver table.
type output struct {
	adds    []delta.Add
	removes []delta.Remove
	rows    int64
}

// writeOutput writes the batch's output file (append: windows that became
// final; update: windows that received rows, merged with the rows of
// rewritten files that stay) and returns the actions for the commit.
func (j *job) writeOutput(ctx context.Context, t *delta.Table, snap *delta.Snapshot, batch string) (output, error) {
	sp := j.sp
	var out output
	var cond string
	if sp.update {
		cond = "__touched"
	} else {
		cond = finalCond(sp, j.w1())
	}
	// The output rows are written straight from s_merged, not kept in a
	// table first: a statement less a batch.
	body := j.outputSelect(cond)
	if sp.update && snap != nil {
		keep, removes, err := j.rewrite(ctx, t, snap)
		if err != nil {
			return out, err
		}
		if keep != "" {
			body += " UNION ALL BY NAME " + keep
		}
		out.removes = removes
	}
	path := fmt.Sprintf("part-%s.parquet", batch)
	local := j.scratchFile(path)
	if err := j.exec(ctx, "write output", fmt.Sprintf("COPY (SELECT * FROM (%s) ORDER BY %s) TO %s (FORMAT parquet, COMPRESSION zstd)",
		body, j.outputOrder(), warehouse.QuoteString(local))); err != nil {
		return out, err
	}
	var n int64
	var minS, maxS, minE, maxE sql.NullInt64
	// One statement for the file's statistics and the output's row count
	// (the file also holds the kept rows of rewritten files).
	if err := j.conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), min(epoch_us(window_start)), max(epoch_us(window_start)), min(epoch_us(window_end)), max(epoch_us(window_end)), (SELECT count(*) FROM s_merged WHERE %s) FROM read_parquet(%s)`, cond, warehouse.QuoteString(local))).
		Scan(&n, &minS, &maxS, &minE, &maxE, &out.rows); err != nil {
		return out, fmt.Errorf("output statistics: %w", err)
	}
	if n == 0 {
		return out, nil
	}
	up, err := lake.PutFile(ctx, j.deps.Store, t.Key(path), local)
	if err != nil {
		return out, err
	}
	out.adds = append(out.adds, delta.Add{
		Path:             path,
		Size:             up.Size,
		Tags:             delta.WithSHA256(nil, up.SHA256),
		ModificationTime: j.now().UnixMilli(),
		DataChange:       true,
		Stats:            fileStats(n, minS.Int64, maxS.Int64, minE.Int64, maxE.Int64),
	})
	return out, nil
}

// w1 is the watermark after the batch, read back from s_merged's context:
// the job keeps it in wAfter.
func (j *job) w1() *int64 { return j.wAfter }

// rewrite finds the files of the table holding rows of windows this batch
// touched (update mode). It returns a query over the rows of those files
// that stay, and the remove actions.
func (j *job) rewrite(ctx context.Context, t *delta.Table, snap *delta.Snapshot) (string, []delta.Remove, error) {
	sp := j.sp
	if err := j.temp(ctx, "touched windows", "TABLE", "s_touched", "SELECT "+sp.keyCols()+" FROM s_merged WHERE __touched"); err != nil {
		return "", nil, err
	}
	var lo, hi sql.NullInt64
	if err := j.conn.QueryRowContext(ctx, "SELECT min(__ws), max(__ws) FROM s_touched").Scan(&lo, &hi); err != nil {
		return "", nil, fmt.Errorf("touched windows: %w", err)
	}
	if !lo.Valid {
		return "", nil, nil
	}
	var cands []delta.Add
	var locals []string
	for _, f := range snap.Files {
		if fmin, fmax, ok := windowStartRange(f.Stats); ok && (fmax < lo.Int64 || fmin > hi.Int64) {
			continue
		}
		local, err := j.materialize(ctx, t.Key(f.Path))
		if err != nil {
			return "", nil, fmt.Errorf("read output file to rewrite: %w", err)
		}
		if err := delta.CheckLocalFile("silver."+sp.name, snap.Version, f, local); err != nil {
			return "", nil, err
		}
		cands = append(cands, f)
		locals = append(locals, local)
	}
	if len(cands) == 0 {
		return "", nil, nil
	}
	match := []string{"t.__ws = epoch_us(o.window_start)"}
	for _, g := range sp.groupCols() {
		match = append(match, fmt.Sprintf("t.%s IS NOT DISTINCT FROM o.%s", g, g))
	}
	on := strings.Join(match, " AND ")
	q := fmt.Sprintf("SELECT DISTINCT o.%s FROM read_parquet(%s, filename = %s) o SEMI JOIN s_touched t ON %s",
		warehouse.QuoteIdent(colFile), literalList(locals), warehouse.QuoteString(colFile), on)
	rows, err := j.conn.QueryContext(ctx, q)
	if err != nil {
		return "", nil, fmt.Errorf("find rows to rewrite: %w", err)
	}
	hit := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return "", nil, fmt.Errorf("find rows to rewrite: %w", err)
		}
		hit[p] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("find rows to rewrite: %w", err)
	}
	var removes []delta.Remove
	var hitLocals []string
	now := j.now().UnixMilli()
	for i, f := range cands {
		if hit[locals[i]] {
			removes = append(removes, f.Remove(now, true))
			hitLocals = append(hitLocals, locals[i])
		}
	}
	if len(removes) == 0 {
		return "", nil, nil
	}
	keep := fmt.Sprintf("SELECT o.* FROM read_parquet(%s) o ANTI JOIN s_touched t ON %s", literalList(hitLocals), on)
	return keep, removes, nil
}

// stateCond is the SQL condition on s_merged rows whose window is not final
// at w1: the state the next batch starts from.
func stateCond(sp *spec, w1 *int64) string {
	if w1 == nil {
		return "true"
	}
	return fmt.Sprintf("__ws + %d > %d", sp.size, *w1)
}

// countMerged counts, in one statement, the rows of s_merged that stay in
// the state after w1 and the windows final at w1.
func (j *job) countMerged(ctx context.Context, w1 *int64) (state, final int64, err error) {
	q := fmt.Sprintf("SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE %s) FROM s_merged", stateCond(j.sp, w1), finalCond(j.sp, w1))
	if err := j.conn.QueryRowContext(ctx, q).Scan(&state, &final); err != nil {
		return 0, 0, fmt.Errorf("count state and final windows: %w", err)
	}
	return state, final, nil
}

// writeState writes the n rows of state (windows that are not final at w1)
// and returns its key ("" when no window is open).
func (j *job) writeState(ctx context.Context, batch string, w1 *int64, n int64) (string, error) {
	sp := j.sp
	if n == 0 {
		return "", nil
	}
	cond := stateCond(sp, w1)
	local := j.scratchFile("state-" + batch + ".parquet")
	if err := j.exec(ctx, "write state", fmt.Sprintf("COPY (SELECT * EXCLUDE (__touched) FROM s_merged WHERE %s ORDER BY %s) TO %s (FORMAT parquet, COMPRESSION zstd)",
		cond, sp.keyCols(), warehouse.QuoteString(local))); err != nil {
		return "", err
	}
	key := j.place.stateDir + batch + ".parquet"
	if _, err := lake.PutFile(ctx, j.deps.Store, key, local); err != nil {
		return "", err
	}
	return key, nil
}

// fileStats renders Delta file statistics for the window columns (µs since
// the epoch), as delta.StatTime writes timestamps: minimums rounded down to
// the millisecond, maximums up, so the bounds stay bounds.
func fileStats(n, minS, maxS, minE, maxE int64) string {
	at := func(us int64, up bool) json.RawMessage { return delta.StatTime(time.UnixMicro(us), up, false) }
	return delta.FileStats{
		NumRecords: n,
		MinValues:  map[string]json.RawMessage{colWindowStart: at(minS, false), colWindowEnd: at(minE, false)},
		MaxValues:  map[string]json.RawMessage{colWindowStart: at(maxS, true), colWindowEnd: at(maxE, true)},
		NullCount:  map[string]int64{colWindowStart: 0, colWindowEnd: 0},
	}.String()
}

// windowStartRange reads the window_start bounds (µs) from file statistics.
func windowStartRange(stats string) (lo, hi int64, ok bool) {
	st, err := delta.ParseStats(stats)
	if err != nil {
		return 0, 0, false
	}
	a, err1 := delta.ParseStatTime(st.MinValues[colWindowStart])
	b, err2 := delta.ParseStatTime(st.MaxValues[colWindowStart])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return a.UnixMicro(), b.UnixMicro(), true
}
