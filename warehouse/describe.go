package warehouse

import (
	"context"
	"database/sql"
)

// Column is a column of a query's result as DuckDB's DESCRIBE reports it.
type Column struct {
	Name string
	Type string // DuckDB type, e.g. "TIMESTAMP WITH TIME ZONE", "DECIMAL(18,3)", "INTEGER[]"
}

// Querier is what Describe runs its statement on: a *sql.Conn (the layers
// keep temp tables on one) or a *sql.DB.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Describe returns the columns of query's result, in order, without
// running it.
func Describe(ctx context.Context, q Querier, query string) ([]Column, error) {
	rows, err := q.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Column
	for rows.Next() {
		// DESCRIBE's first two columns are the name and the type; the
		// others (null, key, default, extra) are not needed.
		var c Column
		dest := make([]any, len(names))
		dest[0], dest[1] = &c.Name, &c.Type
		for i := 2; i < len(dest); i++ {
			dest[i] = new(any)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
