package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The chart's geometry, in SVG user units. static/chart.js draws the same
// chart from the series JSON with the same numbers; keep them in step.
const (
	chartW, chartH = 1160, 400
	chartL, chartR = 64, 20
	chartT, chartB = 44, 46
)

// chartView is a laid-out chart: the attributes of <svg id="chart"> and
// its inner markup.
type chartView struct {
	Table      string
	Version    int64
	Measure    string
	TimeColumn string
	ETag       string
	Points     int
	Flagged    int
	Groups     int
	Inner      template.HTML
}

// timeSteps are the x tick spacings, in seconds.
var timeSteps = []int64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	e := math.Floor(math.Log10(x))
	f := x / math.Pow(10, e)
	var n float64
	switch {
	case f <= 1:
		n = 1
	case f <= 2:
		n = 2
	case f <= 5:
		n = 5
	default:
		n = 10
	}
	return n * math.Pow(10, e)
}

// valueTicks widens [lo, hi] to whole steps and returns the ticks.
func valueTicks(lo, hi float64) (ticks []float64, step, lo2, hi2 float64) {
	if hi == lo {
		d := math.Abs(lo) * 0.1
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	step = niceStep((hi - lo) / 5)
	lo2 = math.Floor(lo/step) * step
	hi2 = math.Ceil(hi/step) * step
	for i := 0; ; i++ {
		v := lo2 + float64(i)*step
		if v > hi2+step/2 {
			break
		}
		ticks = append(ticks, v)
	}
	return ticks, step, lo2, hi2
}

// tickLabel writes a tick humanely: 50M, 1.2k, 0.25; as many decimals as
// the step needs after scaling, so neighbouring ticks differ.
func tickLabel(v, step float64) string {
	if math.Abs(v) < step/1e6 {
		return "0"
	}
	scale, suffix := 1.0, ""
	a := math.Max(math.Abs(v), step)
	for _, u := range []struct {
		f float64
		s string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.f {
			scale, suffix = u.f, u.s
			break
		}
	}
	dec := max(0, int(-math.Floor(math.Log10(step/scale)+1e-9)))
	return strconv.FormatFloat(v/scale, 'f', dec, 64) + suffix
}

// timeTicks picks the first spacing that gives at most 8 ticks over
// [t0, t1] (Unix seconds).
func timeTicks(t0, t1 int64) (ticks []int64, step int64) {
	step = timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if (t1-t0)/s <= 8 {
			step = s
			break
		}
	}
	first := (t0 + step - 1) / step * step
	if t0 < 0 {
		first = t0 / step * step
	}
	for t := first; t <= t1; t += step {
		ticks = append(ticks, t)
	}
	return ticks, step
}

func timeLabel(t, step, span int64) string {
	u := time.Unix(t, 0).UTC()
	switch {
	case step >= 86400:
		return u.Format("Jan 2")
	case span > 86400:
		return u.Format("Jan 2 15:04")
	case step < 60:
		return u.Format("15:04:05")
	}
	return u.Format("15:04")
}

func f1(x float64) string { return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64) }

