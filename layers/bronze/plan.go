package bronze

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/warehouse"
)

// errSep separates the column from the reason in the _err value a typed
// query computes for a row that fails ("energy_usage\x1f\"abc\" is not a double").
const errSep = "\x1f"

// colPlan is how one declared column is read and typed.
type colPlan struct {
	col       *config.Column
	name      string // bronze name
	srcName   string // source field name (From, else Name)
	typ       string // normalized config type: string, int64, double, decimal(p,s), bool, timestamp, date
	sqlType   string // DuckDB type of the bronze column
	format    string // strptime format (timestamp/date with a layout)
	hasZone   bool   // format parses an offset or zone name
	tz        string // zone for naive timestamps
	trim      bool
	emptyNil  bool
	allowNaN  bool // double: NaN and infinities accepted (allow_nan)
	precision int  // decimal: digits in all
	scale     int  // decimal: digits after the point
}

// sourcePlan is everything the typed query needs about one source.
type sourcePlan struct {
	src      *config.Source
	cols     []colPlan
	derived  []*config.Derived
	partCol  string // bronze partition column; "" for an unpartitioned table
	partExpr string // SQL expression computing it when it is not a declared column ("" otherwise)
	partType string // DuckDB type of the partition column
	firstTS  string // first timestamp column (the default partition's source)
}

