package gold

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Layout of moving-average tables.
const (
	// maxBuckets is the most hash buckets the partitions are spread over;
	// each bucket is one file (plus appends), rewritten when one of its
	// partitions changes. A table's count is a power of two up to it,
	// chosen from the silver table's size at a full build (see
	// chooseBuckets) and kept in the table configuration (confBuckets).
	maxBuckets = 32
	// bucketInputBytes is how many bytes of silver Parquet one bucket is
	// meant for: a table of less has one file, one of 32 times more the
	// full 32 buckets. Small tables are then written as few files (writing
	// 32 small files cost as much as the moving average itself), big ones
	// keep the incremental rewrite of a changed partition's bucket small.
	bucketInputBytes = 64 << 20
	// regrowFactor: an incremental run rebuilds in full, with more buckets,
	// when the silver table has grown to need regrowFactor times the
	// table's count.
	regrowFactor = 4
	// maLayout names the bucketing, the file naming, the arithmetic and the
	// incremental state; changing one must change it, which rebuilds
	// existing tables in full. v2: averages summed in Go (see pass.go),
	// files appended per bucket, the tail state file. v3: the bucket count
	// is the table's own (confBuckets), md5 modulo it.
	maLayout = "gold-ma-v3:md5-lower-64:sized:tail"

	// maParquet is how a moving-average data file is written. A gold row
	// group holds many windows of a few partitions, so its order column
	// has about rows/partitions distinct values: DuckDB's default
	// dictionary limit let that column go dictionary-encoded or plain
	// depending on where thread scheduling cut the row groups, and the
	// dictionary side was ~20% larger and ~30 ms slower to write at
	// 166k rows (docs/gold-buckets.md, round 7). Past 10,000 distinct
	// values a column is written plain (zstd still compresses it);
	// low-cardinality columns (partition keys, flags) keep dictionaries.
	maParquet = "(FORMAT parquet, COMPRESSION zstd, DICTIONARY_SIZE_LIMIT 10000)"

	confDefinition = "medallion.gold.definition" // hash of everything the rows depend on
	confKind       = "medallion.gold.kind"
	confLayout     = "medallion.gold.layout"
	confSource     = "medallion.gold.source"
	confBuckets    = "medallion.gold.buckets" // the table's bucket count

	// defaultMAName is the moving-average column when as: is not given.
	defaultMAName = "ma"
	// defaultOrderBy orders a partition when order_by is not given.
	defaultOrderBy = "window_start"
)

// maAverage is which moving average a table computes.
type maAverage string

const (
	avgRows  maAverage = "rows"
	avgRange maAverage = "range"
	avgEMA   maAverage = "ema"
)

// maSpec is a validated moving-average definition against a silver schema.
type maSpec struct {
	source  layers.TableRef
	part    []string // partition columns (silver names)
	order   string   // order column
	column  string   // averaged column
	as      string   // output column of the average
	average maAverage
	rows    int
	rangeUS int64 // range in microseconds
	alpha   float64
	flags   []flagSpec

	out      []string // silver columns written, in output order
	sortKeys []string // ORDER BY within a partition: order column first, then tie-breakers
	partType map[string]delta.DataType

	// buckets is the table's bucket count (a power of two, 1 to
	// maxBuckets); 1 without partition columns.
	buckets int
}

type flagSpec struct {
	Name string `json:"name"`
	When string `json:"when"`
}

