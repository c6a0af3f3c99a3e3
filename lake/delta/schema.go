package delta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Schema is a table schema: the top-level struct of the Delta schemaString.
type Schema struct {
	Fields []Field
}

// Field is one column (or nested struct field).
type Field struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]any // column metadata (comments, column mapping ids); kept as read
}

// DataType is a Delta data type: a primitive ("integer", "string",
// "decimal(10,2)", ...) or a nested struct, array or map.
type DataType struct {
	// Name is the primitive type name, or "struct", "array" or "map".
	Name string
	// Fields are a struct's fields.
	Fields []Field
	// ElementType and ContainsNull describe an array.
	ElementType  *DataType
	ContainsNull bool
	// KeyType, ValueType and ValueContainsNull describe a map.
	KeyType, ValueType *DataType
	ValueContainsNull  bool
}

// Primitive type names of the Delta protocol. Decimals are written
// "decimal(P,S)".
const (
	TypeString       = "string"
	TypeLong         = "long"
	TypeInteger      = "integer"
	TypeShort        = "short"
	TypeByte         = "byte"
	TypeFloat        = "float"
	TypeDouble       = "double"
	TypeBoolean      = "boolean"
	TypeBinary       = "binary"
	TypeDate         = "date"
	TypeTimestamp    = "timestamp"
	TypeTimestampNTZ = "timestamp_ntz"
)

var primitiveTypes = map[string]bool{
	TypeString: true, TypeLong: true, TypeInteger: true, TypeShort: true,
	TypeByte: true, TypeFloat: true, TypeDouble: true, TypeBoolean: true,
	TypeBinary: true, TypeDate: true, TypeTimestamp: true, TypeTimestampNTZ: true,
}

// Primitive returns the data type of a primitive name (e.g. "long",
// "decimal(10,2)").
func Primitive(name string) DataType { return DataType{Name: name} }

// IsPrimitive reports whether t is not a struct, array or map.
func (t DataType) IsPrimitive() bool {
	return t.Name != "struct" && t.Name != "array" && t.Name != "map"
}

// IsNumeric reports whether values of t are numbers: the integer types,
// float, double and decimal.
func (t DataType) IsNumeric() bool {
	switch t.Name {
	case TypeLong, TypeInteger, TypeShort, TypeByte, TypeFloat, TypeDouble:
		return true
	}
	_, _, ok := t.Decimal()
	return ok
}

// Decimal returns the precision and scale of a decimal type.
func (t DataType) Decimal() (precision, scale int, ok bool) {
	inner, found := strings.CutPrefix(t.Name, "decimal(")
	if !found {
		return 0, 0, false
	}
	inner, found = strings.CutSuffix(inner, ")")
	if !found {
		return 0, 0, false
	}
	ps, ss, found := strings.Cut(inner, ",")
	if !found {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(strings.TrimSpace(ps))
	s, err2 := strconv.Atoi(strings.TrimSpace(ss))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return p, s, true
}

// String renders a primitive as its name and a nested type as its JSON.
func (t DataType) String() string {
	if t.IsPrimitive() {
		return t.Name
	}
	b, err := json.Marshal(t)
	if err != nil {
		return t.Name
	}
	return string(b)
}

func (t DataType) validate(path string) error {
	switch t.Name {
	case "struct":
		return validateFields(path, t.Fields)
	case "array":
		if t.ElementType == nil {
			return fmt.Errorf("%s: array without elementType", path)
		}
		return t.ElementType.validate(path + ".element")
	case "map":
		if t.KeyType == nil || t.ValueType == nil {
			return fmt.Errorf("%s: map without keyType or valueType", path)
		}
		if err := t.KeyType.validate(path + ".key"); err != nil {
			return err
		}
		return t.ValueType.validate(path + ".value")
	}
	if primitiveTypes[t.Name] {
		return nil
	}
	if p, s, ok := t.Decimal(); ok {
		if p < 1 || p > 38 || s < 0 || s > p {
			return fmt.Errorf("%s: %s: precision must be 1-38 and scale 0-precision", path, t.Name)
		}
		return nil
	}
	return fmt.Errorf("%s: unsupported type %q", path, t.Name)
}

func validateFields(path string, fields []Field) error {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		p := f.Name
		if path != "" {
			p = path + "." + f.Name
		}
		if f.Name == "" {
			return fmt.Errorf("%s: field without a name", path)
		}
		if seen[strings.ToLower(f.Name)] {
			return fmt.Errorf("%s: duplicate field", p)
		}
		seen[strings.ToLower(f.Name)] = true
		if err := f.Type.validate(p); err != nil {
			return err
		}
	}
	return nil
}

