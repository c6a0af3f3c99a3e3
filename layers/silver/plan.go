package silver

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/warehouse"
)

// Functions a silver aggregate may use.
const (
	fnCount       = "count"
	fnCountIf     = "count_if"
	fnSum         = "sum"
	fnMin         = "min"
	fnMax         = "max"
	fnAvg         = "avg"
	fnApproxCount = "approx_count_distinct"
)

// Names of the columns every silver table starts with.
const (
	colWindowStart = "window_start"
	colWindowEnd   = "window_end"
)

// spec is one silver table, checked and ready to be turned into SQL.
type spec struct {
	line      int    // of the table's name in the pipeline file
	name      string // silver table name
	from      string // bronze source name
	eventTime string // event-time column of the bronze table
	size      int64  // window size, microseconds
	slide     int64  // window slide, microseconds (= size for tumbling windows)
	delay     int64  // watermark delay, microseconds
	update    bool   // output: update (true) or append (false)
	groupBy   []string
	aggs      []*agg
}

// agg is one aggregate with the SQL types it needs; typ is filled in once the
// type of the argument is known (see setArgType).
type agg struct {
	name string // output column
	fn   string // one of the fn constants
	arg  string // argument expression; "*" for count(*)
	line int
	col  int // of the name in the pipeline file

	argType string // DuckDB type of the argument, once known
	sumType string // DuckDB type of partial sums (sum, avg)
}

// aggArg is the column of the input relation that holds the argument of
// aggregate i, evaluated per bronze row.
func aggArg(i int) string { return fmt.Sprintf("__a%d", i) }

// partial columns of aggregate i in the state relation.
func partCol(i int) string  { return fmt.Sprintf("__p%d", i) }
func partCnt(i int) string  { return fmt.Sprintf("__p%d_n", i) }
func (a *agg) hasArg() bool { return !(a.fn == fnCount && a.arg == "*") }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// newSpec checks a silver table of the pipeline file and converts its
// durations to microseconds. Errors name the table and the field. It is
// over 80 lines on purpose: one flat list of checks in field order.
func newSpec(s *config.Silver) (*spec, error) {
	where := "silver." + s.Name
	if s.From == "" {
		return nil, fmt.Errorf("%s: from: no bronze table given", where)
	}
	if s.EventTime == "" {
		return nil, fmt.Errorf("%s: event_time: no column given", where)
	}
	if s.Size <= 0 {
		return nil, fmt.Errorf("%s: window.size: %v must be positive", where, s.Size)
	}
	if s.Size%1000 != 0 || s.Slide%1000 != 0 || s.Watermark%1000 != 0 {
		return nil, fmt.Errorf("%s: window size, slide and watermark must be whole microseconds", where)
	}
	if s.Slide < 0 {
		return nil, fmt.Errorf("%s: window.slide: %v must not be negative", where, s.Slide)
	}
	if s.Slide > s.Size {
		return nil, fmt.Errorf("%s: window.slide: %v is longer than window.size %v (rows between windows would be lost)", where, s.Slide, s.Size)
	}
	if s.Watermark < 0 {
		return nil, fmt.Errorf("%s: watermark: %v must not be negative", where, s.Watermark)
	}
	sp := &spec{line: s.Line,
		name:      s.Name,
		from:      s.From,
		eventTime: s.EventTime,
		size:      s.Size.Microseconds(),
		slide:     s.Slide.Microseconds(),
		delay:     s.Watermark.Microseconds(),
		groupBy:   s.GroupBy,
	}
	if sp.slide == 0 {
		sp.slide = sp.size
	}
	switch s.Output {
	case "", "append":
	case "update":
		sp.update = true
	default:
		return nil, fmt.Errorf("%s: output: %q is not append or update", where, s.Output)
	}
	seen := map[string]string{colWindowStart: "a window column", colWindowEnd: "a window column"}
	for _, g := range s.GroupBy {
		if !identRE.MatchString(g) {
			return nil, fmt.Errorf("%s: group_by: %q is not a column name", where, g)
		}
		if what, dup := seen[strings.ToLower(g)]; dup {
			return nil, fmt.Errorf("%s: group_by: %q is already %s", where, g, what)
		}
		seen[strings.ToLower(g)] = "a group_by column"
	}
	if len(s.Aggregates) == 0 {
		return nil, fmt.Errorf("%s: aggregates: none given", where)
	}
	for _, a := range s.Aggregates {
		aw := fmt.Sprintf("%s: aggregates: %s", where, a.Name)
		if a.Line > 0 {
			aw = fmt.Sprintf("%s (line %d)", aw, a.Line)
		}
		if !identRE.MatchString(a.Name) || strings.HasPrefix(a.Name, "__") {
			return nil, fmt.Errorf("%s: %q is not a valid column name", aw, a.Name)
		}
		if what, dup := seen[strings.ToLower(a.Name)]; dup {
			return nil, fmt.Errorf("%s: the name is already %s", aw, what)
		}
		seen[strings.ToLower(a.Name)] = "an aggregate"
		fn, arg := strings.ToLower(strings.TrimSpace(a.Func)), strings.TrimSpace(a.Arg)
		if fn == "" {
			fn, arg = parseCall(a.Expr)
		}
		switch fn {
		case fnCount, fnCountIf, fnSum, fnMin, fnMax, fnAvg, fnApproxCount:
		default:
			return nil, fmt.Errorf("%s: %q: unknown function %q (want count, sum, min, max, avg, count_if or approx_count_distinct)", aw, a.Expr, fn)
		}
		if arg == "" {
			return nil, fmt.Errorf("%s: %q: %s needs an argument", aw, a.Expr, fn)
		}
		if arg == "*" && fn != fnCount {
			return nil, fmt.Errorf("%s: %q: only count takes *", aw, a.Expr)
		}
		sp.aggs = append(sp.aggs, &agg{name: a.Name, fn: fn, arg: arg, line: a.Line, col: a.Col})
	}
	return sp, nil
}

