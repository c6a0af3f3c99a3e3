package config

import (
	"fmt"
	"strconv"
	"strings"
)

// cronDescriptors are the @-forms ValidateCron accepts besides @every.
var cronDescriptors = []string{"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}

type cronField struct {
	name     string
	min, max int
	names    []string // names for min, min+1, ... (month and day-of-week)
}

var cronFields = [5]cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"}},
}

// ValidateCron checks the syntax of a schedule: "@every <duration>"
// (30s, 1m, 1h, 1d), @hourly, @daily (@midnight), @weekly, @monthly,
// @yearly (@annually), or five cron fields "minute hour day-of-month month
// day-of-week", each *, a value, a range a-b, a list a,b and an optional
// step /n; months and days of week may be named (jan, mon), and day of
// week 0 and 7 are both Sunday. It checks syntax and ranges only; it does
// not compute run times.
func ValidateCron(spec string) error {
	s := strings.TrimSpace(spec)
	if s == "" {
		return fmt.Errorf("empty schedule: want \"@every 1m\", \"@daily\" or a cron spec like \"*/5 * * * *\"")
	}
	if strings.HasPrefix(s, "@") {
		f := strings.Fields(s)
		if f[0] == "@every" {
			if len(f) != 2 {
				return fmt.Errorf("want \"@every <duration>\", e.g. \"@every 1m\"")
			}
			d, err := ParseDuration(f[1])
			if err != nil {
				return fmt.Errorf("@every: %v", err)
			}
			if d <= 0 {
				return fmt.Errorf("@every: the interval must be positive, got %q", f[1])
			}
			return nil
		}
		for _, c := range cronDescriptors {
			if f[0] == c {
				if len(f) > 1 {
					return fmt.Errorf("%s takes no arguments", c)
				}
				return nil
			}
		}
		return fmt.Errorf("unknown schedule %q: want @every <duration>, @hourly, @daily, @weekly, @monthly or @yearly%s",
			f[0], didYouMean(f[0], append([]string{"@every"}, cronDescriptors...)))
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(f))
	}
	for i, field := range f {
		if err := cronFields[i].check(field); err != nil {
			return fmt.Errorf("%s %q: %v", cronFields[i].name, field, err)
		}
	}
	return nil
}

// check validates one field: a comma list of *, n, a-b, each with an optional /step.
func (cf cronField) check(field string) error {
	for item := range strings.SplitSeq(field, ",") {
		if item == "" {
			return fmt.Errorf("empty list item")
		}
		rng, step, hasStep := strings.Cut(item, "/")
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			lo, err := cf.value(a)
			if err != nil {
				return err
			}
			if isRange {
				hi, err := cf.value(b)
				if err != nil {
					return err
				}
				if lo > hi {
					return fmt.Errorf("range %s is backwards", rng)
				}
			}
		}
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || step[0] == '+' {
				return fmt.Errorf("step %q must be a whole number of at least 1", step)
			}
			if n > cf.max-cf.min+1 {
				return fmt.Errorf("step %d is larger than the field's range %d-%d", n, cf.min, cf.max)
			}
		}
	}
	return nil
}

// value parses a number or (for month and day of week) a name within range.
func (cf cronField) value(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing value")
	}
	for i, n := range cf.names {
		if strings.EqualFold(s, n) {
			return cf.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' {
		if cf.names != nil {
			return 0, fmt.Errorf("%q is not a number or a name like %s", s, cf.names[0])
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < cf.min || n > cf.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, cf.min, cf.max)
	}
	return n, nil
}
