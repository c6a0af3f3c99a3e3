package bronze

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/medallion-dev/medallion/warehouse"
)

// objResult is what typing one raw object produced.
type objResult struct {
	read      int64 // rows (records) read, blank lines included
	blank     int64 // blank NDJSON lines: read and skipped
	good      int64 // rows that passed, before dedupe
	bad       []badRow
	badCount  int64 // rows that failed (len(bad) when located; dropped rows are only counted)
	rescued   []string
	firstBad  *badRow // for on_error: fail
	tableName string  // temp table holding the typed rows (column _err NULL for good rows)
}

// badRow is one quarantined row before it gets lineage.
type badRow struct {
	line   int64
	column string // "" when the row as a whole is bad
	reason string
	raw    string
}

// colInput says where a column's source value comes from in the source relation.
type colInput struct {
	expr    string // expression over the source relation; "NULL" when missing
	typed   bool   // the reader already typed it (cast errors are reader rejects)
	missing bool
	// guard fails the row when the value may come from a bare NaN or
	// Infinity JSON literal (the fast path's JSON reader; literalGuard).
	guard bool
}

// typedQuery builds the SELECT that types and checks rows of src (a FROM
// item exposing the inputs, _line, _pre_err and _resc).
func (sp *sourcePlan) typedQuery(src string, in []colInput) string {
	return sp.typedQueryPass(src, in, "")
}

// typedQueryPass is typedQuery carrying the columns of pass (", a, b")
// from src through to its output: a source reading many objects in one
// statement passes _obj, the file each row came from.
func (sp *sourcePlan) typedQueryPass(src string, in []colInput, pass string) string {
	var l1, l2, l3 []string
	var checks []string
	for i, c := range sp.cols {
		v, t := fmt.Sprintf("v%d", i), fmt.Sprintf("t%d", i)
		switch {
		case in[i].missing:
			l1 = append(l1, "CAST(NULL AS VARCHAR) AS "+v)
			l2 = append(l2, "CAST(NULL AS "+c.sqlType+") AS "+t)
			checks = append(checks, c.ruleChecks("", t, true)...)
		case in[i].typed:
			l1 = append(l1, in[i].expr+" AS "+v)
			l2 = append(l2, v+" AS "+t)
			checks = append(checks, c.ruleChecks("", t, false)...)
		default:
			l1 = append(l1, c.valueExpr(in[i].expr)+" AS "+v)
			cast := c.castExpr(v)
			if c.typ == "timestamp" && c.hasZone {
				cast = c.castExpr("regexp_replace(" + v + ", '[Zz]$', '+00:00')")
			}
			l2 = append(l2, v, cast+" AS "+t)
			if in[i].guard {
				checks = append(checks, "WHEN "+literalGuard(v)+" THEN "+warehouse.QuoteString(c.name+errSep+"may be a bare NaN or Infinity JSON literal"))
			}
			checks = append(checks, c.ruleChecks(v, t, false)...)
		}
		l3 = append(l3, t+" AS "+warehouse.QuoteIdent(c.name))
	}
	q := "SELECT " + strings.Join(l1, ", ") + ", _line, _pre_err, _resc" + pass + " FROM " + src
	q = "SELECT " + strings.Join(l2, ", ") + ", _line, _pre_err, _resc" + pass + " FROM (" + q + ")"
	errExpr := "CASE WHEN _pre_err IS NOT NULL THEN _pre_err " + strings.Join(checks, " ") + " END"
	q = "SELECT " + strings.Join(l3, ", ") + ", _resc AS _rescued, " + errExpr + " AS _err, _line" + pass + " FROM (" + q + ")"
	for _, d := range sp.derived {
		q = "SELECT *, (" + d.Expr + ") AS " + warehouse.QuoteIdent(d.Name) + " FROM (" + q + ")"
	}
	return q
}

// csvDialect is the source's CSV delimiter and quote, "," and '"' when
// unset.
func (j *job) csvDialect() (delim, quote string) {
	delim, quote = j.src.CSV.Delimiter, j.src.CSV.Quote
	if delim == "" {
		delim = ","
	}
	if quote == "" {
		quote = `"`
	}
	return delim, quote
}

