package maintenance

import (
	"encoding/json"
	"math/big"
	"strconv"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
)

// mergeStats is the statistics of a file holding exactly the rows of
// files: the row counts summed, per column the smallest minimum and the
// largest maximum, the null counts summed. A column gets bounds only when
// every input has them and they compare under the column's type; a column
// without bounds is never skipped by a reader, so dropping them is always
// safe. ok is false when an input has no row count.
func mergeStats(files []delta.Add, schema *delta.Schema) (delta.FileStats, bool) {
	out := delta.FileStats{}
	parsed := make([]delta.FileStats, len(files))
	for i, f := range files {
		st, err := delta.ParseStats(f.Stats)
		if err != nil {
			return out, false
		}
		parsed[i] = st
		out.NumRecords += st.NumRecords
	}
	if schema == nil {
		return out, true
	}
	for _, f := range schema.Fields {
		if n, ok := sumNulls(parsed, f.Name); ok {
			if out.NullCount == nil {
				out.NullCount = map[string]int64{}
			}
			out.NullCount[f.Name] = n
		}
		lo, hi, ok := bounds(parsed, f)
		if !ok {
			continue
		}
		if out.MinValues == nil {
			out.MinValues, out.MaxValues = map[string]json.RawMessage{}, map[string]json.RawMessage{}
		}
		out.MinValues[f.Name], out.MaxValues[f.Name] = lo, hi
	}
	return out, true
}

func sumNulls(stats []delta.FileStats, col string) (int64, bool) {
	var n int64
	for _, st := range stats {
		v, ok := st.NullCount[col]
		if !ok {
			return 0, false
		}
		n += v
	}
	return n, true
}

// bounds is the smallest minimum and largest maximum of column f over
// stats; false when an input lacks one or a value does not parse.
func bounds(stats []delta.FileStats, f delta.Field) (lo, hi json.RawMessage, ok bool) {
	for i, st := range stats {
		mn, okLo := st.MinValues[f.Name]
		mx, okHi := st.MaxValues[f.Name]
		if !okLo || !okHi {
			return nil, nil, false
		}
		if i == 0 {
			lo, hi = mn, mx
			continue
		}
		c1, ok1 := compareStat(f.Type, mn, lo)
		c2, ok2 := compareStat(f.Type, mx, hi)
		if !ok1 || !ok2 {
			return nil, nil, false
		}
		if c1 < 0 {
			lo = mn
		}
		if c2 > 0 {
			hi = mx
		}
	}
	return lo, hi, len(stats) > 0
}

// compareStat orders two statistic values of a column of type t; false
// when the type has no order known here or a value does not parse.
func compareStat(t delta.DataType, a, b json.RawMessage) (int, bool) {
	switch t.Name {
	case delta.TypeString, delta.TypeDate:
		// Strings compare bytewise (what Delta's string statistics mean);
		// dates are written as YYYY-MM-DD, which sorts as text.
		x, err1 := delta.StatString(a)
		y, err2 := delta.StatString(b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		if t.Name == delta.TypeDate && (!isDate(x) || !isDate(y)) {
			return 0, false
		}
		return cmpOrder(x < y, x > y), true
	case delta.TypeTimestamp, delta.TypeTimestampNTZ:
		x, err1 := delta.ParseStatTime(a)
		y, err2 := delta.ParseStatTime(b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return x.Compare(y), true
	case delta.TypeLong, delta.TypeInteger, delta.TypeShort, delta.TypeByte:
		x, err1 := strconv.ParseInt(string(a), 10, 64)
		y, err2 := strconv.ParseInt(string(b), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return cmpOrder(x < y, x > y), true
	}
	_, _, dec := t.Decimal()
	if t.Name == delta.TypeFloat || t.Name == delta.TypeDouble || dec {
		x, ok1 := new(big.Rat).SetString(string(a))
		y, ok2 := new(big.Rat).SetString(string(b))
		if !ok1 || !ok2 {
			return 0, false
		}
		return x.Cmp(y), true
	}
	return 0, false
}

func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func cmpOrder(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}
