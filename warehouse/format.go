package warehouse

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"
)

// Format is how query results are written.
type Format string

// The output formats of medallion query.
const (
	FormatTable   Format = "table"   // aligned text with a header and a row count
	FormatCSV     Format = "csv"     // RFC 4180 with a header line
	FormatJSON    Format = "json"    // one JSON array of objects
	FormatNDJSON  Format = "ndjson"  // one JSON object per line
	FormatParquet Format = "parquet" // a Parquet file written by DuckDB (needs a file)
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatTable, FormatCSV, FormatJSON, FormatNDJSON, FormatParquet:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want table, csv, json, ndjson or parquet)", s)
}

// SQLError is a query DuckDB could not run: Msg is DuckDB's message (first
// line), UnknownName says DuckDB did not find a table, schema or function.
type SQLError struct {
	Msg         string
	UnknownName bool
	Err         error
}

func (e *SQLError) Error() string { return e.Msg }
func (e *SQLError) Unwrap() error { return e.Err }

func sqlError(err error) error {
	if err == nil {
		return nil
	}
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return err
	}
	msg := de.Msg
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return &SQLError{Msg: strings.TrimSpace(msg), UnknownName: de.Type == duckdb.ErrorTypeCatalog, Err: err}
}

// Query runs one analyst query on a locked-down engine and writes its rows
// to w in format f (any format but parquet, see WriteParquet). The query
// first passes the analyst guard (CheckQuery). It returns the row count.
// A query DuckDB refuses comes back as a *SQLError.
func (e *Engine) Query(ctx context.Context, query string, f Format, w io.Writer) (int64, error) {
	if f == FormatParquet {
		return 0, errors.New("parquet output goes to a file: use WriteParquet")
	}
	if err := e.CheckQuery(ctx, query); err != nil {
		return 0, sqlError(err)
	}
	rows, err := e.db.QueryContext(ctx, query)
	if err != nil {
		return 0, sqlError(err)
	}
	defer rows.Close()
	n, err := WriteRows(w, rows, f)
	return n, sqlError(err)
}

// WriteParquet runs one analyst query (after the analyst guard) and writes
// its result as a Parquet file at out. The COPY is ours, not the analyst's:
// DuckDB writes into the engine's temp directory (the one place a locked-down
// engine may write) and the file is then moved to out atomically.
func (e *Engine) WriteParquet(ctx context.Context, query, out string) (int64, error) {
	st, err := checkTokens(query)
	if err != nil {
		return 0, err
	}
	if err := e.CheckQuery(ctx, query); err != nil {
		return 0, sqlError(err)
	}
	body := query[st[0].pos:st[len(st)-1].end]
	tmp := filepath.Join(e.tempDir, fmt.Sprintf("query-%d-%d.parquet", os.Getpid(), time.Now().UnixNano()))
	defer os.Remove(tmp)
	var n int64
	copySQL := "COPY (\n" + body + "\n) TO " + QuoteString(tmp) + " (FORMAT parquet, COMPRESSION zstd)"
	if err := e.db.QueryRowContext(ctx, copySQL).Scan(&n); err != nil {
		return 0, sqlError(err)
	}
	if err := moveFile(tmp, out); err != nil {
		return 0, fmt.Errorf("write %s: %w", out, err)
	}
	return n, nil
}

// moveFile renames src to dst, or copies it next to dst and renames when
// they are on different file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// WriteRows writes every row of rows to w in format f (table, csv, json or
// ndjson) and returns how many rows it wrote. Timestamps are written in RFC
// 3339 UTC, dates as YYYY-MM-DD; NULL is NULL in a table, empty in CSV and
// null in JSON.
func WriteRows(w io.Writer, rows *sql.Rows, f Format) (int64, error) {
	cols, err := rows.ColumnTypes()
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	types := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name()
		types[i] = strings.ToUpper(c.DatabaseTypeName())
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	next := func() (bool, error) {
		if !rows.Next() {
			return false, rows.Err()
		}
		return true, rows.Scan(ptrs...)
	}
	switch f {
	case FormatTable:
		return writeTable(w, names, types, vals, next)
	case FormatCSV:
		return writeCSV(w, names, types, vals, next)
	case FormatJSON, FormatNDJSON:
		return writeJSON(w, names, types, vals, next, f == FormatNDJSON)
	}
	return 0, fmt.Errorf("format %q cannot be streamed", f)
}

