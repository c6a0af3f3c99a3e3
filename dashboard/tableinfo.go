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
	numeric  []string          // columns a chart can plot
	groupBy  []string          // a series per distinct value
	flags    []string          // boolean flag columns (gold moving averages)
	measure  string            // the default measure
	series   bool              // has a timestamp column to chart over
	windowed bool              // has window_start (one row per window)
	timeCols []string          // timestamp columns, the default first
	timeCol  string            // the default time axis
	batchCol string            // the column ?batch= filters on ("" when none)
	units    map[string]string // number columns' declared units (see unitOf)
}

func isTimestamp(t delta.DataType) bool {
	return t.Name == delta.TypeTimestamp || t.Name == delta.TypeTimestampNTZ
}

func newTableInfo(p *config.Pipeline, ref layers.TableRef, schema *delta.Schema) *tableInfo {
	ti := &tableInfo{ref: ref, schema: schema}
	has := func(name string) (delta.Field, bool) { return schema.Field(name) }
	for _, f := range schema.Fields {
		if f.Type.IsNumeric() {
			ti.numeric = append(ti.numeric, f.Name)
			if u := unitOf(p, ref, f.Name); u != "" {
				if ti.units == nil {
					ti.units = map[string]string{}
				}
				ti.units[f.Name] = u
			}
		}
	}
	ti.timeCols = timeColumns(schema)
	// The quarantine's only number is a line number: nothing to chart (its
	// page filters the rows instead).
	if len(ti.timeCols) > 0 && ref != layers.Quarantine() {
		ti.series, ti.timeCol = true, ti.timeCols[0]
		ti.windowed = ti.timeCol == windowStart
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
		}
	}
	ti.flags = flagColumns(schema)
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

	// Flag columns are not measures.
	ti.numeric = slices.DeleteFunc(ti.numeric, func(c string) bool { return slices.Contains(ti.flags, c) })

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

// timeColumns lists the timestamp columns a chart can run along: the
// window_start of a windowed table first, then the data's own columns,
// then medallion's bookkeeping ones (_ingested_at, quarantined_at), so
// bronze charts its readings' event time by default.
func timeColumns(schema *delta.Schema) []string {
	var first, data, meta []string
	for _, f := range schema.Fields {
		switch {
		case !isTimestamp(f.Type):
		case f.Name == windowStart:
			first = append(first, f.Name)
		case strings.HasPrefix(f.Name, "_") || f.Name == "quarantined_at" || f.Name == "window_end":
			meta = append(meta, f.Name)
		default:
			data = append(data, f.Name)
		}
	}
	return append(append(first, data...), meta...)
}

// flagColumns are the columns drawn as marked points: booleans (a gold
// flags: entry, a SQL model's boolean) and numeric flag_* or "flag:*"
// columns (set when not zero).
func flagColumns(schema *delta.Schema) []string {
	var out []string
	for _, f := range schema.Fields {
		named := strings.HasPrefix(f.Name, "flag_") || strings.HasPrefix(f.Name, "flag:")
		if f.Type.Name == delta.TypeBoolean || (named && f.Type.IsNumeric()) {
			out = append(out, f.Name)
		}
	}
	return out
}
