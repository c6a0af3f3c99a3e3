package layers

import (
	"context"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
)

// Result is what one run of a layer job did, in one shape for every layer,
// so that the job runner, metrics, the CLI and the dashboard print it
// without knowing the layer.
type Result struct {
	Table TableRef
	// Summary is the one line printed for the run (the layer's accounting).
	Summary string
	RowsIn  int64 // new input rows read
	RowsOut int64 // rows written to the table
	// Version is the table's version after the run (-1: no table yet).
	Version int64
	// Counters are the layer's own figures, by name (CounterQuarantined,
	// CounterLate); zero counts may be left out.
	Counters map[string]int64
	// Watermark is the event-time watermark after the run (silver; zero:
	// none).
	Watermark time.Time
}

// Names of Result.Counters.
const (
	CounterQuarantined = "quarantined" // bronze rows sent to bronze._quarantine
	CounterLate        = "late"        // silver (row, window) pairs that arrived late
)

// Job runs the table name of layer's section of p once: bronze.Job,
// silver.Job, gold.Job.
type Job func(ctx context.Context, env Env, p *config.Pipeline, name string) (Result, error)
