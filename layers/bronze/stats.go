package bronze

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medallion-dev/medallion/lake/delta"
)

// Bronze adds carry the protocol's per-file statistics (row count, and per
// column minimum, maximum and null count), taken from what DuckDB's COPY
// ... RETURN_STATS reports for each file it wrote, so no file is read
// again. Other engines skip files with them; bronze itself uses the bounds
// of the dedupe key columns to read, for the duplicate check, only the
// existing files whose key ranges meet the batch's (batchRanges, mayMatch).

// maxStatString is the longest string statistic written, in bytes. DuckDB
// truncates long string statistics (raising the maximum's last byte, which
// may leave invalid UTF-8); short ones are exact.
const maxStatString = 128

// fileStats builds an add's statistics from the row count and DuckDB's
// column_statistics value (a map of quoted column name to a map of stat
// name to text) for the columns of schema. A column with no usable minimum
// or maximum gets neither; columns of other types than Delta's orderable
// primitives get only their null count.
func fileStats(count int64, colStats any, schema *delta.Schema) delta.FileStats {
	st := delta.FileStats{NumRecords: count}
	byName := map[string]map[string]string{}
	keys, vals, _ := mapEntries(colStats)
	for i, k := range keys {
		ks, vs, ok := mapEntries(vals[i])
		if !ok {
			continue
		}
		m := make(map[string]string, len(ks))
		for n, sk := range ks {
			if v, isText := vs[n].(string); isText {
				m[fmt.Sprint(sk)] = v // a NULL stat is no stat
			}
		}
		byName[unquoteIdent(fmt.Sprint(k))] = m
	}
	if schema == nil {
		return st
	}
	for _, f := range schema.Fields {
		s, ok := byName[f.Name]
		if !ok || !f.Type.IsPrimitive() {
			continue
		}
		if n, err := strconv.ParseInt(s["null_count"], 10, 64); err == nil {
			if st.NullCount == nil {
				st.NullCount = map[string]int64{}
			}
			st.NullCount[f.Name] = n
		}
		if s["has_nan"] == "true" {
			continue // NaN orders above every number: no bound holds it
		}
		lo, okLo := statValue(f.Type, s["min"], false)
		hi, okHi := statValue(f.Type, s["max"], true)
		_, hasLo := s["min"]
		_, hasHi := s["max"]
		if !hasLo || !hasHi || !okLo || !okHi {
			continue
		}
		if st.MinValues == nil {
			st.MinValues, st.MaxValues = map[string]json.RawMessage{}, map[string]json.RawMessage{}
		}
		st.MinValues[f.Name], st.MaxValues[f.Name] = lo, hi
	}
	return st
}

var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// duckTimeLayouts are the forms of DuckDB's text for TIMESTAMPTZ (its UTC
// offset in hours, or hours and minutes) and TIMESTAMP; a fraction of a
// second is accepted after the seconds by any of them.
var duckTimeLayouts = []string{"2006-01-02 15:04:05-07", "2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05-07:00:00"}

// statValue turns DuckDB's text of a column minimum or maximum (up) into
// the protocol's JSON value for a column of type t; false when the value
// cannot be written exactly (or as a safe bound), or the type has no
// statistics worth writing.
func statValue(t delta.DataType, text string, up bool) (json.RawMessage, bool) {
	switch t.Name {
	case delta.TypeString:
		if len(text) >= maxStatString || !utf8.ValidString(text) {
			return nil, false
		}
		b, err := json.Marshal(text)
		return b, err == nil
	case delta.TypeLong, delta.TypeInteger, delta.TypeShort, delta.TypeByte:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, false
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), true
	case delta.TypeFloat, delta.TypeDouble:
		bits := 64
		if t.Name == delta.TypeFloat {
			bits = 32
		}
		f, err := strconv.ParseFloat(text, bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return json.RawMessage(strconv.FormatFloat(f, 'g', -1, bits)), true
	case delta.TypeDate:
		if _, err := time.Parse(time.DateOnly, text); err != nil {
			return nil, false
		}
		return json.RawMessage(`"` + text + `"`), true
	case delta.TypeTimestamp:
		for _, l := range duckTimeLayouts {
			if ts, err := time.Parse(l, text); err == nil {
				return delta.StatTime(ts, up, false), true
			}
		}
		return nil, false
	case delta.TypeTimestampNTZ:
		ts, err := time.Parse(time.DateTime, text)
		if err != nil {
			return nil, false
		}
		return delta.StatTime(ts, up, true), true
	}
	if _, _, ok := t.Decimal(); ok && decimalText.MatchString(text) {
		return json.RawMessage(text), true
	}
	return nil, false
}

