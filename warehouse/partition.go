package warehouse

import (
	"net/url"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

// PartitionLiteral returns the SQL literal of column col's partition value
// in pv: a quoted string (the caller casts it to the column's type) or
// NULL. Null follows the Delta protocol (JSON null, a missing column, the
// empty string) and the legacy "__HIVE_DEFAULT_PARTITION__" (delta reads
// it as null). Values of non-string types that medallion wrote before it
// unescaped directory names (a timestamp as "2024-01-01%2010%3A00%3A00")
// are unescaped: no date, number or timestamp text contains '%'.
func PartitionLiteral(pv delta.PartitionValues, col string, t delta.DataType) string {
	v, ok := pv.Value(col)
	if !ok {
		return "NULL"
	}
	if t.Name != delta.TypeString && t.Name != delta.TypeBinary && strings.Contains(v, "%") {
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
	}
	return QuoteString(v)
}