func writeCSV(w io.Writer, names, types []string, vals []any, next func() (bool, error)) (int64, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(names); err != nil {
		return 0, err
	}
	rec := make([]string, len(names))
	var n int64
	for {
		ok, err := next()
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		for i, v := range vals {
			if v == nil {
				rec[i] = ""
			} else {
				rec[i] = formatText(v, types[i])
			}
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	cw.Flush()
	return n, cw.Error()
}

func writeJSON(w io.Writer, names, types []string, vals []any, next func() (bool, error), nd bool) (int64, error) {
	bw := bufio.NewWriter(w)
	keys := make([][]byte, len(names))
	for i, name := range names {
		k, err := json.Marshal(name)
		if err != nil {
			return 0, err
		}
		keys[i] = k
	}
	var n int64
	if !nd {
		bw.WriteString("[")
	}
	for {
		ok, err := next()
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		if !nd {
			if n > 0 {
				bw.WriteString(",")
			}
			bw.WriteString("\n  ")
		}
		bw.WriteByte('{')
		for i, v := range vals {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(keys[i])
			bw.WriteByte(':')
			b, err := json.Marshal(jsonValue(v, types[i]))
			if err != nil {
				return n, fmt.Errorf("column %s: %w", names[i], err)
			}
			bw.Write(b)
		}
		bw.WriteByte('}')
		if nd {
			bw.WriteByte('\n')
		}
		n++
	}
	if !nd {
		if n > 0 {
			bw.WriteString("\n")
		}
		bw.WriteString("]\n")
	}
	return n, bw.Flush()
}

// writeTable buffers the rows (an aligned table needs every width) and
// writes them with a header, a rule and a row count.
func writeTable(w io.Writer, names, types []string, vals []any, next func() (bool, error)) (int64, error) {
	var cells [][]string
	widths := make([]int, len(names))
	for i, n := range names {
		widths[i] = utf8.RuneCountInString(n)
	}
	for {
		ok, err := next()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(formatText(v, types[i]))
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(row[i]))
		}
		cells = append(cells, row)
	}
	right := make([]bool, len(types))
	for i, t := range types {
		right[i] = isNumericType(t)
	}
	bw := bufio.NewWriter(w)
	line := func(row []string) {
		for i, c := range row {
			if i > 0 {
				bw.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if right[i] {
				bw.WriteString(pad + c)
			} else if i == len(row)-1 {
				bw.WriteString(c)
			} else {
				bw.WriteString(c + pad)
			}
		}
		bw.WriteString("\n")
	}
	line(names)
	rule := make([]string, len(names))
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	line(rule)
	for _, r := range cells {
		line(r)
	}
	if len(cells) == 1 {
		bw.WriteString("(1 row)\n")
	} else {
		fmt.Fprintf(bw, "(%d rows)\n", len(cells))
	}
	return int64(len(cells)), bw.Flush()
}

func isNumericType(t string) bool {
	for _, p := range []string{"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "BIGNUM"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// formatText renders one non-NULL value as text (table and CSV cells).
func formatText(v any, typ string) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(x)
	case float32:
		return formatFloat(float64(x), 32)
	case float64:
		return formatFloat(x, 64)
	case *big.Int:
		return x.String()
	case duckdb.Decimal:
		return formatDecimal(x)
	case time.Time:
		return formatTime(x, typ)
	case []byte:
		if typ == "UUID" && len(x) == 16 {
			u := duckdb.UUID(x)
			return u.String()
		}
		return `\x` + hex.EncodeToString(x)
	case duckdb.Interval:
		return formatInterval(x)
	default:
		b, err := json.Marshal(jsonValue(v, typ))
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// formatDecimal writes a decimal with exactly its scale's digits: 12.50.
func formatDecimal(d duckdb.Decimal) string {
	if d.Value == nil {
		return "0"
	}
	s := new(big.Int).Abs(d.Value).String()
	sc := int(d.Scale)
	if sc > 0 {
		if len(s) <= sc {
			s = strings.Repeat("0", sc-len(s)+1) + s
		}
		s = s[:len(s)-sc] + "." + s[len(s)-sc:]
	}
	if d.Value.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func formatTime(t time.Time, typ string) string {
	switch {
	case typ == "DATE":
		return t.UTC().Format(time.DateOnly)
	case strings.HasPrefix(typ, "TIME") && !strings.HasPrefix(typ, "TIMESTAMP"):
		return t.Format("15:04:05.999999")
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func formatInterval(iv duckdb.Interval) string {
	var parts []string
	if iv.Months != 0 {
		parts = append(parts, fmt.Sprintf("%d months", iv.Months))
	}
	if iv.Days != 0 {
		parts = append(parts, fmt.Sprintf("%d days", iv.Days))
	}
	if iv.Micros != 0 || len(parts) == 0 {
		parts = append(parts, (time.Duration(iv.Micros) * time.Microsecond).String())
	}
	return strings.Join(parts, " ")
}

// jsonValue turns a scanned value into something encoding/json writes the
// way an analyst expects: numbers as numbers, times as RFC 3339 strings.
func jsonValue(v any, typ string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return formatFloat(float64(x), 32)
		}
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return formatFloat(x, 64)
		}
		return x
	case *big.Int:
		return json.Number(x.String())
	case duckdb.Decimal:
		return json.Number(formatDecimal(x))
	case time.Time, duckdb.Interval:
		return formatText(x, typ)
	case []byte:
		return formatText(x, typ)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, "")
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, "")
		}
		return out
	case duckdb.OrderedMap:
		// JSON objects need string keys.
		out := make(map[string]any, x.Len())
		vs := x.Values()
		for i, k := range x.Keys() {
			out[fmt.Sprint(jsonValue(k, ""))] = jsonValue(vs[i], "")
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(jsonValue(k, ""))] = jsonValue(e, "")
		}
		return out
	case duckdb.Union:
		return jsonValue(x.Value, "")
	}
	return v
}
