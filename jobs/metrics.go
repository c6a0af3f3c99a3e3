package jobs

import (
	"time"

	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/layers"
)

// RunnerMetrics are the job families `medallion serve` exports: rows in and
// out per table, runs by result, durations per layer, and the layer figures
// operators watch (quarantined and late rows, silver watermarks).
type RunnerMetrics struct {
	runs        *metrics.CounterVec
	rowsIn      *metrics.CounterVec
	rowsOut     *metrics.CounterVec
	duration    *metrics.HistogramVec
	quarantined *metrics.CounterVec
	late        *metrics.CounterVec
	watermark   *metrics.GaugeVec
	lease       *metrics.GaugeVec
	scheduled   *metrics.CounterVec
}

// NewRunnerMetrics registers the job families in reg.
func NewRunnerMetrics(reg *metrics.Registry) *RunnerMetrics {
	return &RunnerMetrics{
		runs:        reg.Counter("medallion_job_runs_total", "Job runs by table and result (ok, failed, skipped).", "table", "result"),
		rowsIn:      reg.Counter("medallion_job_rows_in_total", "Rows a job read, by table and layer.", "table", "layer"),
		rowsOut:     reg.Counter("medallion_job_rows_out_total", "Rows a job wrote, by table and layer.", "table", "layer"),
		duration:    reg.Histogram("medallion_job_duration_seconds", "Wall time of job runs, by layer.", metrics.DefBuckets(), "layer"),
		quarantined: reg.Counter("medallion_bronze_quarantined_rows_total", "Rows bronze sent to bronze._quarantine, by table.", "table"),
		late:        reg.Counter("medallion_silver_late_rows_total", "(row, window) pairs silver sent to silver._late, by table.", "table"),
		watermark:   reg.Gauge("medallion_silver_watermark_seconds", "A silver table's watermark, Unix seconds.", "table"),
		lease:       reg.Gauge("medallion_lease_generation", "Generation of the job lease this process last ran a scheduled job under (0: never held).", "job"),
		scheduled:   reg.Counter("medallion_scheduled_runs_total", "Scheduled runs by job and result (ok, failed, skipped).", "job", "result"),
	}
}

// ObserveScheduled records a scheduler run (the scheduler's OnRun hook):
// its result and the lease generation it ran under.
func (m *RunnerMetrics) ObserveScheduled(r RunRecord) {
	if m == nil {
		return
	}
	m.scheduled.With(r.Job, r.Result).Inc()
	if r.Generation > 0 {
		m.lease.With(r.Job).Set(float64(r.Generation))
	}
}

// observe records one job result.
func (m *RunnerMetrics) observe(res Result, o layers.Result) {
	if m == nil {
		return
	}
	table, layer := res.Job.Table.String(), string(res.Job.Table.Layer)
	result := "ok"
	switch {
	case res.Skipped:
		result = "skipped"
	case res.Err != nil:
		result = "failed"
	}
	m.runs.With(table, result).Inc()
	if res.Skipped {
		return
	}
	m.rowsIn.With(table, layer).Add(float64(res.RowsIn))
	m.rowsOut.With(table, layer).Add(float64(res.RowsOut))
	m.duration.With(layer).Observe(res.Duration.Seconds())
	if n := o.Counters[layers.CounterQuarantined]; n > 0 {
		m.quarantined.With(table).Add(float64(n))
	}
	if n := o.Counters[layers.CounterLate]; n > 0 {
		m.late.With(table).Add(float64(n))
	}
	if !o.Watermark.IsZero() {
		m.watermark.With(table).Set(float64(o.Watermark.UnixNano()) / float64(time.Second))
	}
}
