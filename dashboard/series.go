package dashboard

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/warehouse"
)

// Bounds of a series answer. A chart asks for one bucket per pixel of its
// plot (width); each bucket sends at most its minimum and its maximum (so a
// one-row spike survives any zoom level) plus its flagged rows, so the
// answer's size depends on the width and the groups, never on the rows.
const (
	defaultWidth = 600
	// firstChartWidth is the buckets of the chart drawn on the server (the
	// page without script, and the first paint): the script then asks for
	// one bucket per two pixels of the plot it has.
	firstChartWidth = 400
	maxWidth        = 2000
	minWidth        = 10
	maxTop          = 50   // groups in one answer ("all" included)
	maxFlagged      = 2000 // flagged points in one answer
	maxGroupList    = 1000 // group names offered to the picker
)

// seriesRanges are the ?range= values: the last span of data, ending at
// the newest row (not at the clock: a lake filled from an old export
// still shows its last 15 minutes).
var seriesRanges = map[string]time.Duration{
	"15m": 15 * time.Minute, "1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
}

// groupRanks order the groups for ?top=N: by their newest row (the
// default, as the chart always did), their largest value, mean or rows.
var groupRanks = map[string]string{
	"recent": "max(__t) DESC",
	"max":    "max(__v) DESC",
	"mean":   "avg(__v) DESC",
	"rows":   "count(*) DESC",
}

// seriesQuery is a parsed series request.
type seriesQuery struct {
	timeCol string
	measure string
	rng     string // "all" or a seriesRanges key
	from    *time.Time
	to      *time.Time
	width   int
	groups  []string // explicit groups; nil: the top ones
	top     int
	rank    string
}

// errBadParam is a query parameter the series API cannot use.
type errBadParam struct{ msg string }

func (e errBadParam) Error() string { return e.msg }

// parseSeriesQuery reads ?time=, ?measure=, ?range=, ?from=, ?to=,
// ?width=, ?groups=, ?top= and ?rank=.
func parseSeriesQuery(ti *tableInfo, q url.Values) (*seriesQuery, error) {
	sq := &seriesQuery{timeCol: ti.timeCol, rng: "all", width: defaultWidth, top: maxGroups, rank: "recent"}
	if c := q.Get("time"); c != "" {
		if !slices.Contains(ti.timeCols, c) {
			return nil, errBadParam{fmt.Sprintf("time %q is not a timestamp column of %s: want one of %s", c, ti.ref, strings.Join(ti.timeCols, ", "))}
		}
		sq.timeCol = c
	}
	m, err := pickMeasure(ti, q.Get("measure"))
	if err == nil && m == "" {
		err = errBadMeasure{table: ti.ref.String()}
	}
	if err != nil {
		return nil, err
	}
	sq.measure = m
	if r := q.Get("range"); r != "" {
		if _, ok := seriesRanges[r]; !ok && r != "all" {
			return nil, errBadParam{fmt.Sprintf("range %q: want 15m, 1h, 24h, 7d or all", r)}
		}
		sq.rng = r
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"from", &sq.from}, {"to", &sq.to}} {
		if s := q.Get(p.name); s != "" {
			t, err := parseInstant(s)
			if err != nil {
				return nil, errBadParam{fmt.Sprintf("%s %q: want RFC 3339 or Unix milliseconds", p.name, s)}
			}
			*p.dst = &t
		}
	}
	if s := q.Get("width"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, errBadParam{fmt.Sprintf("width %q: want a positive number of pixels", s)}
		}
		sq.width = min(max(n, minWidth), maxWidth)
	}
	if s := q.Get("groups"); s != "" {
		for _, g := range strings.Split(s, ",") {
			if g = strings.TrimSpace(g); g != "" && !slices.Contains(sq.groups, g) {
				sq.groups = append(sq.groups, g)
			}
		}
		if len(sq.groups) > maxTop {
			sq.groups = sq.groups[:maxTop]
		}
	}
	if s := q.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case s == "all":
			sq.top = maxTop
		case err != nil || n < 1:
			return nil, errBadParam{fmt.Sprintf("top %q: want a positive number or all", s)}
		default:
			sq.top = min(n, maxTop)
		}
	}
	if s := q.Get("rank"); s != "" {
		if _, ok := groupRanks[s]; !ok {
			return nil, errBadParam{fmt.Sprintf("rank %q: want recent, max, mean or rows", s)}
		}
		sq.rank = s
	}
	return sq, nil
}