// mapEntries returns the keys and values of a MAP value as the DuckDB
// driver scans it (its ordered map type, reached through the two methods
// it has, as only the warehouse package imports the driver; or a Go map).
func mapEntries(v any) (keys, vals []any, ok bool) {
	type ordered interface {
		Keys() []any
		Values() []any
	}
	switch m := v.(type) {
	case nil:
		return nil, nil, false
	case ordered:
		return m.Keys(), m.Values(), true
	case map[any]any:
		for k, x := range m {
			keys, vals = append(keys, k), append(vals, x)
		}
		return keys, vals, true
	case map[string]any:
		for k, x := range m {
			keys, vals = append(keys, k), append(vals, x)
		}
		return keys, vals, true
	}
	// The driver's map has pointer methods and is scanned as a value.
	rv := reflect.ValueOf(v)
	p := reflect.New(rv.Type())
	p.Elem().Set(rv)
	if m, isMap := p.Interface().(ordered); isMap {
		return m.Keys(), m.Values(), true
	}
	return nil, nil, false
}

// unquoteIdent undoes DuckDB's quoting of a column name ("a""b" is a"b).
func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// bound is a value of a dedupe key column, ordered as DuckDB orders the
// column: a number (integers, decimals; dates as days and timestamps as
// microseconds since the epoch) or a string (bytewise).
type bound struct {
	num *big.Rat
	str string
}

// cmp orders a and b; bounds of different kinds (which one column's
// values never give) compare equal, so ranges holding them always meet.
func (a bound) cmp(b bound) int {
	switch {
	case a.num != nil && b.num != nil:
		return a.num.Cmp(b.num)
	case a.num == nil && b.num == nil:
		return strings.Compare(a.str, b.str)
	}
	return 0
}

// keyRange is what is known of one key column over a set of rows (a file,
// or the batch). When known is false nothing is: the rows may hold any
// value.
type keyRange struct {
	known  bool
	values bool  // some value is not NULL; lo and hi bound them
	lo, hi bound // inclusive
	nulls  bool  // some value may be NULL
}

// meets reports whether rows with ranges a and b may share a key value of
// the column, as IS NOT DISTINCT FROM compares (NULL matches NULL).
func (a keyRange) meets(b keyRange) bool {
	if !a.known || !b.known {
		return true
	}
	if a.nulls && b.nulls {
		return true
	}
	return a.values && b.values && a.lo.cmp(b.hi) <= 0 && b.lo.cmp(a.hi) <= 0
}

// prunable reports whether the values of a key column of type t can be
// bounded: integers, decimals, strings, dates and timestamps. Floating
// point keys are not (NaN and signed zeros make bounds unsafe), nor are
// booleans and binaries (no statistics).
func prunable(t delta.DataType) bool {
	switch t.Name {
	case delta.TypeString, delta.TypeLong, delta.TypeInteger, delta.TypeShort, delta.TypeByte,
		delta.TypeDate, delta.TypeTimestamp, delta.TypeTimestampNTZ:
		return true
	}
	_, _, ok := t.Decimal()
	return ok
}

