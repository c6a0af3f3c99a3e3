package silver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// refreshWith refreshes silver table name over range r with the crash hook.
func (le *lakeEnv) refreshWith(name string, r Range, hook func(string) error) (RefreshStats, error) {
	ctx := context.Background()
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		le.t.Fatal(err)
	}
	defer eng.Close()
	return Refresh(ctx, Deps{Env: layers.Env{Store: le.store, DB: eng.DB(), ScratchDir: le.t.TempDir(), Crash: hook}}, le.p.Silver[name], r)
}

// buildReference runs every step of reference case i on a new local lake.
func buildReference(t *testing.T, i int) (*lakeEnv, lake.Store) {
	return buildOn(t, localStore(t), i)
}

// buildOn runs every step of reference case i on store.
func buildOn(t *testing.T, store lake.Store, i int) (*lakeEnv, lake.Store) {
	tc := referenceCases[i]
	le := newLakeEnv(t, store, tc.cfg)
	for _, s := range tc.steps {
		le.appendBronze(s.rows...)
		le.run(tc.cfg.Name)
	}
	return le, store
}

// sameSilver checks that two lakes hold the same silver table, late rows,
// state and watermark.
func sameSilver(t *testing.T, name string, got, want lake.Store) {
	t.Helper()
	diffLines(t, "silver", silverRows(t, got, name), silverRows(t, want, name))
	diffLines(t, "silver._late", lateRows(t, got), lateRows(t, want))
	diffLines(t, "state", stateRows(t, got, name), stateRows(t, want, name))
	if a, b := watermark(t, got, name), watermark(t, want, name); a != b {
		t.Errorf("watermark %s, want %s", a, b)
	}
}

// TestRefreshSilverFull refreshes each reference case in full: on
// unchanged bronze the table, late rows, state and watermark are those of
// the incremental history, the commit is a REFRESH, and the next
// incremental run does what it does on the reference (nothing read twice).
func TestRefreshSilverFull(t *testing.T) {
	t.Parallel()
	for i, tc := range referenceCases {
		t.Run(tc.cfg.Name, func(t *testing.T) {
			ref, refStore := buildReference(t, i)
			le, store := buildReference(t, i)
			st, err := le.refreshWith(tc.cfg.Name, Range{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameSilver(t, tc.cfg.Name, store, refStore)
			h, err := delta.Open(store, "silver/"+tc.cfg.Name).History(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if h[0].Operation != "REFRESH" || h[0].Version != st.Version {
				t.Errorf("newest commit: %s v%d, want REFRESH v%d", h[0].Operation, h[0].Version, st.Version)
			}
			if objs := objectsUnder(t, store, "silver/"+tc.cfg.Name+"/_refresh/"); len(objs) != 0 {
				t.Errorf("shadow table left behind: %v", objs)
			}
			// The next batch: same outcome as on the reference.
			more := []ev{e("00:00:41", "a"), e("00:00:02", "b"), e("00:00:59", "a")}
			for _, l := range []*lakeEnv{ref, le} {
				l.appendBronze(more...)
				a := l.run(tc.cfg.Name)
				if a.Files != 1 {
					t.Errorf("next run read %d bronze files, want only the new one", a.Files)
				}
			}
			sameSilver(t, tc.cfg.Name, store, refStore)
			// A second refresh replays the batches the first recorded, plus the new one.
			if _, err := le.refreshWith(tc.cfg.Name, Range{}, nil); err != nil {
				t.Fatal(err)
			}
			sameSilver(t, tc.cfg.Name, store, refStore)
		})
	}
}

// TestRefreshSilverRange changes an aggregate (same column types) and
// refreshes windows starting at or after 00:00:10 only: those rows come
// from the new definition, the others stay as they were.
func TestRefreshSilverRange(t *testing.T) {
	t.Parallel()
	le, store := buildReference(t, 0) // silver.w: [0,10) and [10,20) final
	name := referenceCases[0].cfg.Name
	before := silverRows(t, store, name)
	cfg := *le.p.Silver[name]
	cfg.Aggregates = []*config.Aggregate{mkAgg("n", "count", "*"), mkAgg("total", "max", "usage")}
	le.p.Silver[name] = &cfg
	from := ev{at: "00:00:10"}.time(t)
	if _, err := le.refreshWith(name, Range{From: from}, nil); err != nil {
		t.Fatal(err)
	}
	got := silverRows(t, store, name)
	want := []string{before[0], "00:00:10 00:00:20 a 2 1"}
	if !strings.HasPrefix(before[0], "00:00:00") {
		t.Fatalf("reference rows %v", before)
	}
	diffLines(t, "silver after a range refresh", got, want)
	h, err := delta.Open(store, "silver/"+name).History(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rng, _ := h[0].OperationParameters["range"].(string); h[0].Operation != "REFRESH" || !strings.Contains(rng, "00:00:10") {
		t.Errorf("newest commit %s %v, want REFRESH from 00:00:10", h[0].Operation, h[0].OperationParameters)
	}
}

// TestRefreshSilverKilledAndRerun stops a refresh at each of its crash
// points and inside its replay, reruns it, and compares with the
// incremental history.
func TestRefreshSilverKilledAndRerun(t *testing.T) {
	t.Parallel()
	const i = 3 // update mode: rewrites, late rows
	name := referenceCases[i].cfg.Name
	_, refStore := buildReference(t, i)
	for _, point := range []string{pointFilesWritten, pointLateCommitted, PointRefreshReplayed, PointRefreshLateCommitted} {
		t.Run(point, func(t *testing.T) {
			le, store := buildReference(t, i)
			crash := errors.New("crash")
			seen := 0
			_, err := le.refreshWith(name, Range{}, func(p string) error {
				if p == point {
					seen++
					if seen == 2 || !slices.Contains([]string{pointFilesWritten, pointLateCommitted}, p) {
						return crash
					}
				}
				return nil
			})
			if !errors.Is(err, crash) {
				t.Fatalf("refresh: %v, want the crash", err)
			}
			if _, err := le.refreshWith(name, Range{}, nil); err != nil {
				t.Fatal(err)
			}
			sameSilver(t, name, store, refStore)
		})
	}
}

// TestRefreshSilverStores refreshes an update-mode table with late rows on
// a local lake and on MinIO, in full and over a range, and compares with
// the incremental history.
func TestRefreshSilverStores(t *testing.T) {
	t.Parallel()
	const i = 3
	name := referenceCases[i].cfg.Name
	_, refStore := buildReference(t, i)
	forEachStore(t, func(t *testing.T, store lake.Store) {
		le, _ := buildOn(t, store, i)
		for _, r := range []Range{{}, {From: ev{at: "00:00:10"}.time(t)}, {To: ev{at: "00:00:10"}.time(t)}} {
			if _, err := le.refreshWith(name, r, nil); err != nil {
				t.Fatalf("refresh %s: %v", r, err)
			}
			sameSilver(t, name, store, refStore)
		}
	})
}
