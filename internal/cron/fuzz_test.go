package cron

import (
	"strings"
	"testing"
	"time"
)

// matches reports whether t is a due time of a five-field schedule, field by
// field, without Next's jumping: the oracle FuzzCron checks Next against.
func (s *Schedule) matches(t time.Time) bool {
	t = t.In(s.loc)
	return t.Second() == 0 && t.Nanosecond() == 0 &&
		s.month&(1<<uint(t.Month())) != 0 && s.dayMatches(t) &&
		s.hour&(1<<uint(t.Hour())) != 0 && s.minute&(1<<uint(t.Minute())) != 0
}

// FuzzCron checks that Parse never panics, ignores surrounding space, and
// that Next is strictly later, is a due time, and skips no due time (checked
// minute by minute over the gap, up to a few days in UTC).
func FuzzCron(f *testing.F) {
	for _, s := range []string{"@every 1m", "@every 90s", "@every 1d", "@daily", "@weekly", "*/5 * * * *",
		"0 9-17/2 * jan-dec mon-fri", "1,2,3 * * * *", "5/15 * * * *", "* * * * 7", "0 0 13 * fri",
		"0 0 29 2 *", "0 0 31 * *", "*/0 * * * *", "@every", "60 * * * *", "- * * * *", "1-2-3 * * * *"} {
		f.Add(s, int64(1704067200)) // 2024-01-01
		f.Add(s, int64(4107542399)) // 2100-02-28 23:59:59
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64) {
		s, err := Parse(spec)
		s2, err2 := Parse(" \t" + spec + " ")
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Parse(%q) = %v, but with spaces around %v", spec, err, err2)
		}
		if err != nil {
			return
		}
		if s2.String() != strings.TrimSpace(spec) {
			t.Fatalf("String() = %q, want %q", s2, strings.TrimSpace(spec))
		}
		unix = unix % (400 * 365 * 86400) // keep within years 1570-2370
		after := time.Unix(unix, 0).UTC()
		next := s.Next(after)
		if next.IsZero() {
			t.Fatalf("%q: no due time after %s", spec, after)
		}
		if !next.After(after) {
			t.Fatalf("%q: Next(%s) = %s, not after", spec, after, next)
		}
		if s.Every() > 0 {
			if next.Sub(after) > s.Every() || next.UnixNano()%int64(s.Every()) != 0 && s.Every() < time.Second {
				t.Fatalf("%q: Next(%s) = %s", spec, after, next)
			}
			return
		}
		if !s.matches(next) {
			t.Fatalf("%q: Next(%s) = %s is not a due time", spec, after, next)
		}
		if next.Sub(after) < 4*24*time.Hour {
			for m := after.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
				if s.matches(m) {
					t.Fatalf("%q: Next(%s) = %s skips due time %s", spec, after, next, m)
				}
			}
		}
		if again := s.Next(next); !again.After(next) {
			t.Fatalf("%q: Next(%s) = %s, not after", spec, next, again)
		}
	})
}
