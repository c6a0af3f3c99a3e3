package bronze

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

// TestRunReportsProgress: a run over many objects in several batches, some
// typed the precise way (bad lines), reports bytes of raw objects done of
// the run's total as it goes: the figures never go backwards, never exceed
// the total (the bytes of the objects landed), and end at the total with
// the rows read.
func TestRunReportsProgress(t *testing.T) {
	st := testenv.LocalStore(t)
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(smallObjYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	const n = 40
	landSmallObjects(t, st, n, true)
	var want int64
	for i := range n {
		body, _ := smallObject(i, true)
		want += int64(len(body))
	}
	var (
		mu   sync.Mutex
		seen []layers.Progress
	)
	env := layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) },
		Progress: func(lp layers.Progress) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, lp)
		}}
	s, err := Run(context.Background(), Deps{Env: env, MaxLineBytes: testLineMax, MaxBatchObjects: 15}, p.Sources["m"])
	if err != nil {
		t.Fatal(err)
	}
	if s.Batches < 3 {
		t.Fatalf("%d batches, want 3 or more: %s", s.Batches, s)
	}
	if len(seen) < s.Batches+1 {
		t.Fatalf("%d reports for %d batches: %+v", len(seen), s.Batches, seen)
	}
	var prev layers.Progress
	for i, lp := range seen {
		if lp.Unit != layers.UnitBytes || lp.Total != want {
			t.Errorf("report %d: %+v, want bytes of a total of %d", i, lp, want)
		}
		if lp.Done < prev.Done || lp.Rows < prev.Rows {
			t.Errorf("report %d went backwards: %+v after %+v", i, lp, prev)
		}
		if lp.Done > lp.Total {
			t.Errorf("report %d above its total: %+v", i, lp)
		}
		prev = lp
	}
	if prev.Done != want || prev.Rows != s.RowsRead {
		t.Errorf("last report %+v, want %d bytes done and %d rows", prev, want, s.RowsRead)
	}
}
