package config

import (
	"fmt"
	"slices"
)

// Mirror column names (names:).
const (
	MirrorNamesAsDeclared = "as_declared" // the lake's names, quoted where PostgreSQL needs it
	MirrorNamesLower      = "lower"       // plain lower-case names
)

// LineageColumns returns the bronze columns that say where a row came
// from; a mirror copies them only when its columns: lists them.
func LineageColumns() []string { return slices.Clone(lineageCols) }

// validateMirrorColumns checks a mirror's columns:, exclude: and names:
// against the table's columns (when known) and its key.
func (l *loader) validateMirrorColumns(path string, m *Mirror, cols []string, known bool) {
	if m.Names == "" {
		m.Names = MirrorNamesAsDeclared
	}
	if m.Names != MirrorNamesAsDeclared && m.Names != MirrorNamesLower {
		l.errorf(nil, path+".names", "unknown value %q: want lower or as_declared%s", m.Names, didYouMean(m.Names, []string{MirrorNamesLower, MirrorNamesAsDeclared}))
	}
	if len(m.Columns) > 0 && len(m.Exclude) > 0 {
		l.errorf(nil, path+".exclude", "give columns: (what to copy) or exclude: (what to leave out), not both")
		return
	}
	check := func(key string, list []string) {
		seen := map[string]bool{}
		for j, c := range list {
			p := fmt.Sprintf("%s.%s[%d]", path, key, j)
			switch {
			case seen[c]:
				l.errorf(nil, p, "column %q is listed twice", c)
			case known && !slices.Contains(cols, c) && !slices.Contains(lineageCols, c):
				l.errorf(nil, p, "no column %q in %s%s", c, m.Table, colHint(c, cols))
			case key == "exclude" && slices.Contains(m.Key, c):
				l.errorf(nil, p, "column %q is in key:; a mirror always copies its key", c)
			}
			seen[c] = true
		}
	}
	check("columns", m.Columns)
	check("exclude", m.Exclude)
	if len(m.Columns) > 0 {
		for _, k := range m.Key {
			if !slices.Contains(m.Columns, k) {
				l.errorf(nil, path+".columns", "lacks key column %q: a mirror always copies its key (add it to columns:)", k)
			}
		}
	}
}
