package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

// queryLake makes a local lake with bronze.meters in two versions and a
// pipeline file naming it; it returns the pipeline file's path.
func queryLake(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	lakeDir := filepath.Join(dir, "lake")
	store, err := lake.NewLocal(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	add := func(path, query string) delta.Add {
		local := filepath.Join(dir, "tmp.parquet")
		if _, err := eng.DB().ExecContext(ctx, "COPY ("+query+") TO '"+local+"' (FORMAT parquet)"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, "bronze/meters/"+path, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		return delta.Add{Path: path, PartitionValues: delta.PartitionValues{}, Size: int64(len(data)), DataChange: true}
	}
	markLake(t, store)
	tbl := delta.Open(store, "bronze/meters")
	schema := `{"type":"struct","fields":[{"name":"meter_id","type":"string","nullable":true,"metadata":{}},{"name":"energy_usage","type":"double","nullable":true,"metadata":{}}]}`
	s0, err := tbl.Create(ctx, delta.Metadata{SchemaString: schema}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := tbl.Commit(ctx, s0, delta.Commit{Adds: []delta.Add{add("part-1.parquet", "SELECT 'm1' AS meter_id, 1.5 AS energy_usage")}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := tbl.Commit(ctx, s1, delta.Commit{Adds: []delta.Add{add("part-2.parquet", "SELECT 'm2' AS meter_id, 250.0 AS energy_usage")}}); err != nil {
		t.Fatal(err)
	}
	yaml := `lake: file://` + lakeDir + `
cache: ` + filepath.Join(dir, "cache") + `
sources:
  meters:
    format: ndjson
    schema:
      meter_id: {type: string, required: true}
      energy_usage: {type: double}
`
	path := filepath.Join(dir, "medallion.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runQueryCmd(t *testing.T, pipeline, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, stdin: strings.NewReader(stdin), logFormat: "text", logLevel: "info", pipelineFile: pipeline}
	err := runQuery(context.Background(), a, append([]string{"-f", pipeline}, args...))
	return out.String(), err
}

func TestQueryCommand(t *testing.T) {
	pipeline := queryLake(t)
	const q = "SELECT meter_id, energy_usage FROM bronze.meters ORDER BY meter_id"

	out, err := runQueryCmd(t, pipeline, "", q)
	if err != nil {
		t.Fatal(err)
	}
	want := "meter_id  energy_usage\n--------  ------------\nm1                 1.5\nm2                 250\n(2 rows)\n"
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}

	out, err = runQueryCmd(t, pipeline, "", q, "--format", "csv", "--as-of", "1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "meter_id,energy_usage\nm1,1.5\n"; out != want {
		t.Errorf("csv as of 1: %q, want %q", out, want)
	}

	out, err = runQueryCmd(t, pipeline, q+";\n", "--format", "json", "-")
	if err != nil {
		t.Fatal(err)
	}
	if want := "[\n  {\"meter_id\":\"m1\",\"energy_usage\":1.5},\n  {\"meter_id\":\"m2\",\"energy_usage\":250}\n]\n"; out != want {
		t.Errorf("json from stdin: %q, want %q", out, want)
	}

	pq := filepath.Join(t.TempDir(), "out.parquet")
	if _, err := runQueryCmd(t, pipeline, "", q, "--format", "parquet", "--out", pq); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(pq); err != nil || fi.Size() == 0 {
		t.Errorf("parquet output: %v", err)
	}

	var ue *usageError
	if _, err := runQueryCmd(t, pipeline, "", q, "--format", "parquet"); !errors.As(err, &ue) {
		t.Errorf("parquet without --out: %v, want a usage error", err)
	}
	if _, err := runQueryCmd(t, pipeline, "", q, "--format", "xml"); !errors.As(err, &ue) {
		t.Errorf("--format xml: %v, want a usage error", err)
	}

	_, err = runQueryCmd(t, pipeline, "", "COPY (SELECT 1) TO '/tmp/x.csv'")
	if err == nil || err.Error() != "query refused: COPY writes files; medallion query is read-only" {
		t.Errorf("COPY: %v", err)
	}
	_, err = runQueryCmd(t, pipeline, "", "SELECT * FROM read_csv('/etc/passwd')")
	if !errors.Is(err, warehouse.ErrRefused) {
		t.Errorf("read_csv: %v, want a refusal", err)
	}

	_, err = runQueryCmd(t, pipeline, "", "SELECT * FROM gold.nope")
	if err == nil || !strings.Contains(err.Error(), "nope does not exist") || !strings.Contains(err.Error(), "(tables: bronze.meters)") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown table: %v", err)
	}
}
