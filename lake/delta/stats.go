package delta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FileStats is the statistics of one data file, as the protocol's
// per-file statistics (the add action's stats, a JSON string): the row
// count and, per leaf column, the smallest and largest value and the
// number of nulls. Readers use them to skip files a predicate cannot
// match. A column absent from MinValues or MaxValues has no known bounds:
// such a file must never be skipped on that column.
type FileStats struct {
	NumRecords int64 `json:"numRecords"`
	// MinValues and MaxValues hold each value as the protocol writes it:
	// numbers as JSON numbers, strings, dates and timestamps as JSON
	// strings (timestamps at millisecond precision, see StatTime).
	MinValues map[string]json.RawMessage `json:"minValues,omitempty"`
	MaxValues map[string]json.RawMessage `json:"maxValues,omitempty"`
	NullCount map[string]int64           `json:"nullCount,omitempty"`
}

// ErrNoStats is returned by ParseStats for an add action without stats.
var ErrNoStats = errors.New("no file statistics")

// String renders the statistics as the add action's stats string, with
// numRecords first (what other writers do; cheap readers rely on it).
func (s FileStats) String() string {
	b, err := json.Marshal(s)
	if err != nil {
		// Only an invalid json.RawMessage can fail, and values come from
		// the Stat* helpers; fall back to what is certainly true.
		return fmt.Sprintf(`{"numRecords":%d}`, s.NumRecords)
	}
	return string(b)
}

// ParseStats reads an add action's stats string. Statistics with only
// numRecords (what older writers of this project, and many others, wrote)
// parse to empty bounds. It returns ErrNoStats when stats is empty.
func ParseStats(stats string) (FileStats, error) {
	var s FileStats
	if strings.TrimSpace(stats) == "" {
		return s, ErrNoStats
	}
	// Bronze reads the stats of every file of a partition on every batch,
	// so this is one decode, pruned in place.
	var raw struct {
		NumRecords *int64                     `json:"numRecords"`
		MinValues  map[string]json.RawMessage `json:"minValues"`
		MaxValues  map[string]json.RawMessage `json:"maxValues"`
		NullCount  map[string]json.RawMessage `json:"nullCount"`
	}
	if err := json.Unmarshal([]byte(stats), &raw); err != nil {
		return s, fmt.Errorf("parse file statistics: %w", err)
	}
	if raw.NumRecords == nil {
		return s, fmt.Errorf("parse file statistics: no numRecords")
	}
	s.NumRecords = *raw.NumRecords
	// Nested columns hold objects; only leaf values are kept, so a caller
	// looking a top-level column up finds it or nothing.
	for _, m := range []map[string]json.RawMessage{raw.MinValues, raw.MaxValues} {
		for k, v := range m {
			if len(v) == 0 || v[0] == '{' || string(v) == "null" {
				delete(m, k)
			}
		}
	}
	s.MinValues, s.MaxValues = raw.MinValues, raw.MaxValues
	if len(raw.NullCount) > 0 {
		s.NullCount = make(map[string]int64, len(raw.NullCount))
	}
	for k, v := range raw.NullCount {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			s.NullCount[k] = n
		}
	}
	return s, nil
}

// StatString reads a string statistic (also how dates and timestamps are
// written).
func StatString(v json.RawMessage) (string, error) {
	// Most values have no escapes: no decoder needed.
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' && !bytes.ContainsAny(v[1:n-1], `"\`) && utf8.Valid(v) {
		return string(v[1 : n-1]), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// statTimeLayout is how Spark writes timestamp statistics: milliseconds,
// UTC.
const statTimeLayout = "2006-01-02T15:04:05.000Z"

// statTimeNTZLayout is the same for timestamp_ntz, which has no zone.
const statTimeNTZLayout = "2006-01-02T15:04:05.000"

// StatTime renders a timestamp statistic. The protocol's values have
// millisecond precision while timestamps have microseconds, so a minimum is
// rounded down and a maximum (up set) rounded up: the bounds stay bounds,
// and no reader skips a file holding a matching row. ntz renders a
// timestamp_ntz value (t's wall clock, no zone).
func StatTime(t time.Time, up, ntz bool) json.RawMessage {
	if !ntz {
		t = t.UTC()
	}
	ms := t.Truncate(time.Millisecond)
	if up && !ms.Equal(t) {
		ms = ms.Add(time.Millisecond)
	}
	layout := statTimeLayout
	if ntz {
		layout = statTimeNTZLayout
	}
	return json.RawMessage(`"` + ms.Format(layout) + `"`)
}

// ParseStatTime reads a timestamp statistic written by StatTime or by
// another writer (RFC 3339 with any offset, or no zone for timestamp_ntz,
// read as UTC). Other writers truncate maxima to milliseconds, so a caller
// using a maximum as an upper bound should allow for the millisecond lost.
func ParseStatTime(v json.RawMessage) (time.Time, error) {
	s, err := StatString(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp statistic %s: %w", v, err)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp statistic %q: %w", s, err)
	}
	return t, nil
}
