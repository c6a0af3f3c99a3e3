package gold

import (
	"sync"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

// TestRunReportsFilesRead: a gold run reports the input files it has read
// of the files it reads, as it reads them: never backwards, never above
// the total, ending with every file read.
func TestRunReportsFilesRead(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.createSilver("s")
	for i := range 3 {
		f.commitSilver("s", nil, windows("a", 10*i, 10, "i"))
	}
	f.addGold(maTable("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 3}))
	var (
		mu   sync.Mutex
		seen []layers.Progress
	)
	d := f.deps()
	d.Progress = func(lp layers.Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, lp)
	}
	if _, err := Run(f.ctx, d, f.pipe.Gold["g"]); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2 {
		t.Fatalf("reports %+v, want one before and after each file read", seen)
	}
	var prev layers.Progress
	for i, lp := range seen {
		if lp.Unit != layers.UnitFiles || lp.Done < prev.Done || lp.Total < prev.Total || lp.Done > lp.Total {
			t.Errorf("report %d: %+v after %+v", i, lp, prev)
		}
		prev = lp
	}
	if prev.Done != prev.Total || prev.Total < 3 {
		t.Errorf("last report %+v, want the 3 silver files (or more) all read", prev)
	}
}
