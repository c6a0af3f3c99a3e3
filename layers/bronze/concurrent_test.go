package bronze

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
)

// concurrentYAML has no dedupe key: a raw object promoted twice shows as
// doubled rows.
const concurrentYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      id: {type: string, required: true}
      v:  {type: int64}
`

// TestConcurrentRunsPromoteOnce: two bronze runs of one source at once
// (two `medallion run bronze`, or serve and a cron run) pick the same
// pending objects. Each raw object must be promoted, and its bad rows
// quarantined, exactly once; the loser of a race re-plans instead of
// failing.
func TestConcurrentRunsPromoteOnce(t *testing.T) {
	for _, kind := range []string{"local", "minio"} {
		t.Run(kind, func(t *testing.T) {
			var st lake.Store
			if kind == "local" {
				st = testenv.LocalStore(t)
			} else {
				st, _, _ = testenv.S3Store(t)
			}
			runConcurrentBronze(t, st)
		})
	}
}

func runConcurrentBronze(t *testing.T, st lake.Store) {
	const objects, rowsPer = 40, 5
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(concurrentYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i := range objects {
		body := ""
		for r := range rowsPer {
			body += fmt.Sprintf(`{"id":"o%02d-%d","v":%d}`+"\n", i, r, r)
		}
		if i%4 == 0 {
			body += `{"id":"bad","v":"x"}` + "\n"
			bad++
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("input%02d.ndjson", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := loadCase(t, dir)
	landInputs(t, st, p, dir, received)

	var wg sync.WaitGroup
	stats := make([]Stats, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			stats[i], errs[i] = Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}, MaxBatchObjects: 3}, p.Sources["m"])
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("run %d: %v", i, errs[i])
		}
		if !stats[i].Balanced() {
			t.Errorf("run %d: accounting does not hold: %s", i, stats[i])
		}
	}
	if got := stats[0].Objects + stats[1].Objects; got != objects {
		t.Errorf("the runs report %d + %d objects promoted, want %d in all", stats[0].Objects, stats[1].Objects, objects)
	}
	if got := stats[0].Written + stats[1].Written; got != objects*rowsPer {
		t.Errorf("the runs report %d rows written, want %d", got, objects*rowsPer)
	}
	lines := strings.Split(strings.TrimSpace(tableCSV(t, st, e.DB(), "bronze/m", "id, _source_file")), "\n")[1:]
	ids, files := map[string]int{}, map[string]bool{}
	for _, l := range lines {
		id, file, _ := strings.Cut(l, ",")
		ids[id]++
		files[file] = true
	}
	doubled := 0
	for _, c := range ids {
		doubled += c - 1
	}
	if len(lines) != objects*rowsPer || doubled != 0 || len(files) != objects {
		t.Errorf("bronze has %d rows (%d doubled) from %d objects; want %d rows from %d objects, each once",
			len(lines), doubled, len(files), objects*rowsPer, objects)
	}
	q := strings.Count(strings.TrimSpace(tableCSV(t, st, e.DB(), "bronze/_quarantine", "source_file, line")), "\n")
	if q != bad {
		t.Errorf("quarantine has %d rows, want %d (one per bad object)", q, bad)
	}
}
