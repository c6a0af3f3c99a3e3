package maintenance_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/maintenance"
)

func keys(t *testing.T, st lake.Store, prefix string) []string {
	t.Helper()
	objs, err := st.List(context.Background(), prefix, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, strings.TrimPrefix(o.Key, prefix))
	}
	return out
}

// TestPruneRuns: run records that started before the retention go, the
// others stay; `medallion runs` still lists the kept ones.
func TestPruneRuns(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		for i, age := range []time.Duration{40 * 24 * time.Hour, 31 * 24 * time.Hour, 29 * 24 * time.Hour, time.Hour} {
			start := now.Add(-age)
			if err := jobs.RecordRun(ctx, st, jobs.RunRecord{Job: fmt.Sprintf("bronze.m%d", i), Start: start, End: start.Add(time.Second), Result: jobs.ResultOK}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := maintenance.PruneRuns(ctx, st, 30*24*time.Hour, now)
		if err != nil || n != 2 {
			t.Fatalf("PruneRuns: %d, %v; want 2", n, err)
		}
		runs, err := jobs.ListRuns(ctx, st, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range runs {
			names = append(names, r.Job)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"bronze.m2", "bronze.m3"}) {
			t.Fatalf("runs after pruning: %v", names)
		}
	})
}

// TestPruneLeases: old generations of each job's lease go once older than
// the retention; the newest generation of every job always stays (the next
// holder numbers its generation from it), and a lease taken afterwards
// gets a higher generation.
func TestPruneLeases(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		for _, k := range []string{"bronze.a/00000000000000000001.json", "bronze.a/00000000000000000002.json",
			"bronze.a/00000000000000000003.json", "gold.b/00000000000000000007.json"} {
			body := `{"released": true, "generation": 1}`
			if _, err := st.Put(ctx, jobs.LeasePrefix+k, strings.NewReader(body), int64(len(body))); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := maintenance.PruneLeases(ctx, st, time.Hour, time.Now()); err != nil || n != 0 {
			t.Fatalf("PruneLeases within the retention: %d, %v", n, err)
		}
		n, err := maintenance.PruneLeases(ctx, st, time.Hour, time.Now().Add(2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PruneLeases: %d, %v; want 2", n, err)
		}
		want := []string{"bronze.a/00000000000000000003.json", "gold.b/00000000000000000007.json"}
		if got := keys(t, st, jobs.LeasePrefix); !slices.Equal(got, want) {
			t.Fatalf("leases after pruning: %v, want %v", got, want)
		}
		h, err := jobs.Acquire(ctx, st, "bronze.a", "me", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release(context.Background())
		if h.Generation() != 4 {
			t.Fatalf("lease after pruning: generation %d, want 4", h.Generation())
		}
	})
}

// TestPass: one maintenance pass compacts, vacuums with the section's
// retention (nothing this young) and prunes, over the pipeline's tables.
func TestPass(t *testing.T) {
	st := testenv.LocalStore(t)
	f := newFixture(t, st)
	f.build()
	want := f.mustContent(-1)
	p := &config.Pipeline{SourceOrder: []string{"meters"}, Maintenance: config.Maintenance{
		TargetFileSize: 1 << 20, OptimizeMinFiles: 3, Retain: 168 * time.Hour, RunsRetain: time.Hour, LeasesRetain: time.Hour, Every: time.Hour}}
	res, err := maintenance.Pass(t.Context(), f.env, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Optimized) != 2 || res.Optimized[0].FilesRemoved != 15 || res.Optimized[1].Skipped != "no table yet" {
		t.Fatalf("pass optimized: %+v", res.Optimized)
	}
	if len(res.Vacuumed) != 2 || len(res.Vacuumed[0].Files) != 0 {
		t.Fatalf("pass vacuumed: %+v", res.Vacuumed)
	}
	if got := f.mustContent(-1); got != want {
		t.Fatal("content changed by the pass")
	}
}