// csvHeader is the column names of a CSV file: its header line, or the
// schema's source names when the source has no header.
func (j *job) csvHeader(path, delim, quote string) ([]string, error) {
	if j.hasHeader() {
		return readCSVHeader(path, delim, quote)
	}
	var header []string
	for _, c := range j.plan.cols {
		header = append(header, c.srcName)
	}
	return header, nil
}

// csvSource builds the FROM item for a CSV file and reports unknown header
// columns (rescued).
func (j *job) csvSource(path, rejTable string) (string, []colInput, []string, error) {
	delim, quote := j.csvDialect()
	header, err := j.csvHeader(path, delim, quote)
	if err != nil {
		return "", nil, nil, err
	}
	return j.csvSourceOf(path, rejTable, header, nil, "")
}

// csvColumns matches the fields of a CSV header to the declared columns
// (the first column not matched yet whose source name is the field's, as
// is or trimmed and case-folded): for each field, the index of its
// column, or -1 for a field rescued into _rescued.
func (j *job) csvColumns(header []string) []int {
	out := make([]int, len(header))
	taken := make([]bool, len(j.plan.cols))
	for k, h := range header {
		out[k] = -1
		for i, cp := range j.plan.cols {
			if !taken[i] && (h == cp.srcName || normName(h) == normName(cp.srcName)) {
				out[k], taken[i] = i, true
				break
			}
		}
	}
	return out
}

// csvSourceOf is csvSource over the file's header (csvHeader), with the
// declared columns of typings read by the reader's types (the typed CSV
// read, typedcsv.go; nil reads every field as text) and format the
// reader's timestamp format.
func (j *job) csvSourceOf(path, rejTable string, header []string, typings []csvTyping, format string) (src string, in []colInput, rescued []string, err error) {
	delim, quote := j.csvDialect()
	in = make([]colInput, len(j.plan.cols))
	for i := range in {
		in[i] = colInput{expr: "NULL", missing: true}
	}
	if len(header) == 0 {
		// An empty object (no header, no records): no rows, rather than a
		// reader with no columns, which DuckDB cannot bind.
		return "(SELECT CAST(NULL AS VARCHAR) AS _line, CAST(NULL AS VARCHAR) AS _pre_err, CAST(NULL AS VARCHAR) AS _resc WHERE false)", in, nil, nil
	}
	var cols []string
	var rescueParts, rescueConds []string
	j.readerCols = map[string]string{}
	for k, matched := range j.csvColumns(header) {
		h := header[k]
		c := fmt.Sprintf("c%d", k)
		j.readerCols[c] = strings.TrimSpace(h)
		// Every field is read as text and typed by castExpr: the reader's
		// own casts round ("1.5" into BIGINT is 2), and its cast errors are
		// not raised for a column a query does not use (the locating pass
		// of locateCSVRules would then count a rejected record as read).
		// The typed CSV read's columns (typings) are the exception, for
		// objects whose scan proves the reader types them as castExpr does.
		typ := "VARCHAR"
		if matched >= 0 {
			j.readerCols[c] = j.plan.cols[matched].name
			in[matched] = colInput{expr: c}
			if typings != nil {
				if ti, ok := j.csvTypedInput(typings[matched], matched, c); ok {
					in[matched], typ = ti, typings[matched].reader
				}
			}
		} else {
			name := strings.TrimSpace(h)
			if name == "" {
				name = fmt.Sprintf("column%d", k+1)
			}
			rescued = append(rescued, name)
			rescueParts = append(rescueParts, warehouse.QuoteString(name)+", "+c)
			rescueConds = append(rescueConds, c+" IS NOT NULL")
		}
		cols = append(cols, warehouse.QuoteString(c)+": "+warehouse.QuoteString(typ))
	}
	resc := "CAST(NULL AS VARCHAR)"
	if len(rescueParts) > 0 {
		resc = "CASE WHEN " + strings.Join(rescueConds, " OR ") + " THEN json_merge_patch('{}', json_object(" + strings.Join(rescueParts, ", ") + "))::VARCHAR END"
	}
	hdr := "true"
	if !j.hasHeader() {
		hdr = "false"
	}
	// Without a rejects table (the fast path) a bad record fails the read.
	opts := ""
	if rejTable != "" {
		opts = "store_rejects=true, rejects_table=" + warehouse.QuoteString(rejTable) + ", rejects_scan=" + warehouse.QuoteString(rejTable+"_scan") + ", "
	}
	if typings != nil {
		opts += timestampOption(format)
	}
	reader := fmt.Sprintf("read_csv(%s, header=%s, columns={%s}, auto_detect=false, delim=%s, quote=%s, escape=%s, "+
		"%smax_line_size=%d, null_padding=false, parallel=true)",
		warehouse.QuoteString(path), hdr, strings.Join(cols, ", "), warehouse.QuoteString(delim), warehouse.QuoteString(quote), warehouse.QuoteString(quote),
		opts, j.maxLine)
	pre := "CAST(NULL AS VARCHAR)"
	if hint := j.delimiterHint(path, delim, quote, header); hint != "" && j.hasHeader() {
		pre = warehouse.QuoteString(errSep + hint)
	}
	src = "(SELECT *, CAST(NULL AS VARCHAR) AS _line, " + pre + " AS _pre_err, " + resc + " AS _resc FROM " + reader + ")"
	return src, in, rescued, nil
}

