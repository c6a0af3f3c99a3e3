package pgmirror_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// meterRows is a DuckDB query of n rows shaped like bronze.meters (the
// table of bench case 5), from row from on.
func meterRows(from, n int) string {
	return fmt.Sprintf(`SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i // 1000) AS "timestamp",
		'meter-' || lpad(CAST(i %% 1000 AS VARCHAR), 4, '0') AS meter_id, (i %% 9973) / 100.0 AS energy_usage,
		i %% 9973 > 9000 AS anomaly, CAST(NULL AS VARCHAR) AS _rescued,
		'raw/meters/dt=2026-11-22/20261122T080447.352212928Z-253489be.ndjson' AS _source_file,
		TIMESTAMPTZ '2026-11-22 08:04:47.352212+00' AS _ingested_at, '2e181e28ccf46f2f' AS _batch_id,
		CAST(TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i // 1000) AS DATE) AS event_date
		FROM range(%d, %d) t(i)`, from, from+n)
}

var meterSchema = schemaOf(field("timestamp", "timestamp"), field("meter_id", "string"), field("energy_usage", "double"),
	field("anomaly", "boolean"), field("_rescued", "string"), field("_source_file", "string"), field("_ingested_at", "timestamp"),
	field("_batch_id", "string"), field("event_date", "date"))

// BenchmarkFirstLoad is the first load of a 500k-row table shaped like
// bench case 5's; go test -bench FirstLoad -cpuprofile shows the Go side.
func BenchmarkFirstLoad(b *testing.B) {
	const n = 500_000
	dsn := testenv.PostgresURL(b)
	schema, _ := pgmirrortest.Schema(b, dsn, "mirror_bench_")
	ref := warehouse.TableRef{Schema: "bronze", Name: "meters"}
	f := newFixture(b, ref, meterSchema)
	f.commit([]delta.Add{f.file(meterRows(0, n/2), nil), f.file(meterRows(n/2, n/2), nil)}, nil, nil)
	m := f.mirror(dsn)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		spec := pgmirror.Spec{Source: ref, Schema: schema, Table: fmt.Sprintf("meters_%d", i), Key: []string{"meter_id", "timestamp"}}
		res, err := m.Sync(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		if res.RowsCopied != n {
			b.Fatalf("copied %d rows, want %d", res.RowsCopied, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
