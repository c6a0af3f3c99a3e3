package bronze

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

// localObject returns a local file holding the raw object, checked against
// its manifest (verify.go): the store's own file for a local lake, else a
// download. Objects are fetched before their batch is typed; one that was
// not is fetched now.
func (j *job) localObject(ctx context.Context, m manifest, _ string) (string, error) {
	if p, ok := j.fetched[m.SHA256]; ok {
		return p, nil
	}
	if _, err := j.fetchObjects(ctx, []manifest{m}); err != nil {
		return "", err
	}
	return j.fetched[m.SHA256], nil
}

// objectSource builds the FROM item that reads one raw object by format,
// filling in res's rescued columns, blank lines and (json) a document
// error. A json object is first converted to NDJSON in dir: path is then
// the converted file and lineMap maps its lines to the object's.
func (j *job) objectSource(ctx context.Context, conn *sql.Conn, m manifest, format, path, dir, rej string, res *objResult) (src string, in []colInput, _ string, lineMap []int64, err error) {
	switch format {
	case "csv":
		src, in, res.rescued, err = j.csvSource(path, rej)
	case "json":
		conv := filepath.Join(dir, "json-"+m.SHA256+".ndjson")
		var jerr *jsonError
		lineMap, jerr, err = convertJSON(path, conv)
		if err != nil {
			return "", nil, "", nil, err
		}
		if jerr != nil {
			res.read++
			res.badCount++
			b := badRow{line: jerr.line, reason: jerr.msg, raw: jerr.raw}
			res.bad = append(res.bad, b)
			res.firstBad = &res.bad[0]
		}
		path = conv
		var sc ndjsonScan
		if dec := j.plan.decimalSources(); dec != nil {
			// The converted lines are valid JSON with no blank line; only
			// decimal numbers need the check.
			if sc, err = scanNDJSON(path, dec); err != nil {
				return "", nil, "", nil, err
			}
		}
		src, in, res.rescued, err = j.ndjsonSource(ctx, conn, path, rej, sc.invalid)
	default:
		var sc ndjsonScan
		if sc, err = scanNDJSON(path, j.plan.decimalSources()); err != nil {
			return "", nil, "", nil, err
		}
		res.blank = sc.blank
		src, in, res.rescued, err = j.ndjsonSource(ctx, conn, path, rej, sc.invalid)
	}
	return src, in, path, lineMap, err
}

// typeObject types one raw object into a temp table (column _err set on bad
// rows) and locates its bad rows.
func (j *job) typeObject(ctx context.Context, conn *sql.Conn, m manifest, path, dir string) (objResult, error) {
	var res objResult
	j.readerCols = nil
	rej := j.tmpName("rej")
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+rej+"; DROP TABLE IF EXISTS "+rej+"_scan; DROP TABLE IF EXISTS "+rej+"_json")
	format := strings.ToLower(j.src.Format)
	// lineMap (json): ndjson line -> source line; path becomes the
	// converted NDJSON file.
	src, in, path, lineMap, err := j.objectSource(ctx, conn, m, format, path, dir, rej, &res)
	if err != nil {
		return res, err
	}
	q := j.plan.typedQuery(src, in)
	res.tableName = j.tmpName("obj")
	if err := exec(ctx, conn, "CREATE TEMP TABLE "+res.tableName+" AS SELECT * EXCLUDE (_line), CASE WHEN _err IS NOT NULL THEN _line END AS _line FROM ("+q+")"); err != nil {
		return res, err
	}
	var total, nbad int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*), count(_err) FROM "+res.tableName).Scan(&total, &nbad); err != nil {
		return res, err
	}
	// Reader rejects: one quarantined row per rejected line.
	rejected, err := readRejects(ctx, conn, rej, j.maxLine, j.readerCols)
	if err != nil {
		return res, err
	}
	res.good = total - nbad
	res.read += total + int64(len(rejected)) + res.blank
	res.badCount += nbad + int64(len(rejected))
	if res.badCount == 0 {
		return res, nil
	}
	if j.src.OnError == "drop" {
		return res, nil
	}
	rejLines := map[int64]bool{}
	for _, r := range rejected {
		if lineMap != nil && r.line >= 1 && int(r.line) <= len(lineMap) {
			r.line = lineMap[r.line-1]
		} else {
			rejLines[r.line] = true
		}
		res.bad = append(res.bad, r)
	}
	if nbad > 0 {
		var located []badRow
		if format == "csv" {
			located, err = j.locateCSVRules(ctx, conn, path, rejLines)
		} else {
			located, err = j.locateNDJSON(ctx, conn, res.tableName, path, lineMap)
		}
		if err != nil {
			return res, err
		}
		res.bad = append(res.bad, located...)
	}
	sort.SliceStable(res.bad, func(a, b int) bool { return res.bad[a].line < res.bad[b].line })
	if len(res.bad) > 0 {
		res.firstBad = &res.bad[0]
	}
	return res, nil
}

