package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

const runnerPipeline = `
sources:
  good:
    format: ndjson
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05"}
      v:  {type: double}
  bad:
    format: ndjson
    on_error: fail
    schema:
      ts: {type: timestamp, format: "2006-01-02 15:04:05"}
      v:  {type: double}
silver:
  good_1m:
    from: good
    event_time: ts
    window: {size: 1m}
    watermark: 0s
    aggregates: {n: count(*)}
  bad_1m:
    from: bad
    event_time: ts
    window: {size: 1m}
    watermark: 0s
    aggregates: {n: count(*)}
`

// goodLanded returns a local lake with runnerPipeline over it and one
// reading of source good landed at now, the start of most runner tests.
func goodLanded(t *testing.T) (lake.Store, *config.Pipeline, time.Time) {
	t.Helper()
	store := testenv.LocalStore(t)
	p, err := config.Parse("medallion.yaml", []byte("lake: file://"+t.TempDir()+runnerPipeline), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := raw.Land(context.Background(), store, "good", "g.ndjson", "ndjson", strings.NewReader(`{"ts":"2024-01-01 00:00:01","v":1}`+"\n"), now); err != nil {
		t.Fatal(err)
	}
	return store, p, now
}

// A failing job stops what reads from it, not the others; results come
// back in plan order whatever order the jobs finished in.
func TestRunnerFailureStopsOnlyDependants(t *testing.T) {
	ctx := context.Background()
	store, p, now := goodLanded(t)
	if _, _, err := raw.Land(ctx, store, "bad", "b.ndjson", "ndjson", strings.NewReader(`{"ts":"2024-01-01 00:00:01","v":"x"}`+"\n"), now); err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := Plan(p, []string{"silver"})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	var order []string
	results, err := r.Run(ctx, plan, func(res Result) { order = append(order, res.Job.Table.String()) })
	if err == nil || !strings.Contains(err.Error(), "bronze.bad") {
		t.Fatalf("error %v, want one naming bronze.bad", err)
	}
	if got := strings.Join(order, " "); got != "bronze.good bronze.bad silver.good_1m silver.bad_1m" {
		t.Errorf("reported in order %s", got)
	}
	byName := map[string]Result{}
	for _, res := range results {
		byName[res.Job.Table.String()] = res
	}
	if res := byName["silver.good_1m"]; res.Err != nil || res.RowsIn != 1 {
		t.Errorf("silver.good_1m: %+v, want success with 1 row in", res)
	}
	if res := byName["silver.bad_1m"]; !res.Skipped || !errors.Is(res.Err, ErrUpstreamFailed) {
		t.Errorf("silver.bad_1m: %+v, want skipped", res)
	}
}

// A job reading a table starts as soon as that table's job is done, while
// report (which writes the run history in `medallion run`) still runs.
func TestRunnerDependantDoesNotWaitForReport(t *testing.T) {
	ctx := context.Background()
	store, p, _ := goodLanded(t)
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := Plan(p, []string{"silver.good_1m"})
	if err != nil {
		t.Fatal(err)
	}
	silverStarted := make(chan struct{})
	r := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler),
		OnStart: func(j Job) {
			if j.Table.String() == "silver.good_1m" {
				close(silverStarted)
			}
		}}
	var order []string
	_, err = r.Run(ctx, plan, func(res Result) {
		if res.Job.Table.String() == "bronze.good" {
			select {
			case <-silverStarted:
			case <-time.After(20 * time.Second):
				t.Error("silver.good_1m did not start while bronze.good's report ran")
			}
		}
		order = append(order, res.Job.Table.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "bronze.good silver.good_1m" {
		t.Errorf("reported in order %s", got)
	}
	// Every lease was released before Run returned (after the jobs
	// reading each table started): another runner takes them at once.
	other := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler), Owner: "other"}
	if _, err := other.Run(ctx, plan, nil); err != nil {
		t.Fatalf("a second runner right after: %v", err)
	}
}

// Bronze and silver runs with nothing new read Delta logs and the landing
// index alone: they never take a DuckDB connection, so `medallion run`'s
// upstream checks overlap DuckDB's start (warehouse.OpenBackground). An
// engine whose start failed shows it: every use of it errors.
func TestRunnerNothingNewNeedsNoDuckDB(t *testing.T) {
	ctx := context.Background()
	store, p, now := goodLanded(t)
	plan, err := Plan(p, []string{"silver.good_1m"})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	if _, err := r.Run(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}

	broken, err := warehouse.OpenBackground(ctx, warehouse.Options{MemoryLimit: "lots"})
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	if _, err := broken.DB().ExecContext(ctx, "SELECT 1"); err == nil {
		t.Fatal("the broken engine answered a query")
	}
	r = &Runner{Store: store, Pipeline: p, Engine: broken, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	results, err := r.Run(ctx, plan, nil)
	if err != nil {
		t.Fatalf("nothing-new runs used DuckDB: %v", err)
	}
	for _, res := range results {
		if !strings.Contains(res.Summary, "nothing new") {
			t.Errorf("%s: %q, want nothing new", res.Job.Table, res.Summary)
		}
	}

	// With something new, the same engine's error is what the run reports.
	if _, _, err := raw.Land(ctx, store, "good", "g2.ndjson", "ndjson", strings.NewReader(`{"ts":"2024-01-01 00:00:02","v":2}`+"\n"), now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, plan, nil); err == nil || !strings.Contains(err.Error(), "memory_limit") {
		t.Errorf("run with new data on the broken engine: %v; want its memory_limit error", err)
	}
}