func parseInstant(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// seriesData is the JSON of /api/tables/{table}/series.
type seriesData struct {
	Table       string        `json:"table"`
	Version     int64         `json:"version"`
	TimeColumn  string        `json:"time_column"`
	TimeColumns []string      `json:"time_columns"`
	Measure     string        `json:"measure"`
	Unit        string        `json:"unit,omitempty"` // the measure's declared unit
	Range       string        `json:"range"`
	From        string        `json:"from,omitempty"` // the range drawn, RFC 3339
	To          string        `json:"to,omitempty"`
	Width       int           `json:"width"`
	BucketMS    int64         `json:"bucket_ms"` // one bucket's span
	Rows        int64         `json:"rows"`      // rows of the drawn groups in the range, before downsampling
	GroupBy     []string      `json:"group_by"`
	GroupNames  []string      `json:"group_names"` // every group (up to maxGroupList), for the picker
	Rank        string        `json:"rank"`
	Flags       []string      `json:"flags"`
	Groups      []seriesGroup `json:"groups"`

	from, to time.Time
}

type seriesGroup struct {
	Group  string        `json:"group"`
	Points []seriesPoint `json:"points"`
}

type seriesPoint struct {
	T       string   `json:"t"` // RFC 3339, milliseconds
	V       float64  `json:"v"`
	Flagged bool     `json:"flagged,omitempty"`
	Gap     bool     `json:"gap,omitempty"`   // no line from the previous point: data is missing between
	Why     []string `json:"flags,omitempty"` // the flags that are set

	t time.Time
}

// seriesBase selects every plottable row as (__g, __t, __ms, __v, __f0..).
func seriesBase(ti *tableInfo, sq *seriesQuery) string {
	group := "'all'"
	if len(ti.groupBy) > 0 {
		var parts []string
		for _, g := range ti.groupBy {
			parts = append(parts, "coalesce(CAST("+warehouse.QuoteIdent(g)+" AS VARCHAR), '∅')")
		}
		group = "concat_ws(' / ', " + strings.Join(parts, ", ") + ")"
		if len(parts) == 1 {
			group = parts[0]
		}
	}
	var flagSel string
	for i, f := range ti.flags {
		flagSel += fmt.Sprintf(", %s AS __f%d", flagExpr(ti, f), i)
	}
	t, m := warehouse.QuoteIdent(sq.timeCol), warehouse.QuoteIdent(sq.measure)
	return fmt.Sprintf(`SELECT %s AS __g, CAST(%s AS TIMESTAMPTZ) AS __t, epoch_ms(CAST(%s AS TIMESTAMPTZ)) AS __ms, CAST(%s AS DOUBLE) AS __v%s
  FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL AND isfinite(CAST(%s AS DOUBLE))`,
		group, t, t, m, flagSel, view(ti.ref), t, m, m)
}

// flagExpr is a flag column as a boolean: booleans as they are, numbers
// (flag_* columns) true when not zero.
func flagExpr(ti *tableInfo, col string) string {
	c := warehouse.QuoteIdent(col)
	if f, ok := ti.schema.Field(col); ok && f.Type.IsNumeric() {
		return "coalesce(CAST(" + c + " AS DOUBLE) <> 0, false)"
	}
	return "coalesce(CAST(" + c + " AS BOOLEAN), false)"
}

// readSeries reads the chart of sq: the range, the groups, then each
// group's min and max per bucket and its flagged rows.
func readSeries(ctx context.Context, db *sql.DB, ti *tableInfo, sq *seriesQuery) (*seriesData, error) {
	sd := &seriesData{
		Table: ti.ref.String(), TimeColumn: sq.timeCol, TimeColumns: ti.timeCols, Measure: sq.measure, Unit: ti.units[sq.measure],
		Range: sq.rng, Width: sq.width, GroupBy: ti.groupBy, Rank: sq.rank, Flags: ti.flags,
		Groups: []seriesGroup{}, GroupNames: []string{},
	}
	if sd.Flags == nil {
		sd.Flags = []string{}
	}
	if sd.GroupBy == nil {
		sd.GroupBy = []string{}
	}
	wrap := func(err error) error { return fmt.Errorf("series of %s over %s: %w", sq.measure, sq.timeCol, err) }
	base := seriesBase(ti, sq)
	lo, hi, err := readGroupStats(ctx, db, base, sd)
	if err != nil {
		return nil, wrap(err)
	}
	if lo == nil {
		return sd, nil
	}
	from, to := seriesRange(*lo, *hi, sq)
	sd.from, sd.to = from, to
	sd.From, sd.To = from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano)
	span := max(to.UnixMilli()-from.UnixMilli(), 1)
	sd.BucketMS = max((span+int64(sq.width)-1)/int64(sq.width), 1)

	inRange := fmt.Sprintf("SELECT * FROM (%s) WHERE __ms BETWEEN %d AND %d", base, from.UnixMilli(), to.UnixMilli())
	if err := readBuckets(ctx, db, ti, sq, sd, inRange, from.UnixMilli(), span); err != nil {
		return nil, wrap(err)
	}
	for i := range sd.Groups {
		markGaps(sd.Groups[i].Points, sd.BucketMS)
	}
	return sd, nil
}

