package bronze

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

// The fast path types a batch in one statement per batch: DuckDB reads
// each object (read_csv without a rejects table; read_json with one JSON
// parse per line), types and checks the rows and writes the bronze Parquet
// files, with no temp table. It holds only when the batch is clean: any bad
// row raises an error inside the statement (error(_err)), as does any
// reader error (malformed record, invalid UTF-8, a non-object line) and, for
// NDJSON, any key the schema does not declare (those are matched by
// normalised name or rescued by the precise path). A refused batch is
// typed again by the precise path (preciseBatch), which locates and
// quarantines every bad row; what the fast path accepts, the precise path
// would accept with the same values, so the fallback decides only speed.
// Duplicate keys are looked for afterwards in the written files (a hash
// aggregate over the key columns); a batch with any also goes the precise
// way, which picks the row to keep.

// fastFlushThreshold is DuckDB's partitioned_write_flush_threshold (rows a
// thread buffers per partition before writing them) for bronze writes:
// DuckDB's default (524288) makes the partitioned COPY copy most of the
// batch into buffers first, costing about a third of the write and that
// much memory; smaller flushes cost less and still write row groups of
// about 64k rows.
const fastFlushThreshold = 32768

// fastBatch types and writes a batch by the fast path. ok is false when the
// path does not apply to the batch or refused it; the scratch files it may
// have written are removed then.
func (j *job) fastBatch(ctx context.Context, conn *sql.Conn, ms []manifest, bid, dir string) (tb typedBatch, ok bool, err error) {
	if !j.d.precise && j.typedApplies() {
		j.typedRead = true
		tb, ok, err = j.fastBatchOnce(ctx, conn, ms, bid, dir)
		j.typedRead = false
		if err != nil || ok {
			return tb, ok, err
		}
	}
	return j.fastBatchOnce(ctx, conn, ms, bid, dir)
}

// fastBatchOnce is fastBatch by one reader: the typed read when
// j.typedRead is set (typedjson.go), else the MAP of text values.
func (j *job) fastBatchOnce(ctx context.Context, conn *sql.Conn, ms []manifest, bid, dir string) (tb typedBatch, ok bool, err error) {
	tb.st = Stats{Objects: len(ms)}
	if j.d.precise || !j.fastApplies(len(ms)) {
		return tb, false, nil
	}
	lin := newLineage(ms, bid)
	rel, like, ok, err := j.fastRelation(ctx, ms, dir, lin, &tb.st)
	if err != nil || !ok {
		return tb, false, err
	}
	meta, outSel, err := j.fastMetadata(ctx, conn, rel, like)
	if err != nil {
		j.log.Debug("fast path: describe", "err", err)
		return tb, false, nil
	}
	schema, err := delta.ParseSchema(meta.SchemaString)
	if err != nil {
		return tb, false, fmt.Errorf("bronze %s: %w", j.src.Name, err)
	}
	outDir := filepath.Join(dir, "bronze")
	refuse := func(why string, err error) (typedBatch, bool, error) {
		if rmErr := os.RemoveAll(outDir); rmErr != nil {
			return tb, false, fmt.Errorf("bronze %s: remove fast path files: %w", j.src.Name, rmErr)
		}
		j.log.Debug("fast path refused the batch; typing it again with locations", "why", why, "err", humanize.FirstLine(err))
		return tb, false, nil
	}
	var size int64
	for _, m := range ms {
		size += m.Size
	}
	j.steps.mark("fast_prepare")
	start := time.Now()
	var adds []delta.Add
	err = j.watchTyping(ctx, conn, 0, size, func() (err error) {
		adds, err = j.writeParquet(ctx, conn, outSel, outDir, j.plan.partCol, schema)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return tb, false, ctx.Err()
		}
		j.steps.mark("fast_refused")
		return refuse("typing", err)
	}
	j.steps.mark("type_write")
	wrote := time.Since(start)
	// An empty object writes an empty file unpartitioned; the precise path
	// writes none.
	kept := adds[:0]
	for _, a := range adds {
		if addedRows([]delta.Add{a}) > 0 {
			kept = append(kept, a)
			continue
		}
		if err := os.Remove(filepath.Join(outDir, filepath.FromSlash(a.Path))); err != nil {
			return tb, false, err
		}
	}
	adds = kept
	n := addedRows(adds)
	snap, err := j.snapshot(ctx)
	if err != nil {
		return tb, false, err
	}
	start = time.Now()
	dup, err := j.fastDuplicates(ctx, conn, outDir, adds, schema, snap, dir)
	if err != nil {
		if ctx.Err() != nil {
			return tb, false, ctx.Err()
		}
		return tb, false, fmt.Errorf("bronze %s: dedupe: %w", j.src.Name, err)
	}
	j.steps.mark("dedupe_check")
	if dup {
		return refuse("duplicate keys", nil)
	}
	reader := "map"
	if strings.ToLower(j.src.Format) == "csv" {
		reader = "text"
	}
	if j.typedRead {
		reader = "typed"
	}
	j.log.Debug("fast path wrote the batch", "reader", reader, "objects", len(ms), "rows", n, "files", len(adds), "write", wrote, "dedupe_check", time.Since(start))
	tb.st.RowsRead, tb.st.Written, tb.st.Files = n+tb.st.Blank, n, len(adds)
	tb.meta, tb.adds, tb.snap = meta, adds, snap
	return tb, true, nil
}

