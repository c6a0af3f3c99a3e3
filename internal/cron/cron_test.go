package cron

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone test runs on hosts without zoneinfo, as the binary does
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	tests := []struct {
		spec  string
		after string
		want  []string // successive due times
	}{
		{"* * * * *", "2024-01-01 00:00:00", []string{"2024-01-01 00:01:00", "2024-01-01 00:02:00"}},
		{"* * * * *", "2024-01-01 00:00:30", []string{"2024-01-01 00:01:00"}},
		{"*/5 * * * *", "2024-01-01 00:03:00", []string{"2024-01-01 00:05:00", "2024-01-01 00:10:00"}},
		{"*/5 * * * *", "2024-01-01 23:57:00", []string{"2024-01-02 00:00:00"}},
		{"5/15 * * * *", "2024-01-01 00:00:00", []string{"2024-01-01 00:05:00", "2024-01-01 00:20:00", "2024-01-01 00:35:00", "2024-01-01 00:50:00", "2024-01-01 01:05:00"}},
		{"0,30 9-10 * * *", "2024-01-01 09:45:00", []string{"2024-01-01 10:00:00", "2024-01-01 10:30:00", "2024-01-02 09:00:00"}},
		{"0 9-17/4 * * *", "2024-01-01 00:00:00", []string{"2024-01-01 09:00:00", "2024-01-01 13:00:00", "2024-01-01 17:00:00", "2024-01-02 09:00:00"}},
		{"0 0 * * *", "2024-02-28 00:00:00", []string{"2024-02-29 00:00:00", "2024-03-01 00:00:00"}},
		// 2024-01-05 is a Friday.
		{"30 8 * * mon-fri", "2024-01-05 08:30:00", []string{"2024-01-08 08:30:00", "2024-01-09 08:30:00"}},
		{"30 8 * * 1-5", "2024-01-05 08:29:59", []string{"2024-01-05 08:30:00"}},
		{"0 0 * * 7", "2024-01-01 00:00:00", []string{"2024-01-07 00:00:00", "2024-01-14 00:00:00"}},
		{"0 0 * * 0", "2024-01-01 00:00:00", []string{"2024-01-07 00:00:00"}},
		{"0 0 * * SAT,sun", "2024-01-01 00:00:00", []string{"2024-01-06 00:00:00", "2024-01-07 00:00:00", "2024-01-13 00:00:00"}},
		{"0 0 * * 5-7", "2024-01-01 00:00:00", []string{"2024-01-05 00:00:00", "2024-01-06 00:00:00", "2024-01-07 00:00:00", "2024-01-12 00:00:00"}},
		// Both day fields restricted: either matches (the 13th, or any Friday).
		{"0 0 13 * fri", "2024-01-01 00:00:00", []string{"2024-01-05 00:00:00", "2024-01-12 00:00:00", "2024-01-13 00:00:00", "2024-01-19 00:00:00"}},
		// Day of week *: day of month decides. A */ day of week counts as *.
		{"0 0 13 * *", "2024-01-01 00:00:00", []string{"2024-01-13 00:00:00", "2024-02-13 00:00:00"}},
		{"0 0 13 * */1", "2024-01-01 00:00:00", []string{"2024-01-13 00:00:00"}},
		// Day of month *: day of week decides.
		{"0 0 * * fri", "2024-01-01 00:00:00", []string{"2024-01-05 00:00:00"}},
		// Day of month starting with *, with a step: AND with day of week.
		{"0 0 */10 * mon", "2024-01-01 00:00:00", []string{"2024-03-11 00:00:00"}},
		{"0 0 31 * *", "2024-01-31 00:00:00", []string{"2024-03-31 00:00:00", "2024-05-31 00:00:00"}},
		{"0 0 29 2 *", "2024-03-01 00:00:00", []string{"2028-02-29 00:00:00"}},
		{"0 0 29 feb *", "2096-03-01 00:00:00", []string{"2104-02-29 00:00:00"}}, // 2100 is not a leap year
		{"0 0 1 jan,JUL *", "2024-01-01 00:00:00", []string{"2024-07-01 00:00:00", "2025-01-01 00:00:00"}},
		{"59 23 31 12 *", "2024-06-01 00:00:00", []string{"2024-12-31 23:59:00", "2025-12-31 23:59:00"}},
		{"@hourly", "2024-01-01 10:59:59", []string{"2024-01-01 11:00:00", "2024-01-01 12:00:00"}},
		{"@daily", "2024-01-01 10:00:00", []string{"2024-01-02 00:00:00"}},
		{"@midnight", "2024-01-01 00:00:00", []string{"2024-01-02 00:00:00"}},
		{"@weekly", "2024-01-01 00:00:00", []string{"2024-01-07 00:00:00"}},
		{"@monthly", "2024-01-15 00:00:00", []string{"2024-02-01 00:00:00"}},
		{"@yearly", "2024-01-01 00:00:00", []string{"2025-01-01 00:00:00"}},
		{"@annually", "2024-06-01 00:00:00", []string{"2025-01-01 00:00:00"}},
		// @every is aligned to the Unix epoch, so every process agrees.
		{"@every 1m", "2024-01-01 10:00:00", []string{"2024-01-01 10:01:00", "2024-01-01 10:02:00"}},
		{"@every 1m", "2024-01-01 10:00:59", []string{"2024-01-01 10:01:00"}},
		{"@every 90s", "2024-01-01 00:00:00", []string{"2024-01-01 00:01:30", "2024-01-01 00:03:00"}},
		{"@every 1h30m", "2024-01-01 00:00:00", []string{"2024-01-01 01:30:00", "2024-01-01 03:00:00"}},
		{"@every 1d", "2024-01-01 13:00:00", []string{"2024-01-02 00:00:00"}},
		{"@every 7m", "1970-01-01 00:00:00", []string{"1970-01-01 00:07:00"}},
		{"@every 1m", "1969-12-31 23:59:30", []string{"1970-01-01 00:00:00"}},
	}
	for _, tt := range tests {
		s, err := Parse(tt.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		at := utc(tt.after)
		for i, w := range tt.want {
			got := s.Next(at)
			if !got.Equal(utc(w)) {
				t.Errorf("%q: due #%d after %s = %s, want %s", tt.spec, i+1, tt.after, got.Format(time.DateTime), w)
				break
			}
			at = got
		}
	}
}

