package gold

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Layout of moving-average tables.
const (
	// bucketCount is how many hash buckets the partitions are spread over;
	// each bucket is one file, rewritten when one of its partitions changes.
	bucketCount = 32
	// maLayout names the bucketing and file naming; changing either must
	// change it, which rebuilds existing tables in full.
	maLayout = "gold-ma-v1:md5-lower-64:32"

	confDefinition = "medallion.gold.definition" // hash of everything the rows depend on
	confKind       = "medallion.gold.kind"
	confLayout     = "medallion.gold.layout"
	confSource     = "medallion.gold.source"

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
}

type flagSpec struct {
	Name string `json:"name"`
	When string `json:"when"`
}

// maSpec checks the gold definition against the silver table and fills in
// the defaults. Errors name the gold table and the field.
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
	if !isNumeric(cf.Type) {
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

func isNumeric(t delta.DataType) bool {
	switch t.Name {
	case delta.TypeLong, delta.TypeInteger, delta.TypeShort, delta.TypeByte, delta.TypeFloat, delta.TypeDouble:
		return true
	}
	_, _, ok := t.Decimal()
	return ok
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
	parts := make([]string, len(s.part))
	for i, p := range s.part {
		v := "CAST(" + warehouse.QuoteIdent(p) + " AS VARCHAR)"
		if t := s.partType[p].Name; t == delta.TypeTimestamp || t == delta.TypeTimestampNTZ {
			v = "CAST(epoch_us(" + warehouse.QuoteIdent(p) + ") AS VARCHAR)"
		}
		parts[i] = "coalesce('v' || " + v + ", 'n')"
	}
	return fmt.Sprintf("CAST(md5_number_lower(concat_ws(chr(31), %s)) %% %d AS INTEGER)", strings.Join(parts, ", "), bucketCount)
}

// withBuckets is a SELECT of cols of the relation rel (a name or a
// parenthesised query) with each row's bucket as __bucket. The hash is
// computed once per distinct partition, not once per row (md5 per row cost
// more than the moving average itself), and joined back.
func (s *maSpec) withBuckets(rel string, cols []string) string {
	if len(s.part) == 0 {
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
func bucketFile(b int) string { return fmt.Sprintf("part-b%04d-%s.parquet", b, randomHex(8)) }

// fileBucket parses the bucket out of a file written by bucketFile.
func fileBucket(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "part-b")
	if !ok || len(rest) < 5 || rest[4] != '-' || !strings.HasSuffix(rest, ".parquet") {
		return 0, false
	}
	b, err := strconv.Atoi(rest[:4])
	if err != nil || b < 0 || b >= bucketCount {
		return 0, false
	}
	return b, true
}

// runMovingAverage builds a moving-average table: see the package doc.
func (r *runner) runMovingAverage(ctx context.Context) (Stats, error) {
	g := r.gold
	if g.From == "" {
		return Stats{}, fmt.Errorf("%s: from (the silver table) is not set", r.ref)
	}
	srcRef := layers.TableRef{Layer: layers.Silver, Name: g.From}
	in, err := r.openInput(ctx, srcRef)
	if err != nil {
		return Stats{}, err
	}
	spec, err := r.maSpec(in)
	if err != nil {
		return Stats{}, err
	}
	def := spec.definition(in)
	appID := "gold/" + g.Name
	sv := in.snap.Version
	st := Stats{Table: r.ref, Kind: KindMovingAverage, Inputs: map[string]int64{srcRef.String(): sv}, Version: -1}

	gsnap, err := snapshotOrNil(ctx, r.tbl)
	if err != nil {
		return st, fmt.Errorf("%s: read table: %w", r.ref, err)
	}
	var buckets []int // nil with full: every bucket
	full, reason := false, ""
	switch {
	case gsnap == nil:
		full, reason = true, "first build"
	case gsnap.Metadata.Configuration[confDefinition] != def:
		full, reason = true, "the gold definition, the silver schema or the file layout changed"
	default:
		st.Version = gsnap.Version
		consumed, ok := gsnap.TxnVersion(appID)
		switch {
		case !ok:
			full, reason = true, "no record of the silver version consumed"
		case consumed == sv:
			st.Mode, st.Reason = ModeSkipped, fmt.Sprintf("%s is still at version %d", srcRef, sv)
			return st, nil
		case consumed > sv:
			full, reason = true, fmt.Sprintf("%s is at version %d, before version %d that gold consumed (recreated?)", srcRef, sv, consumed)
		default:
			if _, ok := filesByBucket(gsnap.Files); !ok {
				full, reason = true, "the table has files this version did not write"
				break
			}
			buckets, reason, err = r.changedBuckets(ctx, in, consumed, spec)
			if err != nil {
				return st, err
			}
			if reason != "" {
				full = true
			} else if len(buckets) == 0 {
				st.Mode = ModeSkipped
				st.Reason = fmt.Sprintf("no data changed in %s between versions %d and %d", srcRef, consumed, sv)
				return st, nil
			}
		}
	}
	if full {
		buckets = nil
		st.Mode, st.Reason = ModeFull, reason
	} else {
		st.Mode = ModeIncremental
		st.Reason = fmt.Sprintf("%d partition bucket(s) changed in %s", len(buckets), srcRef)
	}
	r.log.Debug("gold moving average", "mode", st.Mode, "reason", st.Reason, "silver_version", sv)

	written, schema, err := r.computeMA(ctx, in, spec, buckets)
	if err != nil {
		return st, err
	}

	// Replace the files of the recomputed buckets.
	now := r.deps.Now()
	recomputed := map[int]bool{}
	for _, b := range buckets {
		recomputed[b] = true
	}
	var removes []delta.Remove
	if gsnap != nil {
		for _, f := range gsnap.Files {
			b, ok := fileBucket(f.Path)
			if full || (ok && recomputed[b]) {
				removes = append(removes, f.Remove(now.UnixMilli(), true))
			}
		}
	}
	adds := make([]delta.Add, len(written))
	var rowsOut int64
	for i, w := range written {
		adds[i] = delta.Add{Path: w.path, Size: w.size, ModificationTime: now.UnixMilli(), DataChange: true, Stats: fileStats(w.rows)}
		rowsOut += w.rows
	}
	meta := delta.Metadata{
		SchemaString: schema.String(),
		Configuration: map[string]string{
			confDefinition: def,
			confKind:       string(KindMovingAverage),
			confLayout:     maLayout,
			confSource:     srcRef.String(),
		},
	}
	nb := len(buckets)
	if full {
		nb = bucketCount
		if len(spec.part) == 0 {
			nb = 1
		}
	}
	info := delta.CommitInfo{
		Operation: "WRITE",
		OperationParameters: map[string]any{
			"mode":    "Overwrite",
			"gold":    string(st.Mode),
			"source":  fmt.Sprintf("%s@%d", srcRef, sv),
			"buckets": bucketList(buckets, full),
		},
		OperationMetrics: map[string]string{
			"numFiles":        strconv.Itoa(len(adds)),
			"numAddedFiles":   strconv.Itoa(len(adds)),
			"numRemovedFiles": strconv.Itoa(len(removes)),
			"numOutputRows":   strconv.FormatInt(rowsOut, 10),
		},
		Medallion: map[string]any{
			"rows_in":        r.rowsIn,
			"mode":           string(st.Mode),
			"reason":         st.Reason,
			"input_versions": st.Inputs,
		},
	}
	snap, err := r.commit(ctx, gsnap, meta, delta.Commit{
		Adds:    adds,
		Removes: removes,
		Txns:    []delta.Txn{{AppID: appID, Version: sv, LastUpdated: now.UnixMilli()}},
		Info:    info,
	})
	if err != nil {
		return st, err
	}
	st.Version = snap.Version
	st.Buckets = nb
	st.FilesAdded, st.FilesRemoved = len(adds), len(removes)
	st.RowsWritten, st.RowsIn = rowsOut, r.rowsIn
	return st, nil
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

// filesByBucket groups a moving-average table's files by bucket; ok is
// false if a file does not follow the naming.
func filesByBucket(files []delta.Add) (map[int][]delta.Add, bool) {
	out := map[int][]delta.Add{}
	for _, f := range files {
		b, ok := fileBucket(f.Path)
		if !ok {
			return nil, false
		}
		out[b] = append(out[b], f)
	}
	return out, true
}

// changedBuckets returns the buckets of the partitions whose silver rows
// changed between version from and the snapshot of in: the buckets of every
// row of every file added or removed in between. A non-empty reason means
// the change cannot be worked out (history or files cleaned up) and the
// caller must rebuild in full.
func (r *runner) changedBuckets(ctx context.Context, in *input, from int64, spec *maSpec) ([]int, string, error) {
	old, err := in.tbl.SnapshotAt(ctx, from)
	if errors.Is(err, delta.ErrNoVersion) || errors.Is(err, lake.ErrNotExist) {
		return nil, fmt.Sprintf("the log of %s no longer has version %d", in.ref, from), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: read %s at version %d: %w", r.ref, in.ref, from, err)
	}
	if old.Metadata.SchemaString != in.snap.Metadata.SchemaString || !slices.Equal(old.Metadata.PartitionColumns, in.snap.Metadata.PartitionColumns) {
		return nil, fmt.Sprintf("the schema of %s changed since version %d", in.ref, from), nil
	}
	before := make(map[string]bool, len(old.Files))
	for _, f := range old.Files {
		before[f.Path] = true
	}
	now := make(map[string]bool, len(in.snap.Files))
	var changed []delta.Add
	for _, f := range in.snap.Files {
		now[f.Path] = true
		if !before[f.Path] {
			changed = append(changed, f)
		}
	}
	for _, f := range old.Files {
		if !now[f.Path] {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return nil, "", nil
	}
	rel, err := r.relation(ctx, in, changed)
	if errors.Is(err, lake.ErrNotExist) {
		return nil, fmt.Sprintf("files removed from %s since version %d are gone", in.ref, from), nil
	}
	if err != nil {
		return nil, "", err
	}
	q := "SELECT DISTINCT 0 AS b FROM (" + rel + ")"
	if len(spec.part) > 0 {
		parts := strings.Join(quoteAll(spec.part), ", ")
		q = "SELECT DISTINCT " + spec.bucketExpr() + " AS b FROM (SELECT DISTINCT " + parts + " FROM (" + rel + ")) ORDER BY b"
	}
	rows, err := r.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("%s: find changed partitions of %s: %w", r.ref, in.ref, err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var b int
		if err := rows.Scan(&b); err != nil {
			return nil, "", err
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("%s: find changed partitions of %s: %w", r.ref, in.ref, err)
	}
	return out, "", nil
}

// writtenFile is a data file written to the table directory, not committed yet.
type writtenFile struct {
	path   string // relative to the table root
	bucket int
	size   int64
	rows   int64
}

// computeMA recomputes the given buckets (all when nil) from the whole
// silver snapshot, writes one file per non-empty bucket into the table
// directory and returns them with the output schema.
func (r *runner) computeMA(ctx context.Context, in *input, spec *maSpec, buckets []int) ([]writtenFile, *delta.Schema, error) {
	rel, err := r.relation(ctx, in, in.snap.Files)
	if err != nil {
		return nil, nil, err
	}
	src := r.tempView("src")
	if err := r.exec(ctx, "CREATE TEMP VIEW "+src+" AS "+rel); err != nil {
		return nil, nil, fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
	}
	// Check each flag on its own first, so an error names the flag.
	for _, fl := range spec.flags {
		probe := "SELECT CAST((" + fl.When + ") AS BOOLEAN) FROM (SELECT *, CAST(NULL AS DOUBLE) AS " + warehouse.QuoteIdent(spec.as) +
			" FROM " + src + " LIMIT 0)"
		if _, err := r.describe(ctx, probe); err != nil {
			return nil, nil, fmt.Errorf("%s: flag %s: when %q: %w", r.ref, fl.Name, fl.When, err)
		}
	}
	partOrder := strings.Join(quoteAll(append(slices.Clone(spec.part), spec.sortKeys...)), ", ")
	sortKeys := strings.Join(quoteAll(spec.sortKeys), ", ")
	x := warehouse.QuoteIdent(spec.column)

	where := ""
	if buckets != nil {
		ids := make([]string, len(buckets))
		for i, b := range buckets {
			ids[i] = strconv.Itoa(b)
		}
		where = " WHERE __bucket IN (" + strings.Join(ids, ", ") + ")"
	}
	// Rows of the recomputed buckets; EMA needs them twice (a Go pass in
	// order, then the join back), so it materialises them with their order.
	base := "(" + spec.withBuckets(src, spec.out) + ")"
	if buckets != nil {
		base = "(SELECT * FROM " + base + where + ")"
	}
	if spec.average == avgEMA {
		t := r.tempTable("base")
		q := "CREATE TEMP TABLE " + t + " AS SELECT *, row_number() OVER (ORDER BY " + partOrder + ") AS __rn" +
			", row_number() OVER (" + spec.partitionClause() + "ORDER BY " + sortKeys + ") = 1 AS __first FROM " + base
		if err := r.exec(ctx, q); err != nil {
			return nil, nil, fmt.Errorf("%s: read %s: %w", r.ref, in.ref, err)
		}
		base = t
	}

	var withMA string
	bcols := "b.__bucket, " + strings.Join(prefixAll("b.", quoteAll(spec.out)), ", ")
	switch spec.average {
	case avgRows:
		withMA = fmt.Sprintf("SELECT %s, CAST(avg(b.%s) OVER (%sORDER BY %s ROWS BETWEEN %d PRECEDING AND CURRENT ROW) AS DOUBLE) AS %s FROM %s AS b",
			bcols, x, spec.partitionClause(), sortKeys, spec.rows-1, warehouse.QuoteIdent(spec.as), base)
	case avgRange:
		withMA = fmt.Sprintf("SELECT %s, CAST(avg(b.%s) OVER (%sORDER BY %s RANGE BETWEEN to_microseconds(%d) PRECEDING AND CURRENT ROW) AS DOUBLE) AS %s FROM %s AS b",
			bcols, x, spec.partitionClause(), warehouse.QuoteIdent(spec.order), spec.rangeUS-1, warehouse.QuoteIdent(spec.as), base)
	case avgEMA:
		ema, err := r.emaPass(ctx, base, x, spec.alpha)
		if err != nil {
			return nil, nil, err
		}
		withMA = fmt.Sprintf("SELECT %s, e.ema AS %s FROM %s AS b JOIN %s AS e ON b.__rn = e.__rn", bcols, warehouse.QuoteIdent(spec.as), base, ema)
	}
	flags := ""
	for _, f := range spec.flags {
		flags += ", CAST((" + f.When + ") AS BOOLEAN) AS " + warehouse.QuoteIdent(f.Name)
	}
	out := r.tempTable("out")
	if err := r.exec(ctx, "CREATE TEMP TABLE "+out+" AS SELECT *"+flags+" FROM ("+withMA+")"); err != nil {
		return nil, nil, fmt.Errorf("%s: compute moving average and flags: %w", r.ref, err)
	}

	finalCols := append(slices.Clone(spec.out), spec.as)
	for _, f := range spec.flags {
		finalCols = append(finalCols, f.Name)
	}
	cols, err := r.describe(ctx, "SELECT "+strings.Join(quoteAll(finalCols), ", ")+" FROM "+out)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	schema, sel, err := schemaOf(cols)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	counts, err := r.bucketCounts(ctx, out)
	if err != nil {
		return nil, nil, err
	}
	r.rowsIn = 0
	for _, n := range counts {
		r.rowsIn += n
	}
	dir := filepath.Join(r.scratch, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	var files []writtenFile
	for _, b := range sortedKeys(counts) {
		w := writtenFile{path: bucketFile(b), bucket: b, rows: counts[b]}
		local := filepath.Join(dir, w.path)
		q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE __bucket = %d ORDER BY %s) TO %s (FORMAT parquet, COMPRESSION zstd)",
			strings.Join(sel, ", "), out, b, partOrder, warehouse.QuoteString(local))
		if err := r.exec(ctx, q); err != nil {
			return nil, nil, fmt.Errorf("%s: write bucket %d: %w", r.ref, b, err)
		}
		files = append(files, w)
	}
	if err := r.uploadAll(ctx, dir, files); err != nil {
		return nil, nil, err
	}
	return files, schema, nil
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

// uploadAll puts the written files into the table directory, a few at a time.
func (r *runner) uploadAll(ctx context.Context, dir string, files []writtenFile) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i := range files {
		eg.Go(func() error {
			n, err := r.upload(ctx, filepath.Join(dir, files[i].path), files[i].path)
			files[i].size = n
			return err
		})
	}
	return eg.Wait()
}

// emaPass computes the exponential moving average of column x of the temp
// table base (with __rn, the global order, and __first, the first row of a
// partition) in Go, in __rn order, and loads it into a temp table
// (__rn, ema). float64 arithmetic in a fixed order makes it exact and
// deterministic; floats cross into DuckDB as shortest round-trip text.
func (r *runner) emaPass(ctx context.Context, base, x string, alpha float64) (string, error) {
	path := filepath.Join(r.scratch, "ema.csv")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rows, err := r.conn.QueryContext(ctx, "SELECT __rn, __first, CAST("+x+" AS DOUBLE) FROM "+base+" ORDER BY __rn")
	if err != nil {
		return "", fmt.Errorf("%s: exponential moving average: %w", r.ref, err)
	}
	var (
		rn    int64
		first bool
		v     sql.NullFloat64
		prev  float64
		have  bool
		buf   []byte
	)
	for rows.Next() {
		if err := rows.Scan(&rn, &first, &v); err != nil {
			rows.Close()
			return "", fmt.Errorf("%s: exponential moving average: %w", r.ref, err)
		}
		if first {
			have = false
		}
		if v.Valid {
			if have {
				prev = alpha*v.Float64 + (1-alpha)*prev
			} else {
				prev, have = v.Float64, true
			}
		}
		buf = strconv.AppendInt(buf[:0], rn, 10)
		buf = append(buf, ',')
		if have {
			buf = appendFloat(buf, prev)
		}
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return "", fmt.Errorf("%s: exponential moving average: %w", r.ref, err)
	}
	rows.Close()
	if err := w.Flush(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	ema := r.tempTable("ema")
	q := "CREATE TEMP TABLE " + ema + " AS SELECT * FROM read_csv(" + warehouse.QuoteString(path) +
		", header = false, auto_detect = false, delim = ',', quote = '', escape = '', columns = {'__rn': 'BIGINT', 'ema': 'DOUBLE'})"
	if err := r.exec(ctx, q); err != nil {
		return "", fmt.Errorf("%s: load exponential moving average: %w", r.ref, err)
	}
	return ema, nil
}

// appendFloat writes v so that DuckDB parses back exactly the same float64.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "nan"...)
	case math.IsInf(v, 1):
		return append(b, "inf"...)
	case math.IsInf(v, -1):
		return append(b, "-inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