// readGroupStats lists every group (for the picker, up to maxGroupList)
// and returns the first and last time of the data (nil: no rows), in one
// scan.
func readGroupStats(ctx context.Context, db *sql.DB, base string, sd *seriesData) (lo, hi *time.Time, err error) {
	rows, err := db.QueryContext(ctx, "SELECT __g, min(__ms), max(__ms) FROM ("+base+") GROUP BY __g ORDER BY __g")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var first, last int64
	n := 0
	for rows.Next() {
		var g string
		var a, b int64
		if err := rows.Scan(&g, &a, &b); err != nil {
			return nil, nil, err
		}
		if n == 0 {
			first, last = a, b
		}
		first, last = min(first, a), max(last, b)
		if n < maxGroupList {
			sd.GroupNames = append(sd.GroupNames, g)
		}
		n++
	}
	if err := rows.Err(); err != nil || n == 0 {
		return nil, nil, err
	}
	f, l := time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	return &f, &l, nil
}

// seriesRange is the range drawn: ?from/?to, else the last ?range of the
// data, else all of it.
func seriesRange(lo, hi time.Time, sq *seriesQuery) (from, to time.Time) {
	from, to = lo, hi
	if d, ok := seriesRanges[sq.rng]; ok {
		from = to.Add(-d)
	}
	if sq.from != nil {
		from = sq.from.UTC()
	}
	if sq.to != nil {
		to = sq.to.UTC()
	}
	if !to.After(from) {
		to = from.Add(time.Millisecond)
	}
	return from, to
}

