// Package humanize formats values for people reading a terminal or a web
// page: byte counts and one-line errors. The CLI and the dashboard share
// it so that the same number reads the same in both.
package humanize

import (
	"fmt"
	"strings"
)

// Bytes formats n in binary units with one decimal: 512 B, 1.5 KiB, 2.0 GiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := abs(n) / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// FirstLine is the first line of err's message ("" for nil): DuckDB and
// PostgreSQL errors carry context lines that belong in logs, not in a
// one-line summary. A first line that ends with ':' announces its cause on
// the lines below (pgx: "failed to connect to `user=u database=d`:" then one
// line per address tried), so those lines are kept, joined with "; " and
// each said once: the root cause must reach the one-line summary.
func FirstLine(err error) string {
	if err == nil {
		return ""
	}
	lines := strings.Split(err.Error(), "\n")
	first := strings.TrimRight(lines[0], " \t")
	if !strings.HasSuffix(first, ":") || len(lines) == 1 {
		return lines[0]
	}
	var causes []string
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		// A wrapper may have appended to the last line a cause it repeats:
		// keep only what it added.
		if rest, ok := afterSeen(l, causes); ok {
			if rest != "" {
				causes[len(causes)-1] += " " + rest
			}
			continue
		}
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		causes = append(causes, l)
	}
	if len(causes) == 0 {
		return strings.TrimSuffix(first, ":")
	}
	return first + " " + strings.Join(causes, "; ")
}

// afterSeen reports whether l starts with one of seen, and what follows it.
func afterSeen(l string, seen []string) (string, bool) {
	for _, s := range seen {
		if rest, ok := strings.CutPrefix(l, s); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