// parseCall splits "fn(arg)" (used when the loader left Func empty).
func parseCall(expr string) (fn, arg string) {
	expr = strings.TrimSpace(expr)
	open := strings.IndexByte(expr, '(')
	if open < 0 || !strings.HasSuffix(expr, ")") {
		return "", ""
	}
	return strings.ToLower(strings.TrimSpace(expr[:open])), strings.TrimSpace(expr[open+1 : len(expr)-1])
}

// fingerprint identifies what the state and the output depend on. A change
// of any of these makes the stored state and the rows written so far
// meaningless, so Run refuses to continue. The watermark delay is not part
// of it: changing it is allowed (the watermark still never goes back).
func (s *spec) fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v1;from=%s;event_time=%s;size=%d;slide=%d;update=%t;group_by=%s",
		s.from, s.eventTime, s.size, s.slide, s.update, strings.Join(s.groupBy, ","))
	for _, a := range s.aggs {
		fmt.Fprintf(&b, ";%s=%s(%s)", a.name, a.fn, a.arg)
	}
	return b.String()
}

// setArgType records the DuckDB type of an aggregate's argument and checks
// that the function accepts it.
func (a *agg) setArgType(table, typ string) error {
	a.argType = typ
	if !a.hasArg() {
		return nil
	}
	bad := func(want string) error {
		return fmt.Errorf("silver.%s: aggregates: %s: %s(%s): the argument is %s, want %s", table, a.name, a.fn, a.arg, typ, want)
	}
	switch a.fn {
	case fnCountIf:
		if typ != "BOOLEAN" {
			return bad("a boolean condition")
		}
	case fnSum, fnAvg:
		switch {
		case isIntegerType(typ):
			a.sumType = "BIGINT"
		case strings.HasPrefix(typ, "DECIMAL("):
			_, sc, _ := strings.Cut(strings.TrimSuffix(typ, ")"), ",")
			a.sumType = "DECIMAL(38," + strings.TrimSpace(sc) + ")"
		case typ == "DOUBLE" || typ == "FLOAT":
			a.sumType = "DOUBLE"
		default:
			return bad("a number")
		}
	case fnMin, fnMax, fnApproxCount:
		if strings.HasSuffix(typ, "[]") || strings.HasPrefix(typ, "STRUCT") || strings.HasPrefix(typ, "MAP") {
			return bad("a plain value")
		}
	}
	return nil
}

func isIntegerType(t string) bool {
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT":
		return true
	}
	return false
}

// partials are the SELECT expressions that fold the input pairs of one
// window and group into partial aggregates.
func (s *spec) partials() []string {
	var out []string
	for i, a := range s.aggs {
		x := aggArg(i)
		p := warehouse.QuoteIdent(partCol(i))
		switch a.fn {
		case fnCount:
			if a.hasArg() {
				out = append(out, fmt.Sprintf("count(%s) AS %s", x, p))
			} else {
				out = append(out, "count(*) AS "+p)
			}
		case fnCountIf:
			out = append(out, fmt.Sprintf("count_if(%s) AS %s", x, p))
		case fnSum:
			out = append(out, fmt.Sprintf("CAST(sum(%s) AS %s) AS %s", x, a.sumType, p))
		case fnMin, fnMax:
			out = append(out, fmt.Sprintf("%s(%s) AS %s", a.fn, x, p))
		case fnAvg:
			out = append(out,
				fmt.Sprintf("CAST(sum(%s) AS %s) AS %s", x, a.sumType, p),
				fmt.Sprintf("count(%s) AS %s", x, warehouse.QuoteIdent(partCnt(i))))
		case fnApproxCount:
			out = append(out, fmt.Sprintf("list_distinct(list(%s)) AS %s", x, p))
		}
	}
	return out
}