// readRejects turns DuckDB's reject table into bad rows, one per line.
func readRejects(ctx context.Context, conn *sql.Conn, rej string, maxLine int, colNames map[string]string) ([]badRow, error) {
	rows, err := conn.QueryContext(ctx, "SELECT line, column_name, error_type::VARCHAR, csv_line, error_message FROM "+rej+" ORDER BY line, column_idx")
	if err != nil {
		// No rejects table: the reader rejected nothing.
		return nil, nil
	}
	defer rows.Close()
	var out []badRow
	seen := map[int64]bool{}
	for rows.Next() {
		var line sql.NullInt64
		var col, typ, raw, msg sql.NullString
		if err := rows.Scan(&line, &col, &typ, &raw, &msg); err != nil {
			return nil, err
		}
		if seen[line.Int64] {
			continue
		}
		seen[line.Int64] = true
		c := col.String
		if n, ok := colNames[c]; ok {
			c = n
		} else if colNames == nil {
			c = "" // the line reader's own column: the whole line is bad, not a field
		}
		if typ.String == "TOO MANY COLUMNS" || typ.String == "LINE SIZE OVER MAXIMUM" || typ.String == "UNQUOTED VALUE" && c == "" {
			c = ""
		}
		out = append(out, badRow{line: line.Int64, column: c, reason: rejectReason(typ.String, msg.String, maxLine), raw: strings.Trim(raw.String, "\r\n")})
	}
	return out, rows.Err()
}

// rejectReason words a DuckDB CSV reader error for users.
func rejectReason(typ, msg string, maxLine int) string {
	switch typ {
	case "CAST":
		// "Error when converting column "val". Could not convert string "xyz" to 'DOUBLE'"
		if i := strings.Index(msg, "Could not convert string "); i >= 0 {
			rest := msg[i+len("Could not convert string "):]
			if k := strings.LastIndex(rest, " to '"); k >= 0 {
				val := rest[:k]
				t := strings.ToLower(strings.Trim(rest[k+len(" to "):], "'"))
				switch {
				case t == "bigint":
					t = "an int64"
				case t == "boolean":
					t = "a bool"
				case strings.HasPrefix(t, "decimal"):
					t = "a " + strings.ReplaceAll(t, " ", "")
				default:
					t = "a " + t
				}
				return val + " is not " + t
			}
		}
		return "cannot convert value: " + msg
	case "MISSING COLUMNS", "TOO MANY COLUMNS":
		what := "too few"
		if typ == "TOO MANY COLUMNS" {
			what = "too many"
		}
		var want, got int
		if _, err := fmt.Sscanf(msg, "Expected Number of Columns: %d Found: %d", &want, &got); err == nil {
			return fmt.Sprintf("%s columns: expected %d, found %d", what, want, got)
		}
		return what + " columns: " + msg
	case "UNQUOTED VALUE":
		return "malformed quoting: a quote inside an unquoted value or an unterminated quote"
	case "INVALID ENCODING":
		return "invalid UTF-8"
	case "LINE SIZE OVER MAXIMUM":
		return fmt.Sprintf("line longer than %d bytes", maxLine)
	case "INVALID STATE":
		return "malformed line: " + msg
	}
	return strings.ToLower(typ) + ": " + msg
}

// splitErr splits an _err value into column and reason.
func splitErr(e string) (string, string) {
	c, r, _ := strings.Cut(e, errSep)
	return c, r
}

// locateNDJSON finds the lines of an NDJSON object's bad rows by their text
// (a second pass over the file, only when there are bad rows).
func (j *job) locateNDJSON(ctx context.Context, conn *sql.Conn, obj, path string, lineMap []int64) ([]badRow, error) {
	want, err := badLines(ctx, conn, "SELECT '', _line, _err FROM "+obj+" WHERE _err IS NOT NULL")
	if err != nil {
		return nil, err
	}
	return locateLines(path, want[""], lineMap)
}

