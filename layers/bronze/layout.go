package bronze

import (
	"fmt"
	"strings"
)

// goLayoutTokens maps Go reference-layout elements to DuckDB strptime
// specifiers, longest first so that "2006" wins over "2" and "January" over
// "Jan". Go's optional fractions (".999") have no strptime equivalent and are
// refused.
var goLayoutTokens = []struct{ goTok, strp string }{
	{"January", "%B"}, {"Monday", "%A"},
	{"Z07:00:00", "%z"}, {"-07:00:00", "%z"},
	{"Z07:00", "%z"}, {"-07:00", "%z"}, {"Z0700", "%z"}, {"-0700", "%z"}, {"Z07", "%z"}, {"-07", "%z"},
	{".000000000", ".%n"}, {",000000000", ",%n"},
	{".000000", ".%f"}, {",000000", ",%f"},
	{".000", ".%g"}, {",000", ",%g"},
	{"2006", "%Y"}, {"Jan", "%b"}, {"Mon", "%a"}, {"MST", "%Z"},
	{"002", "%j"}, {"__2", "%j"},
	{"01", "%m"}, {"02", "%d"}, {"_2", "%-d"}, {"06", "%y"},
	{"15", "%H"}, {"03", "%I"}, {"04", "%M"}, {"05", "%S"},
	{"PM", "%p"}, {"pm", "%p"},
	{"1", "%-m"}, {"2", "%-d"}, {"3", "%-I"}, {"4", "%-M"}, {"5", "%-S"},
}

// GoLayoutToStrptime converts a Go reference layout ("2006-01-02 15:04:05")
// to a DuckDB strptime format ("%Y-%m-%d %H:%M:%S"). It reports whether the
// layout carries a zone (%z or %Z): then the parsed value is an instant and
// the column's tz does not apply. Literal text is kept ('%' is escaped).
// Layouts with elements strptime cannot express (optional fractions
// ".999", "_2" padding is mapped to an unpadded day) are refused with an
// error naming the element.
func GoLayoutToStrptime(layout string) (format string, hasZone bool, err error) {
	if layout == "" {
		return "", false, fmt.Errorf("empty layout")
	}
	var b strings.Builder
	for i := 0; i < len(layout); {
		if strings.HasPrefix(layout[i:], ".9") || strings.HasPrefix(layout[i:], ",9") {
			return "", false, fmt.Errorf("layout %q: optional fraction %q has no strptime equivalent (use .000, .000000 or .000000000)", layout, layout[i:i+2])
		}
		matched := false
		for _, t := range goLayoutTokens {
			if strings.HasPrefix(layout[i:], t.goTok) {
				// Go only treats "Jan"/"Mon"/"MST"/"PM" as elements; digits
				// always are. A fraction must follow a seconds element in Go,
				// but accepting it anywhere is harmless here.
				b.WriteString(t.strp)
				if strings.Contains(t.strp, "%z") || t.strp == "%Z" {
					hasZone = true
				}
				i += len(t.goTok)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		c := layout[i]
		if c == '%' {
			b.WriteString("%%")
		} else {
			b.WriteByte(c)
		}
		i++
	}
	return b.String(), hasZone, nil
}
