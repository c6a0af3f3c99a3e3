package dashboard

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
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
	// TimeColumns are the timestamp columns a chart can run along, the
	// default (TimeColumn) first.
	TimeColumns []string   `json:"time_columns,omitempty"`
	TimeColumn  string     `json:"time_column,omitempty"`
	GroupBy     []string   `json:"group_by,omitempty"`
	Flags       []string   `json:"flags,omitempty"`
	Chart       *chartView `json:"-"`
	// Filter is the quarantine's filter (bronze._quarantine only).
	Filter *quarantineFilter `json:"filter,omitempty"`
}

func (p tablePage) title() string { return p.Table }

// tableData is the data of a table's page: summary, schema, history,
// a sample of rows and, withChart, the first chart.
func (d *Dashboard) tableData(ctx context.Context, ref layers.TableRef, q url.Values, withChart bool) (*tablePage, error) {
	snap, err := d.snaps.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	pg := &tablePage{tableSummary: summarize(ref, snap, d.o.Now(), d.o.Pipeline.Maintenance.TargetFileSize)}
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
	if pg.History, err = d.tableHistory(ctx, ref, snap.Version); err != nil {
		return nil, err
	}

	ti := newTableInfo(d.o.Pipeline, ref, schema)
	pg.Series, pg.Measures, pg.GroupBy, pg.Flags = ti.series, ti.numeric, ti.groupBy, ti.flags
	pg.TimeColumns, pg.TimeColumn = ti.timeCols, ti.timeCol
	if c := q.Get("time"); c != "" && slices.Contains(ti.timeCols, c) {
		pg.TimeColumn = c
	}
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
	var filter []string
	if ref == layers.Quarantine() {
		f, err := parseQuarantineFilter(q)
		if err != nil {
			return nil, err
		}
		f.col = quarantineColumn(ti.schema)
		pg.Filter, filter = f, f.where()
	}
	err = d.rd.with(ctx, ref, snap.Version, func(db *sql.DB) error {
		if pg.Filter != nil {
			if err := pg.Filter.readOptions(ctx, db, view(ref), filter); err != nil {
				return err
			}
		}
		s, err := readSample(ctx, db, ti, batch, filter)
		if err != nil {
			return err
		}
		pg.Sample = s
		if withChart && ti.series && pg.Measure != "" {
			sp := seriesParams(q)
			if !sp.Has("width") {
				sp.Set("width", fmt.Sprint(firstChartWidth))
			}
			sq, err := parseSeriesQuery(ti, sp)
			if err != nil {
				return err
			}
			sd, err := readSeries(ctx, db, ti, sq)
			if err != nil {
				return err
			}
			sd.Version = snap.Version
			pg.Chart = layoutChart(sd, "")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s version %d: %w", ref, snap.Version, err)
	}
	return pg, nil
}

// tableHistory is the table's recent commits as the page lists them.
func (d *Dashboard) tableHistory(ctx context.Context, ref layers.TableRef, version int64) ([]commitRow, error) {
	commits, err := d.history.get(ref, version, func() ([]delta.CommitInfo, error) {
		c, err := delta.Open(d.o.Store, ref.Dir()).History(ctx, historyRows)
		if err != nil && !errors.Is(err, delta.ErrNoTable) {
			return nil, fmt.Errorf("history of %s: %w", ref, err)
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	var rows []commitRow
	for _, c := range commits {
		rows = append(rows, commitRow{
			Version: c.Version, Time: time.UnixMilli(c.Timestamp).UTC(), Operation: c.Operation,
			// Rows in: gold writes rows_in, bronze rows_read, silver
			// Delta's numSourceRows (as `medallion history` reads them).
			RowsIn: c.Metric("rows_in", "rows_read", "numSourceRows"), RowsOut: c.Metric("numOutputRows"),
		})
	}
	return rows, nil
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

func readSample(ctx context.Context, db *sql.DB, ti *tableInfo, batch string, filter []string) (*sample, error) {
	s := &sample{Batch: batch, Order: "as stored"}
	var sel []string
	for _, f := range ti.schema.Fields {
		s.Columns = append(s.Columns, f.Name)
		s.Numeric = append(s.Numeric, f.Type.IsNumeric())
		c := warehouse.QuoteIdent(f.Name)
		if !plainTypes[f.Type.Name] {
			c = "CAST(" + c + " AS VARCHAR)"
		}
		sel = append(sel, c)
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + view(ti.ref)
	if batch != "" {
		filter = append([]string{warehouse.QuoteIdent(ti.batchCol) + " = " + warehouse.QuoteString(batch)}, filter...)
	}
	if len(filter) > 0 {
		q += " WHERE " + strings.Join(filter, " AND ")
	}
	if ti.windowed {
		order := []string{warehouse.QuoteIdent(windowStart) + " DESC"}
		for _, g := range ti.groupBy {
			order = append(order, warehouse.QuoteIdent(g))
		}
		q += " ORDER BY " + strings.Join(order, ", ")
		s.Order = "newest window first"
	} else if f, ok := ti.schema.Field("line"); ok && f.Type.IsNumeric() && ti.ref == layers.Quarantine() {
		q += ` ORDER BY "quarantined_at" DESC, "source_file", "line"`
		s.Order = "newest first"
	} else if ti.series {
		// The newest rows, as the chart's right edge shows them.
		q += " ORDER BY " + warehouse.QuoteIdent(ti.timeCol) + " DESC NULLS LAST"
		s.Order = "newest " + ti.timeCol + " first"
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

// etag names a series: the table version and the query that drew it.
func etag(version int64, query string) string {
	return fmt.Sprintf(`"v%d-%x"`, version, sha256.Sum256([]byte(query)))
}

func (d *Dashboard) tableError(w http.ResponseWriter, r *http.Request, name string, err error) {
	var unknown errUnknownTable
	var bad errBadMeasure
	var param errBadParam
	switch {
	case errors.As(err, &param):
		if isAPI(r) {
			writeJSONError(w, http.StatusBadRequest, param.Error())
			return
		}
		d.errorPage(w, r, http.StatusBadRequest, "Bad parameter", param.Error(), nil)
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
	// live.js swaps the other panels on a commit; the chart redraws
	// itself, so its series is not read again for them.
	withChart := r.Header.Get(liveHeader) == ""
	pg, err := d.tableData(r.Context(), ref, r.URL.Query(), withChart)
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

// apiSeries answers the chart. The ETag is the table version and the
// query, known from the cached snapshot: an unchanged table answers 304
// without touching DuckDB.
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
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("table %s is not a time series (it has no timestamp column)", ref))
		return
	}
	sq, err := parseSeriesQuery(ti, r.URL.Query())
	if err != nil {
		d.tableError(w, r, name, err)
		return
	}
	tag := etag(snap.Version, r.URL.Query().Encode())
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var sd *seriesData
	err = d.rd.with(ctx, ref, snap.Version, func(db *sql.DB) error {
		sd, err = readSeries(ctx, db, ti, sq)
		return err
	})
	if err != nil {
		d.fail(w, r, fmt.Errorf("read %s version %d: %w", ref, snap.Version, err))
		return
	}
	sd.Version = snap.Version
	// Compact: the points are most of the answer.
	body, err := json.Marshal(sd)
	if err != nil {
		d.fail(w, r, fmt.Errorf("series of %s: %w", ref, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, r, http.StatusOK, body)
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

// seriesParams keeps the series parameters of a page's query.
func seriesParams(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"measure", "time", "range", "from", "to", "width", "groups", "top", "rank"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}
