package metrics

import (
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestExpositionParsesWithPrometheus reads WriteText's output with the
// official parser, so a format mistake (an escape, a missing +Inf bucket, a
// float Prometheus cannot read) fails here rather than in a scraper.
func TestExpositionParsesWithPrometheus(t *testing.T) {
	r := NewRegistry()
	req := r.Counter("medallion_test_requests_total", "Requests by code.\nSecond \\ line.", "source", "code")
	req.With("meters", "202").Add(3)
	req.With("a\"b\\c\nd é", "200").Inc()
	g := r.Gauge("medallion_test_gauge", "Odd values.", "kind")
	g.With("nan").Set(math.NaN())
	g.With("inf").Set(math.Inf(1))
	g.With("neg").Set(-1.5e-7)
	g.With("big").Set(1e21)
	r.Gauge("medallion_test_up", "No labels.").With().Set(1)
	h := r.Histogram("medallion_test_seconds", "Latency.", []float64{0.1, 1}, "source")
	for _, x := range []float64{0.05, 0.1, 5} {
		h.With("meters").Observe(x)
	}
	r.Counter("medallion_test_empty_total", "No series yet.", "x")

	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("the Prometheus parser refuses our exposition: %v\n%s", err, b.String())
	}

	wantTypes := map[string]dto.MetricType{
		"medallion_test_requests_total": dto.MetricType_COUNTER,
		"medallion_test_gauge":          dto.MetricType_GAUGE,
		"medallion_test_up":             dto.MetricType_GAUGE,
		"medallion_test_seconds":        dto.MetricType_HISTOGRAM,
	}
	// The parser drops families without series; ours writes their HELP and
	// TYPE, which it must still accept (checked by the parse above).
	for name, typ := range wantTypes {
		f := fams[name]
		if f == nil {
			t.Errorf("family %s missing from the parsed exposition", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
	}
	if len(fams) != len(wantTypes) {
		t.Errorf("parsed %d families, want %d", len(fams), len(wantTypes))
	}
	if h := fams["medallion_test_requests_total"].GetHelp(); h != "Requests by code.\nSecond \\ line." {
		t.Errorf("help read back as %q", h)
	}

	counters := map[string]float64{}
	for _, m := range fams["medallion_test_requests_total"].GetMetric() {
		counters[labels(m)] = m.GetCounter().GetValue()
	}
	for key, want := range map[string]float64{"source=meters,code=202": 3, "source=a\"b\\c\nd é,code=200": 1} {
		if got, ok := counters[key]; !ok || got != want {
			t.Errorf("counter {%s} = %v (present %v), want %v; parsed %v", key, got, ok, want, counters)
		}
	}

	gauges := map[string]float64{}
	for _, m := range fams["medallion_test_gauge"].GetMetric() {
		gauges[labels(m)] = m.GetGauge().GetValue()
	}
	if v := gauges["kind=nan"]; !math.IsNaN(v) {
		t.Errorf("NaN gauge read back as %v", v)
	}
	for key, want := range map[string]float64{"kind=inf": math.Inf(1), "kind=neg": -1.5e-7, "kind=big": 1e21} {
		if gauges[key] != want {
			t.Errorf("gauge {%s} = %v, want %v", key, gauges[key], want)
		}
	}

	hm := fams["medallion_test_seconds"].GetMetric()
	if len(hm) != 1 {
		t.Fatalf("histogram series: %d, want 1", len(hm))
	}
	hist := hm[0].GetHistogram()
	if hist.GetSampleCount() != 3 || hist.GetSampleSum() != 5.15 {
		t.Errorf("histogram count %d sum %v, want 3 and 5.15", hist.GetSampleCount(), hist.GetSampleSum())
	}
	var cum []uint64
	for _, bk := range hist.GetBucket() {
		cum = append(cum, bk.GetCumulativeCount())
	}
	// The parser keeps the finite buckets; +Inf is the sample count.
	if len(cum) < 2 || cum[0] != 2 || cum[1] != 2 {
		t.Errorf("cumulative buckets %v, want [2 2 ...]", cum)
	}
}

// labels renders a parsed series' labels as k=v,k=v in exposition order.
func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}
