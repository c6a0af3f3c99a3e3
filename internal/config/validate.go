package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The allowed values of enumerated keys.
var (
	formats      = []string{"csv", "json", "ndjson"}
	onErrors     = []string{"quarantine", "drop", "fail"}
	outputs      = []string{"append", "update"}
	columnTypes  = []string{"string", "int64", "double", "decimal(p,s)", "bool", "timestamp", "date"}
	layerJobs    = []string{"raw", "bronze", "silver", "gold", "mirror"}
	tableLayers  = []string{"bronze", "silver", "gold"}
	queryStarts  = []string{"select", "with", "from", "values", "("}
	lineageCols  = []string{"_source_file", "_ingested_at", "_batch_id", "_rescued"}
	windowCols   = []string{"window_start", "window_end"}
	typeSynonyms = map[string]string{
		"int": "int64", "integer": "int64", "bigint": "int64", "long": "int64", "int32": "int64",
		"float": "double", "float64": "double", "float32": "double", "real": "double", "number": "double", "numeric": "double",
		"boolean": "bool", "text": "string", "varchar": "string", "str": "string",
		"datetime": "timestamp", "timestamptz": "timestamp",
	}
	memoryLimit = regexp.MustCompile(`(?i)^\s*[0-9]+(\.[0-9]+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$`)
)

// System tables every pipeline has; SQL models and mirrors may read them.
const (
	quarantineTable = "_quarantine" // bronze._quarantine
	lateTable       = "_late"       // silver._late
	eventDateCol    = "event_date"  // default bronze partition column
)

// validate checks values and references across the decoded pipeline and
// fills the defaults that depend on other keys.
func (l *loader) validate(p *Pipeline) {
	l.validateTop(p)
	for _, name := range p.SourceOrder {
		l.validateSource(p.Sources[name])
	}
	for _, name := range p.SilverOrder {
		l.validateSilver(p, p.Silver[name])
	}
	for _, name := range p.GoldOrder {
		l.validateGold(p, p.Gold[name])
	}
	l.goldCycles(p)
	l.validateMirrors(p)
	l.validateSchedule(p)
	l.validateServe(&p.Serve)
	l.validateBronze(&p.Bronze)
	l.validateMaintenance(&p.Maintenance)
	if l.has("stream.trigger") && p.Stream.Trigger <= 0 {
		l.errorf(nil, "stream.trigger", "must be a positive duration, e.g. 1s (leave stream out to disable stream mode)")
	}
}

func (l *loader) validateTop(p *Pipeline) {
	lake := strings.TrimSpace(p.Lake)
	p.Lake = lake
	scheme, _, hasScheme := strings.Cut(lake, "://")
	switch {
	case lake == "":
		l.errorf(nil, "lake", "empty: want file://DIR, a directory or s3://bucket/prefix (is the variable it names set?)")
	case !hasScheme && schemeLike.MatchString(lake):
		// "s3:/bucket" or "s3:" would become a local directory named "s3:".
		l.errorf(nil, "lake", "malformed lake URL %q: a scheme needs \"//\" (s3://bucket/prefix, file://DIR; write ./%s for a directory of that name)", lake, lake)
	case !hasScheme:
		// A bare directory.
	case strings.EqualFold(scheme, "file"):
		if strings.TrimPrefix(lake[len(scheme):], "://") == "" {
			l.errorf(nil, "lake", "%q names no directory: want file://DIR, e.g. file://./lake", lake)
		}
	case strings.EqualFold(scheme, "s3"):
		u, err := url.Parse(lake)
		switch {
		case err != nil || u.Host == "":
			l.errorf(nil, "lake", "%q names no bucket: want s3://bucket or s3://bucket/prefix", lake)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			l.errorf(nil, "lake", "%q: s3 URLs take no user, query or fragment (set endpoint and keys under s3:)", lake)
		case !validBucket(u.Host):
			l.errorf(nil, "lake", "bad bucket name %q: 3 to 63 lower-case letters, digits, dots and hyphens", u.Host)
		}
		ep := p.S3.Endpoint
		switch {
		case ep == "":
			n := l.at("s3.endpoint")
			if n == nil {
				n = l.at("lake")
			}
			l.errorf(n, "s3.endpoint", "required when lake is s3:// (host:port of the S3 or MinIO server)")
		case strings.Contains(ep, "@"):
			l.errorf(nil, "s3.endpoint", "takes no user or password: write host:port, and set access_key and secret_key")
		case strings.Contains(ep, "://"):
			l.errorf(nil, "s3.endpoint", "%q: write host:port without the scheme (secure: true for https)", ep)
		}
	default:
		l.errorf(nil, "lake", "unsupported lake %q: want file://DIR, a directory or s3://bucket/prefix", lake)
	}
	if pg := p.Postgres; pg != "" && !strings.HasPrefix(pg, "postgres://") && !strings.HasPrefix(pg, "postgresql://") && !strings.Contains(pg, "=") {
		l.errorf(nil, "postgres", "want a URL (postgres://user@host:5432/db) or key=value settings (host=... dbname=...)")
	}
	if !memoryLimit.MatchString(p.DuckDB.MemoryLimit) {
		l.errorf(nil, "duckdb.memory_limit", "%q: want a size like 512MB or 2GB", p.DuckDB.MemoryLimit)
	}
	if p.DuckDB.Threads < 0 {
		l.errorf(nil, "duckdb.threads", "must not be negative (0 uses every core)")
	}
}

// schemeLike matches a lake that starts like a URL scheme but has no "//".
var schemeLike = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// checkTableName refuses names that are not identifiers or that system tables use.
func (l *loader) checkTableName(path, name string) bool {
	switch {
	case !isIdent(name):
		l.errorf(nil, path, "bad table name %q: use letters, digits and _, not starting with a digit", name)
		return false
	case strings.HasPrefix(name, "_"):
		l.errorf(nil, path, "bad table name %q: names starting with _ are reserved for system tables", name)
		return false
	}
	return true
}