func (j *job) hasHeader() bool { return !j.noHeader }

// readCSVHeader reads the first record of a CSV file.
func readCSVHeader(path, delim, quote string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(io.LimitReader(f, 1<<20))
	r.Comma = []rune(delim)[0]
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	_ = quote // encoding/csv only knows '"'; headers rarely quote anything else
	h, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	if len(h) > 0 {
		h[0] = strings.TrimPrefix(h[0], "\ufeff")
	}
	return h, nil
}

// linesReader reads a file as one VARCHAR column "line" per text line, with
// no quoting, so every line is a row; over-long and invalid UTF-8 lines are
// reader rejects.
func (j *job) linesReader(path, rejTable string) string {
	return j.linesReaderOf(warehouse.QuoteString(path), rejTable, "")
}

// linesReaderOf is linesReader over files (a SQL string or list of
// strings), with extra reader options opts (", filename=true").
func (j *job) linesReaderOf(files, rejTable, opts string) string {
	if rejTable != "" {
		opts += ", store_rejects=true, rejects_table=" + warehouse.QuoteString(rejTable) + ", rejects_scan=" + warehouse.QuoteString(rejTable+"_scan")
	}
	return fmt.Sprintf("read_csv(%s, header=false, columns={'line': 'VARCHAR'}, auto_detect=false, delim='\x01', quote='', escape='', new_line='\\n', max_line_size=%d, null_padding=false%s)",
		files, j.maxLine, opts)
}

// ndjsonSource builds the FROM item for an NDJSON file.
// Lines of invalid (from scanNDJSON) are refused with their reason; they
// are joined from a temp table named rejTable+"_json", which the caller
// drops with the rejects table.
func (j *job) ndjsonSource(ctx context.Context, conn *sql.Conn, path, rejTable string, invalid map[string]string) (string, []colInput, []string, error) {
	// Discover the keys present (one extra cheap pass), to match messy names
	// and to find unknown keys for _rescued.
	rows, err := conn.QueryContext(ctx, "SELECT DISTINCT k FROM (SELECT unnest(json_keys(line)) AS k FROM "+
		j.linesReader(path, "")+" WHERE line IS NOT NULL AND json_valid(line) AND (starts_with(line, '{') OR json_type(line) = 'OBJECT'))")
	if err != nil {
		// A reader error (e.g. an over-long line without rejects): fall back to declared names.
		j.log.Debug("key discovery failed", "err", err)
		rows = nil
	}
	var keys []string
	if rows != nil {
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return "", nil, nil, err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			j.log.Debug("key discovery failed", "err", err)
		}
	}
	sort.Strings(keys)
	in, rescued, structure, resc := j.ndjsonKeyPlan(keys)
	// A valid line that starts with '{' is an object: json_type parses only
	// the others. Blank lines are skipped; trim (which copies the line) runs
	// only for lines that do not start with '{'.
	lines, strict := j.linesReader(path, rejTable), ""
	if len(invalid) > 0 {
		// Only objects with such lines pay for the join.
		tbl := rejTable + "_json"
		if err := invalidLinesTable(ctx, conn, tbl, invalid); err != nil {
			return "", nil, nil, err
		}
		lines = "(SELECT l.line, b.reason AS strict_err FROM " + lines + " l LEFT JOIN " + tbl + " b ON rtrim(l.line, chr(13)) = b.line)"
		strict = " WHEN strict_err IS NOT NULL THEN strict_err"
	}
	return ndjsonFrom(lines, strict, structure, resc, ""), in, rescued, nil
}

