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
// one-line summary.
func FirstLine(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
