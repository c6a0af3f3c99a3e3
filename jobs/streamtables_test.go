package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestStreamSharedTablesSeeOtherWriters: stream mode keeps its delta
// caches (Runner.TableCache) across micro-batches, shared by its jobs and
// its trigger check. Between two micro-batches another process commits to
// bronze past a checkpoint and promotes an object itself; the next
// micro-batch sees all of it: the other writer's progress stays, the
// object it promoted is not promoted again, and the new one is.
func TestStreamSharedTablesSeeOtherWriters(t *testing.T) {
	ctx := context.Background()
	st := testenv.LocalStore(t)
	p, err := config.Parse("medallion.yaml", []byte("lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      id: {type: string}\n"), nil)
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
	land := func(id string) raw.Manifest {
		t.Helper()
		m, _, err := raw.Land(ctx, st, "m", id+".ndjson", "ndjson", strings.NewReader(`{"id":"`+id+`"}`+"\n"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	runner := &Runner{Store: st, Pipeline: p, Engine: eng, Log: slog.Default(), Owner: "stream"}
	s := &Stream{Runner: runner, Plan: plan, Owner: "stream", Lease: DefaultLeaseOptions(), Log: slog.Default()}
	clock := SystemClock()
	seen := map[string]bool{}
	if _, err := s.batch(ctx, clock, []raw.Manifest{land("1")}, seen, clock.Now()); err != nil {
		t.Fatal(err)
	}
	dir := layers.TableRef{Layer: layers.Bronze, Name: "m"}.Dir()
	// The stream's trigger check loaded bronze.m into the shared cache.
	if _, _, err := s.splitPromoted(ctx, []raw.Manifest{land("warm")}); err != nil {
		t.Fatal(err)
	}

	// Another process: its own Tables, commits past the next checkpoint,
	// then a run of its own that promotes object 2 (and "warm").
	other := delta.Open(st, dir)
	snap, err := other.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		snap, err = other.Commit(ctx, snap, delta.Commit{Txns: []delta.Txn{{AppID: "other/x", Version: int64(i)}}, IsBlindAppend: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	m2 := land("2")
	otherRunner := &Runner{Store: st, Pipeline: p, Engine: eng, Log: slog.Default(), Owner: "other"}
	if _, err := otherRunner.Run(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}

	m3 := land("3")
	done, todo, err := s.splitPromoted(ctx, []raw.Manifest{m2, m3})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].SHA256 != m2.SHA256 || len(todo) != 1 || todo[0].SHA256 != m3.SHA256 {
		t.Fatalf("trigger check: promoted %v, new %v; want object 2 promoted by the other process and 3 new", done, todo)
	}
	if _, err := s.batch(ctx, clock, []raw.Manifest{m2, m3}, seen, clock.Now()); err != nil {
		t.Fatal(err)
	}
	fresh, err := delta.Open(st, dir).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := fresh.TxnVersion("other/x"); !ok || v != 11 {
		t.Errorf("the other writer's progress: %d, %v; want 11", v, ok)
	}
	if n, ok := fresh.NumRecords(); !ok || n != 4 {
		t.Errorf("bronze.m holds %d rows (%v), want 4: objects 1, warm, 2 and 3 once each", n, ok)
	}
	for _, m := range []raw.Manifest{m2, m3} {
		if _, ok := fresh.TxnVersion(bronze.RawAppID(m.Source, m.SHA256)); !ok {
			t.Errorf("object %s not recorded as promoted", m.Key)
		}
	}
	// The stream's cached view is the same table as a fresh reader's.
	cached, err := s.bronzeTable("m").Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cached.Version != fresh.Version || fmt.Sprint(cached.Txns()) != fmt.Sprint(fresh.Txns()) || len(cached.Files) != len(fresh.Files) {
		t.Errorf("stream's table at version %d (%d files), a fresh reader's at %d (%d files)", cached.Version, len(cached.Files), fresh.Version, len(fresh.Files))
	}
}
