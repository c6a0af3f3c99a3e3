package pgmirror

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// selected reports whether the lake column name is copied: the spec's
// columns:/exclude: choose, and lineage columns are copied only when
// columns: lists them or the existing target has them already (a target
// made before lineage was left out keeps its columns, rather than failing
// as if they had been dropped; `mirror --rebuild` leaves them out).
func (s Spec) selected(name string, existing *pgTable) bool {
	if len(s.Columns) > 0 {
		return slices.Contains(s.Columns, name) || slices.Contains(s.Key, name)
	}
	if slices.Contains(s.Exclude, name) && !slices.Contains(s.Key, name) {
		return false
	}
	if slices.Contains(s.Lineage, name) {
		if existing == nil {
			return false
		}
		_, had := existing.column(s.pgName(name))
		return had
	}
	return true
}

// pgName is the PostgreSQL name of the lake column name.
func (s Spec) pgName(name string) string {
	if s.Names != NamesLower {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return out
}

// checkNames refuses columns whose PostgreSQL names collide (names: lower
// makes "Total" and "total" one name) and columns: or exclude: entries
// that are not columns of the lake table.
func checkNames(s Spec, cols []column, all []string) error {
	seen := map[string]string{}
	for _, c := range cols {
		if prev, dup := seen[c.pg]; dup {
			return fmt.Errorf("mirror %s: columns %s and %s are both %s in PostgreSQL (names: %s); leave one out with exclude:",
				s, quoteName(prev), quoteName(c.name), quoteName(c.pg), s.Names)
		}
		seen[c.pg] = c.name
	}
	for _, list := range [][]string{s.Columns, s.Exclude} {
		for _, n := range list {
			if !slices.Contains(all, n) {
				return fmt.Errorf("mirror %s: column %s is not a column of %s (columns: %s); fix columns: or exclude: in medallion.yaml",
					s, quoteName(n), s.Source, strings.Join(all, ", "))
			}
		}
	}
	return nil
}