var decimalRE = regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// planSource validates a source for bronze and derives the plan.
func planSource(src *config.Source) (*sourcePlan, error) {
	sp := &sourcePlan{src: src, derived: src.Derive}
	seen := map[string]bool{}
	for _, c := range src.Schema {
		cp := colPlan{col: c, name: c.Name, srcName: c.Name, trim: true, emptyNil: true, tz: c.TZ, allowNaN: c.AllowNaN}
		if c.From != "" {
			cp.srcName = c.From
		}
		if seen[strings.ToLower(c.Name)] {
			return nil, fmt.Errorf("source %s column %s: declared twice", src.Name, c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		var err error
		if cp.typ, cp.sqlType, cp.precision, cp.scale, err = columnType(src.Name, c); err != nil {
			return nil, err
		}
		if c.Format != "" {
			if cp.typ != "timestamp" && cp.typ != "date" {
				return nil, fmt.Errorf("source %s column %s: format applies only to timestamp and date columns", src.Name, c.Name)
			}
			f, hasZone, err := GoLayoutToStrptime(c.Format)
			if err != nil {
				return nil, fmt.Errorf("source %s column %s: %w", src.Name, c.Name, err)
			}
			cp.format, cp.hasZone = f, hasZone
		}
		if cp.tz == "" {
			cp.tz = "UTC"
		}
		if c.Trim != nil {
			cp.trim = *c.Trim
		}
		if c.EmptyAsNull != nil {
			cp.emptyNil = *c.EmptyAsNull
		}
		if c.Regex != "" {
			if _, err := regexp.Compile(c.Regex); err != nil {
				return nil, fmt.Errorf("source %s column %s: regex: %w", src.Name, c.Name, err)
			}
		}
		if cp.typ == "timestamp" && sp.firstTS == "" {
			sp.firstTS = c.Name
		}
		sp.cols = append(sp.cols, cp)
	}
	if len(sp.cols) == 0 {
		return nil, fmt.Errorf("source %s: no schema columns", src.Name)
	}
	for _, d := range src.Derive {
		if seen[strings.ToLower(d.Name)] {
			return nil, fmt.Errorf("source %s derived column %s: name already used", src.Name, d.Name)
		}
		seen[strings.ToLower(d.Name)] = true
	}
	for _, k := range src.Dedupe {
		if !seen[strings.ToLower(k)] {
			return nil, fmt.Errorf("source %s dedupe: %q is not a column", src.Name, k)
		}
	}
	switch {
	case src.PartitionBy != "":
		if !seen[strings.ToLower(src.PartitionBy)] {
			return nil, fmt.Errorf("source %s partition_by: %q is not a column", src.Name, src.PartitionBy)
		}
		sp.partCol = src.PartitionBy
	case sp.firstTS != "":
		sp.partCol = "event_date"
		if seen["event_date"] {
			return nil, fmt.Errorf("source %s: a column named event_date hides the default partition column; set partition_by", src.Name)
		}
		sp.partExpr = utcDate(warehouse.QuoteIdent(sp.firstTS))
		sp.partType = "DATE"
	}
	return sp, nil
}

// utcDate is the SQL for the UTC date of a TIMESTAMPTZ expression. The
// floor division of its microseconds since the epoch is exact and costs a
// few integer operations, against an ICU calendar conversion a row for
// CAST(timezone('UTC', ts) AS DATE) (a tenth of the whole bronze write);
// infinite timestamps, which have no microseconds, keep the conversion.
func utcDate(ts string) string {
	us := "epoch_us(" + ts + ")"
	const day = "86400000000"
	return "CASE WHEN isfinite(" + ts + ") THEN DATE '1970-01-01' + CAST((" + us + " - (((" + us + " % " + day + ") + " + day + ") % " + day + ")) // " + day +
		" AS INTEGER) ELSE CAST(timezone('UTC', " + ts + ") AS DATE) END"
}

// typeName is how reasons name a type: "is not a double".
func (c colPlan) typeName() string {
	switch c.typ {
	case "int64":
		return "an int64"
	case "bool":
		return "a bool"
	}
	return "a " + c.typ
}

// valueExpr cleans a VARCHAR source value: trim and empty-to-null. trim
// (which copies every value) runs only for values that start or end with a
// space, the only character DuckDB's trim removes; the prefix and suffix
// tests cost next to nothing, and almost no value needs the copy.
// ascii(v) = 32 is starts_with(v, ' ') (the code of the first character;
// 0 for an empty one), a tenth cheaper over bench case 1's eleven columns.
func (c colPlan) valueExpr(v string) string {
	switch {
	case c.trim && c.emptyNil:
		return "CASE WHEN ascii(" + v + ") = 32 OR ends_with(" + v + ", ' ') OR " + v + " = '' THEN NULLIF(trim(" + v + "), '') ELSE " + v + " END"
	case c.trim:
		return "CASE WHEN ascii(" + v + ") = 32 OR ends_with(" + v + ", ' ') THEN trim(" + v + ") ELSE " + v + " END"
	case c.emptyNil:
		return "NULLIF(" + v + ", '')"
	}
	return v
}

// zoned is the TIMESTAMPTZ of ts, a finite naive TIMESTAMP read in the
// column's zone (as strptime and the typed readers' timestampformat
// make: never an infinity). In UTC it is the same microseconds, which
// make_timestamptz(epoch_us()) states in a few integer operations where
// timezone('UTC', ts) runs an ICU calendar conversion a row (about 0.1 of
// the 3.5 CPU seconds of bench case 1's typing statement at 2M rows), with
// the same value for every timestamp from year 1 to 9999
// (docs/bronze-profile.md). epoch_us of an infinity is NULL: ts must be
// finite.
func (c colPlan) zoned(ts string) string {
	if strings.EqualFold(c.tz, "UTC") {
		return "make_timestamptz(epoch_us(" + ts + "))"
	}
	return "timezone(" + warehouse.QuoteString(c.tz) + ", " + ts + ")"
}

// castExpr types a cleaned VARCHAR value; NULL when it does not parse.
func (c colPlan) castExpr(v string) string {
	switch c.typ {
	case "string":
		return v
	case "timestamp":
		if c.format != "" {
			parsed := "CASE WHEN " + specialTimeWord(v) + " THEN NULL ELSE try_strptime(" + v + ", " + warehouse.QuoteString(c.format) + ") END"
			if c.hasZone {
				return parsed
			}
			return c.zoned(parsed)
		}
		if strings.EqualFold(c.tz, "UTC") {
			return "TRY_CAST(" + v + " AS TIMESTAMPTZ)"
		}
		return "CASE WHEN regexp_matches(" + v + `, '(Z|z|[+-]\d\d(:?\d\d)?)$') THEN TRY_CAST(` + v + " AS TIMESTAMPTZ) ELSE timezone(" + warehouse.QuoteString(c.tz) + ", TRY_CAST(" + v + " AS TIMESTAMP)) END"
	case "date":
		if c.format != "" {
			return "CAST(CASE WHEN " + specialTimeWord(v) + " THEN NULL ELSE try_strptime(" + v + ", " + warehouse.QuoteString(c.format) + ") END AS DATE)"
		}
		return "TRY_CAST(" + v + " AS DATE)"
	case "int64":
		// DuckDB's cast rounds "1.5" to 2 and takes "1e3", "0x10" and
		// "1_000": only integer text is cast.
		return c.exactCast(v, intPattern)
	}
	if strings.HasPrefix(c.typ, "decimal") {
		// DuckDB's cast rounds extra decimal places: only text with at most
		// scale of them (trailing zeros aside) is cast.
		return c.exactCast(v, c.decimalPattern())
	}
	return "TRY_CAST(" + v + " AS " + c.sqlType + ")"
}

// specialTimeWord is the SQL condition that v is one of the words
// DuckDB's strptime answers 1900-01-01 00:00:00 for, whatever the format:
// infinity, -infinity and epoch, in any case, blanks around them (DuckDB
// 1.5; docs/bronze-csv-profile.md). Such a value is not a timestamp in
// the column's format: it is refused like any text the format does not
// parse. The first character's code rules out almost every value before
// the regex runs.
func specialTimeWord(v string) string {
	return "(ascii(" + v + ") IN (9, 10, 11, 12, 13, 32, 45, 69, 73, 101, 105) AND regexp_full_match(" + v + `, '(?i)[\s]*-?(infinity|epoch)[\s]*'))`
}

// isSpecialTimeWord is specialTimeWord for the text of a JSON string
// (the typed read's scan, typedFits).
func isSpecialTimeWord(b []byte) bool {
	b = bytes.TrimSpace(b)
	b = bytes.TrimPrefix(b, []byte("-"))
	return bytes.EqualFold(b, []byte("infinity")) || bytes.EqualFold(b, []byte("epoch"))
}

// exactCast casts v when it matches pattern, the text the type takes
// exactly. A value whose cast prints back as the same text is exact and
// needs no pattern match: the common case ("42", "565.63") costs a cast
// and a comparison (a third of what a regex on every value cost on bench
// case 1); only the others ("+5", "0.5", "1.5") run the regex.
func (c colPlan) exactCast(v, pattern string) string {
	cast := "TRY_CAST(" + v + " AS " + c.sqlType + ")"
	return "CASE WHEN " + cast + "::VARCHAR = " + v + " OR regexp_full_match(" + v + ", '" + pattern + "') THEN " + cast + " END"
}

// intPattern is the text an int64 column takes: optional sign, digits.
const intPattern = `[+-]?[0-9]+`

// numberPattern is plain decimal notation, any number of places.
const numberPattern = `[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)`

// nonFinitePattern is the NaN and infinity spellings DuckDB's DOUBLE cast
// takes.
const nonFinitePattern = `(?i)[+-]?(nan|inf|infinity)`

// decimalPattern is the text a decimal column takes: plain notation with
// at most scale places after the point, not counting trailing zeros.
func (c colPlan) decimalPattern() string {
	return fmt.Sprintf(`[+-]?([0-9]+(\.[0-9]{0,%d}0*)?|\.[0-9]{0,%d}0*)`, c.scale, c.scale)
}

// badValueReason is the SQL for the reason a non-NULL cleaned value raw
// did not type: the exactness rules get their own words (evaluated only
// for the failing rows).
func (c colPlan) badValueReason(raw string) string {
	q := "to_json(" + raw + ")::VARCHAR || "
	switch {
	case c.typ == "int64":
		return "CASE WHEN regexp_full_match(" + raw + ", '" + intPattern + "') THEN " + q + "' is out of range for int64' ELSE " + q + "' is not an integer' END"
	case strings.HasPrefix(c.typ, "decimal"):
		return "CASE WHEN NOT regexp_full_match(" + raw + ", '" + numberPattern + "') THEN " + q + warehouse.QuoteString(" is not a "+c.typ) +
			" WHEN regexp_full_match(" + raw + ", '" + c.decimalPattern() + "') THEN " + q + warehouse.QuoteString(" is too large for "+c.typ) +
			" ELSE " + q + warehouse.QuoteString(fmt.Sprintf(" does not fit %s without rounding (more than %d decimal places)", c.typ, c.scale)) + " END"
	}
	return q + warehouse.QuoteString(" is not "+c.typeName()+c.wantText())
}

// nonFiniteCheck returns the condition and reason refusing a double that
// is not finite: NaN and infinities unless allow_nan, and always a number
// too large for a double (DuckDB casts "1e309" to infinity).
func (c colPlan) nonFiniteCheck(raw, t string) (string, string) {
	cond := t + " IS NOT NULL AND NOT isfinite(" + t + ")"
	if raw == "" {
		return cond, t + "::VARCHAR || ' is not a finite double'"
	}
	spelled := "regexp_full_match(" + raw + ", '" + nonFinitePattern + "')"
	if c.allowNaN {
		cond += " AND NOT " + spelled
	}
	q := "to_json(" + raw + ")::VARCHAR || "
	return cond, "CASE WHEN " + spelled + " THEN " + q + "' is not a finite double (allow_nan: true accepts NaN and infinities)' ELSE " + q + "' is too large for a double' END"
}

// literalGuard is the SQL condition that a JSON value's text may come from
// a bare NaN or Infinity literal, which DuckDB's JSON reader takes although
// JSON has none: the fast path cannot tell the literal from a string of the
// same text, so such a value sends the batch to the precise path, which
// reads the line itself (jsonLiterals).
func literalGuard(v string) string {
	// The first character's code (+ - I N i n, or { [) rules out almost
	// every value before any string function runs.
	return "(ascii(" + v + ") IN (43, 45, 73, 78, 105, 110, 123, 91) AND ((strlen(" + v + ") <= 9 AND regexp_full_match(" + v + ", '" + nonFinitePattern + "')) OR ((starts_with(" + v + ", '{') OR starts_with(" + v + ", '[')) AND regexp_matches(" + v + ", '(?i)nan|inf'))))"
}

// wantText describes the expected text in a reason: "(want 2006-01-02 15:04:05)".
func (c colPlan) wantText() string {
	if (c.typ == "timestamp" || c.typ == "date") && c.col.Format != "" {
		return " (want " + c.col.Format + ")"
	}
	return ""
}

// ruleChecks returns the CASE branches that reject a row for this column,
// given the raw (VARCHAR, cleaned) expression raw ("" when the source value
// arrives typed) and the typed expression t. missing says the source has no
// such field at all.
func (c colPlan) ruleChecks(raw, t string, missing bool) []string {
	var out []string
	name := c.name
	fail := func(cond, reason string) {
		out = append(out, "WHEN "+cond+" THEN "+warehouse.QuoteString(name+errSep)+" || "+reason)
	}
	if raw != "" && c.typ != "string" {
		fail(raw+" IS NOT NULL AND "+t+" IS NULL", c.badValueReason(raw))
	}
	if c.typ == "double" {
		fail(c.nonFiniteCheck(raw, t))
	}
	if c.col.Required {
		if missing {
			fail(t+" IS NULL", warehouse.QuoteString("required field "+c.srcName+" is missing from the input"))
		} else {
			fail(t+" IS NULL", warehouse.QuoteString("required value is empty or missing"))
		}
	}
	if c.col.Min != nil {
		fail(t+" < "+num(*c.col.Min), t+"::VARCHAR || "+warehouse.QuoteString(" is below the minimum "+num(*c.col.Min)))
	}
	if c.col.Max != nil {
		fail(t+" > "+num(*c.col.Max), t+"::VARCHAR || "+warehouse.QuoteString(" is above the maximum "+num(*c.col.Max)))
	}
	if c.col.Regex != "" {
		fail("NOT regexp_full_match("+t+"::VARCHAR, "+warehouse.QuoteString(c.col.Regex)+")", "to_json("+t+"::VARCHAR)::VARCHAR || "+warehouse.QuoteString(" does not match "+c.col.Regex))
	}
	if len(c.col.Accepted) > 0 {
		var vals []string
		for _, a := range c.col.Accepted {
			vals = append(vals, warehouse.QuoteString(strings.TrimSpace(a)))
		}
		fail("trim("+t+"::VARCHAR) NOT IN ("+strings.Join(vals, ", ")+")", "to_json("+t+"::VARCHAR)::VARCHAR || "+warehouse.QuoteString(" is not one of "+strings.Join(c.col.Accepted, ", ")))
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// normName is how source names are matched: trimmed, case-folded.
func normName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// decimalSources maps the normalised source names of the decimal columns
// to their bronze names (nil when there are none).
func (sp *sourcePlan) decimalSources() map[string]string {
	var m map[string]string
	for _, c := range sp.cols {
		if strings.HasPrefix(c.typ, "decimal") {
			if m == nil {
				m = map[string]string{}
			}
			m[normName(c.srcName)] = c.name
		}
	}
	return m
}