// checkColumnName refuses names that are not identifiers.
func (l *loader) checkColumnName(path, name string) bool {
	if !isIdent(name) {
		l.errorf(nil, path, "bad column name %q: use letters, digits and _, not starting with a digit", name)
		return false
	}
	return true
}

// names tracks column names of one table; DuckDB matches them without case.
type names map[string]string

// add records name and reports the earlier name it clashes with, if any.
func (n names) add(name string) (string, bool) {
	k := strings.ToLower(name)
	if prev, ok := n[k]; ok {
		return prev, true
	}
	n[k] = name
	return "", false
}

// validateSource checks one source, each error naming its field. It is
// over 80 lines on purpose: one flat list of checks in field order, which
// split up would hide which fields are checked and in what order errors come.
func (l *loader) validateSource(s *Source) {
	path := join("sources", s.Name)
	l.checkTableName(path, s.Name)

	switch {
	case s.Format == "":
		l.errorf(nil, path+".format", "required: %s", oneOf(formats))
	case !slices.Contains(formats, s.Format):
		l.errorf(nil, path+".format", "unknown format %q: want %s%s", s.Format, oneOf(formats), didYouMean(s.Format, formats))
	}
	if len(s.CSVColumns) > 0 && (s.Broker == nil || s.Format != "csv") {
		l.errorf(nil, path+".csv.columns", "only for a csv source read from a broker (from: kafka, nats or mqtt), whose messages carry rows without a header")
	}
	if b := s.Broker; b != nil {
		l.validateBroker(path, s, b)
	}
	if f := s.Files; f != nil {
		l.validateFiles(path, s, f)
	}
	if l.has(path+".csv") && s.Format != "csv" && s.Format != "" {
		l.errorf(nil, path+".csv", "csv options apply only to format csv (this source is %s)", s.Format)
	}
	if s.Format == "csv" {
		d, q := s.CSV.Delimiter, s.CSV.Quote
		switch {
		case utf8.RuneCountInString(d) != 1:
			l.errorf(nil, path+".csv.delimiter", "%q: want one character, e.g. \",\" or \"\\t\"", d)
		case d == "\n" || d == "\r" || d == `"` || d == string(utf8.RuneError):
			l.errorf(nil, path+".csv.delimiter", "%q cannot be a delimiter", d)
		}
		switch {
		case utf8.RuneCountInString(q) != 1:
			l.errorf(nil, path+".csv.quote", "%q: want one character, e.g. '\"'", q)
		case q == d:
			l.errorf(nil, path+".csv.quote", "the quote %q is also the delimiter", q)
		}
	}

	if len(s.Schema) == 0 {
		l.errorf(nil, path+".schema", "required: declare at least one column, e.g. id: {type: string}")
	}
	cols := names{}
	fields := map[string]string{} // folded source field -> column
	hasTimestamp := false
	for _, c := range s.Schema {
		cp := join(path+".schema", c.Name)
		l.validateColumn(cp, c)
		if prev, clash := cols.add(c.Name); clash {
			l.errorf(nil, cp, "column %q clashes with column %q (column names ignore case)", c.Name, prev)
		}
		if slices.Contains(lineageCols, strings.ToLower(c.Name)) {
			l.errorf(nil, cp, "column name %q is reserved for lineage (%s)", c.Name, strings.Join(lineageCols, ", "))
		}
		folded := strings.ToLower(strings.TrimSpace(c.From))
		if prev, dup := fields[folded]; dup && c.From != "" {
			l.errorf(nil, cp+".from", "reads the same source field %q as column %s", strings.TrimSpace(c.From), prev)
		}
		fields[folded] = c.Name
		hasTimestamp = hasTimestamp || c.Type == "timestamp"
		if l.has(cp + ".renamed_from") {
			switch old := c.RenamedFrom; {
			case old == "":
				l.errorf(nil, cp+".renamed_from", "blank: name the column's earlier name in the table, e.g. renamed_from: voltage")
			case strings.EqualFold(old, c.Name):
				l.errorf(nil, cp+".renamed_from", "renamed_from %q is the column's own name: remove renamed_from", old)
			case slices.ContainsFunc(s.Schema, func(o *Column) bool { return strings.EqualFold(o.Name, old) }):
				l.errorf(nil, cp+".renamed_from", "renamed_from %q is another declared column: a column can be renamed only to a name the schema no longer uses", old)
			case slices.ContainsFunc(s.Schema, func(o *Column) bool { return o != c && strings.EqualFold(o.RenamedFrom, old) }):
				l.errorf(nil, cp+".renamed_from", "two columns are renamed from %q", old)
			}
		}
	}

	seen := map[string]bool{}
	for i, d := range s.Dedupe {
		dp := fmt.Sprintf("%s.dedupe[%d]", path, i)
		switch {
		case s.column(d) == nil:
			l.errorf(nil, dp, "no column %q in the schema%s", d, colHint(d, s.schemaNames()))
		case seen[d]:
			l.errorf(nil, dp, "column %q is listed twice", d)
		}
		seen[d] = true
	}

	for _, d := range s.Derive {
		dp := join(path+".derive", d.Name)
		if l.checkColumnName(dp, d.Name) {
			if prev, clash := cols.add(d.Name); clash {
				l.errorf(nil, dp, "derived column %q clashes with column %q", d.Name, prev)
			}
		}
		if d.Expr == "" {
			l.errorf(nil, dp+".expr", "empty expression: want a DuckDB SQL expression, e.g. energy_usage > 100")
		} else if err := balanced(d.Expr); err != nil {
			l.errorf(nil, dp+".expr", "%v in %q", err, d.Expr)
		}
	}

	if !slices.Contains(onErrors, s.OnError) {
		l.errorf(nil, path+".on_error", "unknown policy %q: want %s%s", s.OnError, oneOf(onErrors), didYouMean(s.OnError, onErrors))
	}
	if pb := s.PartitionBy; pb != "" && s.column(pb) == nil && s.derived(pb) == nil && !(pb == eventDateCol && hasTimestamp) {
		l.errorf(nil, path+".partition_by", "no column %q in the schema or derive%s", pb, colHint(pb, s.columnNames()))
	}
	if s.Listen != "" {
		host, port, err := net.SplitHostPort(s.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
			l.errorf(nil, path+".listen", "%q: want host:port or :port, e.g. \":9999\"", s.Listen)
		}
	}
}