// merges are the SELECT expressions that combine partial aggregates of the
// same window and group (from the state and from this batch).
func (s *spec) merges() []string {
	var out []string
	for i, a := range s.aggs {
		p := warehouse.QuoteIdent(partCol(i))
		switch a.fn {
		case fnCount, fnCountIf:
			out = append(out, fmt.Sprintf("CAST(sum(%s) AS BIGINT) AS %s", p, p))
		case fnSum:
			out = append(out, fmt.Sprintf("CAST(sum(%s) AS %s) AS %s", p, a.sumType, p))
		case fnMin, fnMax:
			out = append(out, fmt.Sprintf("%s(%s) AS %s", a.fn, p, p))
		case fnAvg:
			n := warehouse.QuoteIdent(partCnt(i))
			out = append(out,
				fmt.Sprintf("CAST(sum(%s) AS %s) AS %s", p, a.sumType, p),
				fmt.Sprintf("CAST(sum(%s) AS BIGINT) AS %s", n, n))
		case fnApproxCount:
			out = append(out, fmt.Sprintf("list_distinct(flatten(list(%s))) AS %s", p, p))
		}
	}
	return out
}

// finals turn merged partial aggregates into the output columns.
func (s *spec) finals() []string {
	var out []string
	for i, a := range s.aggs {
		p := warehouse.QuoteIdent(partCol(i))
		name := warehouse.QuoteIdent(a.name)
		switch a.fn {
		case fnCount, fnCountIf:
			out = append(out, fmt.Sprintf("CAST(%s AS BIGINT) AS %s", p, name))
		case fnSum, fnMin, fnMax:
			out = append(out, fmt.Sprintf("%s AS %s", p, name))
		case fnAvg:
			out = append(out, fmt.Sprintf("CASE WHEN %s > 0 THEN CAST(%s AS DOUBLE) / %s END AS %s", warehouse.QuoteIdent(partCnt(i)), p, warehouse.QuoteIdent(partCnt(i)), name))
		case fnApproxCount:
			out = append(out, fmt.Sprintf("CAST(len(%s) AS BIGINT) AS %s", p, name))
		}
	}
	return out
}

// groupCols are the quoted group-by columns.
func (s *spec) groupCols() []string {
	out := make([]string, len(s.groupBy))
	for i, g := range s.groupBy {
		out[i] = warehouse.QuoteIdent(g)
	}
	return out
}

// keyCols are the columns that identify one state row: the window start in
// microseconds and the group-by columns.
func (s *spec) keyCols() string {
	return strings.Join(append([]string{"__ws"}, s.groupCols()...), ", ")
}

// floorTo is the SQL of x rounded down to a multiple of step, also for
// times before 1970 (SQL % keeps the sign of x).
func floorTo(x string, step int64) string {
	return fmt.Sprintf("((%s) - ((((%s) %% %d) + %d) %% %d))", x, x, step, step, step)
}

// windowStarts is the SQL list of the starts of every window holding the
// event time __t (microseconds): s = k*slide with s <= t < s+size.
func (s *spec) windowStarts() string {
	first := fmt.Sprintf("(%s + %d)", floorTo(fmt.Sprintf("__t - %d", s.size), s.slide), s.slide)
	last := floorTo("__t", s.slide)
	return fmt.Sprintf("range(%s, %s + 1, CAST(%d AS BIGINT))", first, last, s.slide)
}

// pairs is a SELECT of every (row, window) pair of the rows of rel that
// match where (none when empty): the row's columns plus the window start
// __ws and end __we. A tumbling window (slide = size) is one per row,
// computed arithmetically; hopping windows unnest the list of starts. Rows
// without an event time have no window.
func (s *spec) pairs(rel, where string) string {
	cond := "__t IS NOT NULL"
	if where != "" {
		cond += " AND " + where
	}
	if s.slide == s.size {
		return fmt.Sprintf("SELECT *, %s AS __ws, %s + %d AS __we FROM %s WHERE %s", floorTo("__t", s.size), floorTo("__t", s.size), s.size, rel, cond)
	}
	return fmt.Sprintf("SELECT *, __ws + %d AS __we FROM (SELECT *, unnest(%s) AS __ws FROM %s WHERE %s)", s.size, s.windowStarts(), rel, cond)
}

// mentions reports whether column col may be used by the event time, the
// group or an aggregate argument: a case-insensitive match of the name as a
// word. A false match only costs a join.
func (s *spec) mentions(col string) bool {
	re, err := regexp.Compile(`(?i)(^|[^A-Za-z0-9_])` + regexp.QuoteMeta(col) + `($|[^A-Za-z0-9_])`)
	if err != nil {
		return true
	}
	texts := append([]string{s.eventTime}, s.groupBy...)
	for _, a := range s.aggs {
		texts = append(texts, a.arg)
	}
	for _, t := range texts {
		if re.MatchString(t) {
			return true
		}
	}
	return false
}

// tsFromMicros is the SQL TIMESTAMPTZ of a microsecond epoch expression,
// independent of the session's TimeZone.
func tsFromMicros(x string) string {
	return fmt.Sprintf("timezone('UTC', make_timestamp(CAST(%s AS BIGINT)))", x)
}

// literalList is a SQL list of string literals.
func literalList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = warehouse.QuoteString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
