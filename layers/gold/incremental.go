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
	rel, err := r.relation(ctx, in, added)
	if err != nil {
		return nil, appendFallback{}, err
	}
	nv := r.tempView("new")
	if err := r.exec(ctx, "CREATE TEMP VIEW "+nv+" AS "+rel); err != nil {
		return nil, appendFallback{}, fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
	}
	if err := r.probeFlags(ctx, spec, nv); err != nil {
		return nil, appendFallback{}, err
	}
	f := newFrame(spec)
	parts := quoteAll(spec.part)
	sparts := f.statePartCols()
	order := warehouse.QuoteIdent(spec.order)

	// The new rows with their bucket, numbered in partition order.
	nw := r.tempTable("nw")
	if err := r.exec(ctx, "CREATE TEMP TABLE "+nw+" AS SELECT row_number() OVER (ORDER BY "+f.partOrder+") AS __nid, * FROM ("+
		spec.withBuckets(nv, spec.out)+")"); err != nil {
		return nil, appendFallback{}, fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
	}
	newBuckets, err := r.bucketCounts(ctx, nw)
	if err != nil {
		return nil, appendFallback{}, err
	}
	if len(newBuckets) == 0 {
		return nil, appendFallback{empty: true}, nil
	}
	touched := sortedKeys(newBuckets)

	// The tails of the partitions with new rows.
	groups := "(SELECT DISTINCT " + strings.Join(parts, ", ") + " FROM " + nw + ")"
	stateScan := "read_parquet(" + warehouse.QuoteString(stateFile) + ")"
	cx := r.tempTable("ctx")
	q := "CREATE TEMP TABLE " + cx + " AS SELECT * FROM " + stateScan
	if len(parts) > 0 {
		q = "CREATE TEMP TABLE " + cx + " AS SELECT s.* FROM " + stateScan + " AS s SEMI JOIN " + groups + " AS k ON " +
			sameGroup("s.", sparts, "k.", spec.part)
	}
	if err := r.exec(ctx, q); err != nil {
		return nil, appendFallback{}, fmt.Errorf("%s: read state: %w", r.ref, err)
	}

	// Every partition's new rows must sort after its processed rows: a
	// non-NULL order value above the last one (NULLs sort last).
	groupBy := ""
	if len(parts) > 0 {
		groupBy = " GROUP BY " + strings.Join(parts, ", ")
	}
	sgroupBy := ""
	if len(parts) > 0 {
		sgroupBy = " GROUP BY " + strings.Join(quoteAll(sparts), ", ")
	}
	sel := strings.Join(parts, ", ")
	if sel != "" {
		sel += ", "
	}
	ssel := strings.Join(quoteAll(sparts), ", ")
	if ssel != "" {
		ssel += ", "
	}
	check := "SELECT count(*) FROM (SELECT " + sel + "min(" + order + ") AS __lo, count(*) - count(" + order + ") AS __nulls FROM " + nw + groupBy +
		") AS n LEFT JOIN (SELECT " + ssel + "max(__o) FILTER (__last) AS __hi, bool_or(__last AND __o IS NULL) AS __hinull FROM " + cx + sgroupBy +
		") AS c ON " + sameGroup("n.", spec.part, "c.", sparts) +
		" WHERE n.__nulls > 0 OR (c.__hinull IS NOT NULL AND (c.__hinull OR c.__hi IS NULL OR NOT (n.__lo > c.__hi)))"
	var late int64
	if err := r.conn.QueryRowContext(ctx, check).Scan(&late); err != nil {
		return nil, appendFallback{}, fmt.Errorf("%s: compare new rows with the processed ones: %w", r.ref, err)
	}
	if late > 0 {
		return nil, appendFallback{buckets: touched, reason: fmt.Sprintf("%d partition(s) of %s got rows inside processed windows: %d partition bucket(s) recomputed",
			late, in.ref, len(touched))}, nil
	}

	// Context rows first (in state order), then the new ones.
	ab := r.tempTable("abase")
	ctxSel := []string{"__bucket"}
	newSel := []string{"__bucket"}
	for i, p := range parts {
		ctxSel = append(ctxSel, statePart(i))
		newSel = append(newSel, p+" AS "+statePart(i))
	}
	ctxSel = append(ctxSel, "__o", "true AS __ctx", "__seq", "__x", "CAST(NULL AS BIGINT) AS __nid")
	newSel = append(newSel, order+" AS __o", "false AS __ctx", "CAST(NULL AS BIGINT) AS __seq",
		"CAST("+warehouse.QuoteIdent(spec.column)+" AS DOUBLE) AS __x", "__nid")
	passOrder := "__ctx DESC, __seq, __nid"
	partClause := ""
	if len(sparts) > 0 {
		partClause = "PARTITION BY " + strings.Join(quoteAll(sparts), ", ") + " "
		passOrder = strings.Join(quoteAll(sparts), ", ") + ", " + passOrder
	}
	q = "CREATE TEMP TABLE " + ab + " AS SELECT *, row_number() OVER (ORDER BY " + passOrder + ") AS __rn, row_number() OVER (" +
		partClause + "ORDER BY __ctx DESC, __seq, __nid) = 1 AS __first FROM (SELECT " + strings.Join(ctxSel, ", ") + " FROM " + cx +
		" UNION ALL SELECT " + strings.Join(newSel, ", ") + " FROM " + nw + ")"
	if err := r.exec(ctx, q); err != nil {
		return nil, appendFallback{}, fmt.Errorf("%s: moving average input: %w", r.ref, err)
	}
	var ma, tail string
	if r.duckdbRows(spec) {
		ma, tail, err = r.sqlRowsPass(ctx, spec, ab, sparts)
	} else {
		ma, tail, err = r.maPass(ctx, spec, ab, true, "__o", "__x", "append")
	}
	if err != nil {
		return nil, appendFallback{}, err
	}
	withMA := fmt.Sprintf("SELECT n.__bucket, %s, m.ma AS %s FROM %s AS n JOIN %s AS b ON b.__nid = n.__nid JOIN %s AS m ON m.__rn = b.__rn",
		strings.Join(prefixAll("n.", quoteAll(spec.out)), ", "), warehouse.QuoteIdent(spec.as), nw, ab, ma)
	out, schema, cast, counts, err := r.finishMA(ctx, f, withMA, "aout")
	if err != nil {
		return nil, appendFallback{}, err
	}
	if schema.String() != gsnap.Metadata.SchemaString {
		return nil, appendFallback{full: "the output schema differs from the table's"}, nil
	}

	// One new file per touched bucket, or one merged file for a bucket
	// that would otherwise have too many.
	res := &maOutput{schema: schema, buckets: touched}
	byBucket, _ := filesByBucket(gsnap.Files)
	for _, b := range touched {
		var merge []string
		rows := counts[b]
		if old := byBucket[b]; len(old)+1 > maxBucketFiles {
			if merge, err = r.localFiles(ctx, r.tbl, r.ref.String(), gsnap.Version, old); err != nil {
				return nil, appendFallback{}, fmt.Errorf("%s: read bucket %d to merge it: %w", r.ref, b, err)
			}
			n, err := r.fileRows(ctx, old, merge)
			if err != nil {
				return nil, appendFallback{}, err
			}
			rows += n
			res.removes = append(res.removes, old...)
			res.compacted++
		}
		w, err := r.writeBucket(ctx, f, out, cast, b, rows, merge)
		if err != nil {
			return nil, appendFallback{}, err
		}
		res.files = append(res.files, w)
	}
	if err := r.uploadAll(ctx, res.files); err != nil {
		return nil, appendFallback{}, err
	}

	// The new state: the tails just computed and, for the partitions
	// without new rows, the old ones.
	ssel2 := []string{"b.__bucket"}
	for _, p := range sparts {
		ssel2 = append(ssel2, "b."+p)
	}
	ssel2 = append(ssel2, "b.__o", "s.__x", "s.__seq", "s.__last")
	state := "SELECT " + strings.Join(ssel2, ", ") + " FROM " + tail + " AS s JOIN " + ab + " AS b ON b.__rn = s.__rn"
	if len(parts) > 0 {
		state += " UNION ALL BY NAME SELECT s.* FROM " + stateScan + " AS s ANTI JOIN " + groups + " AS k ON " +
			sameGroup("s.", sparts, "k.", spec.part)
	}
	if res.tail, err = r.writeState(ctx, f, state); err != nil {
		return nil, appendFallback{}, err
	}
	return res, appendFallback{}, nil
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
