package bronze

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/warehouse"
)

// Typing a batch of many small objects one statement per object cost about
// 20 ms of CPU an object, nearly all of it DuckDB preparing and running the
// statement, against well under a millisecond to read the object's rows.
// So the NDJSON objects of a batch are read by one reader over the list of
// their files (docs/bronze-batching.md): the reader's filename column,
// exposed as _obj, says which object a row came from, and a join with the
// batch's lineage table (lineageValues) gives each row its object's key
// (_source_file) and received time (_ingested_at).

// Caps on the objects and bytes one statement reads: a batch is already
// bounded (MaxBatchObjects, MaxBatchBytes), these bound a statement even
// when a pipeline raises the batch's bounds.
const (
	maxGroupObjects = 1000
	maxGroupBytes   = 256 << 20
)

// groupChunks splits the objects of a batch (indexes into ms) into runs
// of at most maxGroupObjects objects and maxGroupBytes bytes (an object
// larger than the byte cap runs alone).
func groupChunks(ms []manifest) [][]int {
	var out [][]int
	for _, r := range sizeRuns(ms, maxGroupObjects, maxGroupBytes) {
		idx := make([]int, 0, r[1]-r[0])
		for i := r[0]; i < r[1]; i++ {
			idx = append(idx, i)
		}
		out = append(out, idx)
	}
	return out
}

