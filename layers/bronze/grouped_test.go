package bronze

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestGoldenGrouped runs the NDJSON golden cases with a second object in
// the batch, the case's input with a blank line added (other bytes, the
// same keys), so that both objects are typed by one statement (one reader
// over both files, in the precise path and in the fast path): each object's
// quarantine rows are the golden ones (the same line numbers, columns and
// reasons), and so are its bronze rows (for a case with a dedupe key, the
// rows kept of the two objects).
func TestGoldenGrouped(t *testing.T) {
	e := newEngine(t)
	for _, name := range []string{"bad_ndjson", "energy", "sensor"} {
		for _, precise := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/precise=%v", name, precise), func(t *testing.T) {
				dir := filepath.Join(casesDir(t), name)
				p := loadCase(t, dir)
				src := p.Sources[p.SourceOrder[0]]
				st := testenv.LocalStore(t)
				body, err := os.ReadFile(filepath.Join(dir, "input.ndjson"))
				if err != nil {
					t.Fatal(err)
				}
				copyPath := filepath.Join(t.TempDir(), "input-copy.ndjson")
				if err := os.WriteFile(copyPath, append(body, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, f := range []string{filepath.Join(dir, "input.ndjson"), copyPath} {
					m, _, err := raw.LandFile(context.Background(), st, src.Name, src.Format, f, received)
					if err != nil {
						t.Fatal(err)
					}
					keys = append(keys, m.Key)
				}
				s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }},
					MaxLineBytes: testLineMax, precise: precise}, src)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Balanced() || s.Objects != 2 || s.Batches != 1 {
					t.Fatalf("stats: %s (%d objects, %d batches); want 2 objects in 1 batch, balanced", s, s.Objects, s.Batches)
				}
				goldenRows := dropLastColumn(t, readFile(t, filepath.Join(dir, "expected", "bronze.csv"))) // without _batch_id
				cols := strings.TrimSuffix(bronzeCols(p), ", _batch_id") + ", _source_file"
				byObject := splitBySourceFile(t, tableCSV(t, st, e.DB(), "bronze/"+src.Name, cols), keys)
				if len(src.Dedupe) == 0 {
					for _, k := range keys {
						if got := byObject[k]; got != goldenRows {
							t.Errorf("rows of %s\n--- got\n%s--- want\n%s", k, got, goldenRows)
						}
					}
				} else if got := mergeTables(byObject[keys[0]], byObject[keys[1]]); got != goldenRows {
					t.Errorf("rows\n--- got\n%s--- want\n%s", got, goldenRows)
				}
				goldenQ := readFile(t, filepath.Join(dir, "expected", "quarantine.csv"))
				qByObject := splitBySourceFile(t, tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols+", source_file"), keys)
				for _, k := range keys {
					got := qByObject[k]
					if got != goldenQ {
						t.Errorf("quarantine of %s\n--- got\n%s--- want\n%s", k, got, goldenQ)
					}
				}
			})
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dropLastColumn removes the last CSV column of tableCSV output (values
// with no comma in them).
func dropLastColumn(t *testing.T, table string) string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(table, "\n"), "\n") {
		i := strings.LastIndex(l, ",")
		if i < 0 {
			t.Fatalf("line %q has one column", l)
		}
		out = append(out, l[:i])
	}
	return strings.Join(out, "\n") + "\n"
}

// splitBySourceFile splits tableCSV output whose last column is an object
// key into one table (header first, without that column) per key.
func splitBySourceFile(t *testing.T, table string, keys []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if !strings.Contains(table, ",") { // (no table)
		for _, k := range keys {
			out[k] = table
		}
		return out
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	header := lines[0][:strings.LastIndex(lines[0], ",")]
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		i := strings.LastIndex(l, ",")
		k := l[i+1:]
		if !contains(keys, k) {
			t.Fatalf("row %q names no object of the batch", l)
		}
		rows[k] = append(rows[k], l[:i])
	}
	for _, k := range keys {
		out[k] = tableLines(header, rows[k])
	}
	return out
}

// mergeTables merges the rows of two tables of tableLines.
func mergeTables(a, b string) string {
	la := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	lb := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	return tableLines(la[0], append(la[1:], lb[1:]...))
}

// TestBadValueCorpusOneStatement: every value of the bad-value corpus in
// an NDJSON object of its own, with a good row, all objects of one batch,
// typed by one statement (by the fast path, refusing the batch, then the
// precise path): each object's good row is written and its refused value
// quarantined at line 2 with the corpus's column and reason, named by its
// own object.
func TestBadValueCorpusOneStatement(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte("lake: file://./lake\nsources:\n  v:\n    format: ndjson\n"+corpusSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	st := testenv.LocalStore(t)
	good := corpusValue{col: "s", csv: "ok", json: `"ok"`, want: "ok"}
	var wantRows []string
	wantQ := map[string]bool{}
	for k, c := range badValueCorpus {
		if c.json == "" {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("o%03d.ndjson", k))
		body := corpusLine(fmt.Sprintf("g%02d", k), good.col, good.json) + "\n" + corpusLine(fmt.Sprintf("r%02d", k), c.col, c.json) + "\n"
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := raw.LandFile(context.Background(), st, "v", "ndjson", f, received)
		if err != nil {
			t.Fatal(err)
		}
		wantRows = append(wantRows, fmt.Sprintf("g%02d\ts\tok", k))
		if c.reason == "" {
			wantRows = append(wantRows, fmt.Sprintf("r%02d\t%s\t%s", k, c.col, c.want))
			continue
		}
		col := c.col
		if c.wholeLine {
			col = "NULL"
		}
		wantQ[fmt.Sprintf("%s,2,%s,%s", m.Key, col, csvCell(c.reason))] = true
	}
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}, p.Sources["v"])
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() || s.Batches != 1 {
		t.Fatalf("stats: %s (%d batches); want one balanced batch", s, s.Batches)
	}
	var sel []string
	for _, c := range append([]string{"id"}, corpusCols...) {
		sel = append(sel, "CAST("+warehouse.QuoteIdent(c)+" AS VARCHAR) AS "+warehouse.QuoteIdent(c))
	}
	checkCorpusRows(t, "one statement", tableCSV(t, st, e.DB(), "bronze/v", strings.Join(sel, ", ")), wantRows)
	checkCorpusQuarantine(t, "one statement", tableCSV(t, st, e.DB(), "bronze/_quarantine", `source_file, line, "column", reason`), wantQ)
}
