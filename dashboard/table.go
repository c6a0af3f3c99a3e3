package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// errUnknownTable is a table name the pipeline does not declare.
type errUnknownTable struct{ name string }

func (e errUnknownTable) Error() string { return fmt.Sprintf("unknown table %q", e.name) }

// errBadMeasure is a measure the table cannot plot.
type errBadMeasure struct {
	table, measure string
	valid          []string
}

func (e errBadMeasure) Error() string {
	if len(e.valid) == 0 {
		return fmt.Sprintf("table %s has no numeric column to plot", e.table)
	}
	return fmt.Sprintf("measure %q is not a numeric column of %s: want one of %s", e.measure, e.table, strings.Join(e.valid, ", "))
}

// lookup resolves a table name from the URL against the pipeline.
func (d *Dashboard) lookup(name string) (layers.TableRef, error) {
	for _, ref := range layers.Tables(d.o.Pipeline) {
		if ref.String() == name {
			return ref, nil
		}
	}
	return layers.TableRef{}, errUnknownTable{name}
}

func (d *Dashboard) tableNames() []string {
	var out []string
	for _, ref := range layers.Tables(d.o.Pipeline) {
		out = append(out, ref.String())
	}
	return out
}

// notFoundTable answers an unknown table: 404 naming it and listing the
// valid ones.
func (d *Dashboard) notFoundTable(w http.ResponseWriter, r *http.Request, name string) {
	valid := d.tableNames()
	if isAPI(r) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("unknown table %q", name), "tables": valid})
		return
	}
	d.errorPage(w, r, http.StatusNotFound, "Unknown table",
		fmt.Sprintf("The pipeline has no table %q. These are its tables:", name), valid)
}

type column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

type commitRow struct {
	Version   int64     `json:"version"`
	Time      time.Time `json:"time"`
	Operation string    `json:"operation"`
	RowsIn    string    `json:"rows_in"`
	RowsOut   string    `json:"rows_out"`
}

type sample struct {
	Columns []string `json:"columns"`
	Numeric []bool   `json:"-"` // per column: right-align it
	Rows    [][]any  `json:"rows"`
	Batch   string   `json:"batch,omitempty"` // the ?batch= filter applied
	Order   string   `json:"order"`           // how the rows are sorted, in words
}

// tablePage is the data of /tables/{table}.
type tablePage struct {
	tableSummary
	Schema   []column    `json:"schema"`
	History  []commitRow `json:"history"`
	Sample   *sample     `json:"sample,omitempty"`
	Series   bool        `json:"time_series"`
	Measures []string    `json:"measures,omitempty"`
	Measure  string      `json:"measure,omitempty"`
	GroupBy  []string    `json:"group_by,omitempty"`
	Flags    []string    `json:"flags,omitempty"`
	Chart    *chartView  `json:"-"`
}

func (p tablePage) title() string { return p.Table }

