package jobs

import (
	"slices"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestMirrorSpec maps mirror: entries of the pipeline file to the specs the
// mirror runs, and names the entry when one cannot be mirrored.
func TestMirrorSpec(t *testing.T) {
	for _, tt := range []struct {
		m       config.Mirror
		source  warehouse.TableRef
		target  string
		wantErr string
	}{
		{m: config.Mirror{Table: "gold.usage_ma", To: "usage_ma", Key: []string{"meter_id"}}, source: warehouse.TableRef{Schema: "gold", Name: "usage_ma"}, target: "public.usage_ma"},
		{m: config.Mirror{Table: "bronze.meters", To: "raw_copy.meters", Key: []string{"id", "ts"}}, source: warehouse.TableRef{Schema: "bronze", Name: "meters"}, target: "raw_copy.meters"},
		{m: config.Mirror{Table: "usage_ma", To: "x", Key: []string{"id"}}, wantErr: "mirror of usage_ma: table \"usage_ma\": want layer.name"},
		{m: config.Mirror{Table: "gold.usage_ma", To: "x"}, wantErr: "key: the primary key columns are required"},
		{m: config.Mirror{Table: "gold.usage_ma", To: "x", Key: []string{"id", "id"}}, wantErr: "listed twice"},
	} {
		spec, err := MirrorSpec(&tt.m)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("MirrorSpec(%+v) = %v, want an error containing %q", tt.m, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("MirrorSpec(%+v): %v", tt.m, err)
			continue
		}
		if spec.Source != tt.source || spec.Target() != tt.target || !slices.Equal(spec.Key, tt.m.Key) {
			t.Errorf("MirrorSpec(%+v) = %+v, want source %s target %s", tt.m, spec, tt.source, tt.target)
		}
		tt.m.Key[0] = "changed" // the spec must not share the config's slice
		if slices.Contains(spec.Key, "changed") {
			t.Errorf("MirrorSpec(%+v): spec shares the key slice", tt.m)
		}
	}
}

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
