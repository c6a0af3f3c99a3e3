package gold

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

// Incremental state of a moving-average table.
const (
	// maxBucketFiles bounds the files of one bucket: an append that would
	// make more merges the bucket's files and the new rows into one.
	maxBucketFiles = 8

	// stateDir holds the state files, under the table directory; a leading
	// underscore keeps Delta readers and vacuum away from it.
	stateDir = "_state/"

	// Tags of every data file a run adds: the state file written with it
	// and the silver version the run consumed. The table's state is the
	// one named by the files with the highest version.
	tagState   = "medallion.gold.state"
	tagVersion = "medallion.gold.version"
)

// Crash points (see internal/crashpoint) of a gold run.
const (
	CrashFilesWritten = "gold-files-written" // data and state files uploaded, not committed
	CrashCommitted    = "gold-committed"     // committed, superseded state not deleted yet
)

// currentState returns the state file named by the table's newest files
// and the silver version they were computed from; "" when the files do not
// agree or carry none.
func currentState(s *delta.Snapshot) (string, int64) {
	state, version := "", int64(-1)
	for _, f := range s.Files {
		v, err := strconv.ParseInt(f.Tags[tagVersion], 10, 64)
		if err != nil || f.Tags[tagState] == "" {
			continue
		}
		switch {
		case v > version:
			state, version = f.Tags[tagState], v
		case v == version && f.Tags[tagState] != state:
			state = "" // two runs claim the same version: trust neither
		}
	}
	if state == "" {
		return "", -1
	}
	return state, version
}

// stateFile returns a local copy of the state file at the table-relative
// path rel, or "" if it is gone.
func (r *runner) stateFile(ctx context.Context, rel string) (string, error) {
	p, err := r.localFile(ctx, r.tbl.Key(rel))
	if errors.Is(err, lake.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: read state %s: %w", r.ref, rel, err)
	}
	return p, nil
}

// silverDiff is what changed in silver between two versions.
type silverDiff struct {
	added   []delta.Add // files of the new version not in the old
	removed []delta.Add // files of the old version not in the new
}

// silverDiff compares the silver snapshot of in with version from. A
// non-empty reason means the change cannot be worked out (history cleaned
// up, schema changed) and the caller must rebuild in full.
func (r *runner) silverDiff(ctx context.Context, in *input, from int64) (silverDiff, string, error) {
	if d, ok, err := r.appendedSince(ctx, in, from); err != nil || ok {
		return d, "", err
	}
	var d silverDiff
	old, err := in.tbl.SnapshotAt(ctx, from)
	if errors.Is(err, delta.ErrNoVersion) || errors.Is(err, lake.ErrNotExist) {
		return d, fmt.Sprintf("the log of %s no longer has version %d", in.ref, from), nil
	}
	if err != nil {
		return d, "", fmt.Errorf("%s: read %s at version %d: %w", r.ref, in.ref, from, err)
	}
	if old.Metadata.SchemaString != in.snap.Metadata.SchemaString || !slices.Equal(old.Metadata.PartitionColumns, in.snap.Metadata.PartitionColumns) {
		return d, fmt.Sprintf("the schema of %s changed since version %d", in.ref, from), nil
	}
	before := make(map[string]bool, len(old.Files))
	for _, f := range old.Files {
		before[f.Path] = true
	}
	now := make(map[string]bool, len(in.snap.Files))
	for _, f := range in.snap.Files {
		now[f.Path] = true
		if !before[f.Path] {
			d.added = append(d.added, f)
		}
	}
	for _, f := range old.Files {
		if !now[f.Path] {
			d.removed = append(d.removed, f)
		}
	}
	return d, "", nil
}

// appendedSince is silverDiff's fast path, read from the commits after
// from (delta.Table.Changes) instead of the snapshot at from: when those
// commits only appended files, the diff is those files, listed in the
// order of the current snapshot. ok is false when the commits did anything
// else (removed or rewrote files, changed metadata) or are no longer in
// the log: the caller compares snapshots then.
func (r *runner) appendedSince(ctx context.Context, in *input, from int64) (d silverDiff, ok bool, err error) {
	d.added, ok, err = in.tbl.AppendedSince(ctx, from, in.snap)
	if err != nil {
		return d, false, fmt.Errorf("%s: read the log of %s since version %d: %w", r.ref, in.ref, from, err)
	}
	return d, ok, nil
}

// appendFallback says why appendMA did not append.
type appendFallback struct {
	empty   bool   // the added files hold no rows: nothing to do
	full    string // why the whole table must be rebuilt
	buckets []int  // else: recompute these buckets ...
	reason  string // ... for this reason
}

