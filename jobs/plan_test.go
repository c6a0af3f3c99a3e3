package jobs

import (
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
)

func testPipeline() *config.Pipeline {
	return &config.Pipeline{
		Sources:     map[string]*config.Source{"meters": {Name: "meters"}, "clicks": {Name: "clicks"}},
		SourceOrder: []string{"meters", "clicks"},
		Silver:      map[string]*config.Silver{"usage_1m": {Name: "usage_1m", From: "meters"}},
		SilverOrder: []string{"usage_1m"},
		Gold: map[string]*config.Gold{
			"report":   {Name: "report", SQL: "SELECT * FROM gold.usage_ma", DependsOn: []string{"gold.usage_ma"}},
			"usage_ma": {Name: "usage_ma", From: "usage_1m"},
		},
		GoldOrder: []string{"report", "usage_ma"},
	}
}

func names(js []Job) string {
	var s []string
	for _, j := range js {
		s = append(s, j.Table.String())
	}
	return strings.Join(s, " ")
}

func TestPlan(t *testing.T) {
	p := testPipeline()
	tests := []struct {
		targets []string
		want    string
		err     string
	}{
		{nil, "bronze.meters bronze.clicks silver.usage_1m gold.usage_ma gold.report", ""},
		{[]string{"bronze"}, "bronze.meters bronze.clicks", ""},
		{[]string{"raw"}, "bronze.meters bronze.clicks", ""},
		{[]string{"silver"}, "bronze.meters silver.usage_1m", ""},
		{[]string{"gold.report"}, "bronze.meters silver.usage_1m gold.usage_ma gold.report", ""},
		{[]string{"clicks"}, "bronze.clicks", ""},
		{[]string{"usage_1m", "clicks"}, "bronze.meters bronze.clicks silver.usage_1m", ""},
		{[]string{"nope"}, "", `unknown layer or table "nope"`},
	}
	for _, tt := range tests {
		got, err := Plan(p, tt.targets)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Plan(%v) error = %v, want %q", tt.targets, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Plan(%v): %v", tt.targets, err)
		}
		if names(got) != tt.want {
			t.Errorf("Plan(%v) = %s, want %s", tt.targets, names(got), tt.want)
		}
	}
}
