package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// energyAnomalyPipeline is the energy pipeline's picture of the Streamlit
// app it replaces: raw meter readings in bronze, with a derived boolean
// marking readings over 100 as anomalies, charted straight from bronze.
const energyAnomalyPipeline = `sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, unit: kWh}
    derive:
      anomaly: "energy_usage > 100"
stream:
  trigger: 1s
`

// energyReadings returns a reading every 20 s over minutes [from, to) for 4
// meters; meter-02 reads 150 kWh at the minutes given.
func energyReadings(t0 time.Time, from, to int, spikeAt map[int]bool) string {
	var b strings.Builder
	for m := 1; m <= 4; m++ {
		for min := from; min < to; min++ {
			for sec := 0; sec < 60; sec += 20 {
				v := 10 + float64((m*5+min*3+sec)%30)
				if spikeAt[min] && sec == 0 && m == 2 {
					v = 150
				}
				ts := t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
				fmt.Fprintf(&b, `{"timestamp":%q,"meter_id":"meter-%02d","energy_usage":%g}`+"\n", ts.Format(time.DateTime), m, v)
			}
		}
	}
	return b.String()
}

// TestBrowserDashboardEnergyAnomalies: the energy pipeline's bronze
// readings over the last 15 minutes, anomalies (> 100) as red points, new
// ones appearing by push while events are posted.
func TestBrowserDashboardEnergyAnomalies(t *testing.T) {
	chromium := needChromium(t)
	l, srv := serveForBrowser(t, energyAnomalyPipeline)
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-40 * time.Minute)
	ingestTo(t, srv.base, "meters", "", energyReadings(t0, 0, 30, map[int]bool{3: true, 27: true, 28: true}))
	l.waitCount(t, "bronze", "SELECT count(*) AS n FROM bronze.meters", 4*30*3)

	b := newBrowser(t, chromium)
	if st := b.open("bronze readings, last 15 minutes", srv.base+"/tables/bronze.meters?range=15m"); st != http.StatusOK {
		t.Fatalf("GET answered %d", st)
	}
	b.waitFor("the chart", `(() => { const c = document.querySelector("svg#chart[data-rows]"); return !!c && +c.dataset.points > 0 })()`, 10*time.Second)
	// Minute 3 is older than 15 minutes: only minutes 27 and 28 are drawn.
	if f := eval[int](b, `+document.querySelector("svg#chart").dataset.flagged`); f != 2 {
		t.Errorf("%d red points in the last 15 minutes, want 2 (minutes 27 and 28 of meter-02)", f)
	}
	if yt := eval[string](b, `[...document.querySelectorAll("svg#chart text.axis-title")].map(e => e.textContent).join(" | ")`); !strings.Contains(yt, "kWh") {
		t.Errorf("axis titles %q do not carry the unit kWh", yt)
	}
	b.screenshot("13-energy-anomalies-15m")

	ingestTo(t, srv.base, "meters", "", energyReadings(t0, 30, 33, map[int]bool{31: true}))
	b.waitFor("the new anomaly", `+document.querySelector("svg#chart").dataset.flagged === 3`, 20*time.Second)
	if mode := eval[string](b, "document.documentElement.dataset.live"); mode != "push" {
		t.Errorf("live mode %q, want push", mode)
	}
	// The header, sample and history follow the chart to the same version.
	b.waitFor("the header at the chart's version", `document.getElementById("table-version").textContent.trim() === document.querySelector("svg#chart").dataset.version`, 20*time.Second)
	b.screenshot("13b-energy-anomalies-15m-updated")
}
