package dashboard

import (
	"slices"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// windowStart is the column that makes a table a time series.
const windowStart = "window_start"

// maxGroups and maxPoints bound a chart: the groups with the most recent
// window, and each group's most recent windows.
const (
	maxGroups = 8
	maxPoints = 500
)

// sampleRows, historyRows, qualityRuns, topReasons and recentRuns bound the
// tables of the pages.
const (
	sampleRows  = 50
	historyRows = 20
	qualityRuns = 50
	topReasons  = 10
	recentRuns  = 100
)

// tableInfo is what the dashboard knows of one table's columns, from its
// Delta schema and the pipeline file.
type tableInfo struct {
	ref      layers.TableRef
	schema   *delta.Schema
	numeric  []string // columns a chart can plot
	groupBy  []string // a series per distinct value
	flags    []string // boolean flag columns (gold moving averages)
	measure  string   // the default measure
	series   bool     // has a window_start timestamp
	batchCol string   // the column ?batch= filters on ("" when none)
}

func isNumeric(t delta.DataType) bool {
	switch t.Name {
	case delta.TypeLong, delta.TypeInteger, delta.TypeShort, delta.TypeByte, delta.TypeFloat, delta.TypeDouble:
		return true
	}
	_, _, ok := t.Decimal()
	return ok
}

func isTimestamp(t delta.DataType) bool {
	return t.Name == delta.TypeTimestamp || t.Name == delta.TypeTimestampNTZ
}

func newTableInfo(p *config.Pipeline, ref layers.TableRef, schema *delta.Schema) *tableInfo {
	ti := &tableInfo{ref: ref, schema: schema}
	has := func(name string) (delta.Field, bool) { return schema.Field(name) }
	for _, f := range schema.Fields {
		if isNumeric(f.Type) {
			ti.numeric = append(ti.numeric, f.Name)
		}
	}
	if f, ok := has(windowStart); ok && isTimestamp(f.Type) {
		ti.series = true
	}
	for _, c := range []string{"batch_id", "batch", "_batch_id"} {
		if f, ok := has(c); ok && f.Type.Name == delta.TypeString {
			ti.batchCol = f.Name
			break
		}
	}

	// Group columns: the table's key from the pipeline file, else the
	// first text column.
	var keys []string
	maCol := "ma"
	switch ref.Layer {
	case layers.Silver:
		if s := p.Silver[ref.Name]; s != nil {
			keys = s.GroupBy
		}
	case layers.Gold:
		if g := p.Gold[ref.Name]; g != nil {
			keys = g.PartitionBy
			if g.MovingAverage != nil && g.MovingAverage.As != "" {
				maCol = g.MovingAverage.As
			}
			for _, fl := range g.Flags {
				if f, ok := has(fl.Name); ok && f.Type.Name == delta.TypeBoolean {
					ti.flags = append(ti.flags, f.Name)
				}
			}
		}
	}
	for _, k := range keys {
		if f, ok := has(k); ok {
			ti.groupBy = append(ti.groupBy, f.Name)
		}
	}
	if len(ti.groupBy) == 0 {
		for _, f := range schema.Fields {
			if f.Type.Name == delta.TypeString {
				ti.groupBy = []string{f.Name}
				break
			}
		}
	}

	// Default measure: the moving average, else the first avg_*, else the
	// first numeric column.
	switch {
	case slices.Contains(ti.numeric, maCol):
		ti.measure = maCol
	default:
		for _, c := range ti.numeric {
			if strings.HasPrefix(c, "avg_") {
				ti.measure = c
				break
			}
		}
		if ti.measure == "" && len(ti.numeric) > 0 {
			ti.measure = ti.numeric[0]
		}
	}
	return ti
}
