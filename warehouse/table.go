package warehouse

// TableRef names a lake table for the warehouse: the DuckDB schema its view
// is created in, which is also the table's top directory in the lake
// (bronze, silver or gold), and its name. The warehouse has its own type,
// not the layers' one, so that the DuckDB floor compiles without the
// pipeline configuration above it; callers that hold a layers.TableRef
// convert field by field.
type TableRef struct {
	Schema string // bronze, silver or gold
	Name   string // meters, _quarantine, ...
}

// String is the name users write and the view's qualified name: bronze.meters.
func (r TableRef) String() string { return r.Schema + "." + r.Name }

// Dir is the table's root key in the lake: bronze/meters.
func (r TableRef) Dir() string { return r.Schema + "/" + r.Name }
