package receiver

import "github.com/medallion-dev/medallion/internal/metrics"

// receiverMetrics are the families the receiver exports. Label "source" is
// always a declared source name (requests for unknown sources are counted
// under source=""), so a sender cannot grow the series without bound.
type receiverMetrics struct {
	requests     *metrics.CounterVec   // source, code
	rows         *metrics.CounterVec   // source, transport: rows accepted into a batch
	bytes        *metrics.CounterVec   // source, transport: framed bytes accepted into a batch
	rowsLanded   *metrics.CounterVec   // source
	bytesLanded  *metrics.CounterVec   // source
	flushes      *metrics.CounterVec   // source, result
	flushSeconds *metrics.HistogramVec // source
	pending      *metrics.GaugeVec     // source
	buffered     *metrics.Gauge        // request-body bytes held, all sources (Options.MaxBuffered)
	tcpConns     *metrics.GaugeVec     // source
	tcpMalformed *metrics.CounterVec   // source
}

func newReceiverMetrics(reg *metrics.Registry) *receiverMetrics {
	return &receiverMetrics{
		requests: reg.Counter("medallion_ingest_requests_total",
			"HTTP ingest requests by source and status code.", "source", "code"),
		rows: reg.Counter("medallion_ingest_rows_received_total",
			"Rows accepted into a pending batch, by source and transport (http, tcp).", "source", "transport"),
		bytes: reg.Counter("medallion_ingest_bytes_received_total",
			"Bytes of rows accepted into a pending batch, by source and transport (http, tcp).", "source", "transport"),
		rowsLanded: reg.Counter("medallion_ingest_rows_landed_total",
			"Rows landed in new raw objects.", "source"),
		bytesLanded: reg.Counter("medallion_ingest_bytes_landed_total",
			"Bytes landed in new raw objects.", "source"),
		flushes: reg.Counter("medallion_ingest_flushes_total",
			"Batches flushed to the raw layer, by result (landed, duplicate, error).", "source", "result"),
		flushSeconds: reg.Histogram("medallion_ingest_flush_duration_seconds",
			"Time to land one batch in the raw layer, retries included.", nil, "source"),
		pending: reg.Gauge("medallion_ingest_pending_bytes",
			"Bytes received but not yet durable (open, waiting and landing batches).", "source"),
		buffered: reg.Gauge("medallion_ingest_buffered_bytes",
			"Request-body bytes held in memory across all HTTP requests (read, framed or waiting to be landed); bounded by serve.http.max_buffered_bytes.").With(),
		tcpConns: reg.Gauge("medallion_ingest_tcp_connections",
			"Open TCP line-listener connections.", "source"),
		tcpMalformed: reg.Counter("medallion_ingest_tcp_malformed_lines_total",
			"TCP lines that are not one JSON object (landed anyway; bronze quarantines them), or were too long (dropped with their connection).", "source"),
	}
}
