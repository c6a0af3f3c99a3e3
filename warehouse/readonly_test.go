package warehouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusedCases are the queries the analyst guard must refuse, with the kind
// and a part of the message the user sees.
var refusedCases = []struct {
	name, sql, kind, msg string
}{
	{"read_csv passwd", "SELECT * FROM read_csv('/etc/passwd')", "file-read", "read_csv() reads files"},
	{"read_csv_auto", "select * from READ_CSV_AUTO('x.csv')", "file-read", "read_csv_auto() reads files"},
	{"read_parquet", "SELECT count(*) FROM read_parquet('/tmp/*.parquet')", "file-read", "read_parquet() reads files"},
	{"parquet_scan", "SELECT * FROM parquet_scan('a.parquet')", "file-read", "parquet_scan() reads files"},
	{"read_json", "SELECT * FROM read_json('a.json')", "file-read", "read_json() reads files"},
	{"read_json_auto", "SELECT * FROM read_json_auto('a.json')", "file-read", "read_json_auto() reads files"},
	{"read_ndjson", "SELECT * FROM read_ndjson_objects('a.json')", "file-read", "read_ndjson_objects() reads files"},
	{"read_text", "SELECT content FROM read_text('/etc/hostname')", "file-read", "read_text() reads files"},
	{"read_blob", "SELECT * FROM read_blob('/etc/hostname')", "file-read", "read_blob() reads files"},
	{"glob", "SELECT * FROM glob('/etc/*')", "file-read", "glob() reads files"},
	{"sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", "file-read", "sniff_csv() reads files"},
	{"delta_scan", "SELECT * FROM delta_scan('s3://b/t')", "file-read", "delta_scan() reads files"},
	{"iceberg_scan", "SELECT * FROM iceberg_scan('t')", "file-read", "iceberg_scan() reads files"},
	{"file function in subquery", "SELECT * FROM gold.x WHERE id IN (SELECT * FROM read_csv('/etc/passwd'))", "file-read", "read_csv() reads files"},
	{"file function in cte", "WITH a AS (SELECT * FROM read_text('/etc/shadow')) SELECT * FROM a", "file-read", "read_text() reads files"},
	{"quoted function name", `SELECT * FROM "read_csv"('/etc/passwd')`, "file-read", "read_csv() reads files"},
	{"dynamic sql", "SELECT * FROM query('SELECT 1')", "dynamic-sql", "query() runs SQL given as a string"},
	{"file as table", "SELECT * FROM '/etc/passwd'", "file-read", "'/etc/passwd' reads a file"},
	{"file in join", "SELECT * FROM gold.a JOIN 'data.csv' USING (id)", "file-read", "'data.csv' reads a file"},
	{"file after comma", "SELECT * FROM gold.a, 'x.parquet'", "file-read", "'x.parquet' reads a file"},
	{"quoted file as table", `SELECT * FROM "/etc/passwd"`, "file-read", `"/etc/passwd" is a file name`},
	{"from-first file", "FROM '/etc/passwd'", "file-read", "'/etc/passwd' reads a file"},
	{"copy to", "COPY (SELECT 1) TO '/tmp/x.csv'", "copy", "COPY writes files; medallion query is read-only"},
	{"copy table to", "copy gold.x to 'out.parquet' (format parquet)", "copy", "COPY writes files"},
	{"copy from", "COPY gold.x FROM '/etc/passwd'", "copy", "COPY FROM reads files"},
	{"attach", "ATTACH '/tmp/other.db' AS o", "attach", "ATTACH opens another database"},
	{"detach", "DETACH o", "attach", "DETACH"},
	{"install", "INSTALL httpfs", "extension", "INSTALL downloads extensions"},
	{"force install", "FORCE INSTALL httpfs", "extension", "FORCE INSTALL"},
	{"load", "LOAD httpfs", "extension", "LOAD loads extensions"},
	{"set", "SET memory_limit='1GB'", "setting", "SET changes settings"},
	{"set external access", "SET enable_external_access = true", "setting", "SET changes settings"},
	{"reset", "RESET memory_limit", "setting", "RESET changes settings"},
	{"pragma", "PRAGMA enable_profiling", "setting", "PRAGMA"},
	{"pragma with value", "PRAGMA memory_limit='10GB'", "setting", "PRAGMA"},
	{"call", "CALL pragma_version()", "setting", "CALL runs procedures"},
	{"create table", "CREATE TABLE t AS SELECT 1", "ddl", "CREATE changes the catalog (DDL); medallion query is read-only"},
	{"create view", "create or replace view gold.x as select 1", "ddl", "CREATE changes the catalog"},
	{"drop", "DROP VIEW gold.x", "ddl", "DROP changes the catalog"},
	{"alter", "ALTER VIEW gold.x RENAME TO y", "ddl", "ALTER changes the catalog"},
	{"insert", "INSERT INTO t VALUES (1)", "write", "INSERT writes data; medallion query is read-only"},
	{"update", "UPDATE t SET a = 1", "write", "UPDATE writes data"},
	{"delete", "DELETE FROM t", "write", "DELETE writes data"},
	{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "write", "MERGE writes data"},
	{"truncate", "TRUNCATE t", "write", "TRUNCATE deletes data"},
	{"with insert", "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", "write", "INSERT writes data"},
	{"export", "EXPORT DATABASE '/tmp/x'", "copy", "EXPORT DATABASE writes files"},
	{"import", "IMPORT DATABASE '/tmp/x'", "copy", "IMPORT DATABASE reads files"},
	{"two statements", "SELECT 1; SELECT 2", "multiple-statements", "2 statements given"},
	{"select then drop", "SELECT 1; DROP TABLE x", "multiple-statements", "2 statements given"},
	{"statement hidden after comment", "SELECT 1 /* ; */ ; COPY (SELECT 1) TO 'x'", "multiple-statements", "2 statements"},
	{"transaction", "BEGIN TRANSACTION", "other", "transactions are not supported"},
	{"checkpoint", "CHECKPOINT", "other", "CHECKPOINT"},
	{"empty", "  -- nothing\n", "empty", "no SQL statement"},
	{"unbalanced", "SELECT 1) TO 'x' (FORMAT csv", "syntax", "unbalanced parentheses"},
	{"use", "USE other", "attach", "USE changes the current database"},
	{"current_setting", "SELECT current_setting('allowed_paths')", "setting", "current_setting() shows the engine's settings"},
	{"current_setting quoted", `SELECT "CURRENT_SETTING"('temp_directory') AS p`, "setting", "current_setting()"},
	{"duckdb_settings", "SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'", "setting", "duckdb_settings() shows"},
	{"duckdb_temporary_files", "FROM duckdb_temporary_files()", "setting", "duckdb_temporary_files()"},
	{"duckdb_extensions", "SELECT install_path FROM duckdb_extensions()", "setting", "duckdb_extensions()"},
	{"duckdb_secrets", "SELECT * FROM duckdb_secrets()", "setting", "duckdb_secrets()"},
}

