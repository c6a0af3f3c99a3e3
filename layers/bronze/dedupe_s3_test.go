package bronze

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

const partitionedDedupeYAML = `lake: file://./lake
sources:
  tagged:
    format: ndjson
    schema:
      id:     {type: string, required: true}
      region: {type: string}
    partition_by: region
    dedupe: [id, region]
`

// TestPartitionedDedupeS3: on an S3 lake the dedupe of a partitioned
// source reads the existing files through local copies whose paths still
// say region=..., as DuckDB's hive partitioning needs; a second object
// repeating half the keys adds only the new half.
func TestPartitionedDedupeS3(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(partitionedDedupeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	st, _, _ := testenv.S3Store(t)
	e := newEngine(t)
	ctx := context.Background()
	deps := Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}
	for o, ids := range [][2]int{{0, 20}, {10, 30}} {
		var b bytes.Buffer
		for i := ids[0]; i < ids[1]; i++ {
			fmt.Fprintf(&b, `{"id":"k%02d","region":"r%d"}`+"\n", i, i%3)
		}
		path := filepath.Join(dir, fmt.Sprintf("in%d.ndjson", o))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := raw.LandFile(ctx, st, "tagged", "ndjson", path, received.Add(time.Duration(o)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		s, err := Run(ctx, deps, p.Sources["tagged"])
		if err != nil {
			t.Fatalf("object %d: %v", o, err)
		}
		if s.Written != 20-int64(o)*10 || s.Duplicates != int64(o)*10 {
			t.Fatalf("object %d: %s, want %d written, %d duplicates", o, s, 20-o*10, o*10)
		}
	}
}