// appendMA computes the moving average of the rows of the silver files
// added since the last run, continuing each partition from its tail in the
// state file, and writes them as one new file per bucket (merging a
// bucket's files into one when it would have more than maxBucketFiles)
// plus the new state. It appends only when every partition's new rows come
// after the rows already processed (order value greater than the last
// one); otherwise it writes nothing and says which buckets to recompute.
func (r *runner) appendMA(ctx context.Context, in *input, spec *maSpec, gsnap *delta.Snapshot, stateFile string, added []delta.Add) (*maOutput, appendFallback, error) {
	a := &maAppend{in: in, spec: spec, f: newFrame(spec), parts: quoteAll(spec.part), order: warehouse.QuoteIdent(spec.order),
		stateScan: "read_parquet(" + warehouse.QuoteString(stateFile) + ")"}
	a.sparts = a.f.statePartCols()
	if err := r.appendNewRows(ctx, a, added); err != nil || len(a.touched) == 0 {
		return nil, appendFallback{empty: err == nil}, err
	}
	if err := r.appendTails(ctx, a); err != nil {
		return nil, appendFallback{}, err
	}
	late, err := r.appendLate(ctx, a)
	if err != nil {
		return nil, appendFallback{}, err
	}
	if late > 0 {
		return nil, appendFallback{buckets: a.touched, reason: fmt.Sprintf("%d partition(s) of %s got rows inside processed windows: %d partition bucket(s) recomputed",
			late, in.ref, len(a.touched))}, nil
	}
	ma, tail, err := r.appendPass(ctx, a)
	if err != nil {
		return nil, appendFallback{}, err
	}
	withMA := fmt.Sprintf("SELECT n.__bucket, %s, m.ma AS %s FROM %s AS n JOIN %s AS b ON b.__nid = n.__nid JOIN %s AS m ON m.__rn = b.__rn",
		strings.Join(prefixAll("n.", quoteAll(spec.out)), ", "), warehouse.QuoteIdent(spec.as), a.nw, a.ab, ma)
	out, schema, cast, counts, err := r.finishMA(ctx, a.f, withMA, "aout")
	if err != nil {
		return nil, appendFallback{}, err
	}
	if schema.String() != gsnap.Metadata.SchemaString {
		return nil, appendFallback{full: "the output schema differs from the table's"}, nil
	}
	res := &maOutput{schema: schema, buckets: a.touched}
	if err := r.appendFiles(ctx, a, gsnap, res, out, cast, counts); err != nil {
		return nil, appendFallback{}, err
	}
	if res.tail, err = r.appendState(ctx, a, tail); err != nil {
		return nil, appendFallback{}, err
	}
	return res, appendFallback{}, nil
}

// maAppend is what the steps of appendMA share: the spec, its frame, the
// quoted partition columns (of the output and of the state file) and the
// temporary tables made so far.
type maAppend struct {
	in        *input
	spec      *maSpec
	f         maFrame
	parts     []string // quoted partition columns
	sparts    []string // partition columns of the state file
	order     string   // quoted order column
	stateScan string   // the state file as a relation
	groups    string   // the partitions with new rows
	touched   []int    // the buckets with new rows
	nw        string   // the new rows with their bucket, numbered in partition order
	cx        string   // the tails of the partitions with new rows
	ab        string   // context rows then new rows: the pass's input
}

// appendNewRows loads the rows of the added files, with their bucket and
// numbered in partition order, into a.nw; a.touched stays empty when they
// hold no rows.
func (r *runner) appendNewRows(ctx context.Context, a *maAppend, added []delta.Add) error {
	rel, err := r.relation(ctx, a.in, added)
	if err != nil {
		return err
	}
	nv := r.tempView("new")
	if err := r.exec(ctx, "CREATE TEMP VIEW "+nv+" AS "+rel); err != nil {
		return fmt.Errorf("%s: read %s: %w", r.ref, a.in.ref, err)
	}
	if err := r.probeFlags(ctx, a.spec, nv); err != nil {
		return err
	}
	a.nw = r.tempTable("nw")
	if err := r.exec(ctx, "CREATE TEMP TABLE "+a.nw+" AS SELECT row_number() OVER (ORDER BY "+a.f.partOrder+") AS __nid, * FROM ("+
		a.spec.withBuckets(nv, a.spec.out)+")"); err != nil {
		return fmt.Errorf("%s: read %s: %w", r.ref, a.in.ref, err)
	}
	newBuckets, err := r.bucketCounts(ctx, a.nw)
	if err != nil {
		return err
	}
	a.touched = sortedKeys(newBuckets)
	a.groups = "(SELECT DISTINCT " + strings.Join(a.parts, ", ") + " FROM " + a.nw + ")"
	return nil
}

