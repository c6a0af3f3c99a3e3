package jobs

import (
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
)

func TestPlanMirror(t *testing.T) {
	p := testPipeline()
	p.Mirror = []*config.Mirror{
		{Table: "gold.usage_ma", To: "public.usage_ma", Key: []string{"meter_id"}},
		{Table: "bronze.clicks", To: "raw_copy.clicks", Key: []string{"id"}},
	}
	p.Postgres = "postgres://db/x"
	for _, tt := range []struct {
		targets []string
		want    string
	}{
		{nil, "bronze.meters bronze.clicks silver.usage_1m gold.usage_ma gold.report mirror.public.usage_ma mirror.raw_copy.clicks"},
		{[]string{"mirror"}, "bronze.meters bronze.clicks silver.usage_1m gold.usage_ma mirror.public.usage_ma mirror.raw_copy.clicks"},
		{[]string{"mirror.raw_copy.clicks"}, "bronze.clicks mirror.raw_copy.clicks"},
		{[]string{"gold"}, "bronze.meters silver.usage_1m gold.usage_ma gold.report"},
	} {
		got, err := Plan(p, tt.targets)
		if err != nil {
			t.Fatalf("Plan(%v): %v", tt.targets, err)
		}
		if names(got) != tt.want {
			t.Errorf("Plan(%v) = %s, want %s", tt.targets, names(got), tt.want)
		}
	}

	// Without postgres: one job, which says the mirror is disabled.
	p.Postgres = ""
	got, err := Plan(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bronze.meters bronze.clicks silver.usage_1m gold.usage_ma gold.report mirror."; names(got) != want {
		t.Errorf("disabled: %s, want %s", names(got), want)
	}
	r := &Runner{Pipeline: p}
	if s, err := r.runMirror(t.Context(), got[len(got)-1].Table); s != MirrorDisabled || err != nil {
		t.Errorf("disabled mirror job: %q, %v", s, err)
	}
}
