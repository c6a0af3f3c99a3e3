package dashboard

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// trendRuns is how many runs a quality trend shows (the newest).
const trendRuns = 40

// The trend charts' geometry, in SVG user units (drawn on the server
// only: no script is involved, so the strict CSP needs nothing more).
const (
	trendW, trendH = 560, 170
	trendL, trendR = 48, 10
	trendT, trendB = 14, 34
)

// trendPoint is one run's count in a quality trend.
type trendPoint struct {
	Run   string    `json:"run"`
	Label string    `json:"label"`
	Time  time.Time `json:"time,omitzero"`
	Where string    `json:"where"` // the source (rescued) or silver table (late)
	Count int64     `json:"count"`
}

// trend is a quality measure per run, oldest first, with its chart.
type trend struct {
	Points []trendPoint  `json:"points"`
	Total  int64         `json:"total"`
	SVG    template.HTML `json:"-"`
}

// rescuedRow is true for a bronze row that kept undeclared keys in
// _rescued (schema drift); the trend and the per-object table count alike.
const rescuedRow = `_rescued IS NOT NULL AND CAST(_rescued AS VARCHAR) NOT IN ('', '{}')`

// rescuedTrend counts, per bronze run (batch), the rows that carried
// unknown columns into _rescued (schema drift), over every source.
func (d *Dashboard) rescuedTrend(ctx context.Context) (*trend, error) {
	var pts []trendPoint
	for _, name := range d.o.Pipeline.SourceOrder {
		ref := layers.TableRef{Layer: layers.Bronze, Name: name}
		snap, err := d.snaps.get(ctx, ref)
		if err != nil {
			return nil, err
		}
		if snap == nil {
			continue
		}
		p, err := d.rescued.get(ref, snap.Version, func() ([]trendPoint, error) {
			return d.rescuedRuns(ctx, ref, snap.Version)
		})
		if err != nil {
			return nil, err
		}
		pts = append(pts, p...)
	}
	return newTrend(pts, "rescued"), nil
}

