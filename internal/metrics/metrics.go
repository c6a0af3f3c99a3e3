// Package metrics is a small Prometheus registry: counters, gauges and
// histograms with labels, written in the Prometheus text exposition format
// 0.0.4. It exists so the engine does not need the prometheus client
// library for the few families it exports.
//
// A Registry is created by its owner (medallion serve) and handed to each
// component, which registers its families once at construction and updates
// them afterwards. Every method is safe for concurrent use.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of WriteText's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// DefBuckets are histogram buckets for latencies in seconds, from 1 ms to 60 s.
func DefBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Registry holds metric families by name.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]*family{}}
}

type kind string

const (
	kindCounter   kind = "counter"
	kindGauge     kind = "gauge"
	kindHistogram kind = "histogram"
)

// family is one metric name with its children, one per label value tuple.
type family struct {
	name    string
	help    string
	kind    kind
	labels  []string
	buckets []float64 // histograms only

	mu       sync.RWMutex
	children map[string]*child // key: label values joined by \xff
}

// child is one time series (or, for a histogram, one set of series).
type child struct {
	values []string
	val    atomicFloat // counter, gauge
	// histogram:
	counts []atomic.Uint64 // per bucket, not cumulative
	sum    atomicFloat
	count  atomic.Uint64
}

// register returns the family called name, creating it. Registering the
// same name twice with the same kind and labels returns the first family;
// a conflicting registration or an invalid name is a programming error and
// panics, like prometheus.MustRegister.
func (r *Registry) register(name, help string, k kind, buckets []float64, labels []string) *family {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) || strings.HasPrefix(l, "__") || (k == kindHistogram && l == "le") {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, l))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		if f.kind != k || !slices.Equal(f.labels, labels) || !slices.Equal(f.buckets, buckets) {
			panic(fmt.Sprintf("metrics: %s registered twice with different kinds, labels or buckets", name))
		}
		return f
	}
	f := &family{name: name, help: help, kind: k, labels: slices.Clone(labels), buckets: buckets, children: map[string]*child{}}
	r.families[name] = f
	return f
}

// with returns the child for the label values, creating it.
func (f *family) with(values []string) *child {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%s), got %d", f.name, len(f.labels), strings.Join(f.labels, ", "), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.RLock()
	c, ok := f.children[key]
	f.mu.RUnlock()
	if ok {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.children[key]; ok {
		return c
	}
	c = &child{values: slices.Clone(values)}
	if f.kind == kindHistogram {
		c.counts = make([]atomic.Uint64, len(f.buckets)+1) // the last one is +Inf
	}
	f.children[key] = c
	return c
}

// CounterVec is a counter family with labels.
type CounterVec struct{ f *family }

// Counter registers (or finds) a counter family. Counter names end in _total
// by convention.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.register(name, help, kindCounter, nil, labels)}
}

// With returns the counter for the label values, in the order the labels
// were declared. It panics if the number of values is wrong.
func (v *CounterVec) With(values ...string) *Counter { return &Counter{v.f.with(values)} }

// Counter is a monotonically increasing value.
type Counter struct{ c *child }

// Inc adds 1.
func (c *Counter) Inc() { c.c.val.add(1) }

// Add adds d, which must not be negative (a negative d panics).
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("metrics: counter decreased")
	}
	c.c.val.add(d)
}

// Value is the current value.
func (c *Counter) Value() float64 { return c.c.val.load() }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ f *family }

// Gauge registers (or finds) a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.register(name, help, kindGauge, nil, labels)}
}

// With returns the gauge for the label values.
func (v *GaugeVec) With(values ...string) *Gauge { return &Gauge{v.f.with(values)} }

// Gauge is a value that goes up and down.
type Gauge struct{ c *child }

// Set sets the value.
func (g *Gauge) Set(x float64) { g.c.val.store(x) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) { g.c.val.add(d) }