// appendTails loads the tails of the partitions with new rows from the
// state file into a.cx.
func (r *runner) appendTails(ctx context.Context, a *maAppend) error {
	a.cx = r.tempTable("ctx")
	q := "CREATE TEMP TABLE " + a.cx + " AS SELECT * FROM " + a.stateScan
	if len(a.parts) > 0 {
		q = "CREATE TEMP TABLE " + a.cx + " AS SELECT s.* FROM " + a.stateScan + " AS s SEMI JOIN " + a.groups + " AS k ON " +
			sameGroup("s.", a.sparts, "k.", a.spec.part)
	}
	if err := r.exec(ctx, q); err != nil {
		return fmt.Errorf("%s: read state: %w", r.ref, err)
	}
	return nil
}

// appendLate counts the partitions whose new rows do not all sort after
// their processed rows: every new row needs a non-NULL order value above
// the last one (NULLs sort last).
func (r *runner) appendLate(ctx context.Context, a *maAppend) (int64, error) {
	groupBy, sgroupBy, sel, ssel := "", "", "", ""
	if len(a.parts) > 0 {
		groupBy = " GROUP BY " + strings.Join(a.parts, ", ")
		sgroupBy = " GROUP BY " + strings.Join(quoteAll(a.sparts), ", ")
		sel = strings.Join(a.parts, ", ") + ", "
	}
	if len(a.sparts) > 0 {
		ssel = strings.Join(quoteAll(a.sparts), ", ") + ", "
	}
	check := "SELECT count(*) FROM (SELECT " + sel + "min(" + a.order + ") AS __lo, count(*) - count(" + a.order + ") AS __nulls FROM " + a.nw + groupBy +
		") AS n LEFT JOIN (SELECT " + ssel + "max(__o) FILTER (__last) AS __hi, bool_or(__last AND __o IS NULL) AS __hinull FROM " + a.cx + sgroupBy +
		") AS c ON " + sameGroup("n.", a.spec.part, "c.", a.sparts) +
		" WHERE n.__nulls > 0 OR (c.__hinull IS NOT NULL AND (c.__hinull OR c.__hi IS NULL OR NOT (n.__lo > c.__hi)))"
	var late int64
	if err := r.conn.QueryRowContext(ctx, check).Scan(&late); err != nil {
		return 0, fmt.Errorf("%s: compare new rows with the processed ones: %w", r.ref, err)
	}
	return late, nil
}

// appendPass puts the context rows first (in state order), then the new
// ones, into a.ab and runs the moving-average pass over them.
func (r *runner) appendPass(ctx context.Context, a *maAppend) (ma, tail string, err error) {
	spec := a.spec
	a.ab = r.tempTable("abase")
	ctxSel := []string{"__bucket"}
	newSel := []string{"__bucket"}
	for i, p := range a.parts {
		ctxSel = append(ctxSel, statePart(i))
		newSel = append(newSel, p+" AS "+statePart(i))
	}
	ctxSel = append(ctxSel, "__o", "true AS __ctx", "__seq", "__x", "CAST(NULL AS BIGINT) AS __nid")
	newSel = append(newSel, a.order+" AS __o", "false AS __ctx", "CAST(NULL AS BIGINT) AS __seq",
		"CAST("+warehouse.QuoteIdent(spec.column)+" AS DOUBLE) AS __x", "__nid")
	passOrder := "__ctx DESC, __seq, __nid"
	partClause := ""
	if len(a.sparts) > 0 {
		partClause = "PARTITION BY " + strings.Join(quoteAll(a.sparts), ", ") + " "
		passOrder = strings.Join(quoteAll(a.sparts), ", ") + ", " + passOrder
	}
	q := "CREATE TEMP TABLE " + a.ab + " AS SELECT *, row_number() OVER (ORDER BY " + passOrder + ") AS __rn, row_number() OVER (" +
		partClause + "ORDER BY __ctx DESC, __seq, __nid) = 1 AS __first FROM (SELECT " + strings.Join(ctxSel, ", ") + " FROM " + a.cx +
		" UNION ALL SELECT " + strings.Join(newSel, ", ") + " FROM " + a.nw + ")"
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: moving average input: %w", r.ref, err)
	}
	if r.duckdbRows(spec) {
		return r.sqlRowsPass(ctx, spec, a.ab, a.sparts)
	}
	return r.maPass(ctx, spec, a.ab, true, "__o", "__x", "append")
}

