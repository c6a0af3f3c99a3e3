package jobs

import (
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
)

// TestDownstream: what a refresh --downstream brings along, in dependency
// order: gold tables reading the table directly or through other gold
// tables, and the mirrors of all of them; nothing upstream or beside.
func TestDownstream(t *testing.T) {
	p := testPipeline()
	p.Mirror = []*config.Mirror{
		{Table: "bronze.meters", To: "public.meters"},
		{Table: "silver.usage_1m", To: "public.usage_1m"},
		{Table: "gold.report", To: "public.report"},
	}
	for _, tt := range []struct {
		table layers.TableRef
		want  string
	}{
		{layers.TableRef{Layer: layers.Silver, Name: "usage_1m"}, "gold.usage_ma gold.report mirror.public.usage_1m mirror.public.report"},
		{layers.TableRef{Layer: layers.Gold, Name: "usage_ma"}, "gold.report mirror.public.report"},
		{layers.TableRef{Layer: layers.Gold, Name: "report"}, "mirror.public.report"},
	} {
		var got []string
		for _, r := range Downstream(p, tt.table) {
			got = append(got, r.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("Downstream(%s) = %s, want %s", tt.table, strings.Join(got, " "), tt.want)
		}
	}
}