// ndjsonFrom is the FROM item typing NDJSON lines: lines is the line
// reader (a column line, and strict_err when strict is set), structure and
// resc come from ndjsonKeyPlan, and pass (", _obj") names columns of lines
// carried through.
func ndjsonFrom(lines, strict, structure, resc, pass string) string {
	inner := "SELECT line" + pass + ", CASE WHEN NOT json_valid(line) THEN " + warehouse.QuoteString(errSep+"invalid JSON") + strict +
		" WHEN NOT starts_with(line, '{') AND json_type(line) <> 'OBJECT' THEN " + warehouse.QuoteString(errSep+"not a JSON object") + " END AS _pre_err FROM " +
		lines + " WHERE line IS NOT NULL AND (starts_with(line, '{') OR trim(line, ' \t\r') <> '')"
	mid := "SELECT line AS _line" + pass + ", _pre_err, CASE WHEN _pre_err IS NULL THEN json_transform(line, " + warehouse.QuoteString(structure) + ") END AS s FROM (" + inner + ")"
	return "(SELECT *, " + resc + " AS _resc FROM (" + mid + "))"
}

// ndjsonKeyPlan matches the keys present in NDJSON lines (sorted) to the
// declared columns, exact names first, then by normalised name: it returns
// the inputs of the typed query (fields of the json_transform struct s),
// the keys rescued, the json_transform structure and the _resc expression.
func (j *job) ndjsonKeyPlan(keys []string) ([]colInput, []string, string, string) {
	in := make([]colInput, len(j.plan.cols))
	used := map[string]bool{}
	// json_transform takes the JSON key names; struct fields keep them, so
	// they are accessed by the key (quoted).
	var fields []string
	for i, c := range j.plan.cols {
		key := ""
		for _, k := range keys { // exact first
			if k == c.srcName && !used[k] {
				key = k
			}
		}
		if key == "" {
			for _, k := range keys {
				if !used[k] && normName(k) == normName(c.srcName) {
					key = k
					break
				}
			}
		}
		if key == "" {
			key = c.srcName // absent in this file: NULL
		}
		used[key] = true
		fields = append(fields, jsonKey(key)+": \"VARCHAR\"")
		in[i] = colInput{expr: "s." + warehouse.QuoteIdent(key)}
	}
	var rescued, rescueParts, rescueConds []string
	for _, k := range keys {
		if used[k] {
			continue
		}
		rescued = append(rescued, k)
		fields = append(fields, jsonKey(k)+": \"JSON\"")
		rescueParts = append(rescueParts, warehouse.QuoteString(k)+", s."+warehouse.QuoteIdent(k))
		rescueConds = append(rescueConds, "s."+warehouse.QuoteIdent(k)+" IS NOT NULL")
	}
	resc := "CAST(NULL AS VARCHAR)"
	if len(rescueParts) > 0 {
		resc = "CASE WHEN " + strings.Join(rescueConds, " OR ") + " THEN json_merge_patch('{}', json_object(" + strings.Join(rescueParts, ", ") + "))::VARCHAR END"
	}
	return in, rescued, "{" + strings.Join(fields, ", ") + "}", resc
}

// jsonKey renders a JSON string for a key in a json_transform structure.
func jsonKey(k string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range k {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