// Value is the current value.
func (g *Gauge) Value() float64 { return g.c.val.load() }

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ f *family }

// Histogram registers (or finds) a histogram family with the given upper
// bucket bounds, which must be strictly increasing (nil: DefBuckets).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if buckets == nil {
		buckets = DefBuckets()
	}
	for i := range buckets {
		if math.IsNaN(buckets[i]) || (i > 0 && buckets[i] <= buckets[i-1]) {
			panic(fmt.Sprintf("metrics: %s: buckets must be strictly increasing", name))
		}
	}
	if n := len(buckets); n > 0 && math.IsInf(buckets[n-1], 1) {
		buckets = buckets[:n-1] // +Inf is implicit
	}
	return &HistogramVec{r.register(name, help, kindHistogram, slices.Clone(buckets), labels)}
}

// With returns the histogram for the label values.
func (v *HistogramVec) With(values ...string) *Histogram {
	return &Histogram{c: v.f.with(values), buckets: v.f.buckets}
}

// Histogram counts observations in buckets.
type Histogram struct {
	c       *child
	buckets []float64
}

// Observe records one value.
func (h *Histogram) Observe(x float64) {
	i := sort.SearchFloat64s(h.buckets, x) // first bucket with bound >= x
	h.c.counts[i].Add(1)
	h.c.sum.add(x)
	h.c.count.Add(1)
}

// Count is the number of observations so far.
func (h *Histogram) Count() uint64 { return h.c.count.Load() }

// WriteText writes every family in the Prometheus text format 0.0.4,
// families sorted by name and series by label values. Families without
// series are written with their HELP and TYPE lines only.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	sort.Slice(fams, func(i, j int) bool { return fams[i].name < fams[j].name })

	bw := bufio.NewWriter(w)
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

// Handler serves WriteText for GET /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_ = r.WriteText(w) // a write error means the scraper went away
	})
}

func (f *family) write(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n", f.name, escapeHelp(f.help))
	fmt.Fprintf(w, "# TYPE %s %s\n", f.name, f.kind)
	f.mu.RLock()
	kids := make([]*child, 0, len(f.children))
	for _, c := range f.children {
		kids = append(kids, c)
	}
	f.mu.RUnlock()
	sort.Slice(kids, func(i, j int) bool { return slices.Compare(kids[i].values, kids[j].values) < 0 })
	for _, c := range kids {
		switch f.kind {
		case kindCounter, kindGauge:
			writeSample(w, f.name, f.labels, c.values, "", "", c.val.load())
		case kindHistogram:
			// _count is the +Inf bucket, so the two always agree even
			// while observations race with the scrape.
			var cum uint64
			for i, b := range f.buckets {
				cum += c.counts[i].Load()
				writeSample(w, f.name+"_bucket", f.labels, c.values, "le", formatFloat(b), float64(cum))
			}
			cum += c.counts[len(f.buckets)].Load()
			writeSample(w, f.name+"_bucket", f.labels, c.values, "le", "+Inf", float64(cum))
			writeSample(w, f.name+"_sum", f.labels, c.values, "", "", c.sum.load())
			writeSample(w, f.name+"_count", f.labels, c.values, "", "", float64(cum))
		}
	}
}

func writeSample(w *bufio.Writer, name string, labels, values []string, extraName, extraValue string, v float64) {
	w.WriteString(name)
	if len(labels) > 0 || extraName != "" {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l)
			w.WriteString(`="`)
			w.WriteString(escapeLabel(values[i]))
			w.WriteByte('"')
		}
		if extraName != "" {
			if len(labels) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extraName)
			w.WriteString(`="`)
			w.WriteString(extraValue)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// atomicFloat is a float64 updated with compare-and-swap.
type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) load() float64   { return math.Float64frombits(a.bits.Load()) }
func (a *atomicFloat) store(x float64) { a.bits.Store(math.Float64bits(x)) }
func (a *atomicFloat) add(d float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}
