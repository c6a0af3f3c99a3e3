package silver

import (
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

// deltaType maps a DuckDB column type to the Delta type written in the
// table schema.
func deltaType(duck string) (delta.DataType, error) {
	switch duck {
	case "VARCHAR":
		return delta.Primitive(delta.TypeString), nil
	case "BIGINT", "UINTEGER":
		return delta.Primitive(delta.TypeLong), nil
	case "INTEGER", "USMALLINT":
		return delta.Primitive(delta.TypeInteger), nil
	case "SMALLINT", "UTINYINT":
		return delta.Primitive(delta.TypeShort), nil
	case "TINYINT":
		return delta.Primitive(delta.TypeByte), nil
	case "DOUBLE":
		return delta.Primitive(delta.TypeDouble), nil
	case "FLOAT":
		return delta.Primitive(delta.TypeFloat), nil
	case "BOOLEAN":
		return delta.Primitive(delta.TypeBoolean), nil
	case "DATE":
		return delta.Primitive(delta.TypeDate), nil
	case "TIMESTAMP WITH TIME ZONE":
		return delta.Primitive(delta.TypeTimestamp), nil
	case "TIMESTAMP":
		return delta.Primitive(delta.TypeTimestampNTZ), nil
	case "BLOB":
		return delta.Primitive(delta.TypeBinary), nil
	}
	if strings.HasPrefix(duck, "DECIMAL(") {
		return delta.Primitive(strings.ToLower(strings.ReplaceAll(duck, " ", ""))), nil
	}
	return delta.DataType{}, fmt.Errorf("DuckDB type %s has no Delta equivalent here", duck)
}

// duckType maps a primitive Delta type to the DuckDB type used to read
// partition values (which the Delta log holds as strings).
func duckType(t delta.DataType) (string, error) {
	switch t.Name {
	case delta.TypeString:
		return "VARCHAR", nil
	case delta.TypeLong:
		return "BIGINT", nil
	case delta.TypeInteger:
		return "INTEGER", nil
	case delta.TypeShort:
		return "SMALLINT", nil
	case delta.TypeByte:
		return "TINYINT", nil
	case delta.TypeDouble:
		return "DOUBLE", nil
	case delta.TypeFloat:
		return "FLOAT", nil
	case delta.TypeBoolean:
		return "BOOLEAN", nil
	case delta.TypeDate:
		return "DATE", nil
	case delta.TypeTimestamp:
		return "TIMESTAMPTZ", nil
	case delta.TypeTimestampNTZ:
		return "TIMESTAMP", nil
	case delta.TypeBinary:
		return "BLOB", nil
	}
	if p, s, ok := t.Decimal(); ok {
		return fmt.Sprintf("DECIMAL(%d,%d)", p, s), nil
	}
	return "", fmt.Errorf("delta type %s cannot be a partition column here", t)
}

// sameSchema reports whether two schemas have the same column names and
// types in the same order (nullability aside).
func sameSchema(a, b *delta.Schema) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if !strings.EqualFold(a.Fields[i].Name, b.Fields[i].Name) || a.Fields[i].Type.String() != b.Fields[i].Type.String() {
			return false
		}
	}
	return true
}

// describeSchema renders "name type, ..." for error messages.
func describeSchema(s *delta.Schema) string {
	parts := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return strings.Join(parts, ", ")
}
