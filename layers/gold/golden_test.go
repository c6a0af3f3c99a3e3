package gold

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of the golden cases in testdata/gold")

// TestGolden runs the golden cases in testdata/gold/<case>: medallion.yaml
// (the pipeline), <silver table>.csv (the silver rows, typed as the silver
// job types them) and expected/<gold table>.csv (every gold table, sorted).
// Each case runs twice: the second run must commit nothing.
func TestGolden(t *testing.T) {
	root := filepath.Join(testenv.RepoRoot(t), "testdata", "gold")
	cases, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		// Each case is built over 32 buckets and with the bucket count
		// chosen from its (small) size, one bucket, whose file is
		// unsorted or sorted: the same rows.
		for _, v := range []struct {
			buckets int
			sorted  bool
		}{{maxBuckets, false}, {0, false}, {0, true}} {
			name := fmt.Sprintf("%s/buckets%d", c.Name(), v.buckets)
			if v.sorted {
				name += "/sorted" // not "sorted=true": DuckDB reads key=value directories as hive partitions
			}
			t.Run(name, func(t *testing.T) {
				goldenCase(t, filepath.Join(root, c.Name()), v.buckets, v.sorted)
			})
		}
	}
}

// goldenCase runs the golden case in dir with the fixture's bucket count
// set to buckets, its one-bucket files sorted when sorted.
func goldenCase(t *testing.T, dir string, buckets int, sorted bool) {
	path := filepath.Join(dir, "medallion.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.Parse(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets, f.sorted = buckets, sorted
	f.pipe = p
	if _, err := f.eng.DB().ExecContext(f.ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	for _, name := range p.SilverOrder {
		f.loadSilverCSV(name, p.Silver[name], filepath.Join(dir, name+".csv"))
	}
	versions := map[string]int64{}
	for _, name := range p.GoldOrder {
		st := f.run(name)
		versions[name] = st.Version
	}
	for _, name := range p.GoldOrder {
		if st := f.run(name); st.Mode != ModeSkipped || st.Version != versions[name] {
			t.Errorf("gold.%s: second run %+v", name, st)
		}
	}
	for _, name := range p.GoldOrder {
		got := f.dumpCSV("gold/" + name)
		file := filepath.Join(dir, "expected", name+".csv")
		if *update && buckets == maxBuckets {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if *update {
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("gold.%s differs from %s:\ngot:\n%swant:\n%s", name, file, got, want)
		}
	}
}

// silverTypes are the DuckDB types the silver job gives a table's columns.
func silverTypes(s *config.Silver) map[string]string {
	types := map[string]string{"window_start": "TIMESTAMPTZ", "window_end": "TIMESTAMPTZ"}
	for _, g := range s.GroupBy {
		types[g] = "VARCHAR"
	}
	for _, a := range s.Aggregates {
		switch a.Func {
		case "count", "count_if", "approx_count_distinct":
			types[a.Name] = "BIGINT"
		default:
			types[a.Name] = "DOUBLE"
		}
	}
	return types
}

// loadSilverCSV creates silver/<name> from a CSV file, one data file.
func (f *fixture) loadSilverCSV(name string, s *config.Silver, file string) {
	f.t.Helper()
	types := silverTypes(s)
	cols := []string{"window_start", "window_end"}
	cols = append(cols, s.GroupBy...)
	for _, a := range s.Aggregates {
		cols = append(cols, a.Name)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", warehouse.QuoteIdent(c), types[c], warehouse.QuoteIdent(c))
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM read_csv(" + warehouse.QuoteString(file) + ", header = true, all_varchar = true)"
	conn, err := f.eng.DB().Conn(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(f.ctx, "DESCRIBE "+q)
	if err != nil {
		f.t.Fatal(err)
	}
	var described []column
	for rows.Next() {
		var n, ty string
		var a, b, c, d any
		if err := rows.Scan(&n, &ty, &a, &b, &c, &d); err != nil {
			f.t.Fatal(err)
		}
		described = append(described, column{Name: n, Type: ty})
	}
	rows.Close()
	schema, _, err := schemaOf(described)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := delta.Open(f.store, "silver/"+name).Create(f.ctx, delta.Metadata{SchemaString: schema.String()}, delta.CommitInfo{}); err != nil {
		f.t.Fatal(err)
	}
	f.commitSilver(name, nil, q)
}

// dumpCSV renders a table as CSV with a header, rows sorted.
func (f *fixture) dumpCSV(dir string) string {
	f.t.Helper()
	out := filepath.Join(f.dir, strings.ReplaceAll(dir, "/", "_")+".csv")
	snap := f.snapshot(dir)
	q := "SELECT * FROM " + "{" + strings.Replace(dir, "/", ".", 1) + "} ORDER BY ALL"
	if len(snap.Files) == 0 {
		return ""
	}
	f.query("COPY (" + q + ") TO " + warehouse.QuoteString(out) + " (HEADER, DELIMITER ',')")
	b, err := os.ReadFile(out)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}