// appendFiles writes one new file per touched bucket, or one merged file
// for a bucket that would otherwise have too many, and uploads them.
func (r *runner) appendFiles(ctx context.Context, a *maAppend, gsnap *delta.Snapshot, res *maOutput, out string, cast []string, counts map[int]int64) error {
	byBucket, _ := filesByBucket(gsnap.Files, a.spec.buckets)
	for _, b := range a.touched {
		var merge []string
		var err error
		rows := counts[b]
		if old := byBucket[b]; len(old)+1 > maxBucketFiles {
			if merge, err = r.localFiles(ctx, r.tbl, r.ref.String(), gsnap.Version, old); err != nil {
				return fmt.Errorf("%s: read bucket %d to merge it: %w", r.ref, b, err)
			}
			n, err := r.fileRows(ctx, old, merge)
			if err != nil {
				return err
			}
			rows += n
			res.removes = append(res.removes, old...)
			res.compacted++
		}
		w, err := r.writeBucket(ctx, a.f, out, cast, b, rows, merge)
		if err != nil {
			return err
		}
		res.files = append(res.files, w)
	}
	return r.uploadAll(ctx, res.files)
}

// appendState writes the new state: the tails just computed and, for the
// partitions without new rows, the old ones.
func (r *runner) appendState(ctx context.Context, a *maAppend, tail string) (string, error) {
	sel := []string{"b.__bucket"}
	for _, p := range a.sparts {
		sel = append(sel, "b."+p)
	}
	sel = append(sel, "b.__o", "s.__x", "s.__seq", "s.__last")
	state := "SELECT " + strings.Join(sel, ", ") + " FROM " + tail + " AS s JOIN " + a.ab + " AS b ON b.__rn = s.__rn"
	if len(a.parts) > 0 {
		state += " UNION ALL BY NAME SELECT s.* FROM " + a.stateScan + " AS s ANTI JOIN " + a.groups + " AS k ON " +
			sameGroup("s.", a.sparts, "k.", a.spec.part)
	}
	return r.writeState(ctx, a.f, state)
}

// fileRows is the number of rows of table files, from their statistics or
// else by counting the local copies.
func (r *runner) fileRows(ctx context.Context, files []delta.Add, local []string) (int64, error) {
	if n, ok := delta.NumRecords(files); ok {
		return n, nil
	}
	quoted := make([]string, len(local))
	for i, p := range local {
		quoted[i] = warehouse.QuoteString(p)
	}
	var c int64
	err := r.conn.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet(["+strings.Join(quoted, ", ")+"])").Scan(&c)
	if err != nil {
		return 0, fmt.Errorf("%s: count rows: %w", r.ref, err)
	}
	return c, nil
}

// sqlRowsPass is maPass for averages DuckDB computes (runner.duckdbRows), over the
// pass input base of appendMA (partition columns sparts, __rn, __ctx, __x).
func (r *runner) sqlRowsPass(ctx context.Context, spec *maSpec, base string, sparts []string) (ma, tail string, err error) {
	p := ""
	if len(sparts) > 0 {
		p = "PARTITION BY " + strings.Join(quoteAll(sparts), ", ") + " "
	}
	ma = r.tempTable("append_ma")
	q := fmt.Sprintf("CREATE TEMP TABLE %s AS SELECT __rn, ma FROM (SELECT __rn, __ctx, CAST(avg(__x) OVER (%sORDER BY __rn ROWS BETWEEN %d PRECEDING AND CURRENT ROW) AS DOUBLE) AS ma FROM %s) WHERE NOT __ctx",
		ma, p, spec.rows-1, base)
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: compute moving average: %w", r.ref, err)
	}
	tail = r.tempTable("append_tail")
	q = fmt.Sprintf("CREATE TEMP TABLE %s AS SELECT __rn, __x, __rn AS __seq, __rk = __cnt AS __last FROM (SELECT __rn, __x, row_number() OVER (%sORDER BY __rn) AS __rk, count(*) OVER (%s) AS __cnt FROM %s) WHERE __cnt - __rk < %d",
		tail, p, p, base, max(spec.rows-1, 1))
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: moving average state: %w", r.ref, err)
	}
	var n int64
	if err := r.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+base+" WHERE NOT __ctx").Scan(&n); err != nil {
		return "", "", fmt.Errorf("%s: count rows: %w", r.ref, err)
	}
	r.rowsIn += n
	return ma, tail, nil
}