// fastMetadata is tableMetadataLike for the fast path. The columns of an
// NDJSON fast relation are a function of the source's plan alone (the
// declared and derived columns, _rescued and the lineage, whose ENUM is
// written as a string whatever its keys): they are described for the
// job's first batch and reused for the others. Describing binds a reader
// over a file, about 10 ms a batch.
func (j *job) fastMetadata(ctx context.Context, conn *sql.Conn, rel, like string) (delta.Metadata, string, error) {
	if strings.ToLower(j.src.Format) == "csv" {
		return j.tableMetadataLike(ctx, conn, rel, like)
	}
	cache := &j.ndjsonFastCols
	if j.typedRead {
		cache = &j.ndjsonTypedCols
	}
	if *cache == nil {
		cols, err := warehouse.Describe(ctx, conn, "SELECT * FROM "+like)
		if err != nil {
			return delta.Metadata{}, "", err
		}
		*cache = cols
	}
	meta, sel := j.tableMetadataCols(rel, *cache)
	return meta, sel, nil
}

// fastRelation builds the fast path's relation over the batch's objects
// (NDJSON: one reader per chunk; CSV: one per kind of header) and a
// cheaper relation with the same columns to describe. ok is false when an
// object's checks send the batch the precise way. Blank lines and rescued
// names are counted into st.
func (j *job) fastRelation(ctx context.Context, ms []manifest, dir string, lin lineage, st *Stats) (rel, like string, ok bool, err error) {
	ndjson := strings.ToLower(j.src.Format) != "csv"
	var sels, paths []string
	var csvObjs []csvObject
	typedObjs := 0
	for _, m := range ms {
		path, err := j.localObject(ctx, m, dir)
		if err != nil {
			return "", "", false, err
		}
		var (
			src     string
			in      []colInput
			rescued []string
		)
		if ndjson {
			data := j.fetchedData[m.SHA256]
			fits, blank, err := ndjsonFits(path, data, j.maxLine)
			st.Blank += blank
			if err != nil {
				return "", "", false, fmt.Errorf("bronze %s: %s: %w", j.src.Name, m.Key, err)
			}
			if !fits {
				j.log.Debug("fast path: object has an over-long line or a byte order mark", "object", m.Key)
				return "", "", false, nil
			}
			if j.plan.decimalSources() != nil {
				lose, err := mayLoseDigits(path, data)
				if err != nil {
					return "", "", false, fmt.Errorf("bronze %s: %s: %w", j.src.Name, m.Key, err)
				}
				if lose {
					j.log.Debug("fast path: object has a number a double may shorten", "object", m.Key)
					return "", "", false, nil
				}
			}
			if j.typedRead {
				fits, err := j.typedFits(path, data)
				if err != nil {
					return "", "", false, fmt.Errorf("bronze %s: %s: %w", j.src.Name, m.Key, err)
				}
				if !fits {
					j.log.Debug("fast path: object not provably typed by the typed read", "object", m.Key)
					return "", "", false, nil
				}
			}
			paths = append(paths, path)
			continue
		} else {
			var typed bool
			src, in, rescued, typed, err = j.csvFastSource(path)
			if err != nil {
				// The precise path reports it with its own wording.
				j.log.Debug("fast path: CSV header", "object", m.Key, "err", err)
				return "", "", false, nil
			}
			if typed {
				typedObjs++
			}
		}
		for _, r := range rescued {
			if !contains(st.Rescued, r) {
				st.Rescued = append(st.Rescued, r)
			}
		}
		csvObjs = append(csvObjs, csvObject{m: m, path: path, src: src, in: in})
	}
	if len(csvObjs) > 0 && j.typedRead && typedObjs == 0 {
		// The text fast path runs next anyway: the same statement.
		j.log.Debug("fast path: no object provably typed by the typed CSV read")
		return "", "", false, nil
	}
	if len(csvObjs) > 0 {
		if sels = j.csvFastSelects(csvObjs, lin); len(sels) > maxFusedObjects {
			j.log.Debug("fast path: too many kinds of CSV header in the batch", "statements", len(sels))
			return "", "", false, nil
		}
	}
	if ndjson {
		// One reader per chunk of the batch's objects (group.go).
		for n, c := range groupChunks(ms) {
			cms, cpaths := make([]manifest, len(c)), make([]string, len(c))
			for k, i := range c {
				cms[k], cpaths[k] = ms[i], paths[i]
			}
			cat := filepath.Join(dir, fmt.Sprintf("fast-%d.ndjson", n))
			layout := joinWrap
			if j.typedRead {
				layout = joinMerge
			}
			ok, err := j.writeJoined(cms, cat, layout)
			if err != nil {
				return "", "", false, fmt.Errorf("bronze %s: %w", j.src.Name, err)
			}
			switch {
			case ok && j.typedRead:
				sels = append(sels, j.ndjsonTypedJoinedSelect(cat, lin))
			case ok:
				sels = append(sels, j.ndjsonJoinedSelect(cat, cpaths[0], lin))
			case j.typedRead:
				sels = append(sels, j.ndjsonTypedSelect(cms, cpaths, lin))
			default:
				sels = append(sels, j.ndjsonFastSelect(cms, cpaths, lin))
			}
		}
		// Binding the query over a thousand files costs a third of
		// writing them; the one over the first file has the same columns.
		if j.typedRead {
			like = "(" + j.ndjsonTypedSelect(ms[:1], paths[:1], lin) + ")"
		} else {
			like = "(" + j.ndjsonFastSelect(ms[:1], paths[:1], lin) + ")"
		}
	}
	rel = "(" + strings.Join(sels, " UNION ALL ") + ")"
	if like == "" {
		like = rel
	}
	return rel, like, true, nil
}