// layoutChart draws the series as SVG markup: grid and tick labels, a path
// and points per group (colour class c0..c7), flagged points on top (red,
// bigger, with a <title>), and the legend.
func layoutChart(sd *seriesData, tag string) *chartView {
	cv := &chartView{Table: sd.Table, Version: sd.Version, Measure: sd.Measure, TimeColumn: sd.TimeColumn, ETag: tag, Groups: len(sd.Groups)}
	var b strings.Builder
	esc := html.EscapeString

	var t0, t1 int64
	var v0, v1 float64
	n := 0
	for _, g := range sd.Groups {
		for _, p := range g.Points {
			t := p.t.Unix()
			if n == 0 {
				t0, t1, v0, v1 = t, t, p.V, p.V
			}
			t0, t1 = min(t0, t), max(t1, t)
			v0, v1 = min(v0, p.V), max(v1, p.V)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no rows with %s yet</text>`, chartW/2, chartH/2, esc(sd.Measure))
		cv.Inner = template.HTML(b.String())
		return cv
	}
	if !sd.from.IsZero() {
		t0, t1 = sd.from.Unix(), sd.to.Unix()
	}
	if t1 == t0 {
		t0, t1 = t0-60, t1+60
	}
	yt, ystep, ylo, yhi := valueTicks(v0, v1)
	pw, ph := float64(chartW-chartL-chartR), float64(chartH-chartT-chartB)
	x := func(t int64) float64 { return chartL + float64(t-t0)/float64(t1-t0)*pw }
	y := func(v float64) float64 { return chartT + (1-(v-ylo)/(yhi-ylo))*ph }

	b.WriteString(`<g class="grid">`)
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s"></line>`, chartL, chartW-chartR, f1(y(v)), f1(y(v)))
	}
	b.WriteString(`</g><g class="axis">`)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d"></line>`, chartL, chartW-chartR, chartH-chartB, chartH-chartB)
	for _, v := range yt {
		fmt.Fprintf(&b, `<text class="tick-label" x="%d" y="%s" text-anchor="end">%s</text>`, chartL-8, f1(y(v)+4), tickLabel(v, ystep))
	}
	xt, xstep := timeTicks(t0, t1)
	for _, t := range xt {
		fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%d"></line>`, f1(x(t)), f1(x(t)), chartH-chartB, chartH-chartB+5)
		fmt.Fprintf(&b, `<text class="tick-label" x="%s" y="%d" text-anchor="middle">%s</text>`, f1(x(t)), chartH-chartB+19, timeLabel(t, xstep, t1-t0))
	}
	fmt.Fprintf(&b, `<text class="axis-title" x="%d" y="%d" text-anchor="middle">%s (UTC)</text>`, chartL+(chartW-chartL-chartR)/2, chartH-2, esc(sd.TimeColumn))
	fmt.Fprintf(&b, `<text class="axis-title" x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, chartT+(chartH-chartT-chartB)/2, chartT+(chartH-chartT-chartB)/2, esc(axisTitle(sd.Measure, sd.Unit)))
	b.WriteString(`</g>`)

	var flagged strings.Builder
	for i, g := range sd.Groups {
		fmt.Fprintf(&b, `<g class="group c%d" data-group="%s"><path class="series" data-group="%s" d="`, i%maxGroups, esc(g.Group), esc(g.Group))
		for j, p := range g.Points {
			cmd := "L"
			if j == 0 || p.Gap {
				cmd = "M"
			}
			fmt.Fprintf(&b, "%s%s %s", cmd, f1(x(p.t.Unix())), f1(y(p.V)))
		}
		b.WriteString(`"></path>`)
		for _, p := range g.Points {
			cv.Points++
			if p.Flagged {
				cv.Flagged++
				fmt.Fprintf(&flagged, `<circle class="point flagged" data-group="%s" cx="%s" cy="%s" r="4.5"><title>%s</title></circle>`,
					esc(g.Group), f1(x(p.t.Unix())), f1(y(p.V)), esc(pointTitle(g.Group, sd.Measure, sd.Unit, p)))
				continue
			}
			fmt.Fprintf(&b, `<circle class="point" cx="%s" cy="%s" r="2.2"></circle>`, f1(x(p.t.Unix())), f1(y(p.V)))
		}
		b.WriteString(`</g>`)
	}
	fmt.Fprintf(&b, `<g class="flags">%s</g>`, flagged.String())

	writeLegend(&b, sd)
	cv.Inner = template.HTML(b.String())
	return cv
}

// writeLegend draws the legend: a swatch and label per group, then the
// flag marker with the flag columns when there are any.
func writeLegend(b *strings.Builder, sd *seriesData) {
	esc := html.EscapeString
	b.WriteString(`<g class="legend">`)
	lx := float64(chartL)
	for i, g := range sd.Groups {
		fmt.Fprintf(b, `<g class="legend-item c%d"><rect class="swatch" x="%s" y="12" width="14" height="4" rx="1"></rect><text x="%s" y="18">%s</text></g>`,
			i%maxGroups, f1(lx), f1(lx+19), esc(g.Group))
		lx += legendWidth(g.Group)
	}
	if len(sd.Flags) > 0 {
		fmt.Fprintf(b, `<g class="legend-item"><circle class="legend-flag" cx="%s" cy="14" r="4.5"></circle><text x="%s" y="18">%s</text></g>`,
			f1(lx+6), f1(lx+16), esc(strings.Join(sd.Flags, ", ")))
	}
	b.WriteString(`</g>`)
}

// legendWidth estimates a legend entry's width (7 units a character at
// the legend's font size).
func legendWidth(label string) float64 { return 19 + 7*float64(len([]rune(label))) + 22 }

func pointTitle(group, measure, unit string, p seriesPoint) string {
	v := formatFloat(p.V)
	if unit != "" {
		v += " " + unit
	}
	return fmt.Sprintf("%s · %s · %s = %s · %s", group, p.t.Format("2006-01-02 15:04"), measure, v, strings.Join(p.Why, ", "))
}
