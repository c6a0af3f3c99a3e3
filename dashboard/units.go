package dashboard

import (
	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
)

// unitOf is the unit of a table's column, from the `unit:` of the source
// column it comes from: a bronze column directly; a silver aggregate that
// keeps its argument's unit (sum, min, max, avg); a gold moving average's
// columns and its average, through the silver table it reads. Counts and
// SQL models have none: the pipeline file does not say.
func unitOf(p *config.Pipeline, ref layers.TableRef, col string) string {
	for range 4 { // bronze <- silver <- gold: at most a few hops
		switch ref.Layer {
		case layers.Bronze:
			src := p.Sources[ref.Name]
			if src == nil {
				return ""
			}
			for _, c := range src.Schema {
				if c.Name == col {
					return c.Unit
				}
			}
			return ""
		case layers.Silver:
			s := p.Silver[ref.Name]
			if s == nil {
				return ""
			}
			next := ""
			for _, a := range s.Aggregates {
				if a.Name == col {
					switch a.Func {
					case "sum", "min", "max", "avg":
						next = a.Arg
					}
				}
			}
			if next == "" {
				return ""
			}
			ref, col = layers.TableRef{Layer: layers.Bronze, Name: s.From}, next
		case layers.Gold:
			g := p.Gold[ref.Name]
			if g == nil || g.From == "" {
				return ""
			}
			if ma := g.MovingAverage; ma != nil && col == maName(ma) {
				col = ma.Column
			}
			ref = layers.TableRef{Layer: layers.Silver, Name: g.From}
		default:
			return ""
		}
	}
	return ""
}

func maName(ma *config.MovingAverage) string {
	if ma.As != "" {
		return ma.As
	}
	return "ma"
}

// axisTitle is a measure with its unit, "avg_usage (kWh)".
func axisTitle(measure, unit string) string {
	if unit == "" {
		return measure
	}
	return measure + " (" + unit + ")"
}
