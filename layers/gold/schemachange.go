package gold

import (
	"maps"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// checkSchema compares the columns a run writes (meta) with the gold
// table's (base), as every layer does (layers/schemachange.go): added
// columns apply, and c, the commit, says so in its commitInfo; a column
// gone or of another type (a removed flag, an edited SQL model) stops the
// run with a *layers.SchemaChangeError, unless the run rebuilds the table
// (Env.SchemaReplace). Gold has no renamed_from: its rows are computed
// again from silver, so a refresh loses nothing.
func (r *runner) checkSchema(base *delta.Snapshot, meta delta.Metadata, c *delta.Commit) error {
	if base.Metadata.SchemaString == meta.SchemaString {
		return nil
	}
	have, err := base.Schema()
	if err != nil {
		return err
	}
	want, err := delta.ParseSchema(meta.SchemaString)
	if err != nil {
		return err
	}
	changes := layers.DiffColumns(have, want, nil)
	if len(changes) == 0 {
		return nil
	}
	if !r.deps.SchemaReplace {
		var refused []layers.ColumnChange
		for _, ch := range changes {
			if ch.Kind != layers.ColumnAdded {
				refused = append(refused, ch)
			}
		}
		if len(refused) > 0 {
			return &layers.SchemaChangeError{Table: r.ref, Changes: refused, Place: layers.Place(r.deps.PipelineFile, r.gold.Line, 0)}
		}
	}
	info := c.Info
	info.Medallion = maps.Clone(info.Medallion)
	if info.Medallion == nil {
		info.Medallion = map[string]any{}
	}
	info.Medallion[layers.SchemaChangeKey] = layers.DescribeChanges(changes)
	c.Info = info
	return nil
}