// rescuedRuns reads one bronze table's newest runs and their rescued rows.
func (d *Dashboard) rescuedRuns(ctx context.Context, ref layers.TableRef, version int64) ([]trendPoint, error) {
	var out []trendPoint
	err := d.rd.with(ctx, ref, version, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT coalesce(_batch_id, ''), max(_ingested_at),
			count(*) FILTER (WHERE `+rescuedRow+`)
			FROM `+view(ref)+` GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1 DESC LIMIT `+strconv.Itoa(trendRuns))
		if err != nil {
			return err
		}
		return scanAll(rows, func() error {
			p := trendPoint{Where: ref.Name}
			var t sql.NullTime
			if err := rows.Scan(&p.Run, &t, &p.Count); err != nil {
				return err
			}
			p.Label = runLabel(p.Run)
			if t.Valid {
				p.Time = t.Time.UTC()
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("rescued rows per run of %s: %w", ref, err)
	}
	return out, nil
}

// lateTrend counts, per silver run (one commit of a silver table), the
// rows that came after the watermark, from the commits' own metrics: a run
// with no late rows shows as zero rather than missing.
func (d *Dashboard) lateTrend(ctx context.Context) (*trend, error) {
	var pts []trendPoint
	for _, name := range d.o.Pipeline.SilverOrder {
		ref := layers.TableRef{Layer: layers.Silver, Name: name}
		snap, err := d.snaps.get(ctx, ref)
		if err != nil {
			return nil, err
		}
		if snap == nil {
			continue
		}
		p, err := d.lateRuns.get(ref, snap.Version, func() ([]trendPoint, error) {
			return silverLateRuns(ctx, d, ref)
		})
		if err != nil {
			return nil, err
		}
		pts = append(pts, p...)
	}
	return newTrend(pts, "late"), nil
}

// silverLateRuns reads the late-row counts of a silver table's newest
// batch commits.
func silverLateRuns(ctx context.Context, d *Dashboard, ref layers.TableRef) ([]trendPoint, error) {
	commits, err := delta.Open(d.o.Store, ref.Dir()).History(ctx, trendRuns)
	if errors.Is(err, delta.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ref, err)
	}
	var out []trendPoint
	for _, c := range commits {
		batch, ok := c.Medallion["batch"].(string)
		late, ok2 := c.OperationMetrics["numLateRows"]
		if !ok || !ok2 {
			continue // the table's creation, or a commit of another kind
		}
		n, err := strconv.ParseInt(late, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("history of %s: version %d: numLateRows %q: %w", ref, c.Version, late, err)
		}
		out = append(out, trendPoint{Run: batch, Label: runLabel(batch), Time: time.UnixMilli(c.Timestamp).UTC(), Where: ref.String(), Count: n})
	}
	return out, nil
}

// newTrend keeps the newest trendRuns points, oldest first, and draws them.
func newTrend(pts []trendPoint, class string) *trend {
	slices.SortStableFunc(pts, func(a, b trendPoint) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Run, b.Run)
	})
	if len(pts) > trendRuns {
		pts = pts[len(pts)-trendRuns:]
	}
	tr := &trend{Points: pts}
	if tr.Points == nil {
		tr.Points = []trendPoint{}
	}
	for _, p := range pts {
		tr.Total += p.Count
	}
	tr.SVG = drawTrend(pts, class)
	return tr
}

// drawTrend draws one bar per run (evenly spaced: runs are events, not a
// clock), a y axis from zero and the first and last run's time below. A
// run with nothing to count still gets a stub on the axis, so quiet runs
// read as zero, not as missing.
func drawTrend(pts []trendPoint, class string) template.HTML {
	var b strings.Builder
	esc := html.EscapeString
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no runs yet</text>`, trendW/2, trendH/2)
		return template.HTML(b.String())
	}
	var top int64
	for _, p := range pts {
		top = max(top, p.Count)
	}
	// Counts are whole: at least 0..5, so small ones get whole ticks.
	ticks, step, _, hi := valueTicks(0, float64(max(top, 5)))
	pw, ph := float64(trendW-trendL-trendR), float64(trendH-trendT-trendB)
	y := func(v float64) float64 { return trendT + (1-v/hi)*ph }
	b.WriteString(`<g class="grid">`)
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s"></line>`, trendL, trendW-trendR, f1(y(v)), f1(y(v)))
	}
	b.WriteString(`</g><g class="axis">`)
	for _, v := range ticks {
		fmt.Fprintf(&b, `<text class="tick-label" x="%d" y="%s" text-anchor="end">%s</text>`, trendL-6, f1(y(v)+4), tickLabel(v, step))
	}
	base := trendH - trendB
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d"></line>`, trendL, trendW-trendR, base, base)
	first, last := pts[0].Time, pts[len(pts)-1].Time
	fmt.Fprintf(&b, `<text class="tick-label" x="%d" y="%d" text-anchor="start">%s</text>`, trendL, base+15, esc(trendTime(first)))
	if len(pts) > 1 {
		fmt.Fprintf(&b, `<text class="tick-label" x="%d" y="%d" text-anchor="end">%s</text>`, trendW-trendR, base+15, esc(trendTime(last)))
	}
	fmt.Fprintf(&b, `<text class="axis-title" x="%d" y="%d" text-anchor="middle">runs, oldest to newest (UTC)</text>`, trendL+int(pw)/2, trendH-2)
	b.WriteString(`</g>`)
	slot := pw / float64(len(pts))
	w := max(1, min(slot*0.7, 28))
	fmt.Fprintf(&b, `<g class="bars %s">`, class)
	for i, p := range pts {
		x := trendL + slot*float64(i) + (slot-w)/2
		h := float64(base) - y(float64(p.Count))
		cls := "bar"
		if p.Count == 0 {
			cls = "bar zero"
		}
		h = max(h, 1.5)
		fmt.Fprintf(&b, `<rect class="%s" data-run="%s" data-count="%d" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
			cls, esc(p.Run), p.Count, f1(x), f1(float64(base)-h), f1(w), f1(h),
			esc(fmt.Sprintf("%s · %s · %s · %s %s", p.Label, trendTime(p.Time), p.Where, groupDigits(p.Count), class)))
	}
	b.WriteString(`</g>`)
	return template.HTML(b.String())
}

func trendTime(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.Format("Jan 2 15:04:05")
}