// maSpec checks the gold definition against the silver table and fills in
// the defaults. Errors name the gold table and the field. It is over 80
// lines on purpose: one flat list of checks in field order, which split up
// would hide which fields are checked and in what order errors come.
func (r *runner) maSpec(in *input) (*maSpec, error) {
	g := r.gold
	name := r.ref.String()
	ma := g.MovingAverage
	if ma == nil {
		return nil, fmt.Errorf("%s: neither moving_average nor sql is set", name)
	}
	if in.schema == nil {
		return nil, fmt.Errorf("%s: input %s has no schema yet", name, in.ref)
	}
	s := &maSpec{source: in.ref, part: slices.Clone(g.PartitionBy), order: g.OrderBy, column: ma.Column, as: ma.As, partType: map[string]delta.DataType{}}
	if s.order == "" {
		s.order = defaultOrderBy
	}
	if s.as == "" {
		s.as = defaultMAName
	}
	field := func(what, col string) (delta.Field, error) {
		f, ok := in.schema.Field(col)
		if !ok {
			return f, fmt.Errorf("%s: %s %q is not a column of %s (columns: %s)", name, what, col, in.ref, strings.Join(fieldNames(in.schema), ", "))
		}
		return f, nil
	}
	seen := map[string]bool{}
	for i, p := range s.part {
		f, err := field("partition_by", p)
		if err != nil {
			return nil, err
		}
		if seen[strings.ToLower(f.Name)] {
			return nil, fmt.Errorf("%s: partition_by lists %q twice", name, p)
		}
		seen[strings.ToLower(f.Name)] = true
		s.part[i] = f.Name
		s.partType[f.Name] = f.Type
	}
	of, err := field("order_by", s.order)
	if err != nil {
		return nil, err
	}
	s.order = of.Name
	cf, err := field("moving_average column", ma.Column)
	if err != nil {
		return nil, err
	}
	s.column = cf.Name
	if !cf.Type.IsNumeric() {
		return nil, fmt.Errorf("%s: moving_average column %q is %s, not a number", name, cf.Name, cf.Type)
	}
	set := 0
	if ma.Rows != 0 {
		set++
		s.average, s.rows = avgRows, ma.Rows
		if ma.Rows < 1 {
			return nil, fmt.Errorf("%s: moving_average rows %d must be at least 1", name, ma.Rows)
		}
	}
	if ma.Range != 0 {
		set++
		s.average, s.rangeUS = avgRange, ma.Range.Microseconds()
		if s.rangeUS < 1 {
			return nil, fmt.Errorf("%s: moving_average range %s must be at least 1µs", name, ma.Range)
		}
		if of.Type.Name != delta.TypeTimestamp && of.Type.Name != delta.TypeTimestampNTZ {
			return nil, fmt.Errorf("%s: moving_average range needs a timestamp order_by column; %q is %s", name, s.order, of.Type)
		}
	}
	if ma.EMAAlpha != 0 {
		set++
		s.average, s.alpha = avgEMA, ma.EMAAlpha
		if !(ma.EMAAlpha > 0 && ma.EMAAlpha <= 1) {
			return nil, fmt.Errorf("%s: moving_average ema alpha %v must be in (0, 1]", name, ma.EMAAlpha)
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("%s: moving_average needs exactly one of rows, range and ema", name)
	}

	// Output columns: partition columns, window_start, window_end, then the
	// other silver columns (group columns, aggregates) in silver order;
	// internal columns (a leading underscore) are left out.
	out := slices.Clone(s.part)
	used := map[string]bool{}
	for _, p := range s.part {
		used[strings.ToLower(p)] = true
	}
	for _, c := range []string{"window_start", "window_end"} {
		f, err := field("silver column", c)
		if err != nil {
			return nil, err
		}
		if !used[strings.ToLower(f.Name)] {
			out = append(out, f.Name)
			used[strings.ToLower(f.Name)] = true
		}
	}
	for _, f := range in.schema.Fields {
		if used[strings.ToLower(f.Name)] || strings.HasPrefix(f.Name, "_") {
			continue
		}
		out = append(out, f.Name)
		used[strings.ToLower(f.Name)] = true
	}
	s.out = out
	if !used[strings.ToLower(s.order)] {
		return nil, fmt.Errorf("%s: order_by %q is an internal column", name, s.order)
	}
	// Tie-breakers: every output column that is not a partition column.
	s.sortKeys = []string{s.order}
	for _, c := range out {
		if !slices.Contains(s.part, c) && c != s.order {
			s.sortKeys = append(s.sortKeys, c)
		}
	}

	if used[strings.ToLower(s.as)] {
		return nil, fmt.Errorf("%s: moving_average as %q clashes with a silver column", name, s.as)
	}
	used[strings.ToLower(s.as)] = true
	for _, f := range g.Flags {
		if f == nil || f.Name == "" || strings.TrimSpace(f.When) == "" {
			return nil, fmt.Errorf("%s: a flag needs a name and a when expression", name)
		}
		if used[strings.ToLower(f.Name)] {
			return nil, fmt.Errorf("%s: flag %q clashes with another column", name, f.Name)
		}
		if strings.Contains(f.When, ";") {
			return nil, fmt.Errorf("%s: flag %q: when must be one expression (no ';')", name, f.Name)
		}
		used[strings.ToLower(f.Name)] = true
		s.flags = append(s.flags, flagSpec{Name: f.Name, When: f.When})
	}
	return s, nil
}

func fieldNames(s *delta.Schema) []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// duckdbMaxFrame is the largest frame DuckDB's windowed avg sums the same
// way wherever the frame lies: up to its segment tree's fanout (16) a frame
// is summed leaf by leaf, oldest first, like the Go pass; beyond, inner
// nodes are combined and the rounding depends on the frame's position in
// the sorted input. TestDuckDBRowsMatchPass holds DuckDB to it.
const duckdbMaxFrame = 16

// duckdbRows says the average is computed by DuckDB's window function
// (faster than the pass over big inputs), not by the Go pass.
func (r *runner) duckdbRows(s *maSpec) bool {
	return s.average == avgRows && s.rows <= duckdbMaxFrame && !r.deps.goPass
}

// definition is the hash of everything a moving-average table's rows and
// files depend on: the definition, the silver table's identity and schema,
// and the layout. A different hash means a full rebuild.
func (s *maSpec) definition(in *input) string {
	b, _ := json.Marshal(map[string]any{
		"layout":       maLayout,
		"source":       s.source.String(),
		"source_id":    in.snap.Metadata.ID,
		"source_parts": in.snap.Metadata.PartitionColumns,
		"schema":       in.snap.Metadata.SchemaString,
		"partition_by": s.part,
		"order_by":     s.order,
		"column":       s.column,
		"as":           s.as,
		"average":      s.average,
		"rows":         s.rows,
		"range_us":     s.rangeUS,
		"alpha":        strconv.FormatFloat(s.alpha, 'g', -1, 64),
		"flags":        s.flags,
	})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// bucketExpr is the SQL bucket of a row: md5 over the partition values
// rendered as text (timestamps as epoch microseconds, so the session time
// zone cannot change it), NULL distinguished from every value.
func (s *maSpec) bucketExpr() string {
	if len(s.part) == 0 {
		return "0"
	}
	if s.buckets <= 1 {
		return "0"
	}
	parts := make([]string, len(s.part))
	for i, p := range s.part {
		v := "CAST(" + warehouse.QuoteIdent(p) + " AS VARCHAR)"
		if t := s.partType[p].Name; t == delta.TypeTimestamp || t == delta.TypeTimestampNTZ {
			v = "CAST(epoch_us(" + warehouse.QuoteIdent(p) + ") AS VARCHAR)"
		}
		parts[i] = "coalesce('v' || " + v + ", 'n')"
	}
	return fmt.Sprintf("CAST(md5_number_lower(concat_ws(chr(31), %s)) %% %d AS INTEGER)", strings.Join(parts, ", "), s.buckets)
}

// withBuckets is a SELECT of cols of the relation rel (a name or a
// parenthesised query) with each row's bucket as __bucket. The hash is
// computed once per distinct partition, not once per row (md5 per row cost
// more than the moving average itself), and joined back.
func (s *maSpec) withBuckets(rel string, cols []string) string {
	if len(s.part) == 0 || s.buckets <= 1 {
		return "SELECT 0 AS __bucket, " + strings.Join(quoteAll(cols), ", ") + " FROM " + rel
	}
	parts := quoteAll(s.part)
	on := make([]string, len(parts))
	for i, p := range parts {
		on[i] = "r." + p + " IS NOT DISTINCT FROM k." + p
	}
	return "SELECT k.__bucket, " + strings.Join(prefixAll("r.", quoteAll(cols)), ", ") + " FROM " + rel + " AS r JOIN (SELECT " +
		strings.Join(parts, ", ") + ", " + s.bucketExpr() + " AS __bucket FROM (SELECT DISTINCT " + strings.Join(parts, ", ") +
		" FROM " + rel + ")) AS k ON " + strings.Join(on, " AND ")
}

func quoteAll(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = warehouse.QuoteIdent(c)
	}
	return out
}

// partitionClause is "PARTITION BY a, b " or "" without partition columns.
func (s *maSpec) partitionClause() string {
	if len(s.part) == 0 {
		return ""
	}
	return "PARTITION BY " + strings.Join(quoteAll(s.part), ", ") + " "
}

// bucketFile is the table-relative path of a new file of bucket b.
func bucketFile(b int) string { return fmt.Sprintf("part-b%04d-%s.parquet", b, randid.Hex(8)) }

// fileBucket parses the bucket out of a file written by bucketFile.
func fileBucket(path string) (int, bool) {
	return fileBucketOf(path, maxBuckets)
}

// fileBucketOf parses the bucket out of a file written by bucketFile for
// a table of n buckets.
func fileBucketOf(path string, n int) (int, bool) {
	rest, ok := strings.CutPrefix(path, "part-b")
	if !ok || len(rest) < 5 || rest[4] != '-' || !strings.HasSuffix(rest, ".parquet") {
		return 0, false
	}
	b, err := strconv.Atoi(rest[:4])
	if err != nil || b < 0 || b >= n {
		return 0, false
	}
	return b, true
}

func bucketList(b []int, full bool) string {
	if full {
		return "all"
	}
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// filesByBucket groups the files of a moving-average table of n buckets
// by bucket; ok is false if a file does not follow the naming.
func filesByBucket(files []delta.Add, n int) (map[int][]delta.Add, bool) {
	out := map[int][]delta.Add{}
	for _, f := range files {
		b, ok := fileBucketOf(f.Path, n)
		if !ok {
			return nil, false
		}
		out[b] = append(out[b], f)
	}
	return out, true
}

// changedBuckets returns the buckets of the partitions of the rows of the
// given silver files (added or removed since the version gold consumed). A
// non-empty reason means they cannot be read (files cleaned up) and the
// caller must rebuild in full.
func (r *runner) changedBuckets(ctx context.Context, in *input, spec *maSpec, changed []delta.Add) ([]int, string, error) {
	rel, err := r.relation(ctx, in, changed)
	if errors.Is(err, lake.ErrNotExist) {
		return nil, fmt.Sprintf("files removed from %s are gone", in.ref), nil
	}
	if err != nil {
		return nil, "", err
	}
	q := "SELECT DISTINCT 0 AS b FROM (" + rel + ")"
	if len(spec.part) > 0 {
		parts := strings.Join(quoteAll(spec.part), ", ")
		q = "SELECT DISTINCT " + spec.bucketExpr() + " AS b FROM (SELECT DISTINCT " + parts + " FROM (" + rel + ")) ORDER BY b"
	}
	out, err := r.queryInts(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("%s: find changed partitions of %s: %w", r.ref, in.ref, err)
	}
	return out, "", nil
}

// queryInts returns the first column of a query's rows.
func (r *runner) queryInts(ctx context.Context, q string) ([]int, error) {
	rows, err := r.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var b int
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// writtenFile is a data file written to the table directory, not committed yet.
type writtenFile struct {
	path   string // relative to the table root
	bucket int
	size   int64
	sha256 string // hex, recorded in the add's tags
	rows   int64
}

// maOutput is what a computation wrote, for the commit.
type maOutput struct {
	files     []writtenFile
	removes   []delta.Add // files of the table the new ones replace
	schema    *delta.Schema
	tail      string // the new state file, table-relative; "" when no file was written
	buckets   []int  // buckets written
	compacted int    // buckets whose files were merged into one
}

// maFrame is the SQL shared by the computations.
type maFrame struct {
	spec      *maSpec
	partOrder string // part columns then sort keys, quoted
	sortKeys  string
	finalCols []string
}

func newFrame(spec *maSpec) maFrame {
	f := maFrame{spec: spec,
		partOrder: strings.Join(quoteAll(append(slices.Clone(spec.part), spec.sortKeys...)), ", "),
		sortKeys:  strings.Join(quoteAll(spec.sortKeys), ", "),
		finalCols: append(slices.Clone(spec.out), spec.as),
	}
	for _, fl := range spec.flags {
		f.finalCols = append(f.finalCols, fl.Name)
	}
	return f
}

// stateKeys selects the state's key columns (__bucket, the partition
// values, __o) from a relation with the silver column names, prefixed.
func (f maFrame) stateKeys(prefix string) []string {
	out := []string{prefix + "__bucket"}
	for i, p := range f.spec.part {
		out = append(out, prefix+warehouse.QuoteIdent(p)+" AS "+statePart(i))
	}
	return append(out, prefix+warehouse.QuoteIdent(f.spec.order)+" AS __o")
}

// stateCols are the columns of a state file after __bucket: the partition
// values, the order value, then the pass's tail columns.
func (f maFrame) stateCols() []string {
	out := make([]string, 0, len(f.spec.part)+4)
	for i := range f.spec.part {
		out = append(out, statePart(i))
	}
	return append(out, "__o", "__x", "__seq", "__last")
}

func statePart(i int) string { return "__p" + strconv.Itoa(i) }

// sameGroup is the join condition of two relations' partition values; a
// and b are "alias." prefixes, aCols and bCols their names.
func sameGroup(a string, aCols []string, b string, bCols []string) string {
	if len(aCols) == 0 {
		return "true"
	}
	on := make([]string, len(aCols))
	for i := range aCols {
		on[i] = a + warehouse.QuoteIdent(aCols[i]) + " IS NOT DISTINCT FROM " + b + warehouse.QuoteIdent(bCols[i])
	}
	return strings.Join(on, " AND ")
}

func (f maFrame) statePartCols() []string {
	out := make([]string, len(f.spec.part))
	for i := range out {
		out[i] = statePart(i)
	}
	return out
}

// probeFlags checks each flag on its own against rel, so an error names
// the flag.
func (r *runner) probeFlags(ctx context.Context, spec *maSpec, rel string) error {
	for _, fl := range spec.flags {
		probe := "SELECT CAST((" + fl.When + ") AS BOOLEAN) FROM (SELECT *, CAST(NULL AS DOUBLE) AS " + warehouse.QuoteIdent(spec.as) +
			" FROM " + rel + " LIMIT 0)"
		if _, err := r.describe(ctx, probe); err != nil {
			return fmt.Errorf("%s: flag %s: when %q: %w", r.ref, fl.Name, fl.When, err)
		}
	}
	return nil
}

// finishMA evaluates the flags over withMA (a SELECT of __bucket, the
// silver columns and the average) into a temp table and returns it, the
// output schema, the select list casting to it and the rows per bucket.
func (r *runner) finishMA(ctx context.Context, f maFrame, withMA, name string) (string, *delta.Schema, []string, map[int]int64, error) {
	flags := ""
	for _, fl := range f.spec.flags {
		flags += ", CAST((" + fl.When + ") AS BOOLEAN) AS " + warehouse.QuoteIdent(fl.Name)
	}
	out := r.tempTable(name)
	if err := r.exec(ctx, "CREATE TEMP TABLE "+out+" AS SELECT *"+flags+" FROM ("+withMA+")"); err != nil {
		return "", nil, nil, nil, fmt.Errorf("%s: compute moving average and flags: %w", r.ref, err)
	}
	cols, err := r.describe(ctx, "SELECT "+strings.Join(quoteAll(f.finalCols), ", ")+" FROM "+out)
	if err != nil {
		return "", nil, nil, nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	schema, sel, err := schemaOf(cols)
	if err != nil {
		return "", nil, nil, nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	counts, err := r.bucketCounts(ctx, out)
	if err != nil {
		return "", nil, nil, nil, err
	}
	return out, schema, sel, counts, nil
}

// computeMA recomputes the given buckets (all when nil) from the whole
// silver snapshot, writes one file per non-empty bucket and the new state
// (stateFile's rows of the other buckets plus the recomputed ones), and
// returns them with the files of gsnap they replace.
func (r *runner) computeMA(ctx context.Context, in *input, spec *maSpec, gsnap *delta.Snapshot, buckets []int, stateFile string) (*maOutput, error) {
	rel, err := r.relation(ctx, in, in.snap.Files)
	if err != nil {
		return nil, err
	}
	src := r.tempView("src")
	if err := r.exec(ctx, "CREATE TEMP VIEW "+src+" AS "+rel); err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
	}
	f := newFrame(spec)
	if r.duckdbRows(spec) && spec.buckets == 1 {
		overlap := inputBytes(in.snap.Files) >= overlapStateBytes
		return r.oneFileRowsWindow(ctx, spec, f, src, "("+rel+")", overlap, gsnap, buckets) // probes the flags only on an error
	}
	if err := r.probeFlags(ctx, spec, src); err != nil {
		return nil, err
	}

	inList := ""
	base := "(" + spec.withBuckets(src, spec.out) + ")"
	if buckets != nil {
		ids := make([]string, len(buckets))
		for i, b := range buckets {
			ids[i] = strconv.Itoa(b)
		}
		inList = "(" + strings.Join(ids, ", ") + ")"
		base = "(SELECT * FROM " + base + " WHERE __bucket IN " + inList + ")"
	}
	var withMA, state string
	if r.duckdbRows(spec) {
		withMA, state, err = r.fullRowsWindow(ctx, spec, f, base)
	} else {
		withMA, state, err = r.fullPass(ctx, in, spec, f, base)
	}
	if err != nil {
		return nil, err
	}
	out, schema, sel, counts, err := r.finishMA(ctx, f, withMA, "out")
	if err != nil {
		return nil, err
	}
	if r.duckdbRows(spec) {
		for _, n := range counts {
			r.rowsIn += n
		}
	}
	res := &maOutput{schema: schema, buckets: sortedKeys(counts)}
	if buckets != nil {
		res.buckets = buckets
	}
	for _, b := range sortedKeys(counts) {
		w, err := r.writeBucket(ctx, f, out, sel, b, counts[b], nil)
		if err != nil {
			return nil, err
		}
		res.files = append(res.files, w)
	}
	if err := r.uploadAll(ctx, res.files); err != nil {
		return nil, err
	}
	res.removes = replacedFiles(gsnap, buckets)
	if len(res.files) == 0 {
		return res, nil // no file points to a state
	}
	if buckets != nil {
		state += " UNION ALL BY NAME SELECT * FROM read_parquet(" + warehouse.QuoteString(stateFile) + ") WHERE __bucket NOT IN " + inList
	}
	if res.tail, err = r.writeState(ctx, f, state); err != nil {
		return nil, err
	}
	return res, nil
}

// fullRowsWindow computes a rows-based moving average over base with one
// DuckDB window statement; the state is each partition's last rows.
func (r *runner) fullRowsWindow(ctx context.Context, spec *maSpec, f maFrame, base string) (withMA, state string, err error) {
	x := warehouse.QuoteIdent(spec.column)
	p := spec.partitionClause()
	t := r.tempTable("base")
	q := fmt.Sprintf("CREATE TEMP TABLE %s AS SELECT *, CAST(avg(CAST(%s AS DOUBLE)) OVER (%sORDER BY %s ROWS BETWEEN %d PRECEDING AND CURRENT ROW) AS DOUBLE) AS __ma"+
		", row_number() OVER (%sORDER BY %s) AS __rk, count(*) OVER (%s) AS __cnt FROM %s",
		t, x, p, f.sortKeys, spec.rows-1, p, f.sortKeys, p, base)
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: compute moving average: %w", r.ref, err)
	}
	withMA = fmt.Sprintf("SELECT b.__bucket, %s, b.__ma AS %s FROM %s AS b",
		strings.Join(prefixAll("b.", quoteAll(spec.out)), ", "), warehouse.QuoteIdent(spec.as), t)
	state = fmt.Sprintf("SELECT %s, CAST(b.%s AS DOUBLE) AS __x, b.__rk AS __seq, b.__rk = b.__cnt AS __last FROM %s AS b WHERE b.__cnt - b.__rk < %d",
		strings.Join(f.stateKeys("b."), ", "), x, t, max(spec.rows-1, 1))
	return withMA, state, nil
}

// orderTie is the error the keyed moving average raises when two rows of
// a partition have the same order value.
const orderTie = "medallion: order_by value repeats within a partition"

// oneFileRowsWindow rebuilds a one-bucket table whose average DuckDB's
// window computes: the average and the flags go straight from silver into
// the table's one file, sorted, in one statement (no temp table, one
// sort), and the state, each partition's last rows, is read from silver by
// a second window in reverse order over the rows that can be in a tail
// (__seq is then minus the row's place from the end, which orders the
// tail as the row number does). src is the silver relation as a temp view
// of r.conn, rel the same relation as a parenthesised query: the state
// statement runs on a second connection, which does not see r.conn's temp
// objects, while the main statement runs (see docs/gold-buckets.md).
func (r *runner) oneFileRowsWindow(ctx context.Context, spec *maSpec, f maFrame, src, rel string, overlap bool, gsnap *delta.Snapshot, buckets []int) (*maOutput, error) {
	x := warehouse.QuoteIdent(spec.column)
	p := spec.partitionClause()
	flags := ""
	for _, fl := range spec.flags {
		flags += ", CAST((" + fl.When + ") AS BOOLEAN) AS " + warehouse.QuoteIdent(fl.Name)
	}
	// The average: over the order column alone when keyed (the rows of a
	// partition must then have distinct order values: a tie stops the
	// statement), else over every sort key.
	avgOver := func(keyed bool) string {
		o := warehouse.QuoteIdent(spec.order)
		if !keyed {
			return fmt.Sprintf("CAST(avg(CAST(%s AS DOUBLE)) OVER (%sORDER BY %s ROWS BETWEEN %d PRECEDING AND CURRENT ROW) AS DOUBLE)", x, p, f.sortKeys, spec.rows-1)
		}
		// The order value wrapped in a struct: the first row's lag is a
		// NULL struct, distinct from any row's, and two NULL order
		// values are a tie.
		w := p + "ORDER BY " + o
		return fmt.Sprintf("CASE WHEN lag({'o': %s}) OVER (%s) IS NOT DISTINCT FROM {'o': %s} THEN error(%s) "+
			"ELSE CAST(avg(CAST(%s AS DOUBLE)) OVER (%s ROWS BETWEEN %d PRECEDING AND CURRENT ROW) AS DOUBLE) END",
			o, w, o, warehouse.QuoteString(orderTie), x, w, spec.rows-1)
	}
	withMA := func(keyed bool) string {
		return fmt.Sprintf("SELECT *%s FROM (SELECT %s, %s AS %s FROM %s)",
			flags, strings.Join(quoteAll(spec.out), ", "), avgOver(keyed), warehouse.QuoteIdent(spec.as), src)
	}
	cols, err := r.describe(ctx, "SELECT "+strings.Join(quoteAll(f.finalCols), ", ")+" FROM ("+withMA(false)+")")
	if err != nil {
		// Name the flag at fault, if one is.
		if perr := r.probeFlags(ctx, spec, src); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	schema, sel, err := schemaOf(cols)
	if err != nil {
		return nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	dir := filepath.Join(r.scratch, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w := writtenFile{path: bucketFile(0)}
	local := filepath.Join(dir, w.path)
	// The state reads silver on its own connection while the main
	// statement runs: the two overlap on the machine's cores.
	state := r.startState(ctx, f, oneFileStateQuery(spec, f, rel), overlap)
	defer state.stop()
	// First with two sort keys (partition, order), which is the whole
	// order when no partition has two rows with the same order value (a
	// silver table's window key); a tie found in that same pass makes it
	// fail, and the statement runs again with every column as a
	// tie-breaker. Both give the same rows in the same order on keyed data.
	copyOut := func(keyed bool) (int64, error) {
		order := f.partOrder
		if keyed {
			order = strings.Join(quoteAll(append(slices.Clone(spec.part), spec.order)), ", ")
		}
		// Unique keys need no sort of the file when no reader depends
		// on its row order (Deps.Unsorted): a one-bucket table is one
		// file of a few row groups, little to prune, and the sort was
		// about a third of the statement.
		sorted := " ORDER BY " + order
		if keyed && r.deps.Unsorted {
			sorted = ""
		}
		start := time.Now()
		res, err := r.conn.ExecContext(ctx, fmt.Sprintf("COPY (SELECT %s FROM (%s)%s) TO %s %s",
			strings.Join(sel, ", "), withMA(keyed), sorted, warehouse.QuoteString(local), maParquet))
		r.log.Debug("gold statement", "ms", time.Since(start).Milliseconds(), "sql", "COPY (moving average and flags of one bucket)", "keyed", keyed, "sorted", sorted != "")
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	w.rows, err = copyOut(true)
	if err != nil && strings.Contains(err.Error(), orderTie) {
		r.log.Debug("gold: order values repeat within a partition; sorting by every column", "table", r.ref.String())
		w.rows, err = copyOut(false)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: compute moving average and flags: %w", r.ref, err)
	}
	r.rowsIn += w.rows
	out := &maOutput{schema: schema, buckets: buckets, removes: replacedFiles(gsnap, buckets)}
	if w.rows == 0 {
		if out.buckets == nil {
			out.buckets = []int{}
		}
		state.stop()
		return out, os.Remove(local) // no file points to a state
	}
	if out.buckets == nil {
		out.buckets = []int{0}
	}
	out.files = []writtenFile{w}
	// The file's upload (a copy and an fsync on a local lake) overlaps
	// the end of the state statement, which only DuckDB runs.
	uploaded := make(chan error, 1)
	go func() { uploaded <- r.uploadAll(ctx, out.files) }()
	out.tail, err = state.upload(ctx)
	if upErr := <-uploaded; upErr != nil {
		return nil, upErr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// oneFileStateQuery is the state of a one-bucket rows average read from
// silver (rel, a parenthesised query): each partition's last rows, by a
// window in reverse order over the rows that can be in a tail.
func oneFileStateQuery(spec *maSpec, f maFrame, rel string) string {
	x := warehouse.QuoteIdent(spec.column)
	p := spec.partitionClause()
	desc := make([]string, len(spec.sortKeys))
	for i, k := range spec.sortKeys {
		desc[i] = warehouse.QuoteIdent(k) + " DESC NULLS FIRST" // the exact reverse of ASC NULLS LAST
	}
	n := max(spec.rows-1, 1)
	// Only rows at or after each partition's n-th greatest order value
	// (or with a NULL one, which sorts last) can be among its last n:
	// a hash aggregate finds that bound, so the window sorts the tails
	// alone rather than the whole table.
	o := warehouse.QuoteIdent(spec.order)
	parts := strings.Join(quoteAll(spec.part), ", ")
	bound := "SELECT list_min(max(" + o + ", " + strconv.Itoa(n) + ")) AS __lo FROM " + rel
	if parts != "" {
		bound = "SELECT " + parts + ", list_min(max(" + o + ", " + strconv.Itoa(n) + ")) AS __lo FROM " + rel + " GROUP BY " + parts
	}
	tails := "SELECT s.* FROM " + rel + " AS s JOIN (" + bound + ") AS t ON " + sameGroup("s.", spec.part, "t.", spec.part) +
		" WHERE s." + o + " IS NULL OR t.__lo IS NULL OR s." + o + " >= t.__lo"
	return fmt.Sprintf("SELECT %s, CAST(b.%s AS DOUBLE) AS __x, -b.__rd AS __seq, b.__rd = 1 AS __last FROM (SELECT 0 AS __bucket, *, row_number() OVER (%sORDER BY %s) AS __rd FROM (%s)) AS b WHERE b.__rd <= %d",
		strings.Join(f.stateKeys("b."), ", "), x, p, strings.Join(desc, ", "), tails, n)
}

// fullPass computes the moving average over base with the pass: the rows
// in pass order, numbered; the pass's results join back on __rn. One
// sort: the first row of a partition is found with lag.
func (r *runner) fullPass(ctx context.Context, in *input, spec *maSpec, f maFrame, base string) (withMA, state string, err error) {
	first := "row_number() OVER w = 1"
	for _, p := range quoteAll(spec.part) {
		first += " OR lag(" + p + ") OVER w IS DISTINCT FROM " + p
	}
	t := r.tempTable("base")
	q := "CREATE TEMP TABLE " + t + " AS SELECT *, row_number() OVER w AS __rn, (" + first + ") AS __first FROM " + base +
		" WINDOW w AS (ORDER BY " + f.partOrder + ")"
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
	}
	x := warehouse.QuoteIdent(spec.column)
	ma, tail, err := r.maPass(ctx, spec, t, false, warehouse.QuoteIdent(spec.order), "CAST("+x+" AS DOUBLE)", "full")
	if err != nil {
		return "", "", err
	}
	withMA = fmt.Sprintf("SELECT b.__bucket, %s, m.ma AS %s FROM %s AS b JOIN %s AS m ON b.__rn = m.__rn",
		strings.Join(prefixAll("b.", quoteAll(spec.out)), ", "), warehouse.QuoteIdent(spec.as), t, ma)
	state = "SELECT " + strings.Join(f.stateKeys("b."), ", ") + ", s.__x, s.__seq, s.__last FROM " + tail + " AS s JOIN " + t + " AS b ON b.__rn = s.__rn"
	return withMA, state, nil
}

// replacedFiles are the files of gsnap a recomputation of buckets (all
// when nil) replaces; none when the table does not exist.
func replacedFiles(gsnap *delta.Snapshot, buckets []int) []delta.Add {
	if gsnap == nil {
		return nil
	}
	recomputed := map[int]bool{}
	for _, b := range buckets {
		recomputed[b] = true
	}
	var out []delta.Add
	for _, a := range gsnap.Files {
		if b, ok := fileBucketOf(a.Path, maxBuckets); buckets == nil || (ok && recomputed[b]) {
			out = append(out, a)
		}
	}
	return out
}

// writeBucket writes the rows of bucket b of the temp table out, merged
// with the rows of the local gold files merge (a compaction), sorted, into
// a new local file; uploadAll puts it into the table directory.
func (r *runner) writeBucket(ctx context.Context, f maFrame, out string, sel []string, b int, rows int64, merge []string) (writtenFile, error) {
	dir := filepath.Join(r.scratch, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return writtenFile{}, err
	}
	w := writtenFile{path: bucketFile(b), bucket: b, rows: rows}
	local := filepath.Join(dir, w.path)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE __bucket = %d", strings.Join(sel, ", "), out, b)
	if len(merge) > 0 {
		quoted := make([]string, len(merge))
		for i, p := range merge {
			quoted[i] = warehouse.QuoteString(p)
		}
		q = "SELECT * FROM (" + q + " UNION ALL BY NAME SELECT " + strings.Join(quoteAll(f.finalCols), ", ") +
			" FROM read_parquet([" + strings.Join(quoted, ", ") + "]))"
	}
	q = fmt.Sprintf("COPY (%s ORDER BY %s) TO %s %s", q, f.partOrder, warehouse.QuoteString(local), maParquet)
	if err := r.exec(ctx, q); err != nil {
		return w, fmt.Errorf("%s: write bucket %d: %w", r.ref, b, err)
	}
	return w, nil
}

// uploadAll puts the files writeBucket wrote into the table directory, a
// few at a time.
func (r *runner) uploadAll(ctx context.Context, files []writtenFile) error {
	dir := filepath.Join(r.scratch, "out")
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i := range files {
		eg.Go(func() error {
			up, err := r.upload(ctx, filepath.Join(dir, files[i].path), files[i].path)
			files[i].size, files[i].sha256 = up.Size, up.SHA256
			return err
		})
	}
	return eg.Wait()
}

// writeState writes the rows of query (the state columns) as a new state
// file and returns its table-relative path.
func (r *runner) writeState(ctx context.Context, f maFrame, query string) (string, error) {
	local := filepath.Join(r.scratch, "state.parquet")
	if err := r.stateCopy(ctx, r.conn, f, query, local); err != nil {
		return "", err
	}
	return r.uploadState(ctx, local)
}

// stateCopy writes the rows of query (the state columns), sorted, into the
// local file local, on the connection conn.
func (r *runner) stateCopy(ctx context.Context, conn *sql.Conn, f maFrame, query, local string) error {
	order := append([]string{"__bucket"}, f.statePartCols()...)
	q := "COPY (SELECT __bucket, " + strings.Join(quoteAll(f.stateCols()), ", ") + " FROM (" + query + ") ORDER BY " +
		strings.Join(quoteAll(order), ", ") + ", __seq) TO " + warehouse.QuoteString(local) + " (FORMAT parquet, COMPRESSION zstd)"
	start := time.Now()
	_, err := conn.ExecContext(ctx, q)
	r.log.Debug("gold statement", "ms", time.Since(start).Milliseconds(), "sql", q[:min(len(q), 100)])
	if err != nil {
		return fmt.Errorf("%s: write state: %w", r.ref, err)
	}
	return nil
}

// uploadState puts the local state file local into the table's state
// directory under a new name and returns its table-relative path.
func (r *runner) uploadState(ctx context.Context, local string) (string, error) {
	rel := stateDir + "tail-" + randid.Hex(8) + ".parquet"
	if _, err := r.upload(ctx, local, rel); err != nil {
		return "", err
	}
	return rel, nil
}

// overlapStateBytes is the silver input below which the state statement
// runs after the main one on the job's own connection instead of beside
// it. Stream mode's micro-batches over a small silver table (case 12, a few
// KB) measured gold's first 100 micro-batches at 0.7 s serially against
// 14 s overlapped: there the second connection costs far more than the
// overlap saves (why was not found). Case 4's silver (about 2.5 MB for 10M
// readings) still overlaps, where it saved 20-30 ms of about 100.
var overlapStateBytes int64 = 1 << 20

// inputBytes is the size of the data files files.
func inputBytes(files []delta.Add) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// pendingState is a state statement running on its own connection
// (startState), or, when not overlapped, one to run on the job's
// connection when its file is wanted.
type pendingState struct {
	r      *runner
	f      maFrame
	query  string
	local  string
	serial bool
	cancel context.CancelFunc
	done   chan error
	err    error
	waited bool
}

// startState starts writing the rows of query (the state columns) into a
// local file on a connection of its own, so that it runs beside the
// statement r.conn runs; query must not name r.conn's temp objects.
// Without overlap it only records the query: upload runs it on r.conn.
func (r *runner) startState(ctx context.Context, f maFrame, query string, overlap bool) *pendingState {
	ps := &pendingState{r: r, f: f, query: query, local: filepath.Join(r.scratch, "state.parquet")}
	if !overlap {
		ps.serial = true
		return ps
	}
	ctx, cancel := context.WithCancel(ctx)
	ps.cancel, ps.done = cancel, make(chan error, 1)
	go func() {
		conn, err := r.deps.DB.Conn(ctx)
		if err != nil {
			ps.done <- fmt.Errorf("%s: duckdb connection for the state: %w", r.ref, err)
			return
		}
		defer conn.Close()
		ps.done <- r.stateCopy(ctx, conn, f, query, ps.local)
	}()
	return ps
}

// wait waits for the state statement and returns its error.
func (ps *pendingState) wait() error {
	if !ps.waited {
		ps.err, ps.waited = <-ps.done, true
	}
	return ps.err
}

// stop cancels the state statement if it is still running and waits for
// it: the run no longer needs it (an error, or no rows to point to it).
func (ps *pendingState) stop() {
	if ps.serial {
		return
	}
	ps.cancel()
	ps.wait()
}

// upload waits for the state statement, then uploads its file as a new
// state file and returns the file's table-relative path.
func (ps *pendingState) upload(ctx context.Context) (string, error) {
	if ps.serial {
		if err := ps.r.stateCopy(ctx, ps.r.conn, ps.f, ps.query, ps.local); err != nil {
			return "", err
		}
		return ps.r.uploadState(ctx, ps.local)
	}
	if err := ps.wait(); err != nil {
		return "", err
	}
	return ps.r.uploadState(ctx, ps.local)
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return out
}

func sortedKeys(m map[int]int64) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func (r *runner) bucketCounts(ctx context.Context, table string) (map[int]int64, error) {
	rows, err := r.conn.QueryContext(ctx, "SELECT __bucket, count(*) FROM "+table+" GROUP BY 1")
	if err != nil {
		return nil, fmt.Errorf("%s: count rows: %w", r.ref, err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var b int
		var n int64
		if err := rows.Scan(&b, &n); err != nil {
			return nil, err
		}
		out[b] = n
	}
	return out, rows.Err()
}