// pendingBad is a bad row whose line is still to be found.
type pendingBad struct {
	col, reason string
}

// badLines runs q (a file, a line's text and its _err a row) and returns
// the bad rows by file, then by text (without a trailing '\r').
func badLines(ctx context.Context, conn *sql.Conn, q string) (map[string]map[string][]pendingBad, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string][]pendingBad{}
	for rows.Next() {
		var file, line, e string
		if err := rows.Scan(&file, &line, &e); err != nil {
			return nil, err
		}
		c, r := splitErr(e)
		k := strings.TrimRight(line, "\r")
		if out[file] == nil {
			out[file] = map[string][]pendingBad{}
		}
		out[file][k] = append(out[file][k], pendingBad{c, r})
	}
	return out, rows.Err()
}

// locateLines finds the lines of the bad rows want (by text) in the file
// at path, in file order for rows of the same text.
func locateLines(path string, want map[string][]pendingBad, lineMap []int64) ([]badRow, error) {
	n := 0
	for _, ps := range want {
		n += len(ps)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]badRow, 0, n)
	err = scanLines(f, func(lineNo int64, text []byte) bool {
		k := strings.TrimRight(string(text), "\r")
		ps := want[k]
		if len(ps) == 0 {
			return true
		}
		p := ps[0]
		want[k] = ps[1:]
		ln := lineNo
		if lineMap != nil && int(lineNo) <= len(lineMap) {
			ln = lineMap[lineNo-1]
		}
		out = append(out, badRow{line: ln, column: p.col, reason: p.reason, raw: k})
		return len(out) < n
	})
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("located %d of %d bad lines (a bug)", len(out), n)
	}
	return out, nil
}

// locateCSVRules finds the line and text of CSV rows that parsed but broke a
// rule: a second DuckDB pass numbers the accepted records in file order, and
// a quote-aware scan maps record ordinals to lines, skipping the header,
// blank lines and the records the reader rejected.
func (j *job) locateCSVRules(ctx context.Context, conn *sql.Conn, path string, rejLines map[int64]bool) ([]badRow, error) {
	rej2 := j.tmpName("rej")
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+rej2+"; DROP TABLE IF EXISTS "+rej2+"_scan")
	src2, in, _, err := j.csvSource(path, rej2)
	if err != nil {
		return nil, err
	}
	// Numbering records in file order needs the scan to keep its order, on
	// this connection only: a plain SET is the engine's global setting, which
	// the jobs running at once on one engine share (run's parallel jobs,
	// serve's stream and scheduler), so one job's reset would let another's
	// numbering run out of order (naming the wrong lines), and every other
	// job would run order-preserving meanwhile. RESET returns the
	// connection to the engine's setting before it goes back to the pool.
	if err := exec(ctx, conn, "SET SESSION preserve_insertion_order = true"); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "RESET SESSION preserve_insertion_order")
	q := "SELECT ord, _err FROM (SELECT row_number() OVER () AS ord, _err FROM (" + j.plan.typedQuery(src2, in) + ")) WHERE _err IS NOT NULL ORDER BY ord"
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
	}
	want := map[int64]string{}
	for rows.Next() {
		var ord int64
		var e string
		if err := rows.Scan(&ord, &e); err != nil {
			rows.Close()
			return nil, err
		}
		want[ord] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	quote := byte('"')
	if j.src.CSV.Quote != "" {
		quote = j.src.CSV.Quote[0]
	}
	var out []badRow
	delim := byte(',')
	if j.src.CSV.Delimiter != "" {
		delim = j.src.CSV.Delimiter[0]
	}
	err = scanCSVRecords(f, quote, delim, j.hasHeader(), rejLines, func(ord, line int64, text []byte) bool {
		e, ok := want[ord]
		if !ok {
			return true
		}
		c, r := splitErr(e)
		out = append(out, badRow{line: line, column: c, reason: r, raw: strings.TrimRight(string(text), "\r\n")})
		return len(out) < len(want)
	})
	if err != nil {
		return nil, err
	}
	if len(out) != len(want) {
		return nil, fmt.Errorf("located %d of %d bad CSV records (a bug)", len(out), len(want))
	}
	return out, nil
}

