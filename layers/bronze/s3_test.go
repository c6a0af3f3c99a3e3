package bronze

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestGoldenS3 runs golden cases of testdata/bronze on a MinIO lake and
// compares with the same expected files as the local run (TestGolden): a
// CSV source with DuckDB's reject tables, an NDJSON source with our own bad
// line finder, a duplicate key and an over-long line. It never rewrites the
// expected files (-update is TestGolden's).
func TestGoldenS3(t *testing.T) {
	e := newEngine(t)
	for _, name := range []string{"energy", "ecommerce", "bad_ndjson", "bad_duplicate_key", "bad_long_line", "bad_bad_quoting"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(casesDir(t), name)
			p := loadCase(t, dir)
			st, _, _ := testenv.S3Store(t)
			landInputs(t, st, p, dir, received)
			s := runBronze(t, st, p, e.DB())
			src := p.SourceOrder[0]
			compare := func(file, got string) {
				t.Helper()
				want, err := os.ReadFile(filepath.Join(dir, "expected", file))
				if err != nil {
					t.Fatal(err)
				}
				if string(want) != got {
					t.Errorf("%s on MinIO differs from expected/%s\n--- want\n%s\n--- got\n%s", name, file, want, got)
				}
			}
			compare("bronze.csv", tableCSV(t, st, e.DB(), "bronze/"+src, bronzeCols(p)))
			compare("quarantine.csv", tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols))
			compare("stats.txt", s.String()+"\n")

			// A rerun commits nothing; landing the same bytes again
			// promotes nothing new.
			ctx := context.Background()
			v0, _ := delta.Open(st, "bronze/"+src).LatestVersion(ctx)
			if s2 := runBronze(t, st, p, e.DB()); s2.Objects != 0 {
				t.Errorf("rerun: %s; want nothing new", s2)
			}
			landInputs(t, st, p, dir, received.Add(time.Minute))
			if s3 := runBronze(t, st, p, e.DB()); s3.Objects != 0 {
				t.Errorf("re-ingest: %s; want nothing new", s3)
			}
			if v1, _ := delta.Open(st, "bronze/"+src).LatestVersion(ctx); v1 != v0 {
				t.Errorf("version %d -> %d after runs with nothing new", v0, v1)
			}
		})
	}
}
