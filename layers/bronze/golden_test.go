package bronze

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/bronze")

// testLineMax is the max line length the golden cases run with, so that the
// over-long line case stays small.
const testLineMax = 1024

var received = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func casesDir(t *testing.T) string { return filepath.Join(testenv.RepoRoot(t), "testdata", "bronze") }

func loadCase(t *testing.T, dir string) *config.Pipeline {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "medallion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.Parse(filepath.Join(dir, "medallion.yaml"), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEngine(t *testing.T) *warehouse.Engine {
	t.Helper()
	e, err := warehouse.Open(context.Background(), warehouse.Options{MemoryLimit: "1GB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// landInputs lands every input.* file of a case.
func landInputs(t *testing.T, st lake.Store, p *config.Pipeline, dir string, at time.Time) {
	t.Helper()
	src := p.Sources[p.SourceOrder[0]]
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "input") {
			continue
		}
		if _, _, err := raw.LandFile(context.Background(), st, src.Name, src.Format, filepath.Join(dir, e.Name()), at); err != nil {
			t.Fatal(err)
		}
	}
}

func runBronze(t *testing.T, st lake.Store, p *config.Pipeline, db *sql.DB) Stats {
	t.Helper()
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: db, ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}, MaxLineBytes: testLineMax}, p.Sources[p.SourceOrder[0]])
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() {
		t.Fatalf("accounting does not hold: %s", s)
	}
	return s
}

// tableCSV renders a Delta table's rows as sorted CSV lines (header first),
// reading the committed files with DuckDB.
func tableCSV(t *testing.T, st lake.Store, db *sql.DB, dir string, cols string) string {
	t.Helper()
	ctx := context.Background()
	snap, err := delta.Open(st, dir).Snapshot(ctx)
	if err != nil {
		return "(no table)\n"
	}
	cache := &lake.Cache{Dir: t.TempDir()}
	var files []string
	for _, f := range snap.Files {
		p, err := cache.Path(ctx, st, dir+"/"+f.Path, "")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, "'"+p+"'")
	}
	if len(files) == 0 {
		return "(no rows)\n"
	}
	q := fmt.Sprintf("SELECT %s FROM read_parquet([%s], hive_partitioning=true, union_by_name=true)", cols, strings.Join(files, ","))
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET TimeZone='UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%v: %s", err, q)
	}
	defer rows.Close()
	names, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			s := v.String
			if !v.Valid {
				s = "NULL"
			}
			if strings.ContainsAny(s, ",\"\n") {
				s = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
			cells = append(cells, s)
		}
		lines = append(lines, strings.Join(cells, ","))
	}
	sort.Strings(lines)
	return strings.Join(names, ",") + "\n" + strings.Join(lines, "\n") + "\n"
}

func bronzeCols(p *config.Pipeline) string {
	src := p.Sources[p.SourceOrder[0]]
	var cols []string
	for _, c := range src.Schema {
		cols = append(cols, fmt.Sprintf("CAST(%s AS VARCHAR) AS %s", warehouse.QuoteIdent(c.Name), warehouse.QuoteIdent(c.Name)))
	}
	for _, d := range src.Derive {
		cols = append(cols, fmt.Sprintf("CAST(%s AS VARCHAR) AS %s", warehouse.QuoteIdent(d.Name), warehouse.QuoteIdent(d.Name)))
	}
	cols = append(cols, "_rescued", "CAST(_ingested_at AS VARCHAR) AS _ingested_at", "_batch_id")
	return strings.Join(cols, ", ")
}

const quarantineCols = "line, column_name, reason, raw"

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestGolden runs every case of testdata/bronze on a local lake: bronze
// rows, quarantine rows (line, column, reason, raw) and the accounting line
// must match the expected files; a rerun commits nothing; landing the same
// file again promotes nothing new.
func TestGolden(t *testing.T) {
	root := casesDir(t)
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		name := ent.Name()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, name)
			p := loadCase(t, dir)
			st := testenv.LocalStore(t)
			landInputs(t, st, p, dir, received)
			s := runBronze(t, st, p, e.DB())
			src := p.SourceOrder[0]
			got := tableCSV(t, st, e.DB(), "bronze/"+src, bronzeCols(p))
			checkGolden(t, filepath.Join(dir, "expected", "bronze.csv"), got)
			q := tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols)
			checkGolden(t, filepath.Join(dir, "expected", "quarantine.csv"), q)
			checkGolden(t, filepath.Join(dir, "expected", "stats.txt"), s.String()+"\n")

			// Rerun: nothing new, no commit.
			v0, _ := delta.Open(st, "bronze/"+src).LatestVersion(context.Background())
			s2 := runBronze(t, st, p, e.DB())
			v1, _ := delta.Open(st, "bronze/"+src).LatestVersion(context.Background())
			if s2.Objects != 0 || v1 != v0 {
				t.Errorf("rerun: %s, version %d -> %d; want nothing new", s2, v0, v1)
			}
			// Landing the same bytes again promotes nothing new.
			landInputs(t, st, p, dir, received.Add(time.Minute))
			s3 := runBronze(t, st, p, e.DB())
			if s3.Objects != 0 {
				t.Errorf("re-ingest: %s; want nothing new", s3)
			}
		})
	}
}