// bucketsSQL selects, per group and bucket, the row with the smallest and
// the row with the largest value, and (up to maxFlagged) every flagged row.
func bucketsSQL(ti *tableInfo, sq *seriesQuery, inRange string, from, span int64) string {
	var pick string
	if len(sq.groups) > 0 {
		var lits []string
		for _, g := range sq.groups {
			lits = append(lits, warehouse.QuoteString(g))
		}
		pick = "SELECT unnest([" + strings.Join(lits, ", ") + "]) AS __g"
	} else {
		pick = fmt.Sprintf("SELECT __g FROM r GROUP BY __g ORDER BY %s, __g LIMIT %d", groupRanks[sq.rank], sq.top)
	}
	var flagCols, noFlags, anyFlag []string
	for i := range ti.flags {
		flagCols = append(flagCols, fmt.Sprintf("__f%d", i))
		noFlags = append(noFlags, fmt.Sprintf("false AS __f%d", i))
		anyFlag = append(anyFlag, fmt.Sprintf("__f%d", i))
	}
	fc, nf := "", ""
	if len(flagCols) > 0 {
		fc, nf = ", "+strings.Join(flagCols, ", "), ", "+strings.Join(noFlags, ", ")
	}
	flagged := ""
	if len(anyFlag) > 0 {
		flagged = fmt.Sprintf("\nUNION ALL (SELECT __g, __ms, __v, 0%s FROM b WHERE %s ORDER BY __ms DESC LIMIT %d)",
			fc, strings.Join(anyFlag, " OR "), maxFlagged)
	}
	return fmt.Sprintf(`WITH r AS (%s),
g AS (%s),
b AS (SELECT r.*, least(%d, (r.__ms - %d) * %d // %d) AS __b FROM r WHERE r.__g IN (SELECT __g FROM g)),
a AS (SELECT __g, __b, min(__v) AS vlo, arg_min(__ms, __v) AS tlo, max(__v) AS vhi, arg_max(__ms, __v) AS thi, count(*) AS n FROM b GROUP BY __g, __b)
SELECT __g, tlo AS __ms, vlo AS __v, n AS __n%s FROM a
UNION ALL SELECT __g, thi, vhi, 0%s FROM a WHERE thi <> tlo%s
ORDER BY __g, __ms`,
		inRange, pick, sq.width-1, from, sq.width, span, nf, nf, flagged)
}

// readBuckets reads the downsampled points into sd.Groups, merging a
// flagged row with the same row picked as a bucket's min or max.
func readBuckets(ctx context.Context, db *sql.DB, ti *tableInfo, sq *seriesQuery, sd *seriesData, inRange string, from, span int64) error {
	rows, err := db.QueryContext(ctx, bucketsSQL(ti, sq, inRange, from, span))
	if err != nil {
		return err
	}
	defer rows.Close()
	flags := make([]bool, len(ti.flags))
	for rows.Next() {
		var g string
		var ms, n int64
		var p seriesPoint
		dest := []any{&g, &ms, &p.V, &n}
		for i := range flags {
			dest = append(dest, &flags[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		sd.Rows += n
		p.t = time.UnixMilli(ms).UTC()
		p.T = p.t.Format("2006-01-02T15:04:05.000Z07:00")
		for i, f := range flags {
			if f {
				p.Flagged = true
				p.Why = append(p.Why, ti.flags[i])
			}
		}
		if n := len(sd.Groups); n == 0 || sd.Groups[n-1].Group != g {
			sd.Groups = append(sd.Groups, seriesGroup{Group: g})
		}
		last := &sd.Groups[len(sd.Groups)-1]
		if n := len(last.Points); n > 0 && last.Points[n-1].t.Equal(p.t) && last.Points[n-1].V == p.V {
			if p.Flagged {
				last.Points[n-1].Flagged, last.Points[n-1].Why = true, p.Why
			}
			continue
		}
		last.Points = append(last.Points, p)
	}
	return rows.Err()
}

// markGaps marks the points after a hole in the data: a step longer than
// 1.5 times the group's usual step (its median) and than two buckets, so
// a missing window or a pause in the readings breaks the line instead of
// bridging it.
func markGaps(ps []seriesPoint, bucketMS int64) {
	if len(ps) < 3 {
		return
	}
	steps := make([]int64, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		if d := ps[i].t.UnixMilli() - ps[i-1].t.UnixMilli(); d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	limit := max(steps[len(steps)/2]*3/2, 2*bucketMS)
	for i := 1; i < len(ps); i++ {
		if ps[i].t.UnixMilli()-ps[i-1].t.UnixMilli() > limit {
			ps[i].Gap = true
		}
	}
}
