// Package duration parses the durations of the pipeline file: Go's syntax
// plus a leading whole number of days. The loader, @every schedules and
// anything else that reads a duration from medallion.yaml share it, so they
// accept exactly the same spellings.
package duration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Parse parses a Go duration ("30s", "1m", "1h30m", "0") or one
// with a leading number of days ("1d", "7d", "1d12h").
func Parse(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("expected a duration like 30s, 1m, 1h or 1d, got %q", s)
	}
	var days int64
	if i := strings.IndexByte(t, 'd'); i > 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err == nil && n >= 0 && n <= math.MaxInt64/int64(24*time.Hour) {
			days = n
			t = t[i+1:]
			if t == "" {
				return time.Duration(days) * 24 * time.Hour, nil
			}
			if t[0] == '-' || t[0] == '+' {
				return 0, fmt.Errorf("expected a duration like 30s, 1m, 1h or 1d, got %q", s)
			}
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("expected a duration like 30s, 1m, 1h or 1d, got %q", s)
	}
	if days > 0 {
		total := time.Duration(days)*24*time.Hour + d
		if total < d {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		d = total
	}
	return d, nil
}
