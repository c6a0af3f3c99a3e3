package jobs

import (
	"slices"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

// TestMirrorSpecColumns: a mirror: entry's columns:, exclude: and names:
// reach the pgmirror spec, with the lineage columns it leaves out by default.
func TestMirrorSpecColumns(t *testing.T) {
	s, err := MirrorSpec(&config.Mirror{Table: "bronze.meters", To: "public.meters", Key: []string{"meter_id"},
		Exclude: []string{"energy_usage"}, Names: config.MirrorNamesLower})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Exclude, []string{"energy_usage"}) || s.Names != pgmirror.NamesLower || !slices.Contains(s.Lineage, "_source_file") {
		t.Errorf("spec %+v", s)
	}
	if _, err := MirrorSpec(&config.Mirror{Table: "bronze.meters", To: "public.meters", Key: []string{"meter_id"}, Names: "upper"}); err == nil {
		t.Error("names: upper made a spec")
	}
}
