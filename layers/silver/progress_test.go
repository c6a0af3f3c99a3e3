package silver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

// TestRunReportsFilesRead: a silver batch reports the bronze files it has
// read of the batch's files, then the rows it aggregates: never
// backwards, never above the total, ending with every file read.
func TestRunReportsFilesRead(t *testing.T) {
	store := testenv.LocalStore(t)
	le := newLakeEnv(t, store, silverCfg("a", 10*time.Second, 0, 0, "append"))
	for _, part := range split(genRows(60), 3) {
		le.appendBronze(part...)
	}
	eng := openEngine(t)
	var (
		mu   sync.Mutex
		seen []layers.Progress
	)
	env := layers.Env{Store: store, DB: eng.DB(), ScratchDir: t.TempDir(), Progress: func(lp layers.Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, lp)
	}}
	st, err := RunAll(context.Background(), Deps{Env: env}, le.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Files < 3 {
		t.Fatalf("stats %+v, want one table reading 3 files or more", st)
	}
	var prev layers.Progress
	for i, lp := range seen {
		if lp.Unit != layers.UnitFiles || lp.Done < prev.Done || lp.Rows < prev.Rows || lp.Done > lp.Total {
			t.Errorf("report %d: %+v after %+v", i, lp, prev)
		}
		prev = lp
	}
	if len(seen) < st[0].Files || prev.Done != int64(st[0].Files) || prev.Total != prev.Done || prev.Rows != st[0].RowsIn {
		t.Errorf("reports %+v, want one per file ending at %d files and %d rows", seen, st[0].Files, st[0].RowsIn)
	}
}
