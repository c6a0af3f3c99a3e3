package dashboard

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/warehouse"
)

// maxOptions bounds the choices a quarantine filter offers per column.
const maxOptions = 200

// quarantineFilter narrows the sample of bronze._quarantine: a text search
// over the raw line, the reason and the file, and exact reason, column,
// source file and a time range. The page's form is a plain GET: it works
// without script, and a filtered view is a link to share.
type quarantineFilter struct {
	Q          string `json:"q,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Column     string `json:"column,omitempty"`
	SourceFile string `json:"source_file,omitempty"`
	Since      string `json:"since,omitempty"` // RFC 3339 or 2006-01-02T15:04 (a datetime-local input)
	Until      string `json:"until,omitempty"`

	// col is the table's name for the refused column: column_name, or
	// column in a quarantine table made before the rename.
	col string

	Reasons []string `json:"reasons"` // the choices, most frequent first
	Columns []string `json:"columns"`
	Files   []string `json:"source_files"`
	Matches int64    `json:"matches"` // rows the filter keeps
	Active  bool     `json:"active"`
}

func parseQuarantineFilter(q url.Values) (*quarantineFilter, error) {
	f := &quarantineFilter{
		Q: strings.TrimSpace(q.Get("q")), Reason: q.Get("reason"), Column: q.Get("column"),
		SourceFile: q.Get("source_file"), Since: q.Get("since"), Until: q.Get("until"),
	}
	for _, p := range []struct{ name, v string }{{"since", f.Since}, {"until", f.Until}} {
		if p.v != "" {
			if _, err := parseFilterTime(p.v); err != nil {
				return nil, errBadParam{fmt.Sprintf("%s %q: want a time like 2024-03-01T00:30 or RFC 3339 (UTC)", p.name, p.v)}
			}
		}
	}
	f.Active = f.Q != "" || f.Reason != "" || f.Column != "" || f.SourceFile != "" || f.Since != "" || f.Until != ""
	return f, nil
}

// quarantineColumn is the name schema (bronze._quarantine's) gives the
// refused column: bronze.QuarantineColumn, or the legacy "column" of a
// table created before the rename, which stays readable as it is.
func quarantineColumn(schema *delta.Schema) string {
	if schema != nil {
		if _, ok := schema.Field(bronze.QuarantineColumn); !ok {
			if _, ok := schema.Field(bronze.LegacyQuarantineColumn); ok {
				return bronze.LegacyQuarantineColumn
			}
		}
	}
	return bronze.QuarantineColumn
}

func parseFilterTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}

// where is the filter as SQL conditions on the quarantine table, built from
// quoted literals only.
func (f *quarantineFilter) where() []string {
	var w []string
	if f.Q != "" {
		pat := warehouse.QuoteString("%" + f.Q + "%")
		w = append(w, fmt.Sprintf(`(coalesce("raw", '') ILIKE %s OR coalesce("reason", '') ILIKE %s OR coalesce("source_file", '') ILIKE %s)`, pat, pat, pat))
	}
	for _, c := range []struct{ col, v string }{{"reason", f.Reason}, {f.col, f.Column}, {"source_file", f.SourceFile}} {
		if c.v != "" {
			w = append(w, fmt.Sprintf("coalesce(%s, '') = %s", warehouse.QuoteIdent(c.col), warehouse.QuoteString(c.v)))
		}
	}
	if t, err := parseFilterTime(f.Since); err == nil && f.Since != "" {
		w = append(w, fmt.Sprintf(`"quarantined_at" >= CAST(%s AS TIMESTAMP)`, warehouse.QuoteString(t.Format("2006-01-02 15:04:05.999999"))))
	}
	if t, err := parseFilterTime(f.Until); err == nil && f.Until != "" {
		w = append(w, fmt.Sprintf(`"quarantined_at" <= CAST(%s AS TIMESTAMP)`, warehouse.QuoteString(t.Format("2006-01-02 15:04:05.999999"))))
	}
	return w
}

// readOptions fills the filter's choices and counts the rows it keeps.
func (f *quarantineFilter) readOptions(ctx context.Context, db *sql.DB, table string, where []string) error {
	for _, o := range []struct {
		col string
		dst *[]string
	}{{"reason", &f.Reasons}, {f.col, &f.Columns}, {"source_file", &f.Files}} {
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT coalesce(%s, '') AS v FROM %s GROUP BY v ORDER BY count(*) DESC, v LIMIT %d`,
			warehouse.QuoteIdent(o.col), table, maxOptions))
		if err != nil {
			return fmt.Errorf("quarantine %s choices: %w", o.col, err)
		}
		*o.dst = []string{}
		err = scanAll(rows, func() error {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			if v != "" {
				*o.dst = append(*o.dst, v)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("quarantine %s choices: %w", o.col, err)
		}
	}
	q := "SELECT count(*) FROM " + table
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if err := db.QueryRowContext(ctx, q).Scan(&f.Matches); err != nil {
		return fmt.Errorf("quarantine matches: %w", err)
	}
	return nil
}