func TestNextEverySubSecond(t *testing.T) {
	s, err := Parse("@every 250ms")
	if err != nil {
		t.Fatal(err)
	}
	at := utc("2024-01-01 00:00:00").Add(100 * time.Millisecond)
	if got, want := s.Next(at), utc("2024-01-01 00:00:00").Add(250*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Next = %s, want %s", got, want)
	}
}

func TestNextInLocation(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err) // time/tzdata is embedded: never a reason to skip
	}
	at := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		spec, after string
		want        []string // as UTC
	}{
		// 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
		{"0 9 * * *", "2024-03-30 10:00", []string{"2024-03-31 07:00:00", "2024-04-01 07:00:00"}},
		// 2024-03-31: 02:00 -> 03:00. 02:30 does not exist that day: skipped.
		{"30 2 * * *", "2024-03-30 03:00", []string{"2024-04-01 00:30:00"}},
		{"30 2 * * *", "2024-03-31 00:00", []string{"2024-04-01 00:30:00"}},
		// 2024-10-27: 03:00 -> 02:00. A fixed 02:30 fires once.
		{"30 2 * * *", "2024-10-27 00:00", []string{"2024-10-27 00:30:00", "2024-10-28 01:30:00"}},
		// With hour *, every real minute counts: 02:30 twice.
		{"30 * * * *", "2024-10-27 01:45", []string{"2024-10-27 00:30:00", "2024-10-27 01:30:00", "2024-10-27 02:30:00"}},
		// @every stays epoch-aligned.
		{"@every 1h", "2024-01-01 10:30", []string{"2024-01-01 10:00:00"}},
	}
	for _, tt := range tests {
		s, err := ParseInLocation(tt.spec, berlin)
		if err != nil {
			t.Fatal(err)
		}
		cur := at(tt.after)
		for i, w := range tt.want {
			got := s.Next(cur)
			if !got.Equal(utc(w)) {
				t.Errorf("%q in Berlin: due #%d after %s = %s UTC, want %s UTC", tt.spec, i+1, tt.after, got.UTC().Format(time.DateTime), w)
				break
			}
			if got.Location() != berlin {
				t.Errorf("%q: Next in %s, want Europe/Berlin", tt.spec, got.Location())
			}
			cur = got
		}
	}
}

