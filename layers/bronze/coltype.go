package bronze

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
)

// columnType maps a schema column's declared type (case and spaces
// ignored; aliases such as varchar or bigint accepted) to its bronze type,
// its DuckDB SQL type and, for a decimal, its scale. Errors name the source
// and the column.
func columnType(source string, c *config.Column) (typ, sqlType string, precision, scale int, err error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(c.Type), " ", ""))
	switch {
	case t == "string" || t == "varchar" || t == "text":
		typ, sqlType = "string", "VARCHAR"
	case t == "int64" || t == "int" || t == "long" || t == "bigint" || t == "integer":
		typ, sqlType = "int64", "BIGINT"
	case t == "double" || t == "float64" || t == "float":
		typ, sqlType = "double", "DOUBLE"
	case t == "bool" || t == "boolean":
		typ, sqlType = "bool", "BOOLEAN"
	case t == "timestamp":
		typ, sqlType = "timestamp", "TIMESTAMPTZ"
	case t == "date":
		typ, sqlType = "date", "DATE"
	case decimalRE.MatchString(t):
		m := decimalRE.FindStringSubmatch(t)
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if p < 1 || p > 38 || s > p {
			return "", "", 0, 0, fmt.Errorf("source %s column %s: type %s: want decimal(p,s) with 1 <= p <= 38 and s <= p", source, c.Name, c.Type)
		}
		typ, sqlType, precision, scale = fmt.Sprintf("decimal(%d,%d)", p, s), fmt.Sprintf("DECIMAL(%d,%d)", p, s), p, s
	default:
		return "", "", 0, 0, fmt.Errorf("source %s column %s: unknown type %q (want string, int64, double, decimal(p,s), bool, timestamp or date)", source, c.Name, c.Type)
	}
	return typ, sqlType, precision, scale, nil
}