// statBound reads a minimum or maximum (up) statistic of a column of type
// t as a bound. Other writers truncate timestamp maxima to milliseconds
// and string maxima to a prefix of 32 characters, so a timestamp maximum
// is raised by what truncation may have dropped, and a string maximum of
// 32 characters or more is not used.
func statBound(t delta.DataType, v json.RawMessage, up bool) (bound, bool) {
	switch t.Name {
	case delta.TypeString:
		s, err := delta.StatString(v)
		if err != nil || (up && utf8.RuneCountInString(s) >= 32) {
			return bound{}, false
		}
		return bound{str: s}, true
	case delta.TypeDate:
		s, err := delta.StatString(v)
		if err != nil {
			return bound{}, false
		}
		return dateBound(s)
	case delta.TypeTimestamp, delta.TypeTimestampNTZ:
		ts, err := delta.ParseStatTime(v)
		if err != nil {
			return bound{}, false
		}
		us := ts.UnixMicro()
		if up {
			us += 999
		}
		return bound{num: new(big.Rat).SetInt64(us)}, true
	}
	if !prunable(t) {
		return bound{}, false
	}
	s := strings.TrimSpace(string(v))
	if s == "" || s[0] == '"' {
		return bound{}, false
	}
	r, ok := new(big.Rat).SetString(s)
	return bound{num: r}, ok
}

// textBound reads a batch's minimum or maximum as keyRangesQuery selects
// it (timestamps as microseconds, dates and numbers as DuckDB's text).
func textBound(t delta.DataType, s string) (bound, bool) {
	switch t.Name {
	case delta.TypeString:
		return bound{str: s}, true
	case delta.TypeDate:
		return dateBound(s)
	}
	r, ok := new(big.Rat).SetString(s)
	return bound{num: r}, ok
}

func dateBound(s string) (bound, bool) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return bound{}, false
	}
	return bound{num: new(big.Rat).SetInt64(d.Unix() / 86400)}, true
}

// fileRange is what a file's statistics tell of key column col: nothing
// without bounds, unless the null count says every value is NULL.
func fileRange(st delta.FileStats, col string, t delta.DataType) keyRange {
	n, hasCount := st.NullCount[col]
	r := keyRange{nulls: !hasCount || n > 0}
	lo, okLo := st.MinValues[col]
	hi, okHi := st.MaxValues[col]
	if !okLo || !okHi {
		if hasCount && n == st.NumRecords {
			r.known = true // all NULL
		}
		return r
	}
	var ok1, ok2 bool
	r.lo, ok1 = statBound(t, lo, false)
	r.hi, ok2 = statBound(t, hi, true)
	r.known, r.values = ok1 && ok2, true
	return r
}

// addsRanges merges the key ranges of the files of a batch from their
// statistics; a column is unknown when any file lacks bounds for it.
func addsRanges(adds []delta.Add, types map[string]delta.DataType) map[string]keyRange {
	out := map[string]keyRange{}
	parsed := make([]delta.FileStats, 0, len(adds))
	for _, a := range adds {
		st, err := delta.ParseStats(a.Stats)
		if err != nil {
			return nil
		}
		parsed = append(parsed, st)
	}
	for col, t := range types {
		acc := keyRange{known: true}
		for _, st := range parsed {
			r := fileRange(st, col, t)
			if !r.known {
				acc.known = false
				break
			}
			acc.nulls = acc.nulls || r.nulls
			if !r.values {
				continue
			}
			if !acc.values {
				acc.values, acc.lo, acc.hi = true, r.lo, r.hi
				continue
			}
			if r.lo.cmp(acc.lo) < 0 {
				acc.lo = r.lo
			}
			if r.hi.cmp(acc.hi) > 0 {
				acc.hi = r.hi
			}
		}
		if acc.known {
			out[col] = acc
		}
	}
	return out
}

// mayMatch reports whether a file with stats (an add's stats string) may
// hold a key of a batch with key ranges batch: false only when, for some
// key column, the file's values and the batch's cannot meet. A file
// without statistics (or only a row count) may hold anything.
func mayMatch(stats string, batch map[string]keyRange, types map[string]delta.DataType) bool {
	if len(batch) == 0 {
		return true
	}
	st, err := cachedStats(stats) // statscache.go: parsed once, not per batch
	if err != nil {
		return true
	}
	for col, br := range batch {
		if !fileRange(st, col, types[col]).meets(br) {
			return false
		}
	}
	return true
}
