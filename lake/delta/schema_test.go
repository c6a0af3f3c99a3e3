package delta

import (
	"encoding/json"
	"strings"
	"testing"
)

const nestedSchema = `{"type":"struct","fields":[` +
	`{"name":"id","type":"long","nullable":false,"metadata":{}},` +
	`{"name":"amount","type":"decimal(10,2)","nullable":true,"metadata":{"comment":"EUR"}},` +
	`{"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},` +
	`{"name":"attrs","type":{"type":"map","keyType":"string","valueType":{"type":"struct","fields":[{"name":"v","type":"double","nullable":true,"metadata":{}}]},"valueContainsNull":false},"nullable":true,"metadata":{}},` +
	`{"name":"loc","type":{"type":"struct","fields":[{"name":"lat","type":"double","nullable":true,"metadata":{}},{"name":"ts","type":"timestamp_ntz","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}` +
	`]}`

func TestParseSchemaNested(t *testing.T) {
	s, err := ParseSchema(nestedSchema)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Fields) != 5 {
		t.Fatalf("%d fields", len(s.Fields))
	}
	if p, sc, ok := s.Fields[1].Type.Decimal(); !ok || p != 10 || sc != 2 || s.Fields[1].Metadata["comment"] != "EUR" {
		t.Errorf("amount: %+v", s.Fields[1])
	}
	if a := s.Fields[2].Type; a.Name != "array" || a.ElementType.Name != TypeString || !a.ContainsNull {
		t.Errorf("tags: %+v", a)
	}
	if m := s.Fields[3].Type; m.Name != "map" || m.KeyType.Name != TypeString || m.ValueType.Fields[0].Name != "v" || m.ValueContainsNull {
		t.Errorf("attrs: %+v", m)
	}
	if f, ok := s.Field("LOC"); !ok || f.Type.Fields[1].Type.Name != TypeTimestampNTZ {
		t.Errorf("loc: %+v", f)
	}
	// String() is the Delta schemaString again, byte for byte here.
	if s.String() != nestedSchema {
		t.Errorf("round trip:\n%s\n%s", s.String(), nestedSchema)
	}
}

func TestParseSchemaErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":       "empty",
		"{":      "parse schema",
		`"long"`: "want struct",
		`{"type":"struct","fields":[{"name":"a","type":"varchar","nullable":true}]}`:                                              `a: unsupported type "varchar"`,
		`{"type":"struct","fields":[{"name":"a","type":"decimal(40,2)","nullable":true}]}`:                                        "precision",
		`{"type":"struct","fields":[{"name":"a","type":"long"},{"name":"A","type":"long"}]}`:                                      "A: duplicate",
		`{"type":"struct","fields":[{"name":"s","type":{"type":"struct","fields":[{"name":"x","type":"int"}]},"nullable":true}]}`: `s.x: unsupported type "int"`,
		`{"type":"struct","fields":[{"name":"a","type":{"type":"array"}}]}`:                                                       "a: array without elementType",
	} {
		_, err := ParseSchema(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchema(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// FuzzParseSchema: whatever parses must render to a schema string that
// parses to the same schema.
func FuzzParseSchema(f *testing.F) {
	f.Add(nestedSchema)
	f.Add(`{"type":"struct","fields":[]}`)
	f.Add(`{"type":"struct","fields":[{"name":"a","type":{"type":"map","keyType":"string","valueType":"long"}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSchema(in)
		if err != nil {
			return
		}
		out := s.String()
		s2, err := ParseSchema(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		a, _ := json.Marshal(s.Fields)
		b, _ := json.Marshal(s2.Fields)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the schema:\n%s\n%s", a, b)
		}
	})
}