// fastApplies reports whether the fast path can type a batch of n objects
// of the job's source. JSON arrays are rewritten as NDJSON with a line map
// first and go the precise way; so do sources whose dedupe
// key includes a declared partition column (not stored in the files the
// duplicate check reads).
func (j *job) fastApplies(n int) bool {
	switch strings.ToLower(j.src.Format) {
	case "csv", "ndjson", "":
	default:
		return false
	}
	if j.plan.partCol != "" && j.plan.partExpr == "" {
		for _, k := range j.src.Dedupe {
			if strings.EqualFold(k, j.plan.partCol) {
				return false
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range j.plan.cols {
		if seen[c.srcName] {
			return false
		}
		seen[c.srcName] = true
	}
	return true
}

// ndjsonFastSource is the FROM item of the fast path for NDJSON files (one
// reader over the list; column _obj names each row's file):
// DuckDB's JSON reader parses each line once into a map of its top-level
// keys to their values as text (strings unescaped, anything else as JSON
// text: the values json_transform gives the precise path; of a duplicated
// key, the first value, as there). A line that is not an object, or that
// has a key the schema does not declare exactly, fails the row.
func (j *job) ndjsonFastSource(paths []string) (string, []colInput) {
	reader, size := "", ""
	// The reader's buffers grow with maximum_object_size; lines longer than
	// maxLine never get here (ndjsonFits), so DuckDB's default (16 MiB) is
	// only raised for a larger maxLine.
	if j.maxLine > 16<<20-(64<<10) {
		size = fmt.Sprintf(", maximum_object_size=%d", j.maxLine+64<<10)
	}
	reader = "read_json(" + fileList(paths) + ", format='newline_delimited', records=false, columns={'j': 'MAP(VARCHAR, VARCHAR)'}, filename=true" + size + ")"
	return j.ndjsonFastFrom(reader, "filename AS _obj", paths[0])
}

// ndjsonFastFrom is ndjsonFastSource over reader, a FROM item with the
// column j (a line as a map of its keys to their values as text, NULL
// when the line is not an object); lineage names the columns that say
// each row's object (_obj, and _at for a joined file); first is a file of
// the source whose first line's keys stand for all of them.
func (j *job) ndjsonFastFrom(reader, lineage, first string) (string, []colInput) {
	declared := map[string]bool{}
	for _, c := range j.plan.cols {
		declared[c.srcName] = true
	}
	in := make([]colInput, len(j.plan.cols))
	var keys []string
	for i, c := range j.plan.cols {
		in[i] = colInput{expr: "j[" + warehouse.QuoteString(c.srcName) + "]", guard: c.typ == "string" || c.allowNaN}
		keys = append(keys, warehouse.QuoteString(c.srcName))
	}
	// Lines of a file mostly have the same keys in the same order: when they
	// are those of the first line, and all declared, comparing the key list
	// to that one is all it takes; list_has_all (a set a row) runs only for
	// the other lines. Objects of one source mostly share their keys: the
	// first object's first line stands for all of them.
	same := ""
	if first := firstLineKeys(first); len(first) > 0 {
		var lits []string
		for _, k := range first {
			if !declared[k] {
				lits = nil
				break
			}
			lits = append(lits, warehouse.QuoteString(k))
		}
		if len(lits) > 0 {
			same = " WHEN map_keys(j) = [" + strings.Join(lits, ", ") + "] THEN NULL"
		}
	}
	pre := "CASE WHEN j IS NULL THEN " + warehouse.QuoteString(errSep+"not a JSON object") + same +
		" WHEN NOT list_has_all([" + strings.Join(keys, ", ") + "], map_keys(j)) THEN " + warehouse.QuoteString(errSep+"a key the schema does not declare") + " END"
	return "(SELECT j, " + pre + " AS _pre_err, CAST(NULL AS VARCHAR) AS _line, CAST(NULL AS VARCHAR) AS _resc, " + lineage + " FROM " + reader + ")", in
}

// ndjsonFastSelect is the fast path's typed and checked rows of the NDJSON
// objects ms (local files paths), with lineage.
func (j *job) ndjsonFastSelect(ms []manifest, paths []string, lin lineage) string {
	src, in := j.ndjsonFastSource(paths)
	return j.groupSelect(j.plan.typedQueryPass(src, in, ", _obj"), ms, paths, lin, "CASE WHEN _err IS NULL THEN true ELSE error(_err) END")
}

// firstLineKeys returns the top-level keys of the first non-blank line of
// an NDJSON file, in order; nil when it is not a JSON object or is longer
// than 64 KiB.
func firstLineKeys(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			return objectKeys(t)
		}
		if err != nil {
			return nil
		}
	}
}

// objectKeys returns the top-level keys of a JSON object, in order, or nil.
func objectKeys(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, ok := t.(string)
		if !ok {
			return nil
		}
		keys = append(keys, k)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
	}
	return keys
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ndjsonFits reports whether every line of an NDJSON file (its bytes in
// data when the check of the object kept them, else read from path) is short enough
// for the precise path's line reader (with a margin for how it counts a
// '\r') and the file has no byte order mark (DuckDB's JSON reader refuses
// one; the precise path reads the line), and counts its blank lines (which
// the reader skips). A cheap pass: it looks for line ends, and at the
// first bytes of each line.
func ndjsonFits(path string, data []byte, maxLine int) (fits bool, blank int64, err error) {
	var f io.Reader = bytes.NewReader(data)
	buf := make([]byte, len(data)+1)
	if data == nil {
		file, err := os.Open(path)
		if err != nil {
			return false, 0, err
		}
		defer file.Close()
		if buf, err = readBuffer(file); err != nil {
			return false, 0, err
		}
		f = file
	}
	limit := maxLine - 2
	cur := 0
	first := true
	lineBlank := true // the line read so far has only blanks
	for {
		n, err := io.ReadFull(f, buf)
		chunk := buf[:n]
		if first {
			if bytes.HasPrefix(chunk, utf8BOM) {
				return false, 0, nil
			}
			first = false
		}
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				cur += len(chunk)
				lineBlank = lineBlank && isBlankLine(chunk)
				break
			}
			if cur+i > limit {
				return false, 0, nil
			}
			if lineBlank && isBlankLine(chunk[:i]) {
				blank++
			}
			cur, lineBlank = 0, true
			chunk = chunk[i+1:]
		}
		if cur > limit {
			return false, 0, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if cur > 0 && lineBlank {
				blank++ // a last line of blanks with no line end
			}
			return true, blank, nil
		}
		if err != nil {
			return false, 0, err
		}
	}
}