// jsonField and jsonType are the wire forms of Field and nested DataTypes.
type jsonField struct {
	Name     string         `json:"name"`
	Type     DataType       `json:"type"`
	Nullable bool           `json:"nullable"`
	Metadata map[string]any `json:"metadata"`
}

type jsonType struct {
	Type              string    `json:"type"`
	Fields            []Field   `json:"fields,omitempty"`
	ElementType       *DataType `json:"elementType,omitempty"`
	ContainsNull      *bool     `json:"containsNull,omitempty"`
	KeyType           *DataType `json:"keyType,omitempty"`
	ValueType         *DataType `json:"valueType,omitempty"`
	ValueContainsNull *bool     `json:"valueContainsNull,omitempty"`
}

// MarshalJSON writes the Delta schema form of a field.
func (f Field) MarshalJSON() ([]byte, error) {
	md := f.Metadata
	if md == nil {
		md = map[string]any{}
	}
	return json.Marshal(jsonField{Name: f.Name, Type: f.Type, Nullable: f.Nullable, Metadata: md})
}

// UnmarshalJSON reads the Delta schema form of a field.
func (f *Field) UnmarshalJSON(b []byte) error {
	var j jsonField
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Field{Name: j.Name, Type: j.Type, Nullable: j.Nullable, Metadata: j.Metadata}
	return nil
}

// MarshalJSON writes a primitive as a JSON string and a nested type as an
// object, as the Delta schema does.
func (t DataType) MarshalJSON() ([]byte, error) {
	switch t.Name {
	case "struct":
		fields := t.Fields
		if fields == nil {
			fields = []Field{}
		}
		return json.Marshal(struct {
			Type   string  `json:"type"`
			Fields []Field `json:"fields"`
		}{"struct", fields})
	case "array":
		return json.Marshal(struct {
			Type         string    `json:"type"`
			ElementType  *DataType `json:"elementType"`
			ContainsNull bool      `json:"containsNull"`
		}{"array", t.ElementType, t.ContainsNull})
	case "map":
		return json.Marshal(struct {
			Type              string    `json:"type"`
			KeyType           *DataType `json:"keyType"`
			ValueType         *DataType `json:"valueType"`
			ValueContainsNull bool      `json:"valueContainsNull"`
		}{"map", t.KeyType, t.ValueType, t.ValueContainsNull})
	}
	return json.Marshal(t.Name)
}

// UnmarshalJSON reads a primitive name or a nested type object.
func (t *DataType) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var name string
		if err := json.Unmarshal(b, &name); err != nil {
			return err
		}
		*t = DataType{Name: name}
		return nil
	}
	var j jsonType
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	switch j.Type {
	case "struct":
		if j.Fields == nil {
			j.Fields = []Field{}
		}
		*t = DataType{Name: "struct", Fields: j.Fields}
	case "array":
		*t = DataType{Name: "array", ElementType: j.ElementType, ContainsNull: j.ContainsNull == nil || *j.ContainsNull}
	case "map":
		*t = DataType{Name: "map", KeyType: j.KeyType, ValueType: j.ValueType, ValueContainsNull: j.ValueContainsNull == nil || *j.ValueContainsNull}
	default:
		return fmt.Errorf("unknown nested type %q", j.Type)
	}
	return nil
}

// ParseSchema parses a Delta schemaString: a JSON struct type. Unknown
// types and malformed nesting are errors naming the column.
func ParseSchema(s string) (*Schema, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse schema: empty schema string")
	}
	var t DataType
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	if t.Name != "struct" {
		return nil, fmt.Errorf("parse schema: top-level type is %q, want struct", t.Name)
	}
	if err := validateFields("", t.Fields); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	return &Schema{Fields: t.Fields}, nil
}

// String returns the schema as a Delta schemaString (JSON).
func (s *Schema) String() string {
	b, err := json.Marshal(DataType{Name: "struct", Fields: s.Fields})
	if err != nil {
		return ""
	}
	return string(b)
}

// Field returns the top-level field with the given name (case-insensitive,
// as Delta column names are).
func (s *Schema) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}
