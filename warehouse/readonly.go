package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ErrRefused is what every refusal of the analyst guard wraps, so callers can
// tell a refused query (the analyst's mistake) from a failed one with
// errors.Is(err, ErrRefused).
var ErrRefused = errors.New("query refused")

// RefusedError says why the analyst guard refused a query. Kind is a short,
// stable name of what was refused ("write", "ddl", "copy", "attach",
// "extension", "setting", "file-read", "multiple-statements", ...).
type RefusedError struct {
	Kind   string
	Reason string // one line for the user: "COPY writes files; medallion query is read-only"
}

// Error renders "query refused: <reason>".
func (e *RefusedError) Error() string { return "query refused: " + e.Reason }

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

func refuse(kind, format string, args ...any) error {
	return &RefusedError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

const readOnlyTail = "medallion query is read-only"

// fileFuncs are table (and scalar) functions that read local or remote files,
// run SQL given as a string or show the engine's own settings (engineFuncs).
// Analysts read tables by name only.
var fileFuncs = append([]string{
	"read_csv", "read_csv_auto", "sniff_csv", "read_parquet", "parquet_scan",
	"parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
	"parquet_bloom_probe", "read_json", "read_json_auto", "read_json_objects",
	"read_json_objects_auto", "read_ndjson", "read_ndjson_auto", "read_ndjson_objects",
	"read_text", "read_blob", "glob", "delta_scan", "iceberg_scan", "iceberg_metadata",
	"iceberg_snapshots", "read_xlsx", "st_read", "st_read_meta", "read_avro",
	"sqlite_scan", "sqlite_attach", "postgres_scan", "postgres_scan_pushdown",
	"postgres_attach", "postgres_query", "mysql_scan", "mysql_query", "read_duckdb",
	"query", "query_table", "getenv", "load_aws_credentials",
}, engineFuncs...)

// engineFuncs show the engine's settings and files rather than lake data:
// the local paths of allowed_paths, temp_directory, extension and secret
// directories. DuckDB cannot hide a setting from current_setting(), so the
// guard refuses them.
var engineFuncs = []string{
	"current_setting", "duckdb_settings", "duckdb_temporary_files", "duckdb_extensions", "duckdb_secrets",
}

// statementKinds maps a statement's first keyword to the refusal for it.
// Keywords not listed and not read statements are refused as "not a query".
var statementKinds = map[string]struct{ kind, reason string }{
	"INSERT":     {"write", "INSERT writes data; " + readOnlyTail},
	"UPDATE":     {"write", "UPDATE writes data; " + readOnlyTail},
	"DELETE":     {"write", "DELETE writes data; " + readOnlyTail},
	"MERGE":      {"write", "MERGE writes data; " + readOnlyTail},
	"TRUNCATE":   {"write", "TRUNCATE deletes data; " + readOnlyTail},
	"UPSERT":     {"write", "UPSERT writes data; " + readOnlyTail},
	"REPLACE":    {"write", "REPLACE writes data; " + readOnlyTail},
	"CREATE":     {"ddl", "CREATE changes the catalog (DDL); " + readOnlyTail},
	"DROP":       {"ddl", "DROP changes the catalog (DDL); " + readOnlyTail},
	"ALTER":      {"ddl", "ALTER changes the catalog (DDL); " + readOnlyTail},
	"COMMENT":    {"ddl", "COMMENT ON changes the catalog (DDL); " + readOnlyTail},
	"COPY":       {"copy", "COPY writes files; " + readOnlyTail},
	"ATTACH":     {"attach", "ATTACH opens another database; " + readOnlyTail + " over the lake tables"},
	"DETACH":     {"attach", "DETACH changes the attached databases; " + readOnlyTail},
	"USE":        {"attach", "USE changes the current database; " + readOnlyTail},
	"INSTALL":    {"extension", "INSTALL downloads extensions; " + readOnlyTail},
	"LOAD":       {"extension", "LOAD loads extensions; " + readOnlyTail},
	"FORCE":      {"extension", "FORCE INSTALL downloads extensions; " + readOnlyTail},
	"SET":        {"setting", "SET changes settings; " + readOnlyTail},
	"RESET":      {"setting", "RESET changes settings; " + readOnlyTail},
	"PRAGMA":     {"setting", "PRAGMA changes settings or runs functions; " + readOnlyTail},
	"CALL":       {"setting", "CALL runs procedures; " + readOnlyTail},
	"EXPORT":     {"copy", "EXPORT DATABASE writes files; " + readOnlyTail},
	"IMPORT":     {"copy", "IMPORT DATABASE reads files and creates tables; " + readOnlyTail},
	"CHECKPOINT": {"other", "CHECKPOINT writes the database; " + readOnlyTail},
	"VACUUM":     {"other", "VACUUM writes the database; " + readOnlyTail},
	"ANALYZE":    {"other", "ANALYZE changes statistics; " + readOnlyTail},
	"PREPARE":    {"other", "PREPARE is not supported; send one SELECT"},
	"EXECUTE":    {"other", "EXECUTE is not supported; send one SELECT"},
	"DEALLOCATE": {"other", "DEALLOCATE is not supported; send one SELECT"},
	"BEGIN":      {"other", "transactions are not supported; send one SELECT"},
	"START":      {"other", "transactions are not supported; send one SELECT"},
	"COMMIT":     {"other", "transactions are not supported; send one SELECT"},
	"END":        {"other", "transactions are not supported; send one SELECT"},
	"ROLLBACK":   {"other", "transactions are not supported; send one SELECT"},
	"ABORT":      {"other", "transactions are not supported; send one SELECT"},
}

// readStarts are the first keywords of statements that only read.
var readStarts = []string{"SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "DESC", "SHOW", "SUMMARIZE", "EXPLAIN", "PIVOT", "UNPIVOT"}

// CheckReadOnly is the analyst guard's first line: it refuses, with one clear
// line per kind, anything but one read-only statement: writes (INSERT,
// UPDATE, DELETE, MERGE, TRUNCATE), DDL (CREATE, DROP, ALTER), COPY, ATTACH
// and DETACH, INSTALL and LOAD, SET, RESET, PRAGMA and CALL, EXPORT and
// IMPORT, functions that read files (read_csv, read_parquet, glob, ...),
// file names used as tables (FROM '/etc/passwd') and more than one statement.
// The returned error is a *RefusedError wrapping ErrRefused.
//
// It works on tokens (comments and string literals are understood), not on
// raw text. It is not the only line: Engine.CheckQuery adds DuckDB's own
// parser, and LockDown makes DuckDB refuse file access and setting changes
// whatever the text says.
func CheckReadOnly(sql string) error {
	_, err := checkTokens(sql)
	return err
}

// checkTokens runs CheckReadOnly's rules and returns the statement's tokens
// (without a trailing ';').
func checkTokens(sql string) ([]token, error) {
	toks, err := lex(sql)
	if err != nil {
		return nil, refuse("syntax", "%v", err)
	}
	// Split on ';': exactly one non-empty statement.
	var stmts [][]token
	cur := []token{}
	for _, t := range toks {
		if t.kind == tokPunct && t.text == ";" {
			if len(cur) > 0 {
				stmts = append(stmts, cur)
			}
			cur = []token{}
			continue
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		stmts = append(stmts, cur)
	}
	switch len(stmts) {
	case 0:
		return nil, refuse("empty", "no SQL statement given")
	case 1:
	default:
		return nil, refuse("multiple-statements", "%d statements given; medallion query runs exactly one SELECT", len(stmts))
	}
	st := stmts[0]
	if err := checkStatementKind(st); err != nil {
		return nil, err
	}
	if err := checkBody(st); err != nil {
		return nil, err
	}
	return st, nil
}

// checkStatementKind looks at the statement keyword: the first word, or for
// WITH the first word after the common table expressions.
func checkStatementKind(st []token) error {
	i := 0
	for i < len(st) && st[i].kind == tokPunct && st[i].text == "(" {
		i++
	}
	if i >= len(st) || st[i].kind != tokWord {
		return refuse("not-a-query", "the statement does not start with SELECT; medallion query runs one SELECT")
	}
	first := strings.ToUpper(st[i].text)
	if k, ok := statementKinds[first]; ok {
		if first == "COPY" && !hasTopLevelWord(st[i:], "TO") {
			return refuse(k.kind, "COPY FROM reads files into tables; "+readOnlyTail)
		}
		return refuse(k.kind, "%s", k.reason)
	}
	if !slices.Contains(readStarts, first) {
		return refuse("not-a-query", "%s is not a query; medallion query runs one SELECT", first)
	}
	if first == "WITH" {
		// The statement keyword is the first depth-0 word after the CTE list
		// that starts a statement.
		depth := 0
		for _, t := range st[i+1:] {
			switch {
			case t.kind == tokPunct && t.text == "(":
				depth++
			case t.kind == tokPunct && t.text == ")":
				depth--
			case depth == 0 && t.kind == tokWord:
				w := strings.ToUpper(t.text)
				if k, ok := statementKinds[w]; ok {
					return refuse(k.kind, "%s", k.reason)
				}
				if w == "SELECT" || w == "FROM" || w == "VALUES" || w == "TABLE" || w == "PIVOT" || w == "UNPIVOT" {
					return nil
				}
			}
		}
	}
	return nil
}

func hasTopLevelWord(st []token, word string) bool {
	depth := 0
	for _, t := range st {
		switch {
		case t.kind == tokPunct && t.text == "(":
			depth++
		case t.kind == tokPunct && t.text == ")":
			depth--
		case depth == 0 && t.kind == tokWord && strings.EqualFold(t.text, word):
			return true
		}
	}
	return false
}

// clauseWords end a FROM clause at their nesting depth.
var clauseWords = []string{"SELECT", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "QUALIFY", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "ON", "USING", "SET", "VALUES", "RETURNING"}

// checkBody refuses file-reading functions and file names in FROM positions.
func checkBody(st []token) error {
	depth := 0
	inFrom := map[int]bool{}
	for i, t := range st {
		switch t.kind {
		case tokPunct:
			switch t.text {
			case "(":
				depth++
				inFrom[depth] = false
			case ")":
				depth--
				if depth < 0 {
					return refuse("syntax", "unbalanced parentheses: a ')' without its '('")
				}
			}
		case tokWord:
			w := strings.ToUpper(t.text)
			switch {
			case w == "FROM" || w == "JOIN":
				inFrom[depth] = true
			case slices.Contains(clauseWords, w):
				inFrom[depth] = false
			}
			if i+1 < len(st) && st[i+1].kind == tokPunct && st[i+1].text == "(" && isFileFunc(t.text) {
				return refuseFunc(t.text)
			}
		case tokQuotedIdent:
			if i+1 < len(st) && st[i+1].kind == tokPunct && st[i+1].text == "(" && isFileFunc(t.text) {
				return refuseFunc(t.text)
			}
			if fromPosition(st, i, inFrom[depth]) && looksLikeFile(t.text) {
				return refuse("file-read", "%q is a file name, not a table; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", t.text)
			}
		case tokString:
			if fromPosition(st, i, inFrom[depth]) {
				return refuse("file-read", "'%s' reads a file; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", t.text)
			}
		}
	}
	if depth != 0 {
		return refuse("syntax", "unbalanced parentheses: a '(' without its ')'")
	}
	return nil
}

// fromPosition reports whether token i stands where a table goes: right
// after FROM or JOIN, or after a comma inside a FROM clause.
func fromPosition(st []token, i int, inFrom bool) bool {
	if i == 0 {
		return false
	}
	prev := st[i-1]
	if prev.kind == tokWord {
		w := strings.ToUpper(prev.text)
		return w == "FROM" || w == "JOIN"
	}
	return inFrom && prev.kind == tokPunct && prev.text == ","
}

func isFileFunc(name string) bool {
	return slices.Contains(fileFuncs, strings.ToLower(name))
}

func refuseFunc(name string) error {
	n := strings.ToLower(name)
	switch n {
	case "query", "query_table":
		return refuse("dynamic-sql", "%s() runs SQL given as a string; write the query directly", n)
	case "getenv":
		return refuse("file-read", "getenv() reads the environment; "+readOnlyTail)
	}
	if slices.Contains(engineFuncs, n) {
		return refuse("setting", "%s() shows the engine's settings and local files, not lake data; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", n)
	}
	return refuse("file-read", "%s() reads files; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", n)
}

func looksLikeFile(name string) bool {
	return strings.ContainsAny(name, `/\:*?`) || filepath.Ext(name) != ""
}

// ---- DuckDB-side checks --------------------------------------------------

// allowedTableFuncs are the table functions analysts may call: generators
// and DuckDB's catalog functions. Everything else is refused by CheckQuery.
var allowedTableFuncs = []string{"range", "generate_series", "unnest", "json_each", "json_tree", "repeat", "pragma_table_info", "pragma_show", "pragma_storage_info"}

// CheckQuery is the full analyst guard: CheckReadOnly, then DuckDB's own
// parser (json_serialize_sql only accepts SELECT statements, so anything
// that is not exactly one SELECT, DESCRIBE, SHOW or SUMMARIZE is refused)
// with every table function checked against an allow list and every table
// name checked not to be a file. EXPLAIN [ANALYZE] of such a query is
// allowed. The error is a *RefusedError, or DuckDB's syntax error.
func (e *Engine) CheckQuery(ctx context.Context, sql string) error {
	st, err := checkTokens(sql)
	if err != nil {
		return err
	}
	body := sql[st[0].pos:st[len(st)-1].end]
	if strings.EqualFold(st[0].text, "EXPLAIN") && st[0].kind == tokWord {
		j := 1
		if j < len(st) && st[j].kind == tokWord && strings.EqualFold(st[j].text, "ANALYZE") {
			j++
		}
		if j >= len(st) {
			return refuse("not-a-query", "EXPLAIN needs a query")
		}
		body = sql[st[j].pos:st[len(st)-1].end]
	}
	var out string
	if err := e.db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", body).Scan(&out); err != nil {
		return fmt.Errorf("parse query: %w", err)
	}
	var parsed struct {
		Error        bool              `json:"error"`
		ErrorType    string            `json:"error_type"`
		ErrorMessage string            `json:"error_message"`
		Statements   []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &parsed); err != nil {
		return fmt.Errorf("parse query: decode parse tree: %w", err)
	}
	if parsed.Error {
		if parsed.ErrorType == "not implemented" {
			return refuse("not-a-query", "only one SELECT (or DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) is allowed; %s", readOnlyTail)
		}
		return fmt.Errorf("%s", parsed.ErrorMessage)
	}
	if len(parsed.Statements) != 1 {
		return refuse("multiple-statements", "%d statements given; medallion query runs exactly one SELECT", len(parsed.Statements))
	}
	var tree any
	if err := json.Unmarshal(parsed.Statements[0], &tree); err != nil {
		return fmt.Errorf("parse query: decode parse tree: %w", err)
	}
	return walkTree(tree)
}

// walkTree checks every node of a json_serialize_sql tree.
func walkTree(n any) error {
	switch v := n.(type) {
	case map[string]any:
		if typ, _ := v["type"].(string); typ == "TABLE_FUNCTION" {
			if fn, ok := v["function"].(map[string]any); ok {
				name, _ := fn["function_name"].(string)
				if isFileFunc(name) {
					return refuseFunc(name)
				}
				if !slices.Contains(allowedTableFuncs, strings.ToLower(name)) && !strings.HasPrefix(strings.ToLower(name), "duckdb_") {
					return refuse("table-function", "table function %s() is not allowed; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", name)
				}
			}
		}
		if typ, _ := v["type"].(string); typ == "BASE_TABLE" {
			name, _ := v["table_name"].(string)
			if looksLikeFile(name) {
				return refuse("file-read", "%q is a file name, not a table; medallion query reads only lake tables by name (bronze.x, silver.y, gold.z)", name)
			}
		}
		if typ, _ := v["class"].(string); typ == "FUNCTION" {
			if name, _ := v["function_name"].(string); isFileFunc(name) {
				return refuseFunc(name)
			}
		}
		for _, c := range v {
			if err := walkTree(c); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range v {
			if err := walkTree(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// LockDown makes the engine refuse, whatever SQL it is given later: any file
// access except the catalog's data files (and the engine's temp directory,
// which DuckDB always allows), loading or installing extensions, and any
// further SET/RESET/PRAGMA that changes a setting (lock_configuration).
// Views created by Attach keep working. Call it after Attach and before
// running analyst SQL; it cannot be undone for this engine.
func LockDown(ctx context.Context, e *Engine, c *Catalog) error {
	var paths []string
	if c != nil {
		paths = c.Paths()
	}
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		"SET allowed_paths = " + sqlStringList(paths),
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	}
	for _, s := range settings {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("lock down duckdb: %s: %w", firstWords(s), err)
		}
	}
	return nil
}

func firstWords(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func sqlStringList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = QuoteString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ---- a small SQL lexer -----------------------------------------------------

type tokKind int

const (
	tokWord        tokKind = iota // keyword or bare identifier
	tokQuotedIdent                // "ident"
	tokString                     // 'text', E'text', $$text$$ (text unquoted)
	tokNumber
	tokPunct // ( ) , ; . and operators
)

type token struct {
	kind     tokKind
	text     string
	pos, end int // byte offsets in the input
}

// lex splits sql into tokens, skipping whitespace and comments.
func lex(sql string) ([]token, error) {
	var toks []token
	i := 0
	n := len(sql)
	for i < n {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += 2 + end + 2
		case c == '\'' || ((c == 'E' || c == 'e') && i+1 < n && sql[i+1] == '\''):
			start := i
			if c != '\'' {
				i++
			}
			s, j, err := quoted(sql, i, '\'')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, s, start, j})
			i = j
		case c == '"':
			s, j, err := quoted(sql, i, '"')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokQuotedIdent, s, i, j})
			i = j
		case c == '$' && i+1 < n && (sql[i+1] == '$' || isIdentStart(sql[i+1])):
			// Dollar quoting: $tag$ ... $tag$; a bare $1 is a parameter.
			j := i + 1
			for j < n && isIdentChar(sql[j]) {
				j++
			}
			if j < n && sql[j] == '$' {
				tag := sql[i : j+1]
				end := strings.Index(sql[j+1:], tag)
				if end < 0 {
					return nil, fmt.Errorf("unterminated %s string", tag)
				}
				toks = append(toks, token{tokString, sql[j+1 : j+1+end], i, j + 1 + end + len(tag)})
				i = j + 1 + end + len(tag)
			} else {
				toks = append(toks, token{tokPunct, "$", i, i + 1})
				i++
			}
		case isIdentStart(c):
			j := i
			for j < n && isIdentChar(sql[j]) {
				j++
			}
			toks = append(toks, token{tokWord, sql[i:j], i, j})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < n && (isIdentChar(sql[j]) || sql[j] == '.') {
				j++
			}
			toks = append(toks, token{tokNumber, sql[i:j], i, j})
			i = j
		default:
			toks = append(toks, token{tokPunct, string(c), i, i + 1})
			i++
		}
	}
	return toks, nil
}

// quoted reads a q-quoted literal starting at sql[i] == q, where a doubled q
// stands for one. It returns the unquoted text and the offset after it.
func quoted(sql string, i int, q byte) (string, int, error) {
	var b strings.Builder
	j := i + 1
	for j < len(sql) {
		if sql[j] == q {
			if j+1 < len(sql) && sql[j+1] == q {
				b.WriteByte(q)
				j += 2
				continue
			}
			return b.String(), j + 1, nil
		}
		b.WriteByte(sql[j])
		j++
	}
	if q == '"' {
		return "", 0, errors.New("unterminated quoted identifier")
	}
	return "", 0, errors.New("unterminated string literal")
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
