// Package layers holds what the layer jobs share: table names and where each
// table lives in the lake. Rows are received in layers/raw, typed in
// layers/bronze, windowed in layers/silver and averaged in layers/gold.
package layers

import (
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
)

// Layer is one stage of the medallion pipeline.
type Layer string

// The layers, in pipeline order.
const (
	Raw    Layer = "raw"
	Bronze Layer = "bronze"
	Silver Layer = "silver"
	Gold   Layer = "gold"
)

// Names of the system tables that every pipeline has.
const (
	QuarantineName = "_quarantine" // bronze._quarantine: rows that failed typing or rules
	LateName       = "_late"       // silver._late: events that arrived after their window was final
)

// TableRef names a table as users write it: layer.name.
type TableRef struct {
	Layer Layer
	Name  string
}

// Quarantine is bronze._quarantine.
func Quarantine() TableRef { return TableRef{Bronze, QuarantineName} }

// Late is silver._late.
func Late() TableRef { return TableRef{Silver, LateName} }

// ParseTableRef parses "bronze.meters" (or "meters" with a default layer
// given by the caller as def; empty def means the layer is required).
func ParseTableRef(s string, def Layer) (TableRef, error) {
	layer, name, ok := strings.Cut(s, ".")
	if !ok {
		if def == "" {
			return TableRef{}, fmt.Errorf("table %q: want layer.name, e.g. bronze.meters", s)
		}
		layer, name = string(def), s
	}
	switch Layer(layer) {
	case Bronze, Silver, Gold:
	default:
		return TableRef{}, fmt.Errorf("table %q: unknown layer %q (want bronze, silver or gold)", s, layer)
	}
	if name == "" || strings.ContainsAny(name, "/.\\ ") {
		return TableRef{}, fmt.Errorf("table %q: bad table name %q", s, name)
	}
	return TableRef{Layer(layer), name}, nil
}

// String is the name users write: bronze.meters.
func (r TableRef) String() string { return string(r.Layer) + "." + r.Name }

// Dir is the table's root key in the lake: bronze/meters.
func (r TableRef) Dir() string { return string(r.Layer) + "/" + r.Name }

// Tables lists every table a pipeline declares, in pipeline order, system
// tables included: bronze sources, bronze._quarantine, silver tables,
// silver._late, gold tables.
func Tables(p *config.Pipeline) []TableRef {
	var out []TableRef
	for _, n := range p.SourceOrder {
		out = append(out, TableRef{Bronze, n})
	}
	out = append(out, Quarantine())
	for _, n := range p.SilverOrder {
		out = append(out, TableRef{Silver, n})
	}
	if len(p.SilverOrder) > 0 {
		out = append(out, Late())
	}
	for _, n := range p.GoldOrder {
		out = append(out, TableRef{Gold, n})
	}
	return out
}