// fileList renders local paths as a DuckDB list of strings.
func fileList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = warehouse.QuoteString(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// lineageValues is a FROM item mapping each object's local file (as the
// readers' filename column names it) to its key and received time, as
// columns _lin_obj, _lin_file and _lin_at. The key is cast to the batch's
// lineage ENUM where it is selected (groupSelect), once, rather than in
// every row of the list.
func lineageValues(ms []manifest, paths []string) string {
	rows := make([]string, len(ms))
	for i, m := range ms {
		rows[i] = "(" + warehouse.QuoteString(paths[i]) + ", " + warehouse.QuoteString(m.sourceFile()) + ", " +
			warehouse.QuoteString(receivedText(m.ReceivedAt)) + ")"
	}
	return "(VALUES " + strings.Join(rows, ", ") + ") AS _lin(_lin_obj, _lin_file, _lin_at)"
}

// groupSelect selects, with lineage, the rows of typed (a typed query over
// many objects' files, carrying _obj) that where keeps; ms and paths are
// the objects the query reads.
func (j *job) groupSelect(typed string, ms []manifest, paths []string, lin lineage, where string) string {
	if len(ms) == 1 {
		// One object: its lineage is two constants. Derived from each
		// row's file name (substr, strptime, a zone conversion and an
		// ENUM cast per row) it cost about a tenth of the typed read of
		// bench case 2's shape in a probe (1M rows, under load); the reader's file name
		// column, then unused, is not read.
		return j.bronzeSelect("("+typed+") _t", ms[0], lin, where)
	}
	if key, at, ok := derivedLineage(ms, paths); ok {
		return j.bronzeSelectLineage("("+typed+") _t", "CAST("+key+" AS "+lin.sourceType+")", at, lin, where)
	}
	from := "(" + typed + ") _t JOIN " + lineageValues(ms, paths) + " ON _t._obj = _lin._lin_obj"
	return j.bronzeSelectLineage(from, "CAST(_lin._lin_file AS "+lin.sourceType+")", "CAST(_lin._lin_at AS TIMESTAMPTZ)", lin, where)
}

// receivedLayout is the received time at the start of a raw object's file
// name (raw.ObjectKey), to the microsecond that _ingested_at keeps.
const receivedLayout = "20060102T150405.000000"

// derivedLineage returns the SQL expressions of each row's object key and
// received time computed from _obj alone, when that is exact for every
// object of ms: each local file is its key under one directory (a local
// lake's own files), and each key's file name starts with its received
// time, at the same offset. The join with the lineage list then is not
// needed: over 1,000 files it cost a fifth of the fast path's statement.
func derivedLineage(ms []manifest, paths []string) (key, at string, ok bool) {
	if len(ms) == 0 {
		return "", "", false
	}
	root, found := strings.CutSuffix(paths[0], ms[0].Key)
	base := strings.LastIndex(ms[0].Key, "/") + 1
	if !found || base == 0 {
		return "", "", false
	}
	for i, m := range ms {
		if m.Ref != "" || paths[i] != root+m.Key || strings.LastIndex(m.Key, "/")+1 != base || len(m.Key) < base+len(receivedLayout) {
			return "", "", false
		}
		t, err := time.Parse(receivedLayout, m.Key[base:base+len(receivedLayout)])
		if err != nil || !t.Equal(m.ReceivedAt.UTC().Truncate(time.Microsecond)) {
			return "", "", false
		}
	}
	key = fmt.Sprintf("substr(_t._obj, %d)", len(root)+1)
	at = fmt.Sprintf("timezone('UTC', strptime(substr(_t._obj, %d, %d), '%%Y%%m%%dT%%H%%M%%S.%%f'))", len(root)+base+1, len(receivedLayout))
	return key, at, true
}

// receivedText is how a received time is written in SQL text.
func receivedText(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}

// typedPart is part of a precise batch typed by one statement: one object,
// or (paths set) many NDJSON objects read by one reader, their rows in one
// table with column _obj naming each row's file.
type typedPart struct {
	idx   []int       // the part's objects: indexes into the batch
	res   []objResult // by object, as idx
	table string      // temp table of the part's typed rows
	paths []string    // local files of the objects (many-object parts)
}

// typeParts types the objects of a precise batch: NDJSON objects in one
// statement per set of objects with the same keys (typeNDJSONGroup), other
// formats one object a statement (typeObject). Temp tables it created are
// added to *temps even on error.
func (j *job) typeParts(ctx context.Context, conn *sql.Conn, ms []manifest, dir string, temps *[]string) ([]typedPart, error) {
	paths := make([]string, len(ms))
	for i, m := range ms {
		p, err := j.localObject(ctx, m, dir)
		if err != nil {
			return nil, err
		}
		paths[i] = p
	}
	f := strings.ToLower(j.src.Format)
	if len(ms) > 1 && (f == "ndjson" || f == "") {
		var parts []typedPart
		var typed int64
		for _, c := range groupChunks(ms) {
			var size int64
			for _, i := range c {
				size += ms[i].Size
			}
			var ps []typedPart
			err := j.watchTyping(ctx, conn, typed, size, func() (err error) {
				ps, err = j.typeNDJSONGroup(ctx, conn, ms, paths, c, temps)
				return err
			})
			if err != nil {
				return nil, err
			}
			parts = append(parts, ps...)
			typed += size
			j.report("typing", typed)
		}
		return parts, nil
	}
	parts := make([]typedPart, 0, len(ms))
	var typed int64
	for i, m := range ms {
		var res objResult
		err := j.watchTyping(ctx, conn, typed, m.Size, func() (err error) {
			res, err = j.typeObject(ctx, conn, m, paths[i], dir)
			return err
		})
		if res.tableName != "" {
			*temps = append(*temps, res.tableName)
		}
		if err != nil {
			return nil, fmt.Errorf("bronze %s: %s: %w", j.src.Name, m.Key, err)
		}
		parts = append(parts, typedPart{idx: []int{i}, res: []objResult{res}, table: res.tableName})
		typed += m.Size
		j.report("typing", typed)
	}
	return parts, nil
}

// typeNDJSONGroup types the NDJSON objects c (indexes into ms, local files
// paths) as typeObject would each: the keys of every object are found by
// one query, and the objects with the same keys (so the same matching of
// names and the same rescued keys) are typed by one statement over the
// list of their files. Bad rows are counted and located per object (the
// reader's rejects carry the file, and a line's text is looked for in its
// own object only).
func (j *job) typeNDJSONGroup(ctx context.Context, conn *sql.Conn, ms []manifest, paths []string, c []int, temps *[]string) ([]typedPart, error) {
	scans := make(map[int]ndjsonScan, len(c))
	files := make([]string, len(c))
	for k, i := range c {
		sc, err := scanNDJSON(paths[i], j.plan.decimalSources())
		if err != nil {
			return nil, fmt.Errorf("bronze %s: %s: %w", j.src.Name, ms[i].Key, err)
		}
		scans[i] = sc
		files[k] = paths[i]
	}
	keys, ok, err := j.groupKeys(ctx, conn, files)
	if err != nil {
		return nil, err
	}
	if !ok {
		return j.typeEach(ctx, conn, ms, paths, c, temps)
	}
	// Objects by key set, in batch order of their first object.
	var order []string
	sets := map[string][]int{}
	for _, i := range c {
		ks := strings.Join(keys[paths[i]], "\x00")
		if _, ok := sets[ks]; !ok {
			order = append(order, ks)
		}
		sets[ks] = append(sets[ks], i)
	}
	parts := make([]typedPart, 0, len(order))
	for _, ks := range order {
		p, err := j.typeKeySet(ctx, conn, ms, paths, sets[ks], keys[paths[sets[ks][0]]], scans, temps)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// groupKeys returns the sorted top-level keys of the object lines of each
// of files, by file. ok is false on a reader error (an over-long line: the
// typing statement's rejects table catches it, but a key query has none);
// typeObject then finds each object's keys alone, falling back to the
// declared names for the object with the bad line only.
func (j *job) groupKeys(ctx context.Context, conn *sql.Conn, files []string) (map[string][]string, bool, error) {
	out := map[string][]string{}
	rows, err := conn.QueryContext(ctx, "SELECT filename, list(DISTINCT k ORDER BY k) FROM (SELECT filename, unnest(json_keys(line)) AS k FROM "+
		j.linesReaderOf(fileList(files), "", ", filename=true")+
		" WHERE line IS NOT NULL AND json_valid(line) AND (starts_with(line, '{') OR json_type(line) = 'OBJECT')) GROUP BY filename")
	if err != nil {
		j.log.Debug("key discovery failed", "err", err)
		return nil, false, nil
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		var ks []any
		if err := rows.Scan(&f, &ks); err != nil {
			return nil, false, fmt.Errorf("key discovery: %w", err)
		}
		for _, k := range ks {
			if s, ok := k.(string); ok {
				out[f] = append(out[f], s)
			}
		}
		sort.Strings(out[f])
	}
	if err := rows.Err(); err != nil {
		j.log.Debug("key discovery failed", "err", err)
		return nil, false, nil
	}
	return out, true, nil
}

// typeEach types the objects c one statement each (typeObject).
func (j *job) typeEach(ctx context.Context, conn *sql.Conn, ms []manifest, paths []string, c []int, temps *[]string) ([]typedPart, error) {
	parts := make([]typedPart, 0, len(c))
	for _, i := range c {
		res, err := j.typeObject(ctx, conn, ms[i], paths[i], "")
		if res.tableName != "" {
			*temps = append(*temps, res.tableName)
		}
		if err != nil {
			return nil, fmt.Errorf("bronze %s: %s: %w", j.src.Name, ms[i].Key, err)
		}
		parts = append(parts, typedPart{idx: []int{i}, res: []objResult{res}, table: res.tableName})
	}
	return parts, nil
}

// typeKeySet types the NDJSON objects set (indexes into ms; all with the
// top-level keys keys) by one statement into one temp table, and counts,
// reads the rejects of and locates the bad rows of each object.
func (j *job) typeKeySet(ctx context.Context, conn *sql.Conn, ms []manifest, paths []string, set []int, keys []string, scans map[int]ndjsonScan, temps *[]string) (typedPart, error) {
	part := typedPart{idx: set, res: make([]objResult, len(set))}
	files := make([]string, len(set))
	invalid := map[string]map[string]string{}
	for k, i := range set {
		files[k] = paths[i]
		if len(scans[i].invalid) > 0 {
			invalid[paths[i]] = scans[i].invalid
		}
	}
	in, rescued, structure, resc := j.ndjsonKeyPlan(keys)
	rej := j.tmpName("rej")
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+rej+"; DROP TABLE IF EXISTS "+rej+"_scan; DROP TABLE IF EXISTS "+rej+"_json")
	lines, strict := j.linesReaderOf(fileList(files), rej, ", filename=true"), ""
	if len(invalid) > 0 {
		tbl := rej + "_json"
		if err := invalidFileLinesTable(ctx, conn, tbl, invalid); err != nil {
			return part, err
		}
		lines = "(SELECT l.line, l.filename, b.reason AS strict_err FROM " + lines + " l LEFT JOIN " + tbl +
			" b ON l.filename = b.file AND rtrim(l.line, chr(13)) = b.line)"
		strict = " WHEN strict_err IS NOT NULL THEN strict_err"
	}
	src := ndjsonFrom("(SELECT *, filename AS _obj FROM "+lines+")", strict, structure, resc, ", _obj")
	part.table = j.tmpName("objs")
	*temps = append(*temps, part.table)
	q := j.plan.typedQueryPass(src, in, ", _obj")
	if err := exec(ctx, conn, "CREATE TEMP TABLE "+part.table+" AS SELECT * EXCLUDE (_line), CASE WHEN _err IS NOT NULL THEN _line END AS _line FROM ("+q+")"); err != nil {
		return part, err
	}
	part.paths = files
	counts, err := groupCounts(ctx, conn, "SELECT _obj, count(*), count(_err) FROM "+part.table+" GROUP BY _obj")
	if err != nil {
		return part, err
	}
	rejs := rejectsByFile(rej)
	rejCounts, err := groupCounts(ctx, conn, "SELECT file_path, count(DISTINCT line), 0 FROM "+rejs+" GROUP BY file_path")
	if err != nil {
		rejCounts = map[string][2]int64{} // no rejects table: the reader rejected nothing
	}
	var located map[string]map[string][]pendingBad
	if j.src.OnError != "drop" {
		// The bad rows of every object of the part, by one query.
		located, err = badLines(ctx, conn, "SELECT _obj, _line, _err FROM "+part.table+" WHERE _err IS NOT NULL")
		if err != nil {
			return part, err
		}
	}
	for k, i := range set {
		res := &part.res[k]
		res.rescued = rescued
		res.blank = scans[i].blank
		n, nr := counts[files[k]], rejCounts[files[k]]
		res.good = n[0] - n[1]
		res.read = n[0] + nr[0] + res.blank
		res.badCount = n[1] + nr[0]
		if res.badCount == 0 || j.src.OnError == "drop" {
			continue
		}
		if nr[0] > 0 {
			rejected, err := readRejects(ctx, conn, "(SELECT * FROM "+rejs+" WHERE file_path = "+warehouse.QuoteString(files[k])+")", j.maxLine, nil)
			if err != nil {
				return part, err
			}
			res.bad = append(res.bad, rejected...)
		}
		if n[1] > 0 {
			found, err := locateLines(files[k], located[files[k]], nil)
			if err != nil {
				return part, fmt.Errorf("bronze %s: %s: %w", j.src.Name, ms[i].Key, err)
			}
			res.bad = append(res.bad, found...)
		}
		sort.SliceStable(res.bad, func(a, b int) bool { return res.bad[a].line < res.bad[b].line })
		if len(res.bad) > 0 {
			res.firstBad = &res.bad[0]
		}
	}
	return part, nil
}

// rejectsByFile is the reader rejects of the rejects table rej with the
// file each came from (column file_path).
func rejectsByFile(rej string) string {
	return "(SELECT s.file_path, r.* FROM " + rej + " r JOIN " + rej + "_scan s ON r.scan_id = s.scan_id AND r.file_id = s.file_id)"
}

// groupCounts runs q (a key and two counts a row) into a map.
func groupCounts(ctx context.Context, conn *sql.Conn, q string) (map[string][2]int64, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][2]int64{}
	for rows.Next() {
		var k string
		var a, b int64
		if err := rows.Scan(&k, &a, &b); err != nil {
			return nil, err
		}
		out[k] = [2]int64{a, b}
	}
	return out, rows.Err()
}

// invalidFileLinesTable is invalidLinesTable for many files: the lines
// scanNDJSON refused (by file, then text) as a temp table (file, line,
// reason).
func invalidFileLinesTable(ctx context.Context, conn *sql.Conn, name string, invalid map[string]map[string]string) error {
	ins, err := newValuesTable(ctx, conn, name, "file VARCHAR, line VARCHAR, reason VARCHAR")
	if err != nil {
		return err
	}
	for file, lines := range invalid {
		for line, reason := range lines {
			if err := ins.add(file, line, reason); err != nil {
				return err
			}
		}
	}
	return ins.flush()
}

// partSelect selects the good rows of a typed part with lineage.
func (j *job) partSelect(part typedPart, ms []manifest, lin lineage) string {
	if part.paths == nil {
		return j.bronzeSelect(part.table, ms[part.idx[0]], lin, "_err IS NULL")
	}
	pms := make([]manifest, len(part.idx))
	for k, i := range part.idx {
		pms[k] = ms[i]
	}
	return j.groupSelect("SELECT * FROM "+part.table, pms, part.paths, lin, "_err IS NULL")
}

// csvObject is a CSV object of a fast-path batch with its FROM item
// (csvSource) and inputs.
type csvObject struct {
	m    manifest
	path string
	src  string
	in   []colInput
}

// csvFastSelects is the fast path's typed and checked rows of CSV objects,
// with lineage: one read_csv over the list of files for each set of
// objects whose FROM items differ only by the file (the same header, so
// the same columns, name matching, rescued names and delimiter hint).
func (j *job) csvFastSelects(objs []csvObject, lin lineage) []string {
	const where = "CASE WHEN _err IS NULL THEN true ELSE error(_err) END"
	const files = "\x00files\x00"
	var order []string
	sets := map[string][]csvObject{}
	var sels []string
	for _, o := range objs {
		reader := "read_csv(" + warehouse.QuoteString(o.path) + ", "
		if strings.Count(o.src, reader) != 1 {
			// An empty object has no reader: alone.
			sels = append(sels, j.bronzeSelect("("+j.plan.typedQuery(o.src, o.in)+")", o.m, lin, where))
			continue
		}
		k := strings.Replace(o.src, reader, "read_csv("+files+", ", 1) + fmt.Sprint(o.in)
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], o)
	}
	for _, k := range order {
		set := sets[k]
		for start := 0; start < len(set); start += maxGroupObjects {
			part := set[start:min(start+maxGroupObjects, len(set))]
			ms, paths := make([]manifest, len(part)), make([]string, len(part))
			for i, o := range part {
				ms[i], paths[i] = o.m, o.path
			}
			src := strings.Replace(part[0].src, "read_csv("+warehouse.QuoteString(part[0].path)+", ", "read_csv("+fileList(paths)+", filename=true, ", 1)
			src = "(SELECT *, filename AS _obj FROM " + src + ")"
			sels = append(sels, j.groupSelect(j.plan.typedQueryPass(src, part[0].in, ", _obj"), ms, paths, lin, where))
		}
	}
	return sels
}