// fastDuplicates reports whether the rows written to outDir hold a dedupe
// key twice or a key already in bronze. Grouping by a hash of the key
// (8 bytes a row) finds no duplicate in the common case at a fraction of
// the cost of grouping by the key itself, which runs only to rule out a
// hash collision.
func (j *job) fastDuplicates(ctx context.Context, conn *sql.Conn, outDir string, adds []delta.Add, schema *delta.Schema, snap *delta.Snapshot, dir string) (bool, error) {
	if len(j.src.Dedupe) == 0 || len(adds) == 0 {
		return false, nil
	}
	var files, keys []string
	for _, a := range adds {
		files = append(files, warehouse.QuoteString(filepath.Join(outDir, filepath.FromSlash(a.Path))))
	}
	for _, k := range j.src.Dedupe {
		keys = append(keys, warehouse.QuoteIdent(k))
	}
	rel := "read_parquet([" + strings.Join(files, ", ") + "], hive_partitioning=false)"
	keyList := strings.Join(keys, ", ")
	var n int64
	// How many rows have the hash of the row before them, the hashes
	// sorted: the same number as count(*) - count(DISTINCT hash), at half
	// its CPU on a large batch, whose hash table of every distinct hash
	// outgrows the caches (10M rows: 2.8-4.3 -> 1.7-1.8 CPU s;
	// docs/bronze-profile.md, decision 3).
	q := "SELECT count(*) FROM (SELECT h, lag(h) OVER (ORDER BY h) AS p FROM (SELECT hash(" + keyList + ") AS h FROM " + rel + ")) WHERE h = p"
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
	}
	if n > 0 {
		q = "SELECT count(*) FROM (SELECT 1 FROM " + rel + " GROUP BY " + keyList + " HAVING count(*) > 1 LIMIT 1)"
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return false, fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
		}
		if n > 0 {
			return true, nil
		}
	}
	cond, err := j.existingCond(ctx, conn, batchKeys{rel: rel, adds: adds, schema: schema}, snap, dir)
	if err != nil || cond == "" {
		return false, err
	}
	q = "SELECT count(*) FROM (SELECT 1 FROM " + rel + " d WHERE " + cond + " LIMIT 1)"
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, fmt.Errorf("%w\nquery: %s", err, truncate(q, 2000))
	}
	return n > 0, nil
}

