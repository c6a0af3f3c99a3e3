package silver

import (
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

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
