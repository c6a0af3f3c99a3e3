// Package cron is the one parser for schedule specs in medallion: the
// pipeline loader validates schedule: entries with it, and the scheduler in
// package jobs computes due times with it.
//
// A spec is one of
//
//	@every <duration>   a fixed interval (30s, 1m, 1h30m, 1d), aligned to the Unix epoch
//	@hourly             0 * * * *
//	@daily, @midnight   0 0 * * *
//	@weekly             0 0 * * 0
//	@monthly            0 0 1 * *
//	@yearly, @annually  0 0 1 1 *
//
// or five fields "minute hour day-of-month month day-of-week". Each field is
// a comma list of items; an item is *, a value n, a range a-b, and an
// optional step /s (n/s means n-max/s). Months (jan-dec) and days of week
// (sun-sat) may be named, case-insensitively; day of week 0 and 7 are both
// Sunday.
//
// Day of month and day of week follow the standard (Vixie cron) rule: when
// both are restricted (neither starts with *), a day matches if EITHER
// matches ("0 0 13 * fri" fires on every 13th and every Friday); otherwise
// both must match, which means the restricted one decides.
//
// Times are computed in UTC unless a location is given (ParseInLocation).
// In a zone with daylight saving time, a wall-clock time that does not exist
// on the change day (02:30 when clocks jump from 02:00 to 03:00) is skipped
// that day, and a wall-clock time that occurs twice fires once, at its first
// occurrence, unless the hour field is * (then every real minute counts).
//
// @every intervals are aligned to the Unix epoch, not to when a process
// started: "@every 1m" is due at every whole minute and "@every 1h" on every
// hour, so two processes (or one process before and after a restart)
// always agree on the due times.
package cron

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/duration"
)

// Schedule is a parsed spec. It is immutable and safe for concurrent use.
type Schedule struct {
	spec  string
	every time.Duration // > 0 for @every; the fields below are then unused
	loc   *time.Location

	minute, hour, dom, month, dow uint64 // bit n set: value n allowed (dow: 0..6, Sunday 0)
	domStar, dowStar              bool   // the field started with * (for the dom/dow rule)
	hourStar                      bool   // the hour field started with * (for repeated DST hours)
}

// UnknownDescriptorError is returned by Parse for an @-word it does not know
// (@reboot, a typo of @daily), so callers can suggest the nearest one.
type UnknownDescriptorError struct {
	Name string // as written, e.g. "@dayly"
}

func (e *UnknownDescriptorError) Error() string {
	return fmt.Sprintf("unknown schedule %q: want @every <duration>, @hourly, @daily, @weekly, @monthly or @yearly", e.Name)
}

// Descriptors lists every @-word Parse accepts, @every first.
func Descriptors() []string {
	out := []string{"@every"}
	for _, d := range descriptors {
		out = append(out, d.name)
	}
	return out
}

var descriptors = [...]struct{ name, fields string }{
	{"@hourly", "0 * * * *"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@weekly", "0 0 * * 0"},
	{"@monthly", "0 0 1 * *"},
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
}

type field struct {
	name     string
	min, max int
	names    []string // names for min, min+1, ... (month and day of week)
}

var fields = [5]field{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"}},
}

// Parse parses a spec (surrounding space is ignored) evaluated in UTC.
// Errors say what is wrong in the user's terms ("hour \"25\": 25 is out of
// range 0-23"); an unknown @-word is an *UnknownDescriptorError.
func Parse(spec string) (*Schedule, error) {
	return ParseInLocation(spec, time.UTC)
}

// ParseInLocation is Parse with the wall clock of loc (nil: UTC). @every
// intervals stay aligned to the Unix epoch whatever the zone.
func ParseInLocation(spec string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, errors.New(`empty schedule: want "@every 1m", "@daily" or a cron spec like "*/5 * * * *"`)
	}
	if strings.HasPrefix(s, "@") {
		f := strings.Fields(s)
		if f[0] == "@every" {
			if len(f) != 2 {
				return nil, errors.New(`want "@every <duration>", e.g. "@every 1m"`)
			}
			d, err := duration.Parse(f[1])
			if err != nil {
				return nil, fmt.Errorf("@every: %v", err)
			}
			if d <= 0 {
				return nil, fmt.Errorf("@every: the interval must be positive, got %q", f[1])
			}
			return &Schedule{spec: s, every: d, loc: loc}, nil
		}
		for _, d := range descriptors {
			if f[0] == d.name {
				if len(f) > 1 {
					return nil, fmt.Errorf("%s takes no arguments", d.name)
				}
				sch, err := parseFields(d.fields, loc)
				if err != nil {
					panic("cron: bad built-in descriptor " + d.name + ": " + err.Error())
				}
				sch.spec = s
				return sch, nil
			}
		}
		return nil, &UnknownDescriptorError{Name: f[0]}
	}
	sch, err := parseFields(s, loc)
	if err != nil {
		return nil, err
	}
	sch.spec = s
	return sch, nil
}

