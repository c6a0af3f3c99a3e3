package layers

import (
	"fmt"
	"strings"
	"time"
)

// TimeRange bounds what a refresh replaces: rows (bronze, by event time)
// or windows (silver, by window_start) in [From, To). A zero bound is
// open; both zero is the whole table.
type TimeRange struct {
	From, To time.Time
}

// Full reports whether r covers the whole table.
func (r TimeRange) Full() bool { return r.From.IsZero() && r.To.IsZero() }

// String is the range as history and the CLI show it.
func (r TimeRange) String() string {
	if r.Full() {
		return "full"
	}
	f := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	return "[" + f(r.From, "-inf") + ", " + f(r.To, "+inf") + ")"
}

// Cond is the SQL condition saying that the timestamp expression ts lies
// in r. It is false, not NULL, for a NULL ts, so that NOT Cond selects
// exactly the rows outside the range.
func (r TimeRange) Cond(ts string) string {
	c := []string{"(" + ts + ") IS NOT NULL"}
	if !r.From.IsZero() {
		c = append(c, fmt.Sprintf("epoch_us(%s) >= %d", ts, r.From.UnixMicro()))
	}
	if !r.To.IsZero() {
		c = append(c, fmt.Sprintf("epoch_us(%s) < %d", ts, r.To.UnixMicro()))
	}
	return "(" + strings.Join(c, " AND ") + ")"
}