func (s *Source) column(name string) *Column {
	for _, c := range s.Schema {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (s *Source) derived(name string) *Derived {
	for _, d := range s.Derive {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (s *Source) schemaNames() []string {
	out := make([]string, len(s.Schema))
	for i, c := range s.Schema {
		out[i] = c.Name
	}
	return out
}

// columnNames lists the typed columns and the derived ones.
func (s *Source) columnNames() []string {
	out := s.schemaNames()
	for _, d := range s.Derive {
		out = append(out, d.Name)
	}
	return out
}

func (s *Source) timestampColumns() []string {
	var out []string
	for _, c := range s.Schema {
		if c.Type == "timestamp" {
			out = append(out, c.Name)
		}
	}
	return out
}

func (l *loader) validateColumn(path string, c *Column) {
	l.checkColumnName(path, c.Name)
	if strings.TrimSpace(c.From) == "" {
		if l.has(path + ".from") {
			l.errorf(nil, path+".from", "blank: name the source field, or leave from out to use %q", c.Name)
		}
		c.From = c.Name
	}

	typ, err := normalizeType(c.Type)
	if err != nil {
		l.errorf(nil, path+".type", "%v", err)
	}
	c.Type = typ
	numeric := typ == "int64" || typ == "double" || strings.HasPrefix(typ, "decimal(")
	if c.CastFrom != "" || l.has(path+".cast_from") {
		from, err := normalizeType(c.CastFrom)
		switch {
		case err != nil:
			l.errorf(nil, path+".cast_from", "%v", err)
		case typ == "":
		case from == typ:
			l.errorf(nil, path+".cast_from", "cast_from %s is the column's type already: remove cast_from once the table has the new type", from)
		case !Widens(from, typ):
			l.errorf(nil, path+".cast_from", "cannot cast %s to %s: it would lose values (only widening casts apply: int64 to double, decimal or string; decimal(p,s) to a wider decimal; date to timestamp; anything to string); run `medallion refresh` to rebuild the table instead", from, typ)
		default:
			c.CastFrom = from
		}
	}

	if c.Format != "" {
		switch typ {
		case "timestamp", "date":
			if err := checkLayout(c.Format, typ); err != nil {
				l.errorf(nil, path+".format", "%v", err)
			}
		case "":
		default:
			l.errorf(nil, path+".format", "format applies only to timestamp and date columns (this one is %s)", typ)
		}
	}
	switch {
	case c.TZ != "" && typ != "timestamp" && typ != "":
		l.errorf(nil, path+".tz", "tz applies only to timestamp columns (this one is %s)", typ)
	case c.TZ == "Local":
		l.errorf(nil, path+".tz", `"Local" depends on the host: name a zone such as UTC or Europe/Paris`)
	case c.TZ != "":
		if _, err := time.LoadLocation(c.TZ); err != nil {
			l.errorf(nil, path+".tz", "unknown time zone %q: want an IANA name such as UTC or Europe/Paris", c.TZ)
		}
	case typ == "timestamp":
		c.TZ = defaultTZ
	}
	for _, b := range []struct {
		key string
		v   *float64
	}{{"min", c.Min}, {"max", c.Max}} {
		if b.v != nil && !numeric && typ != "" {
			l.errorf(nil, path+"."+b.key, "%s applies only to number columns (int64, double, decimal); this one is %s", b.key, typ)
		}
	}
	if c.Unit != "" && !numeric && typ != "" {
		l.errorf(nil, path+".unit", "unit applies only to number columns (int64, double, decimal); this one is %s", typ)
	}
	if c.Unit != "" && (len([]rune(c.Unit)) > 16 || strings.ContainsAny(c.Unit, "\r\n\t")) {
		l.errorf(nil, path+".unit", "unit %q: want a short label such as kWh or °C (at most 16 characters, one line)", c.Unit)
	}
	if c.AllowNaN && typ != "double" && typ != "" {
		l.errorf(nil, path+".allow_nan", "allow_nan applies only to double columns (this one is %s)", typ)
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		l.errorf(nil, path+".max", "max %s is less than min %s", fmtNum(*c.Max), fmtNum(*c.Min))
	}
	if c.Regex != "" {
		if _, err := regexp.Compile(c.Regex); err != nil {
			msg := err.Error()
			var se *syntax.Error
			if errors.As(err, &se) {
				msg = se.Code.String()
				if se.Expr != "" && se.Expr != c.Regex {
					msg += " at " + strconv.Quote(se.Expr)
				}
			}
			l.errorf(nil, path+".regex", "bad regex %q: %s", c.Regex, msg)
		}
	}
	if c.Trim == nil {
		t := true
		c.Trim = &t
	}
	if c.EmptyAsNull == nil {
		t := true
		c.EmptyAsNull = &t
	}
}

// Widens reports whether every value of column type from (a normalized
// type: string, int64, double, decimal(p,s), bool, timestamp, date) is a
// value of type to, so a cast_from can convert a table's values without
// losing any: int64 to double, to a decimal with at least 20 digits before
// the point, or to string; decimal(p,s) to a decimal with as many digits
// on both sides of the point; date to timestamp; anything to string.
func Widens(from, to string) bool {
	if from == to {
		return false
	}
	if to == "string" {
		return true
	}
	p1, s1, dec1 := decimalPS(from)
	p2, s2, dec2 := decimalPS(to)
	switch {
	case from == "int64":
		return to == "double" || (dec2 && p2-s2 >= 20)
	case dec1 && dec2:
		return s2 >= s1 && p2-s2 >= p1-s1
	case from == "date":
		return to == "timestamp"
	}
	return false
}

// decimalPS parses a normalized decimal(p,s).
func decimalPS(t string) (p, s int, ok bool) {
	inner, ok := strings.CutPrefix(t, "decimal(")
	if !ok {
		return 0, 0, false
	}
	ps, ss, ok := strings.Cut(strings.TrimSuffix(inner, ")"), ",")
	if !ok {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(ps)
	s, err2 := strconv.Atoi(ss)
	return p, s, err1 == nil && err2 == nil
}

// fmtDuration prints a duration the way users write it: 1m, not 1m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// normalizeType returns the canonical spelling of a column type:
// "Decimal(10, 2)" is "decimal(10,2)".
func normalizeType(t string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(t))
	if s == "" {
		return "", fmt.Errorf("required: %s", oneOf(columnTypes))
	}
	switch s {
	case "string", "int64", "double", "bool", "timestamp", "date":
		return s, nil
	case "decimal":
		return "", fmt.Errorf("decimal needs a precision and scale, e.g. decimal(18,2)")
	}
	if rest, ok := strings.CutPrefix(s, "decimal"); ok {
		rest = strings.TrimSpace(rest)
		if inner, ok := strings.CutPrefix(rest, "("); ok {
			if inner, ok = strings.CutSuffix(inner, ")"); ok {
				ps, ss, hasScale := strings.Cut(inner, ",")
				p, err1 := strconv.Atoi(strings.TrimSpace(ps))
				sc, err2 := 0, error(nil)
				if hasScale {
					sc, err2 = strconv.Atoi(strings.TrimSpace(ss))
				}
				if err1 != nil || err2 != nil {
					return "", fmt.Errorf("bad type %q: want decimal(p,s) with whole numbers, e.g. decimal(18,2)", t)
				}
				if p < 1 || p > 38 {
					return "", fmt.Errorf("bad type %q: precision must be 1 to 38", t)
				}
				if sc < 0 || sc > p {
					return "", fmt.Errorf("bad type %q: scale must be 0 to the precision %d", t, p)
				}
				return fmt.Sprintf("decimal(%d,%d)", p, sc), nil
			}
		}
		return "", fmt.Errorf("bad type %q: want decimal(p,s), e.g. decimal(18,2)", t)
	}
	hint := ""
	if syn, ok := typeSynonyms[s]; ok {
		hint = fmt.Sprintf(" (did you mean %q?)", syn)
	} else {
		hint = didYouMean(s, []string{"string", "int64", "double", "decimal", "bool", "timestamp", "date"})
	}
	return "", fmt.Errorf("unknown type %q: want %s%s", t, oneOf(columnTypes), hint)
}

// checkLayout checks that layout is a Go reference-time layout with a year.
func checkLayout(layout, typ string) error {
	if strings.Contains(layout, "%") || strings.Contains(layout, "yy") || strings.Contains(layout, "YY") {
		if g := goLayout(layout); g != "" {
			return fmt.Errorf("format %q is not a Go layout: write %q", layout, g)
		}
		return fmt.Errorf("format %q is not a Go layout: write the reference time 2006-01-02 15:04:05 in your format", layout)
	}
	if !strings.Contains(layout, "06") {
		eg := "2006-01-02 15:04:05"
		if typ == "date" {
			eg = "2006-01-02"
		}
		return fmt.Errorf("format %q has no year: write the reference time in your layout, e.g. %q", layout, eg)
	}
	ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	if _, err := time.Parse(layout, ref.Format(layout)); err != nil {
		return fmt.Errorf("format %q is not a usable Go layout: write the reference time 2006-01-02 15:04:05 in your format", layout)
	}
	return nil
}

// goLayout translates a strftime or Java-style layout into Go's, for hints.
func goLayout(s string) string {
	r := strings.NewReplacer(
		"%Y", "2006", "%y", "06", "%m", "01", "%d", "02", "%e", "_2", "%H", "15", "%I", "03",
		"%M", "04", "%S", "05", "%f", "000000", "%p", "PM", "%b", "Jan", "%B", "January",
		"%a", "Mon", "%A", "Monday", "%z", "-0700", "%Z", "MST", "%F", "2006-01-02", "%T", "15:04:05", "%%", "%",
		"yyyy", "2006", "YYYY", "2006", "yy", "06", "MMMM", "January", "MMM", "Jan", "MM", "01",
		"dd", "02", "HH", "15", "hh", "03", "mm", "04", "ss", "05", "SSS", "000",
	)
	g := r.Replace(s)
	if strings.Contains(g, "%") || strings.ContainsAny(g, "yYdHhms") {
		return ""
	}
	return g
}

// silverColumns are the output columns of a silver table.
func silverColumns(s *Silver) []string {
	out := slices.Clone(windowCols)
	out = append(out, s.GroupBy...)
	for _, a := range s.Aggregates {
		out = append(out, a.Name)
	}
	return out
}

// validateSilver checks one silver table against the pipeline, each error
// naming its field. It is over 80 lines on purpose: one flat list of checks
// in field order, which split up would hide which fields are checked and in
// what order errors come.
func (l *loader) validateSilver(p *Pipeline, s *Silver) {
	path := join("silver", s.Name)
	l.checkTableName(path, s.Name)

	s.From = strings.TrimPrefix(s.From, "bronze.")
	src := p.Sources[s.From]
	switch {
	case s.From == "":
		l.errorf(nil, path+".from", "required: the source to aggregate (%s)", listOrNone(p.SourceOrder))
	case src == nil:
		l.errorf(nil, path+".from", "%s", l.notFound(p, "source", s.From, p.SourceOrder))
	}

	if src != nil {
		ts := src.timestampColumns()
		switch c := src.column(s.EventTime); {
		case s.EventTime == "":
			l.errorf(nil, path+".event_time", "required: the timestamp column of source %s (%s)", src.Name, listOrNone(ts))
		case c == nil && src.derived(s.EventTime) != nil:
			// A derived column (strptime(DATE || ' ' || TIME, ...)): its
			// type is DuckDB's, checked when silver reads bronze.
		case c == nil:
			l.errorf(nil, path+".event_time", "no column %q in source %s (timestamp columns: %s)%s", s.EventTime, src.Name, listOrNone(ts), didYouMean(s.EventTime, ts))
		case c.Type != "timestamp":
			l.errorf(nil, path+".event_time", "column %q of source %s is %s, not a timestamp (timestamp columns: %s)", s.EventTime, src.Name, c.Type, listOrNone(ts))
		}
	}

	switch {
	case !l.has(path+".window.size") && s.Size == 0:
		l.errorf(nil, path+".window.size", "required: the window length, e.g. window: {size: 1m}")
	case s.Size <= 0:
		l.errorf(nil, path+".window.size", "must be positive, got %s", fmtDuration(s.Size))
	}
	if l.has(path + ".window.slide") {
		switch {
		case s.Slide <= 0:
			l.errorf(nil, path+".window.slide", "must be positive, got %s (leave slide out for tumbling windows)", fmtDuration(s.Slide))
		case s.Size <= 0:
		case s.Slide > s.Size:
			l.errorf(nil, path+".window.slide", "%s is longer than the window size %s", fmtDuration(s.Slide), fmtDuration(s.Size))
		case s.Size%s.Slide != 0:
			l.errorf(nil, path+".window.slide", "%s does not divide the window size %s", fmtDuration(s.Slide), fmtDuration(s.Size))
		}
	}
	if s.Watermark < 0 {
		l.errorf(nil, path+".watermark", "must not be negative, got %s", fmtDuration(s.Watermark))
	}
	if !slices.Contains(outputs, s.Output) {
		l.errorf(nil, path+".output", "unknown output mode %q: want %s%s", s.Output, oneOf(outputs), didYouMean(s.Output, outputs))
	}

	out := names{}
	for _, c := range windowCols {
		out.add(c)
	}
	for i, g := range s.GroupBy {
		gp := fmt.Sprintf("%s.group_by[%d]", path, i)
		switch {
		case !l.checkColumnName(gp, g):
		case src != nil && src.column(g) == nil && src.derived(g) == nil:
			l.errorf(nil, gp, "no column %q in source %s%s", g, src.Name, colHint(g, src.columnNames()))
		default:
			if prev, clash := out.add(g); clash {
				l.errorf(nil, gp, "column %q is already an output column (%s)", g, prev)
			}
		}
	}

	if len(s.Aggregates) == 0 {
		l.errorf(nil, path+".aggregates", "required: at least one, e.g. readings: count(*)")
	}
	for _, a := range s.Aggregates {
		ap := join(path+".aggregates", a.Name)
		if l.checkColumnName(ap, a.Name) {
			if prev, clash := out.add(a.Name); clash {
				l.errorf(nil, ap, "aggregate %q clashes with output column %q", a.Name, prev)
			}
		}
		fn, arg, err := ParseAggregate(a.Expr)
		if err != nil {
			l.errorf(nil, ap+".expr", "%v", err)
			continue
		}
		a.Func, a.Arg = fn, arg
		if src != nil && arg != "*" && fn != "count_if" && src.column(arg) == nil && src.derived(arg) == nil {
			l.errorf(nil, ap+".expr", "%s: no column %q in source %s%s", a.Expr, arg, src.Name, colHint(arg, src.columnNames()))
		}
	}
}

// colHint suggests a close column name, or else lists the columns.
func colHint(name string, cols []string) string {
	if h := didYouMean(name, cols); h != "" {
		return h
	}
	return " (columns: " + listOrNone(cols) + ")"
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none declared"
	}
	return strings.Join(xs, ", ")
}

// notFound says that a table of kind ("source", "silver table") named name
// does not exist, with a hint at a close name or at another layer.
func (l *loader) notFound(p *Pipeline, kind, name string, have []string) string {
	msg := fmt.Sprintf("no %s %q", kind, name)
	if hint := didYouMean(name, have); hint != "" {
		return msg + hint
	}
	switch {
	case kind != "source" && p.Sources[name] != nil:
		msg += fmt.Sprintf(" (%s is a source)", name)
	case kind != "silver table" && p.Silver[name] != nil:
		msg += fmt.Sprintf(" (%s is a silver table)", name)
	case kind != "gold table" && p.Gold[name] != nil:
		msg += fmt.Sprintf(" (%s is a gold table)", name)
	default:
		msg += fmt.Sprintf(" (declared: %s)", listOrNone(have))
	}
	return msg
}

// validateGold checks one gold table against the pipeline, each error
// naming its field. It is over 80 lines on purpose: one flat list of checks
// in field order, which split up would hide which fields are checked and in
// what order errors come.
func (l *loader) validateGold(p *Pipeline, g *Gold) {
	path := join("gold", g.Name)
	l.checkTableName(path, g.Name)
	switch {
	case g.From != "" && g.SQL != "":
		l.errorf(nil, path, "give either from: (a moving average over a silver table) or sql: (an analyst model), not both")
		return
	case g.From == "" && g.SQL == "":
		if l.has(path + ".sql") {
			l.errorf(nil, path+".sql", "empty query: want a SELECT over tables by name, e.g. SELECT * FROM silver.x")
		} else {
			l.errorf(nil, path, "give from: a silver table (for a moving average) or sql: a SELECT query (for a model)")
		}
		return
	case g.SQL != "":
		l.validateModel(p, g, path)
		return
	}

	g.From = strings.TrimPrefix(g.From, "silver.")
	s := p.Silver[g.From]
	if s == nil {
		l.errorf(nil, path+".from", "%s", l.notFound(p, "silver table", g.From, p.SilverOrder))
	} else {
		g.DependsOn = []string{"silver." + g.From}
	}
	if g.MovingAverage == nil && len(g.Flags) == 0 {
		l.errorf(nil, path, "nothing to compute: add moving_average and/or flag (or write sql: for a model)")
	}
	var cols []string
	out := names{}
	if s != nil {
		cols = silverColumns(s)
		for _, c := range cols {
			out.add(c)
		}
	}
	inSilver := func(p2, col string) {
		if s != nil && !slices.Contains(cols, col) {
			l.errorf(nil, p2, "no column %q in silver.%s%s", col, s.Name, colHint(col, cols))
		}
	}
	for i, c := range g.PartitionBy {
		inSilver(fmt.Sprintf("%s.partition_by[%d]", path, i), c)
	}
	if g.OrderBy == "" {
		g.OrderBy = defaultOrderBy
	}
	inSilver(path+".order_by", g.OrderBy)

	if ma := g.MovingAverage; ma != nil {
		mp := path + ".moving_average"
		if ma.Column == "" {
			l.errorf(nil, mp+".column", "required: the silver column to average, e.g. avg_usage")
		} else {
			inSilver(mp+".column", ma.Column)
		}
		var kinds []string
		for _, k := range []string{"rows", "range", "ema"} {
			if l.has(mp + "." + k) {
				kinds = append(kinds, k)
			}
		}
		switch len(kinds) {
		case 0:
			l.errorf(nil, mp, "give one of rows (rows: 15), range (range: 15m) or ema (ema: {alpha: 0.2})")
		case 1:
		case 2:
			l.errorf(nil, mp+"."+kinds[1], "give one of rows, range or ema, not both %s and %s", kinds[0], kinds[1])
		default:
			l.errorf(nil, mp+"."+kinds[2], "give one of rows, range or ema, not all three")
		}
		if l.has(mp+".rows") && ma.Rows < 1 {
			l.errorf(nil, mp+".rows", "must be at least 1, got %d", ma.Rows)
		}
		if l.has(mp+".range") && ma.Range <= 0 {
			l.errorf(nil, mp+".range", "must be a positive duration, got %s", fmtDuration(ma.Range))
		}
		if l.has(mp+".ema") && !(ma.EMAAlpha > 0 && ma.EMAAlpha <= 1) {
			l.errorf(nil, mp+".ema.alpha", "must be in (0, 1], got %s", fmtNum(ma.EMAAlpha))
		}
		if l.checkColumnName(mp+".as", ma.As) {
			if prev, clash := out.add(ma.As); clash {
				l.errorf(nil, mp+".as", "%q clashes with column %q of silver.%s: name the average with as:", ma.As, prev, g.From)
			}
		}
	}
	for i, f := range g.Flags {
		fp := fmt.Sprintf("%s.flags[%d]", path, i)
		if l.has(path+".flag") && i == 0 {
			fp = path + ".flag"
		} else if l.has(path + ".flag") {
			fp = fmt.Sprintf("%s.flags[%d]", path, i-1)
		}
		if f.Name == "" {
			l.errorf(nil, fp+".name", "required: the flag column's name, e.g. spike")
		} else if l.checkColumnName(fp+".name", f.Name) {
			if prev, clash := out.add(f.Name); clash {
				l.errorf(nil, fp+".name", "flag %q clashes with column %q", f.Name, prev)
			}
		}
		if f.When == "" {
			l.errorf(nil, fp+".when", "required: a DuckDB condition, e.g. avg_usage > ma * 1.5")
		} else if err := balanced(f.When); err != nil {
			l.errorf(nil, fp+".when", "%v in %q", err, f.When)
		}
	}
}

// validateModel checks an analyst SQL model and fills its DependsOn.
func (l *loader) validateModel(p *Pipeline, g *Gold, path string) {
	for _, k := range []string{"partition_by", "order_by", "moving_average", "flag", "flags"} {
		if l.has(path + "." + k) {
			l.errorf(nil, path+"."+k, "%s applies only to gold tables built from a silver table (from:); an sql: model computes its own columns", k)
		}
	}
	sp := path + ".sql"
	sc := scanSQL(g.SQL)
	switch {
	case sc.unclosed != "":
		l.errorf(nil, sp, "unterminated %s", sc.unclosed)
		return
	case !slices.Contains(queryStarts, sc.firstWord):
		l.errorf(nil, sp, "want a query (SELECT ... or WITH ...), got %q", sc.firstWord)
	case sc.statements > 1:
		l.errorf(nil, sp, "want one query, got %d statements", sc.statements)
	}
	node := l.at(sp)
	seen := map[string]bool{}
	for _, r := range sc.refs {
		name, ok := "", false
		var have []string
		switch r.Layer {
		case "bronze":
			name, ok = lookup(r.Name, p.SourceOrder, quarantineTable)
			have = p.SourceOrder
		case "silver":
			name, ok = lookup(r.Name, p.SilverOrder, lateTable)
			have = p.SilverOrder
		case "gold":
			name, ok = lookup(r.Name, p.GoldOrder, "")
			have = p.GoldOrder
		}
		if !ok {
			line, col := l.locate(node, g.SQL, r.Off, r.Raw)
			hint := ""
			if c := closest(r.Name, have); c != "" {
				hint = fmt.Sprintf(" (did you mean %s.%s?)", r.Layer, c)
			}
			l.errorAt(line, col, sp, "reads %s.%s, which is not declared%s", r.Layer, r.Name, hint)
			continue
		}
		ref := r.Layer + "." + name
		if !seen[ref] {
			seen[ref] = true
			g.DependsOn = append(g.DependsOn, ref)
		}
	}
}

// lookup finds name among declared names (or the system table sys),
// exactly or, as DuckDB does, ignoring case.
func lookup(name string, declared []string, sys string) (string, bool) {
	if sys != "" && strings.EqualFold(name, sys) {
		return sys, true
	}
	if slices.Contains(declared, name) {
		return name, true
	}
	for _, d := range declared {
		if strings.EqualFold(d, name) {
			return d, true
		}
	}
	return "", false
}

// goldCycles refuses gold models that read themselves, directly or through others.
func (l *loader) goldCycles(p *Pipeline) {
	deps := func(name string) []string {
		var out []string
		if g := p.Gold[name]; g != nil {
			for _, d := range g.DependsOn {
				if n, ok := strings.CutPrefix(d, "gold."); ok {
					out = append(out, n)
				}
			}
		}
		return out
	}
	reported := map[string]bool{}
	for _, c := range findCycles(p.GoldOrder, deps) {
		key := cycleKey(c)
		if reported[key] {
			continue
		}
		reported[key] = true
		parts := make([]string, len(c))
		for i, n := range c {
			parts[i] = "gold." + n
		}
		l.errorf(nil, join("gold", c[0])+".sql", "cycle: %s", strings.Join(parts, " -> "))
	}
}

// findCycles walks the graph from each node in order and returns each cycle
// found as the path that closes it, first node repeated at the end, rotated
// to start at the node that comes first in order.
func findCycles(order []string, deps func(string) []string) [][]string {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i
	}
	var stack []string
	var cycles [][]string
	var visit func(n string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		for _, d := range deps(n) {
			switch state[d] {
			case unvisited:
				visit(d)
			case active:
				i := slices.Index(stack, d)
				c := slices.Clone(stack[i:])
				// Rotate to start at the earliest-declared node.
				first := 0
				for j, x := range c {
					if rank[x] < rank[c[first]] {
						first = j
					}
				}
				c = append(c[first:], c[:first]...)
				cycles = append(cycles, append(c, c[0]))
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range order {
		if state[n] == unvisited {
			visit(n)
		}
	}
	return cycles
}

func cycleKey(c []string) string {
	s := slices.Clone(c[:len(c)-1])
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

// columnsOf lists the columns of a declared table when the config alone
// determines them; known is false for SQL models and system tables.
func columnsOf(p *Pipeline, layer, name string) (cols []string, known bool) {
	switch layer {
	case "bronze":
		s := p.Sources[name]
		if s == nil {
			return nil, false
		}
		cols = append(s.columnNames(), lineageCols...)
		if s.PartitionBy == "" && len(s.timestampColumns()) > 0 || s.PartitionBy == eventDateCol {
			cols = append(cols, eventDateCol)
		}
		return cols, true
	case "silver":
		if s := p.Silver[name]; s != nil {
			return silverColumns(s), true
		}
	case "gold":
		g := p.Gold[name]
		if g == nil || g.From == "" || p.Silver[g.From] == nil {
			return nil, false
		}
		cols = silverColumns(p.Silver[g.From])
		if g.MovingAverage != nil {
			cols = append(cols, g.MovingAverage.As)
		}
		for _, f := range g.Flags {
			cols = append(cols, f.Name)
		}
		return cols, true
	}
	return nil, false
}

func (l *loader) validateMirrors(p *Pipeline) {
	tables := map[string]string{} // layer.name -> path of its first mirror
	targets := map[string]string{}
	for i, m := range p.Mirror {
		path := fmt.Sprintf("mirror[%d]", i)
		layer, name, ok := strings.Cut(m.Table, ".")
		var have []string
		switch layer {
		case "bronze":
			have = append(slices.Clone(p.SourceOrder), quarantineTable)
		case "silver":
			have = append(slices.Clone(p.SilverOrder), lateTable)
		case "gold":
			have = p.GoldOrder
		}
		tableOK := false
		switch {
		case m.Table == "":
			l.errorf(nil, path+".table", "required: the table to mirror, as layer.name, e.g. gold.meter_usage_ma")
		case !ok || !slices.Contains(tableLayers, layer):
			hint := ""
			if _, ok := lookupAny(p, m.Table); ok {
				hint = fmt.Sprintf(" (did you mean %s?)", lookupAnyRef(p, m.Table))
			}
			l.errorf(nil, path+".table", "%q: want layer.name, e.g. gold.meter_usage_ma%s", m.Table, hint)
		case !slices.Contains(have, name):
			hint := didYouMean(name, have)
			if hint == "" {
				hint = fmt.Sprintf(" (declared: %s)", listOrNone(have))
			}
			l.errorf(nil, path+".table", "no %s table %q%s", layer, name, hint)
		default:
			tableOK = true
			if prev, dup := tables[m.Table]; dup {
				l.errorf(nil, path+".table", "%s is already mirrored by %s", m.Table, prev)
			}
			tables[m.Table] = path
		}

		if m.To == "" {
			m.To = defaultSchema + "." + name
			if !ok {
				m.To = defaultSchema + "." + m.Table
			}
		} else if !strings.Contains(m.To, ".") {
			m.To = defaultSchema + "." + m.To
		}
		sch, tbl, _ := strings.Cut(m.To, ".")
		switch {
		case !isIdent(sch) || !isIdent(tbl):
			l.errorf(nil, path+".to", "%q: want schema.table or table, with names of letters, digits and _", m.To)
		case len(sch) > 63 || len(tbl) > 63:
			l.errorf(nil, path+".to", "%q: PostgreSQL names are at most 63 bytes", m.To)
		default:
			if prev, dup := targets[strings.ToLower(m.To)]; dup {
				l.errorf(nil, path+".to", "%s is already the target of %s", m.To, prev)
			}
			targets[strings.ToLower(m.To)] = path
		}

		if len(m.Key) == 0 {
			l.errorf(nil, path+".key", "required: the primary key columns, e.g. [meter_id, window_start]")
		}
		cols, known := columnsOf(p, layer, name)
		seen := map[string]bool{}
		for j, k := range m.Key {
			kp := fmt.Sprintf("%s.key[%d]", path, j)
			switch {
			case !l.checkColumnName(kp, k):
			case seen[k]:
				l.errorf(nil, kp, "column %q is listed twice", k)
			case tableOK && known && !slices.Contains(cols, k):
				l.errorf(nil, kp, "no column %q in %s%s", k, m.Table, colHint(k, cols))
			}
			seen[k] = true
		}
		l.validateMirrorColumns(path, m, cols, tableOK && known)
	}
}

// lookupAny finds a bare table name in any layer.
func lookupAny(p *Pipeline, name string) ([]string, bool) {
	var refs []string
	if p.Sources[name] != nil {
		refs = append(refs, "bronze."+name)
	}
	if p.Silver[name] != nil {
		refs = append(refs, "silver."+name)
	}
	if p.Gold[name] != nil {
		refs = append(refs, "gold."+name)
	}
	return refs, len(refs) > 0
}

func lookupAnyRef(p *Pipeline, name string) string {
	refs, _ := lookupAny(p, name)
	return strings.Join(refs, " or ")
}

// resolveJob returns the canonical job id of a schedule name: a layer
// (bronze) or a table as layer.name (bronze.meters, from "meters" too).
func resolveJob(p *Pipeline, name string) (string, error) {
	if slices.Contains(layerJobs, name) {
		return name, nil
	}
	jobs := func() []string {
		out := slices.Clone(layerJobs)
		out = append(out, p.SourceOrder...)
		out = append(out, p.SilverOrder...)
		return append(out, p.GoldOrder...)
	}
	if layer, table, ok := strings.Cut(name, "."); ok {
		if _, known := columnsOrTable(p, layer, table); !known {
			return "", fmt.Errorf("no table %q: jobs are %s, or a table%s", name, strings.Join(layerJobs, ", "), didYouMean(name, qualified(p)))
		}
		return name, nil
	}
	refs, ok := lookupAny(p, name)
	switch {
	case !ok:
		return "", fmt.Errorf("no layer or table %q: jobs are %s, or a table%s", name, strings.Join(layerJobs, ", "), didYouMean(name, jobs()))
	case len(refs) > 1:
		return "", fmt.Errorf("%q is ambiguous: write %s", name, oneOf(refs))
	}
	return refs[0], nil
}

// columnsOrTable reports whether layer.name is a declared table.
func columnsOrTable(p *Pipeline, layer, name string) (string, bool) {
	switch layer {
	case "bronze":
		return name, p.Sources[name] != nil
	case "silver":
		return name, p.Silver[name] != nil
	case "gold":
		return name, p.Gold[name] != nil
	}
	return "", false
}

// qualified lists every declared table as layer.name.
func qualified(p *Pipeline) []string {
	var out []string
	for _, n := range p.SourceOrder {
		out = append(out, "bronze."+n)
	}
	for _, n := range p.SilverOrder {
		out = append(out, "silver."+n)
	}
	for _, n := range p.GoldOrder {
		out = append(out, "gold."+n)
	}
	return out
}

func (l *loader) validateSchedule(p *Pipeline) {
	ids := map[string]string{}   // job as written -> canonical id
	byID := map[string]string{}  // canonical id -> job as written
	after := map[string]string{} // canonical id -> canonical id it runs after
	for _, job := range p.ScheduleOrder {
		s := p.Schedule[job]
		path := join("schedule", job)
		id, err := resolveJob(p, job)
		if err != nil {
			l.errorf(nil, path, "%v", err)
		} else {
			if prev, dup := byID[id]; dup {
				l.errorf(nil, path, "schedules %s again (already scheduled as %q)", id, prev)
			}
			ids[job], byID[id] = id, job
		}
		switch {
		case s.Cron != "" && s.After != "":
			l.errorf(nil, path, "give cron or after, not both")
		case s.Cron == "" && s.After == "":
			if l.has(path+".cron") || l.has(path+".after") {
				l.errorf(nil, path, "empty: want a cron spec (\"@every 1m\", \"*/5 * * * *\") or after: a job")
			} else {
				l.errorf(nil, path, "want a cron spec (\"@every 1m\", \"*/5 * * * *\") or after: a job")
			}
		case s.Cron != "":
			if err := ValidateCron(s.Cron); err != nil {
				l.errorf(l.at(path+".cron"), path, "bad cron spec %q: %v", s.Cron, err)
			}
		default:
			aid, err := resolveJob(p, s.After)
			if err != nil {
				l.errorf(nil, path+".after", "%v", err)
			} else if id != "" {
				after[id] = aid
			}
		}
	}
	// Each job runs after at most one other: follow the chains.
	var order []string
	for _, job := range p.ScheduleOrder {
		if id, ok := ids[job]; ok {
			order = append(order, id)
		}
	}
	reported := map[string]bool{}
	for _, c := range findCycles(order, func(id string) []string {
		if a, ok := after[id]; ok {
			return []string{a}
		}
		return nil
	}) {
		key := cycleKey(c)
		if reported[key] {
			continue
		}
		reported[key] = true
		parts := make([]string, len(c))
		for i, id := range c {
			parts[i] = id
			if job, ok := byID[id]; ok {
				parts[i] = job
			}
		}
		first := byID[c[0]]
		l.errorf(nil, join("schedule", first)+".after", "cycle: %s", strings.Join(parts, " -> "))
	}
}

// validateBroker checks a source's from: and batch: sections.
func (l *loader) validateBroker(path string, s *Source, b *Broker) {
	from := path + ".from"
	switch b.Kind {
	case "":
		l.errorf(nil, from, "required with batch: one of kafka, nats or mqtt")
		return
	case "kafka", "nats", "mqtt":
	default:
		l.errorf(nil, from, "one broker per source, got %s", strings.ReplaceAll(b.Kind, "+", " and "))
		return
	}
	need := func(key, val, hint string) {
		if val == "" {
			l.errorf(nil, from+"."+b.Kind+"."+key, "required%s", hint)
		}
	}
	switch b.Kind {
	case "kafka":
		if len(b.Brokers) == 0 {
			l.errorf(nil, from+".kafka.brokers", "required: host:port of at least one broker")
		}
		need("topic", b.Topic, "")
		need("group", b.Group, ": the consumer group that holds the committed offsets")
	case "nats":
		need("url", b.URL, ": e.g. nats://127.0.0.1:4222")
		need("stream", b.Stream, ": the JetStream stream to consume")
		need("durable", b.Durable, ": a durable consumer name")
	case "mqtt":
		need("url", b.URL, ": e.g. tcp://127.0.0.1:1883")
		need("topic", b.Topic, "")
		need("client_id", b.ClientID, ": a fixed id, so the broker keeps the session across restarts")
		if b.QoS != 0 && b.QoS != 1 {
			l.errorf(nil, from+".mqtt.qos", "must be 1 (QoS 0 is never redelivered; QoS 2 is not supported)")
		}
	}
	if s.Format == "csv" && !s.CSV.Header {
		l.errorf(nil, path+".csv.header", "a broker source writes a header line above its messages' rows: leave header at true and list the messages' columns in csv.columns (default: the schema's order)")
	}
	if b.BatchMessages < 0 || b.BatchBytes < 0 || b.BatchWait < 0 {
		l.errorf(nil, path+".batch", "max_messages, max_bytes and max_wait must not be negative")
	}
}
