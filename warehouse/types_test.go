package warehouse

import "testing"

// TestDeltaTypeMapping: DuckDB types as DESCRIBE prints them map to the Delta
// types tables are written with.
func TestDeltaTypeMapping(t *testing.T) {
	for duck, want := range map[string]string{
		"BIGINT":                           "long",
		"HUGEINT":                          "long",
		"TIMESTAMP WITH TIME ZONE":         "timestamp",
		"TIMESTAMP_NS":                     "timestamp",
		"DECIMAL(18,3)":                    "decimal(18,3)",
		"VARCHAR":                          "string",
		"UUID":                             "string",
		"INTEGER[]":                        `{"type":"array","elementType":"integer","containsNull":true}`,
		`STRUCT(a INTEGER, "b c" VARCHAR)`: `{"type":"struct","fields":[{"name":"a","type":"integer","nullable":true,"metadata":{}},{"name":"b c","type":"string","nullable":true,"metadata":{}}]}`,
		"MAP(VARCHAR, DOUBLE[])":           `{"type":"map","keyType":"string","valueType":{"type":"array","elementType":"double","containsNull":true},"valueContainsNull":true}`,
		"ENUM('x', 'y')":                   "string",
	} {
		got, err := DeltaType(duck)
		if err != nil {
			t.Errorf("%s: %v", duck, err)
			continue
		}
		if got.String() != want {
			t.Errorf("%s: got %s want %s", duck, got, want)
		}
	}
	if _, err := DeltaType("STRUCT(a"); err == nil {
		t.Error("bad type accepted")
	}
}