func (d *Dashboard) tableData(ctx context.Context, ref layers.TableRef, q url.Values, withChart bool) (*tablePage, error) {
	snap, err := d.snaps.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	pg := &tablePage{tableSummary: summarize(ref, snap, d.o.Now())}
	if snap == nil {
		return pg, nil
	}
	schema, err := snap.Schema()
	if err != nil {
		return nil, fmt.Errorf("%s version %d: %w", ref, snap.Version, err)
	}
	for _, f := range schema.Fields {
		pg.Schema = append(pg.Schema, column{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable})
	}
	commits, err := d.history.get(ref, snap.Version, func() ([]delta.CommitInfo, error) {
		c, err := delta.Open(d.o.Store, ref.Dir()).History(ctx, historyRows)
		if err != nil && !errors.Is(err, delta.ErrNoTable) {
			return nil, fmt.Errorf("history of %s: %w", ref, err)
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range commits {
		pg.History = append(pg.History, commitRow{
			Version: c.Version, Time: time.UnixMilli(c.Timestamp).UTC(), Operation: c.Operation,
			// Rows in: gold writes rows_in, bronze rows_read, silver
			// Delta's numSourceRows (as `medallion history` reads them).
			RowsIn: metric(c, "rows_in", "rows_read", "numSourceRows"), RowsOut: metric(c, "numOutputRows"),
		})
	}

	ti := newTableInfo(d.o.Pipeline, ref, schema)
	pg.Series, pg.Measures, pg.GroupBy, pg.Flags = ti.series, ti.numeric, ti.groupBy, ti.flags
	if ti.series {
		m, err := pickMeasure(ti, q.Get("measure"))
		if err != nil {
			return nil, err
		}
		pg.Measure = m
	}
	batch := q.Get("batch")
	if batch != "" && ti.batchCol == "" {
		return nil, fmt.Errorf("table %s has no batch column to filter on (batch_id, batch or _batch_id)", ref)
	}
	err = d.rd.with(ctx, ref, snap.Version, func(db *sql.DB) error {
		s, err := readSample(ctx, db, ti, batch)
		if err != nil {
			return err
		}
		pg.Sample = s
		if withChart && ti.series && pg.Measure != "" {
			sd, err := readSeries(ctx, db, ti, pg.Measure)
			if err != nil {
				return err
			}
			sd.Version = snap.Version
			pg.Chart = layoutChart(sd, etag(snap.Version, pg.Measure))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s version %d: %w", ref, snap.Version, err)
	}
	return pg, nil
}

// metric reads a row count from a commit: our own medallion map first,
// then Delta's standard operationMetrics.
func metric(c delta.CommitInfo, keys ...string) string {
	for _, key := range keys {
		if v, ok := c.Medallion[key]; ok {
			return fmt.Sprint(v)
		}
		if v, ok := c.OperationMetrics[key]; ok {
			return v
		}
	}
	return "-"
}

func pickMeasure(ti *tableInfo, m string) (string, error) {
	if m == "" {
		if ti.measure == "" {
			return "", nil
		}
		return ti.measure, nil
	}
	if !slices.Contains(ti.numeric, m) {
		return "", errBadMeasure{ti.ref.String(), m, ti.numeric}
	}
	return m, nil
}

// plainTypes are read as they are; every other column is cast to text for
// the sample (decimals, nested types).
var plainTypes = map[string]bool{
	delta.TypeString: true, delta.TypeLong: true, delta.TypeInteger: true, delta.TypeShort: true,
	delta.TypeByte: true, delta.TypeFloat: true, delta.TypeDouble: true, delta.TypeBoolean: true,
	delta.TypeTimestamp: true, delta.TypeTimestampNTZ: true, delta.TypeDate: true,
}

func readSample(ctx context.Context, db *sql.DB, ti *tableInfo, batch string) (*sample, error) {
	s := &sample{Batch: batch, Order: "as stored"}
	var sel []string
	for _, f := range ti.schema.Fields {
		s.Columns = append(s.Columns, f.Name)
		s.Numeric = append(s.Numeric, isNumeric(f.Type))
		c := warehouse.QuoteIdent(f.Name)
		if !plainTypes[f.Type.Name] {
			c = "CAST(" + c + " AS VARCHAR)"
		}
		sel = append(sel, c)
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + view(ti.ref)
	if batch != "" {
		q += " WHERE " + warehouse.QuoteIdent(ti.batchCol) + " = " + warehouse.QuoteString(batch)
	}
	if ti.series {
		order := []string{warehouse.QuoteIdent(windowStart) + " DESC"}
		for _, g := range ti.groupBy {
			order = append(order, warehouse.QuoteIdent(g))
		}
		q += " ORDER BY " + strings.Join(order, ", ")
		s.Order = "newest window first"
	} else if f, ok := ti.schema.Field("line"); ok && isNumeric(f.Type) && ti.ref == layers.Quarantine() {
		q += ` ORDER BY "quarantined_at" DESC, "source_file", "line"`
		s.Order = "newest first"
	}
	q += fmt.Sprintf(" LIMIT %d", sampleRows)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, len(s.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		s.Rows = append(s.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	return s, nil
}

// seriesData is the JSON of /api/tables/{table}/series.
type seriesData struct {
	Table   string        `json:"table"`
	Version int64         `json:"version"`
	Measure string        `json:"measure"`
	Flags   []string      `json:"flags"`
	Groups  []seriesGroup `json:"groups"`
}

type seriesGroup struct {
	Group  string        `json:"group"`
	Points []seriesPoint `json:"points"`
}

type seriesPoint struct {
	T       string   `json:"t"` // RFC 3339
	V       float64  `json:"v"`
	Flagged bool     `json:"flagged"`
	Why     []string `json:"flags,omitempty"` // the flags that are set

	t time.Time
}

// seriesSQL selects the points of a chart: the maxGroups groups with the
// most recent window, and each one's maxPoints most recent windows with a
// value, oldest first.
func seriesSQL(ti *tableInfo, measure string) string {
	group := "'all'"
	if len(ti.groupBy) > 0 {
		var parts []string
		for _, g := range ti.groupBy {
			parts = append(parts, "coalesce(CAST("+warehouse.QuoteIdent(g)+" AS VARCHAR), '∅')")
		}
		group = "concat_ws(' / ', " + strings.Join(parts, ", ") + ")"
	}
	flagSel := ""
	for i, f := range ti.flags {
		flagSel += fmt.Sprintf(", coalesce(%s, false) AS __f%d", warehouse.QuoteIdent(f), i)
	}
	return fmt.Sprintf(`WITH p AS (
  SELECT %s AS __g, CAST(%s AS TIMESTAMPTZ) AS __t, CAST(%s AS DOUBLE) AS __v%s
  FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL AND isfinite(CAST(%s AS DOUBLE))
), g AS (
  SELECT __g FROM p GROUP BY __g ORDER BY max(__t) DESC, __g LIMIT %d
), r AS (
  SELECT p.*, row_number() OVER (PARTITION BY __g ORDER BY __t DESC) AS __rn
  FROM p WHERE __g IN (SELECT __g FROM g)
)
SELECT * EXCLUDE (__rn) FROM r WHERE __rn <= %d ORDER BY __g, __t`,
		group, warehouse.QuoteIdent(windowStart), warehouse.QuoteIdent(measure), flagSel,
		view(ti.ref), warehouse.QuoteIdent(windowStart), warehouse.QuoteIdent(measure), warehouse.QuoteIdent(measure),
		maxGroups, maxPoints)
}

func readSeries(ctx context.Context, db *sql.DB, ti *tableInfo, measure string) (*seriesData, error) {
	sd := &seriesData{Table: ti.ref.String(), Measure: measure, Flags: ti.flags, Groups: []seriesGroup{}}
	if sd.Flags == nil {
		sd.Flags = []string{}
	}
	rows, err := db.QueryContext(ctx, seriesSQL(ti, measure))
	if err != nil {
		return nil, fmt.Errorf("series of %s: %w", measure, err)
	}
	defer rows.Close()
	flags := make([]bool, len(ti.flags))
	for rows.Next() {
		var g string
		var p seriesPoint
		dest := []any{&g, &p.t, &p.V}
		for i := range flags {
			dest = append(dest, &flags[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("series of %s: %w", measure, err)
		}
		p.t = p.t.UTC()
		p.T = p.t.Format(time.RFC3339)
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
		last.Points = append(last.Points, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series of %s: %w", measure, err)
	}
	return sd, nil
}

// etag names a series: the table version and the measure.
func etag(version int64, measure string) string {
	return fmt.Sprintf(`"v%d-%s"`, version, url.QueryEscape(measure))
}

func (d *Dashboard) tableError(w http.ResponseWriter, r *http.Request, name string, err error) {
	var unknown errUnknownTable
	var bad errBadMeasure
	switch {
	case errors.As(err, &unknown):
		d.notFoundTable(w, r, name)
	case errors.As(err, &bad):
		if isAPI(r) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": bad.Error(), "measures": bad.valid})
			return
		}
		d.errorPage(w, r, http.StatusBadRequest, "Bad measure", bad.Error(), nil)
	default:
		d.fail(w, r, err)
	}
}

func (d *Dashboard) serveTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	ref, err := d.lookup(name)
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	pg, err := d.tableData(r.Context(), ref, r.URL.Query(), true)
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	d.render(w, r, http.StatusOK, "table.html", pg)
}

func (d *Dashboard) apiTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	ref, err := d.lookup(name)
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	pg, err := d.tableData(r.Context(), ref, r.URL.Query(), false)
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// apiSeries answers the chart's poll. The ETag is the table version and
// the measure, known from the cached snapshot: an unchanged table answers
// 304 without touching DuckDB.
func (d *Dashboard) apiSeries(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	ref, err := d.lookup(name)
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	ctx := r.Context()
	snap, err := d.snaps.get(ctx, ref)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if snap == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("table %s has no commits yet", ref)})
		return
	}
	schema, err := snap.Schema()
	if err != nil {
		d.fail(w, r, fmt.Errorf("%s version %d: %w", ref, snap.Version, err))
		return
	}
	ti := newTableInfo(d.o.Pipeline, ref, schema)
	if !ti.series {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("table %s is not a time series (it has no %s column)", ref, windowStart))
		return
	}
	measure, err := pickMeasure(ti, r.URL.Query().Get("measure"))
	if err == nil && measure == "" {
		err = errBadMeasure{table: ref.String()}
	}
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	tag := etag(snap.Version, measure)
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var sd *seriesData
	err = d.rd.with(ctx, ref, snap.Version, func(db *sql.DB) error {
		sd, err = readSeries(ctx, db, ti, measure)
		return err
	})
	if err != nil {
		d.fail(w, r, fmt.Errorf("read %s version %d: %w", ref, snap.Version, err))
		return
	}
	sd.Version = snap.Version
	writeJSON(w, http.StatusOK, sd)
}

// etagMatch reads an If-None-Match list ("*" or comma-separated tags, weak
// or not).
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