// dedupe removes duplicate keys within the batch and keys already in bronze.
// rel is the batch's good rows (a table or a parenthesised query) and n
// their count. It returns the relation to write (rel itself when nothing is
// removed, else a temp table) and its row count. Duplicates are looked for
// first with a hash aggregate (and a semi join against existing bronze
// files); the window that picks the first row of each key runs only over
// the rows whose key is duplicated.
func (j *job) dedupe(ctx context.Context, conn *sql.Conn, rel string, n int64, snap *delta.Snapshot, dir string) (string, int64, error) {
	keys := j.src.Dedupe
	if len(keys) == 0 || n == 0 {
		return rel, n, nil
	}
	var k, order []string
	for _, c := range keys {
		k = append(k, warehouse.QuoteIdent(c))
	}
	order = append(order, "_ingested_at", "_source_file")
	for _, c := range j.plan.cols {
		order = append(order, warehouse.QuoteIdent(c.name))
	}
	keyList := strings.Join(k, ", ")
	match := func(a, b string) string {
		var on []string
		for _, c := range k {
			on = append(on, a+"."+c+" IS NOT DISTINCT FROM "+b+"."+c)
		}
		return strings.Join(on, " AND ")
	}
	cur, rows := rel, n
	out := j.tmpName("dedup")
	var hasDup int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+rel+" GROUP BY "+keyList+" HAVING count(*) > 1 LIMIT 1)").Scan(&hasDup); err != nil {
		return cur, 0, err
	}
	if hasDup > 0 {
		dk := j.tmpName("dupkeys")
		defer conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+dk)
		if err := exec(ctx, conn, "CREATE TEMP TABLE "+dk+" AS SELECT "+keyList+" FROM "+rel+" GROUP BY "+keyList+" HAVING count(*) > 1"); err != nil {
			return cur, 0, err
		}
		q := "CREATE TEMP TABLE " + out + " AS SELECT * FROM " + rel + " b WHERE NOT EXISTS (SELECT 1 FROM " + dk + " k WHERE " + match("b", "k") + ")" +
			" UNION ALL SELECT * FROM (SELECT * FROM " + rel + " b WHERE EXISTS (SELECT 1 FROM " + dk + " k WHERE " + match("b", "k") + "))" +
			" QUALIFY row_number() OVER (PARTITION BY " + keyList + " ORDER BY " + strings.Join(order, ", ") + ") = 1"
		if err := exec(ctx, conn, q); err != nil {
			return out, 0, err
		}
		cur = out
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+out).Scan(&rows); err != nil {
			return cur, 0, err
		}
	}
	cond, err := j.existingCond(ctx, conn, batchKeys{rel: cur}, snap, dir)
	if err != nil {
		return cur, 0, err
	}
	if cond != "" {
		var seen int64
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+cur+" d WHERE "+cond).Scan(&seen); err != nil {
			return cur, 0, err
		}
		if seen > 0 {
			q := "DELETE FROM " + out + " d WHERE " + cond
			if cur != out {
				q = "CREATE TEMP TABLE " + out + " AS SELECT * FROM " + cur + " d WHERE NOT " + cond
			}
			if err := exec(ctx, conn, q); err != nil {
				return out, 0, err
			}
			cur = out
			rows -= seen
		}
	}
	return cur, rows, nil
}

// existingCond returns the condition that a row of the batch (aliased d)
// has a dedupe key already in bronze, or "" when no bronze file can hold a
// key of the batch.
func (j *job) existingCond(ctx context.Context, conn *sql.Conn, b batchKeys, snap *delta.Snapshot, dir string) (string, error) {
	files, err := j.existingFiles(ctx, conn, b, snap, dir)
	if err != nil || len(files) == 0 {
		return "", err
	}
	var k, on, list []string
	for _, c := range j.src.Dedupe {
		k = append(k, warehouse.QuoteIdent(c))
		on = append(on, "d."+warehouse.QuoteIdent(c)+" IS NOT DISTINCT FROM e."+warehouse.QuoteIdent(c))
	}
	for _, f := range files {
		list = append(list, warehouse.QuoteString(f))
	}
	hive := ""
	if j.plan.partCol != "" {
		t := j.plan.partType
		if t == "" {
			t = j.partSQLType()
		}
		hive = ", hive_partitioning=true, hive_types={" + warehouse.QuoteString(j.plan.partCol) + ": " + warehouse.QuoteString(t) + "}"
	}
	return "EXISTS (SELECT 1 FROM (SELECT DISTINCT " + strings.Join(k, ", ") +
		" FROM read_parquet([" + strings.Join(list, ", ") + "]" + hive + ")) e WHERE " + strings.Join(on, " AND ") + ")", nil
}

