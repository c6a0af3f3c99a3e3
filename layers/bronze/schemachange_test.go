package bronze

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// TestSchemaRenameAndCastS3 renames and widens a column of a partitioned
// bronze table on MinIO in one schema commit: the files are rewritten
// (dataChange false), the statistics follow the new name, and the earlier
// values read under the new name and type.
func TestSchemaRenameAndCastS3(t *testing.T) {
	e := newEngine(t)
	st, _, _ := testenv.S3Store(t)
	ctx := context.Background()
	dir := t.TempDir()
	pipeline := func(col string) *config.Pipeline {
		t.Helper()
		y := `sources:
  meters:
    format: ndjson
    schema:
      timestamp: {type: timestamp, format: "2006-01-02 15:04:05"}
      meter_id:  {type: string}
` + col
		p, err := config.Parse("medallion.yaml", []byte(y), nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	land := func(name, lines string, at time.Time) {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := raw.LandFile(ctx, st, "meters", "ndjson", f, at); err != nil {
			t.Fatal(err)
		}
	}
	land("a.ndjson", `{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","reading":7}
{"timestamp":"2024-01-02 00:00:00","meter_id":"m2","reading":9}
`, received)
	runBronze(t, st, pipeline("      reading:   {type: int64}\n"), e.DB())

	// Renamed and widened without saying so: refused, nothing written.
	p := pipeline("      kwh:       {type: double}\n")
	_, err := Run(ctx, Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), PipelineFile: "medallion.yaml"}}, p.Sources["meters"])
	var se *layers.SchemaChangeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "medallion.yaml:7:7") || !strings.Contains(err.Error(), "column reading (int64) is no longer written") ||
		!strings.Contains(err.Error(), "add `renamed_from: reading` and `cast_from: int64` to column kwh") {
		t.Fatalf("rename without renamed_from: %v", err)
	}

	p = pipeline("      kwh:       {type: double, renamed_from: reading, cast_from: int64}\n")
	land("b.ndjson", `{"timestamp":"2024-01-02 00:00:01","meter_id":"m3","kwh":1.5}`+"\n", received.Add(time.Minute))
	runBronze(t, st, p, e.DB())
	got := tableCSV(t, st, e.DB(), "bronze/meters", "meter_id, CAST(kwh AS VARCHAR) AS kwh, typeof(kwh) AS t")
	if want := "meter_id,kwh,t\nm1,7.0,DOUBLE\nm2,9.0,DOUBLE\nm3,1.5,DOUBLE\n"; got != want {
		t.Errorf("bronze after the rename and cast:\n%s\nwant:\n%s", got, want)
	}
	tbl := delta.Open(st, "bronze/meters")
	snap, err := tbl.SnapshotAt(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tbl.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var schemaCommit delta.CommitInfo
	for _, c := range hist {
		if c.Version == 2 {
			schemaCommit = c
		}
	}
	if w := "renamed reading -> kwh; retyped column kwh long -> double"; schemaCommit.Medallion[layers.SchemaChangeKey] != w {
		t.Errorf("schema commit %+v; want %q", schemaCommit, w)
	}
	if len(snap.Files) != 2 {
		t.Fatalf("files after the schema commit: %d, want one per partition (2)", len(snap.Files))
	}
	for _, f := range snap.Files {
		if f.DataChange {
			t.Errorf("rewritten file %s has dataChange true", f.Path)
		}
		fs, err := delta.ParseStats(f.Stats)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fs.NullCount["kwh"]; !ok || fs.MinValues["reading"] != nil || fs.MinValues["kwh"] != nil {
			t.Errorf("stats of %s: %s; want kwh's null count, no bounds of the cast column", f.Path, f.Stats)
		}
	}
}