func parseFields(s string, loc *time.Location) (*Schedule, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(f))
	}
	var sets [5]uint64
	for i, text := range f {
		set, err := fields[i].parse(text)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", fields[i].name, text, err)
		}
		sets[i] = set
	}
	sch := &Schedule{
		loc:    loc,
		minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		hourStar: f[1][0] == '*',
		domStar:  f[2][0] == '*',
		dowStar:  f[4][0] == '*',
	}
	if sch.dow&(1<<7) != 0 { // 7 is Sunday too
		sch.dow = sch.dow&^(1<<7) | 1
	}
	if err := sch.checkReachable(); err != nil {
		return nil, err
	}
	return sch, nil
}

// checkReachable refuses day-of-month/month combinations that never occur
// ("0 0 30 2 *"), which would otherwise never be due.
func (s *Schedule) checkReachable() error {
	// Only when day of month alone decides: with both restricted either may
	// match, and a field starting with * always allows the 1st.
	if s.domStar || !s.dowStar {
		return nil
	}
	minDay := bits.TrailingZeros64(s.dom) // lowest allowed day of month
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) != 0 && minDay <= daysIn(time.Month(m)) {
			return nil
		}
	}
	return fmt.Errorf("day of month %d never occurs in %s", minDay, monthList(s.month))
}

// daysIn is the most days the month can have (February: 29).
func daysIn(m time.Month) int {
	switch m {
	case time.February:
		return 29
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func monthList(set uint64) string {
	var names []string
	for m := 1; m <= 12; m++ {
		if set&(1<<m) != 0 {
			names = append(names, time.Month(m).String())
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// parse reads one field: a comma list of *, n, a-b, each with an optional /step.
func (f field) parse(text string) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = f.value(b); err != nil {
					return 0, err
				}
				if lo > hi {
					return 0, fmt.Errorf("range %s is backwards", rng)
				}
			} else if hasStep {
				hi = f.max // n/step means n-max/step
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || stepText[0] == '+' {
				return 0, fmt.Errorf("step %q must be a whole number of at least 1", stepText)
			}
			if n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %d is larger than the field's range %d-%d", n, f.min, f.max)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// value parses a number or (for month and day of week) a name within range.
func (f field) value(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing value")
	}
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' {
		if f.names != nil {
			return 0, fmt.Errorf("%q is not a number or a name like %s", s, f.names[0])
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// String returns the spec as written (trimmed).
func (s *Schedule) String() string { return s.spec }

// Location is the zone the schedule's wall-clock fields are evaluated in.
func (s *Schedule) Location() *time.Location { return s.loc }

// Every returns the interval of an @every schedule, or 0 for the others.
func (s *Schedule) Every() time.Duration { return s.every }

// searchYears bounds the search in Next. Parse refuses specs that can never
// fire, and the rarest reachable one (Feb 29 when only day of month is
// restricted) recurs within 8 years, so this is only a backstop.
const searchYears = 10

// Next returns the first due time strictly after after, or the zero time if
// there is none within ten years (which Parse makes impossible in practice).
// The result is in the schedule's location, with zero seconds for the
// five-field forms.
func (s *Schedule) Next(after time.Time) time.Time {
	if s.every > 0 {
		return s.nextEvery(after)
	}
	loc := s.loc
	t := after.In(loc)
	t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
	for !t.After(after) {
		t = t.Add(time.Minute)
	}
	limit := t.Year() + searchYears
	for t.Year() <= limit {
		next := t
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			next = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case s.hour&(1<<uint(t.Hour())) == 0:
			// Absolute time, not time.Date: on the day clocks go back,
			// Date may resolve the next hour to its second occurrence.
			next = t.Add(time.Duration(60-t.Minute()) * time.Minute)
		case s.minute&(1<<uint(t.Minute())) == 0:
			next = t.Add(time.Minute)
		case !s.hourStar && s.loc != time.UTC && s.repeated(t):
			// The second pass of a wall-clock hour that occurs twice (DST
			// ends): a fixed-hour job already fired in the first pass.
			next = t.Add(time.Minute)
		default:
			return t
		}
		if !next.After(t) { // never go backwards, whatever the zone does
			next = t.Add(time.Minute)
		}
		t = next
	}
	return time.Time{}
}

// nextEvery is the first multiple of the interval since the Unix epoch
// strictly after after.
func (s *Schedule) nextEvery(after time.Time) time.Time {
	d := s.every
	// Split into whole seconds and nanoseconds to stay clear of overflow in
	// UnixNano for far-away times.
	sec, nsec := after.Unix(), int64(after.Nanosecond())
	if d%time.Second == 0 {
		ds := int64(d / time.Second)
		q := floorDiv(sec, ds)
		next := (q + 1) * ds
		return time.Unix(next, 0).In(s.loc)
	}
	n := sec*int64(time.Second) + nsec // sub-second intervals: near-present times only
	q := floorDiv(n, int64(d))
	return time.Unix(0, (q+1)*int64(d)).In(s.loc)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// dayMatches applies the day-of-month / day-of-week rule.
func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// repeated reports whether t is the second occurrence of its wall-clock
// time: clocks went back within the last few hours, and the instant one
// offset difference earlier shows the same wall clock.
func (s *Schedule) repeated(t time.Time) bool {
	_, off := t.Zone()
	_, before := t.Add(-3 * time.Hour).Zone()
	if before <= off {
		return false
	}
	e := t.Add(-time.Duration(before-off) * time.Second)
	return e.Hour() == t.Hour() && e.Minute() == t.Minute() && e.Day() == t.Day()
}