func (j *job) partSQLType() string {
	for _, c := range j.plan.cols {
		if c.name == j.plan.partCol {
			return c.sqlType
		}
	}
	return "VARCHAR"
}

// batchKeys is a batch as the search for bronze files holding its keys
// sees it.
type batchKeys struct {
	// rel is the batch's rows: a table, a parenthesised query or a
	// read_parquet call.
	rel string
	// adds are the batch's files once written (nil before): their
	// partition values and statistics then stand for the rows, with no
	// query.
	adds []delta.Add
	// schema is the Delta schema the adds were written with.
	schema *delta.Schema
}

// existingFiles returns local paths of the bronze files that may hold keys
// of the batch. Files of partitions the batch has no row in are left out
// when the dedupe key determines the partition (it contains the partition
// column, or the timestamp the default partition is derived from); so are
// files whose statistics bound a key column away from the batch's values
// of it (mayMatch). A file without statistics is always read.
func (j *job) existingFiles(ctx context.Context, conn *sql.Conn, b batchKeys, snap *delta.Snapshot, dir string) ([]string, error) {
	if snap == nil || len(snap.Files) == 0 {
		return nil, nil
	}
	parts, err := j.batchPartitions(ctx, conn, b)
	if err != nil {
		return nil, err
	}
	ranges, types, err := j.batchRanges(ctx, conn, b, snap)
	if err != nil {
		return nil, err
	}
	pc := j.plan.partCol
	var out []string
	skipped := 0
	for _, f := range snap.Files {
		if parts != nil && !inPartitions(parts, f.PartitionValues, pc) {
			continue
		}
		if !mayMatch(f.Stats, ranges, types) {
			skipped++
			continue
		}
		key := j.table.Key(f.Path)
		dst, err := j.existingFile(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := delta.CheckLocalFile("bronze."+j.src.Name, snap.Version, f, dst); err != nil {
			return nil, err
		}
		out = append(out, dst)
	}
	j.log.Debug("dedupe: existing files", "read", len(out), "skipped_by_stats", skipped)
	return out, nil
}

// existingFile returns a local copy of the bronze data file key for the
// dedupe: the lake's own file on a local lake, else a download kept under
// the cache directory at the key's own path (data files are immutable, so
// the key is a valid cache key), because the dedupe reads the partition
// value from the path (hive partitioning).
func (j *job) existingFile(ctx context.Context, key string) (string, error) {
	if lp, ok := j.d.Store.(lake.LocalPather); ok {
		return lp.LocalPath(key), nil
	}
	dst := filepath.Join(j.cacheDir, filepath.FromSlash(key))
	if _, err := os.Stat(dst); err == nil || !errors.Is(err, os.ErrNotExist) {
		return dst, err
	}
	return dst, lake.Download(ctx, j.d.Store, key, "", dst)
}

// batchPartitions returns the partition values the batch has rows in, or
// nil when the dedupe key does not determine the partition (any partition
// may hold a key of the batch).
func (j *job) batchPartitions(ctx context.Context, conn *sql.Conn, b batchKeys) (map[string]bool, error) {
	pc := j.plan.partCol
	prunable := false
	for _, k := range j.src.Dedupe {
		if k == pc || (j.plan.partExpr != "" && k == j.plan.firstTS) {
			prunable = true
		}
	}
	if pc == "" || !prunable {
		return nil, nil
	}
	parts := map[string]bool{}
	if b.adds != nil {
		// The adds' values are written as the snapshot's files' were.
		for _, a := range b.adds {
			parts[partitionKey(a.PartitionValues, pc)] = true
		}
		return parts, nil
	}
	expr := warehouse.QuoteIdent(pc)
	if j.plan.partExpr != "" {
		expr = j.plan.partExpr
	}
	t := j.plan.partType
	if t == "" {
		t = j.partSQLType()
	}
	temporal := t == "DATE" || t == "TIMESTAMPTZ"
	rows, err := conn.QueryContext(ctx, "SELECT DISTINCT CAST("+expr+" AS VARCHAR) FROM "+b.rel)
	if err != nil {
		return nil, fmt.Errorf("partitions of the batch: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if !v.Valid || v.String == "" {
			// NULL and the empty string are both null in the log.
			parts[nullPartitionKey] = true
			continue
		}
		if temporal {
			// The adds record dates and timestamps before year 1 so.
			v.String = isoYear(v.String)
		}
		parts[v.String] = true
	}
	return parts, rows.Err()
}

// nullPartitionKey stands for the null partition in a set of partition
// values; no value the log holds equals it (delta reads the legacy
// __HIVE_DEFAULT_PARTITION__ as null).
const nullPartitionKey = delta.HiveNullPartition

// inPartitions reports whether a file with partition values pv may hold
// rows of the partitions in parts. Files medallion wrote before it decoded
// directory names hold the escaped value ("a%2Fb"): such a file is kept
// when either form matches (reading a file too many is only slower).
func inPartitions(parts map[string]bool, pv delta.PartitionValues, pc string) bool {
	k := partitionKey(pv, pc)
	if parts[k] {
		return true
	}
	if strings.Contains(k, "%") {
		if d, err := url.PathUnescape(k); err == nil && (parts[d] || parts[isoYear(d)]) {
			return true
		}
	}
	return false
}

// partitionKey is the key of a file's partition of column pc in a set of
// partition values.
func partitionKey(pv delta.PartitionValues, pc string) string {
	if v, ok := pv.Value(pc); ok {
		return v
	}
	return nullPartitionKey
}

// batchRanges returns the ranges of the batch's dedupe key columns that
// files can be pruned on, with their Delta types: the key columns of a
// type with usable bounds (prunable) that the batch has with the same type
// as the table. From the adds' statistics when the batch is written, else
// with one query over its rows.
func (j *job) batchRanges(ctx context.Context, conn *sql.Conn, b batchKeys, snap *delta.Snapshot) (map[string]keyRange, map[string]delta.DataType, error) {
	tableSchema, err := snap.Schema()
	if err != nil {
		return nil, nil, nil // no bounds: every file is read
	}
	batchTypes := map[string]string{}
	if b.schema != nil {
		for _, f := range b.schema.Fields {
			batchTypes[f.Name] = f.Type.String()
		}
	} else if batchTypes, err = j.relTypes(ctx, conn, b.rel); err != nil {
		return nil, nil, err
	}
	types := map[string]delta.DataType{}
	for _, k := range j.src.Dedupe {
		for _, f := range tableSchema.Fields {
			if f.Name == k && f.Type.IsPrimitive() && prunable(f.Type) && batchTypes[k] == f.Type.String() {
				types[k] = f.Type
			}
		}
	}
	if len(types) == 0 {
		return nil, nil, nil
	}
	if b.adds != nil {
		return addsRanges(b.adds, types), types, nil
	}
	ranges, err := queryRanges(ctx, conn, b.rel, types)
	return ranges, types, err
}

// relTypes returns the Delta types of the columns of rel.
func (j *job) relTypes(ctx context.Context, conn *sql.Conn, rel string) (map[string]string, error) {
	cols, err := warehouse.Describe(ctx, conn, "SELECT * FROM "+rel)
	if err != nil {
		return nil, fmt.Errorf("describe the batch: %w", err)
	}
	out := make(map[string]string, len(cols))
	for _, c := range cols {
		out[c.Name], _ = deltaType(c.Type)
	}
	return out, nil
}

// queryRanges computes the ranges of the key columns of types over rel in
// one query: each column's minimum and maximum (timestamps as microseconds
// since the epoch, the rest as text) and its counts of values and NULLs.
func queryRanges(ctx context.Context, conn *sql.Conn, rel string, types map[string]delta.DataType) (map[string]keyRange, error) {
	cols := make([]string, 0, len(types))
	for c := range types {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	var sel []string
	for _, c := range cols {
		q := warehouse.QuoteIdent(c)
		for _, agg := range []string{"min", "max"} {
			v := agg + "(" + q + ")"
			switch types[c].Name {
			case delta.TypeTimestamp, delta.TypeTimestampNTZ:
				v = "CASE WHEN isfinite(" + v + ") THEN CAST(epoch_us(" + v + ") AS VARCHAR) END"
			default:
				v = "CAST(" + v + " AS VARCHAR)"
			}
			sel = append(sel, v)
		}
		sel = append(sel, "count("+q+")", "count(*) - count("+q+")")
	}
	vals := make([]sql.NullString, 2*len(cols))
	counts := make([]int64, 2*len(cols)) // values, NULLs
	dest := make([]any, 0, 4*len(cols))
	for i := range cols {
		dest = append(dest, &vals[2*i], &vals[2*i+1], &counts[2*i], &counts[2*i+1])
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+rel).Scan(dest...); err != nil {
		return nil, fmt.Errorf("key ranges of the batch: %w", err)
	}
	out := map[string]keyRange{}
	for i, c := range cols {
		lo, hi, n, nulls := vals[2*i], vals[2*i+1], counts[2*i], counts[2*i+1]
		r := keyRange{known: n > 0 || nulls > 0, nulls: nulls > 0}
		if n > 0 {
			// An infinite timestamp has no microseconds: no bound then.
			var ok1, ok2 bool
			r.lo, ok1 = textBound(types[c], lo.String)
			r.hi, ok2 = textBound(types[c], hi.String)
			r.values = true
			r.known = lo.Valid && hi.Valid && ok1 && ok2
		}
		if r.known {
			out[c] = r
		}
	}
	return out, nil
}

// tableMetadata derives the bronze Delta metadata from the typed rows and
// returns the SELECT that writes them (types Delta cannot hold are cast).
func (j *job) tableMetadata(ctx context.Context, conn *sql.Conn, final string) (delta.Metadata, string, error) {
	return j.tableMetadataLike(ctx, conn, final, final)
}

// tableMetadataLike is tableMetadata describing like, a relation with the
// columns and types of final that is cheaper to bind (the fast path's
// query over one object rather than a thousand).
func (j *job) tableMetadataLike(ctx context.Context, conn *sql.Conn, final, like string) (delta.Metadata, string, error) {
	cols, err := warehouse.Describe(ctx, conn, "SELECT * FROM "+like)
	if err != nil {
		return delta.Metadata{}, "", err
	}
	meta, sel := j.tableMetadataCols(final, cols)
	return meta, sel, nil
}

// tableMetadataCols is tableMetadata of final, whose columns are cols.
func (j *job) tableMetadataCols(final string, cols []warehouse.Column) (delta.Metadata, string) {
	schema := &delta.Schema{}
	var sel []string
	for _, c := range cols {
		name := c.Name
		dt, cast := deltaType(c.Type)
		expr := warehouse.QuoteIdent(name)
		if cast != "" {
			expr = "CAST(" + expr + " AS " + cast + ") AS " + warehouse.QuoteIdent(name)
		}
		sel = append(sel, expr)
		schema.Fields = append(schema.Fields, delta.Field{Name: name, Type: delta.Primitive(dt), Nullable: true})
	}
	var partCols []string
	if j.plan.partCol != "" {
		partCols = []string{j.plan.partCol}
		if j.plan.partExpr != "" {
			sel = append(sel, j.plan.partExpr+" AS "+warehouse.QuoteIdent(j.plan.partCol))
			schema.Fields = append(schema.Fields, delta.Field{Name: j.plan.partCol, Type: delta.Primitive(delta.TypeDate), Nullable: true})
		}
	}
	meta := delta.Metadata{Name: j.src.Name, SchemaString: schema.String(), PartitionColumns: partCols}
	return meta, "SELECT " + strings.Join(sel, ", ") + " FROM " + final
}

// deltaType maps a DuckDB type to a Delta type, and the cast needed first
// when the column's DuckDB type is not the one that Delta type is written as
// (a naive TIMESTAMP becomes TIMESTAMPTZ, an unsigned integer the signed one
// that holds it, a type Delta lacks VARCHAR).
func deltaType(t string) (string, string) {
	if strings.HasPrefix(t, "ENUM(") {
		return delta.TypeString, "" // written as a plain string (the lineage columns)
	}
	dt, err := warehouse.DeltaType(t)
	if err != nil || !dt.IsPrimitive() {
		return delta.TypeString, "VARCHAR"
	}
	back, err := warehouse.DuckType(dt)
	if err != nil {
		return delta.TypeString, "VARCHAR"
	}
	if strings.EqualFold(strings.ReplaceAll(back, " ", ""), strings.ReplaceAll(t, " ", "")) {
		return dt.String(), ""
	}
	return dt.String(), back
}