func TestCheckReadOnlyRefuses(t *testing.T) {
	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckReadOnly(tc.sql)
			assertRefused(t, err, tc.kind, tc.msg)
		})
	}
}

func assertRefused(t *testing.T, err error, kind, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("not refused")
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("error %v does not wrap ErrRefused", err)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %T is not a *RefusedError", err)
	}
	if re.Kind != kind {
		t.Errorf("kind = %q, want %q (%v)", re.Kind, kind, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("message %q does not contain %q", err.Error(), msg)
	}
	if !strings.HasPrefix(err.Error(), "query refused: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q is not one line starting with 'query refused: '", err.Error())
	}
}

var allowedQueries = []string{
	"SELECT 1",
	"select 1;",
	"SELECT * FROM gold.meter_usage_ma WHERE meter_id = 'm1' ORDER BY window_start",
	"WITH a AS (SELECT 1 AS x) SELECT * FROM a",
	"FROM bronze.meters LIMIT 3",
	"SELECT 'copy; insert into t' AS s, \"select\" FROM (SELECT 1 AS \"select\")",
	"-- a comment; DROP TABLE x\nSELECT 1",
	"SELECT * FROM range(3)",
	"DESCRIBE SELECT 1 AS a",
	"SELECT strftime(TIMESTAMP '2024-05-01', '%Y') AS y",
	"SELECT $$a;b$$ AS s",
	"EXPLAIN SELECT 1",
	"SELECT x FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y)",
	"SELECT table_name FROM duckdb_tables()",
}

func TestCheckReadOnlyAllows(t *testing.T) {
	for _, q := range allowedQueries {
		if err := CheckReadOnly(q); err != nil {
			t.Errorf("%q refused: %v", q, err)
		}
	}
}

// TestEngineGuard runs every refused case through the full guard
// (CheckQuery: our lexer plus DuckDB's own parser), and checks that a
// locked-down engine itself refuses file access and setting changes even
// without the guard, while views over the lake keep working.
func TestEngineGuard(t *testing.T) {
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data.parquet")
	other := filepath.Join(dir, "other.parquet")
	for _, p := range []string{data, other} {
		if _, err := eng.DB().ExecContext(ctx, "COPY (SELECT 42 AS answer) TO "+QuoteString(p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.DB().ExecContext(ctx, "CREATE SCHEMA gold; CREATE VIEW gold.x AS SELECT * FROM read_parquet("+QuoteString(data)+")"); err != nil {
		t.Fatal(err)
	}
	cat := &Catalog{Tables: []AttachedTable{{paths: []string{data}}}}
	if err := LockDown(ctx, eng, cat); err != nil {
		t.Fatal(err)
	}

	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			assertRefused(t, eng.CheckQuery(ctx, tc.sql), tc.kind, tc.msg)
		})
	}
	for _, q := range allowedQueries {
		if err := eng.CheckQuery(ctx, q); err != nil {
			t.Errorf("CheckQuery(%q): %v", q, err)
		}
	}
	// DuckDB-side: table functions are allow-listed.
	assertRefused(t, eng.CheckQuery(ctx, "SELECT * FROM test_all_types()"), "table-function", "table function test_all_types() is not allowed")

	// The view over a lake file still works after the lock-down.
	var answer int
	if err := eng.DB().QueryRowContext(ctx, "SELECT answer FROM gold.x").Scan(&answer); err != nil || answer != 42 {
		t.Fatalf("view after lock-down: %d, %v", answer, err)
	}
	// Without the guard, DuckDB itself refuses (defence in depth).
	for _, q := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_parquet(" + QuoteString(other) + ")",
		"SET enable_external_access = true",
		"RESET lock_configuration",
		"SET memory_limit = '10GB'",
		"INSTALL httpfs",
		"LOAD httpfs",
	} {
		if _, err := eng.DB().ExecContext(ctx, q); err == nil {
			t.Errorf("locked-down engine ran %q", q)
		}
	}
	if _, err := os.Stat("/etc/passwd"); err == nil {
		if _, err := eng.DB().ExecContext(ctx, "SELECT * FROM '/etc/passwd'"); err == nil {
			t.Errorf("locked-down engine read /etc/passwd as a table")
		}
	}
}