func TestParseErrors(t *testing.T) {
	bad := map[string]string{
		"":                  "empty schedule",
		"@every":            `want "@every <duration>"`,
		"@every 1m 2m":      `want "@every <duration>"`,
		"@every -1m":        "@every: the interval must be positive",
		"@every 0s":         `@every: the interval must be positive, got "0s"`,
		"@every soon":       `@every: expected a duration like 30s, 1m, 1h or 1d, got "soon"`,
		"@daily 5":          "@daily takes no arguments",
		"@reboot":           `unknown schedule "@reboot"`,
		"* * * *":           "want 5 fields",
		"* * * * * *":       "want 5 fields (minute hour day-of-month month day-of-week), got 6",
		"60 * * * *":        `minute "60": 60 is out of range 0-59`,
		"* 24 * * *":        `hour "24": 24 is out of range 0-23`,
		"* * 0 * *":         `day of month "0": 0 is out of range 1-31`,
		"* * * 13 *":        `month "13": 13 is out of range 1-12`,
		"* * * * 8":         `day of week "8": 8 is out of range 0-7`,
		"*/0 * * * *":       `minute "*/0": step "0" must be a whole number of at least 1`,
		"*/61 * * * *":      `minute "*/61": step 61 is larger than the field's range 0-59`,
		"5-1 * * * *":       "range 5-1 is backwards",
		"1,,2 * * * *":      "empty list item",
		"a * * * *":         `minute "a": "a" is not a number`,
		"* * * foo *":       `month "foo": "foo" is not a number or a name like jan`,
		"-1 * * * *":        "missing value",
		"+1 * * * *":        `"+1" is not a number`,
		"*/5/5 * * * *":     `step "5/5"`,
		"0 0 * * sunday":    `"sunday" is not a number or a name like sun`,
		"0 0 30 2 *":        "day of month 30 never occurs in February",
		"0 0 31 apr,jun *":  "day of month 31 never occurs in April or June",
		"0 0 30,31 feb *":   "day of month 30 never occurs in February",
		"0 0 31 4,6,9,11 *": "day of month 31 never occurs in April, June, September or November",
	}
	for spec, want := range bad {
		_, err := Parse(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %s", spec, err, want)
		}
	}
	// Both day fields restricted: the weekday still fires.
	if _, err := Parse("0 0 30 2 mon"); err != nil {
		t.Errorf("Parse(0 0 30 2 mon): %v", err)
	}
	var ud *UnknownDescriptorError
	if _, err := Parse("@dayly"); !errors.As(err, &ud) || ud.Name != "@dayly" {
		t.Errorf("Parse(@dayly) = %v, want an *UnknownDescriptorError", err)
	}
}

func TestString(t *testing.T) {
	s, err := Parse("  */5 * * * *\t")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "*/5 * * * *" || s.Location() != time.UTC || s.Every() != 0 {
		t.Errorf("got %q %s %s", s, s.Location(), s.Every())
	}
	e, _ := Parse("@every 2d")
	if e.Every() != 48*time.Hour {
		t.Errorf("@every 2d: Every() = %s", e.Every())
	}
}