// mayLoseDigits reports whether an NDJSON file may hold a number whose
// digits a double does not keep: a run of 16 or more digits (a '.' inside
// it aside), or a digit followed by an exponent. DuckDB's JSON reader
// hands such a number to the fast path as its double's shorter text, and
// only the precise path, which reads the line, can check a decimal
// column's value against it (inexactNumbers); numbers of at most 15
// significant digits survive a double. Text in strings counts too (a long
// numeric id sends the object the precise way, which costs only time). A
// pass over the bytes (data, else the file at path), for sources with a
// decimal column only.
func mayLoseDigits(path string, data []byte) (bool, error) {
	var f io.Reader = bytes.NewReader(data)
	buf := make([]byte, len(data)+1)
	if data == nil {
		file, err := os.Open(path)
		if err != nil {
			return false, err
		}
		defer file.Close()
		if buf, err = readBuffer(file); err != nil {
			return false, err
		}
		f = file
	}
	run, digit := 0, false
	for {
		n, err := f.Read(buf)
		for _, c := range buf[:n] {
			switch {
			case c >= '0' && c <= '9':
				if run++; run >= 16 {
					return true, nil
				}
				digit = true
			case c == '.' && digit:
			case (c == 'e' || c == 'E') && digit:
				return true, nil
			default:
				run, digit = 0, false
			}
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// readBuffer returns a buffer to read f with: 1 MiB, or the file's size
// (plus one byte, to see the end in one read) when smaller. A fresh 1 MiB
// buffer for each of a thousand small objects cost more than reading them.
func readBuffer(f *os.File) ([]byte, error) {
	n := int64(1 << 20)
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size()+1 < n {
		n = fi.Size() + 1
	}
	return make([]byte, n), nil
}
