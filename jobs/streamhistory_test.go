package jobs

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestStreamBatchRecordsJobRuns: a micro-batch keeps a run record per job
// it ran, in Recent and in the lake's run history; with postgres: unset the
// plan's mirror job only says the mirror is disabled, which is not a run
// (`medallion runs` listed it as a job "mirror.").
func TestStreamBatchRecordsJobRuns(t *testing.T) {
	ctx := context.Background()
	st := testenv.LocalStore(t)
	p, err := config.Parse("medallion.yaml", []byte("lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      id: {type: string}\nmirror:\n  - table: bronze.m\n    to: m\n    key: [id]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := Plan(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	disabled := 0
	for _, j := range plan {
		if j.MirrorDisabled() {
			disabled++
		}
	}
	if disabled != 1 {
		t.Fatalf("plan %v: want one disabled mirror job", plan)
	}
	m, _, err := raw.Land(ctx, st, "m", "x.ndjson", "ndjson", strings.NewReader(`{"id":"1"}`+"\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &Stream{Runner: &Runner{Store: st, Pipeline: p, Engine: eng, Log: slog.Default()}, Plan: plan, Owner: "test", Lease: DefaultLeaseOptions(),
		Log: slog.Default(), Recent: NewRecentRuns(0), History: true}
	clock := SystemClock()
	if _, err := s.batch(ctx, clock, []raw.Manifest{m}, map[string]bool{}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	runs, err := ListRuns(ctx, st, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]RunRecord{runs, s.Recent.Recent(0)} {
		if len(got) != len(plan)-disabled {
			t.Errorf("%d run records %+v, want %d", len(got), got, len(plan)-disabled)
		}
		for _, r := range got {
			if r.Job != "bronze.m" {
				t.Errorf("run record of %q, want only bronze.m", r.Job)
			}
		}
	}
}
