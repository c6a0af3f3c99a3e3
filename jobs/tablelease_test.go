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
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// A table whose lease another runner holds is not run: the job fails
// naming the holder (or waits for it with LeaseWait); the commits of a
// job carry the lease's generation as a fence.
func TestRunnerTakesTableLeases(t *testing.T) {
	ctx := context.Background()
	store, p, _ := goodLanded(t)
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := Plan(p, []string{"bronze.good"})
	if err != nil {
		t.Fatal(err)
	}
	ref := layers.TableRef{Layer: layers.Bronze, Name: "good"}
	other, err := Acquire(ctx, store, TableLease(ref), "otherhost-4242-abcd", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	_, err = r.Run(ctx, plan, nil)
	if !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), "otherhost-4242-abcd") {
		t.Fatalf("run while another runner holds the table: %v, want ErrLeaseHeld naming the holder", err)
	}
	if _, err := delta.Open(store, ref.Dir()).Snapshot(ctx); !errors.Is(err, delta.ErrNoTable) {
		t.Fatalf("the table was written while another runner held it: %v", err)
	}

	// With a wait, the job runs once the holder releases.
	r.LeaseWait = 20 * time.Second
	go func() {
		time.Sleep(300 * time.Millisecond)
		other.Release(context.Background())
	}()
	if _, err := r.Run(ctx, plan, nil); err != nil {
		t.Fatalf("run after the holder released: %v", err)
	}
	snap, err := delta.Open(store, ref.Dir()).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := snap.TxnVersion(FenceAppID(TableLease(ref))); !ok || v != other.Generation()+1 {
		t.Errorf("fence in the bronze commit: %d %v, want generation %d", v, ok, other.Generation()+1)
	}
}

// A holder that believes it still holds a table's lease after another
// runner took it over (its clock is behind by more than the allowed skew,
// or it stalled at a point where nothing checks the lease) cannot commit
// once the newer holder has: the table records the newer generation.
func TestStaleHolderIsFenced(t *testing.T) {
	ctx := context.Background()
	store := testenv.LocalStore(t)
	p, err := config.Parse("medallion.yaml", []byte("lake: file://"+t.TempDir()+runnerPipeline), nil)
	if err != nil {
		t.Fatal(err)
	}
	land := func(name string) {
		t.Helper()
		body := `{"ts":"2024-01-01 00:00:01","v":1,"from":"` + name + `"}` + "\n"
		if _, _, err := raw.Land(ctx, store, "good", name, "ndjson", strings.NewReader(body), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	land("a.ndjson")
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ref := layers.TableRef{Layer: layers.Bronze, Name: "good"}

	// The stale holder: its clock is an hour behind, so its lease has long
	// expired for everyone else, and it never notices.
	o := DefaultLeaseOptions()
	o.Clock = newFakeClock(time.Now().Add(-time.Hour))
	stale, err := AcquireWith(ctx, store, TableLease(ref), "stale-1-aa", o)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Release(ctx)

	r := &Runner{Store: store, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	plan, err := Plan(p, []string{"bronze.good"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, plan, nil); err != nil {
		t.Fatalf("the new holder: %v", err)
	}
	land("b.ndjson")
	fenced := delta.WithFence(stale.Context(), FenceAppID(TableLease(ref)), stale.Generation())
	_, err = bronze.Run(fenced, bronze.Deps{Env: layers.Env{Store: store, DB: eng.DB(), ScratchDir: t.TempDir()}}, p.Sources["good"])
	if !errors.Is(err, delta.ErrFenced) {
		t.Fatalf("the stale holder's commit: %v, want ErrFenced", err)
	}
	if stale.Context().Err() != nil {
		t.Fatal("the stale holder noticed; the test needs one that does not")
	}
	snap, err := delta.Open(store, ref.Dir()).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := snap.NumRecords(); n != 1 {
		t.Errorf("bronze.good has %d rows, want only the new holder's 1", n)
	}
}
