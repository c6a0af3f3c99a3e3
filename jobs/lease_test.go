package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

func fakeLeaseOptions(clock Clock, ttl time.Duration) LeaseOptions {
	o := DefaultLeaseOptions()
	o.TTL = ttl
	o.MaxSkew = time.Second
	o.Clock = clock
	return o
}

// 8 goroutines contend for one job's lease over many rounds: at any instant
// at most one holds it, and generations only grow.
func TestLeaseMutualExclusion(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, store lake.Store) {
		const contenders, acquisitions = 8, 60
		var (
			inside   atomic.Int32 // holders inside the critical section
			taken    atomic.Int32 // acquisitions so far
			worst    atomic.Int32
			mu       sync.Mutex
			lastGen  int64
			badOrder []string
			wg       sync.WaitGroup
			errs     = make(chan error, contenders)
		)
		ctx := t.Context()
		for i := range contenders {
			owner := fmt.Sprintf("worker-%d", i)
			wg.Go(func() {
				for taken.Load() < acquisitions {
					h, err := Acquire(ctx, store, "bronze.meters", owner, 30*time.Second)
					if errors.Is(err, ErrLeaseHeld) {
						time.Sleep(time.Millisecond) // back off a little; correctness does not depend on it
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					n := inside.Add(1)
					if n > worst.Load() {
						worst.Store(n)
					}
					// Work under the lease: a lake round trip.
					if _, err := store.Stat(ctx, "nothing-here"); !errors.Is(err, lake.ErrNotExist) {
						errs <- err
					}
					mu.Lock()
					if h.Generation() <= lastGen {
						badOrder = append(badOrder, fmt.Sprintf("%d after %d", h.Generation(), lastGen))
					}
					lastGen = h.Generation()
					mu.Unlock()
					taken.Add(1)
					inside.Add(-1)
					if err := h.Release(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if worst.Load() != 1 {
			t.Fatalf("%d holders at once", worst.Load())
		}
		if badOrder != nil {
			t.Fatalf("generations went back: %v", badOrder)
		}
		gens, err := listGenerations(ctx, store, LeasePrefix+"bronze.meters/")
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) > keptGenerations+2 {
			t.Errorf("%d lease generations left, want all but the last %d deleted: %v", len(gens), keptGenerations, gens)
		}
		t.Logf("%d acquisitions, last generation %d", taken.Load(), lastGen)
	})
}

// A holder that stops renewing (killed) keeps the job until its lease
// expires; then exactly one of 8 contenders takes it over.
func TestLeaseTakeoverOnlyAfterExpiry(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, store lake.Store) {
		t0 := at("2024-01-01 00:00:00")
		clock := newFakeClock(t0)
		o := fakeLeaseOptions(clock, 30*time.Second)
		killCtx, kill := context.WithCancel(t.Context())
		a, err := AcquireWith(killCtx, store, "silver", "a", o)
		if err != nil {
			t.Fatal(err)
		}
		kill() // the process dies: no more renewals, no release
		<-a.Context().Done()

		for _, d := range []time.Duration{0, 10 * time.Second, 30 * time.Second, 31 * time.Second} {
			clock.Set(t0.Add(d))
			if _, err := AcquireWith(t.Context(), store, "silver", "b", o); !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("at +%s (ttl 30s, skew 1s): %v, want ErrLeaseHeld", d, err)
			}
		}
		clock.Set(t0.Add(31*time.Second + time.Millisecond))
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			winner []*Held
		)
		for i := range 8 {
			wg.Go(func() {
				h, err := AcquireWith(t.Context(), store, "silver", fmt.Sprintf("c%d", i), o)
				if err == nil {
					mu.Lock()
					winner = append(winner, h)
					mu.Unlock()
				} else if !errors.Is(err, ErrLeaseHeld) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(winner) != 1 {
			t.Fatalf("%d contenders took the expired lease, want exactly 1", len(winner))
		}
		if g := winner[0].Generation(); g != 2 {
			t.Errorf("takeover generation %d, want 2", g)
		}
		if err := winner[0].Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// A holder that renews keeps the job far past the TTL; one that is paused
// past its expiry (a frozen VM) finds it lost and its context cancelled.
func TestLeaseRenewal(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, store lake.Store) {
		t0 := at("2024-01-01 00:00:00")
		clock := newFakeClock(t0)
		o := fakeLeaseOptions(clock, 30*time.Second)
		a, err := AcquireWith(t.Context(), store, "gold", "a", o)
		if err != nil {
			t.Fatal(err)
		}
		// Renewals every 10s; step 10s at a time for 2 minutes (4 TTLs).
		for step := 1; step <= 12; step++ {
			now := t0.Add(time.Duration(step) * 10 * time.Second)
			clock.Set(now)
			eventually(t, "a renewal", func() bool { return clock.waitingAt(now.Add(10*time.Second)) == 1 })
			if _, err := AcquireWith(t.Context(), store, "gold", "b", o); !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("at +%ds: %v, want ErrLeaseHeld", step*10, err)
			}
		}
		if err := a.Context().Err(); err != nil {
			t.Fatalf("renewed lease lost: %v", context.Cause(a.Context()))
		}
		if want := t0.Add(150 * time.Second); !a.Expires().Equal(want) {
			t.Fatalf("expires %s, want %s", a.Expires(), want)
		}

		// Pause: the clock jumps past the expiry before the holder can renew.
		clock.Set(t0.Add(200 * time.Second))
		<-a.Context().Done()
		if cause := context.Cause(a.Context()); !errors.Is(cause, ErrLeaseLost) {
			t.Fatalf("cause %v, want ErrLeaseLost", cause)
		}
		b, err := AcquireWith(t.Context(), store, "gold", "b", o)
		if err != nil {
			t.Fatalf("takeover after the holder's expiry: %v", err)
		}
		if err := a.Release(t.Context()); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("release of a lost lease: %v, want ErrLeaseLost", err)
		}
		// b is still the holder: a's release did not free it.
		if _, err := AcquireWith(t.Context(), store, "gold", "c", o); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("after the old holder's release: %v, want ErrLeaseHeld", err)
		}
		if err := b.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Released: the next runner need not wait for the expiry.
		c, err := AcquireWith(t.Context(), store, "gold", "c", o)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		if err := c.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := c.Release(t.Context()); err != nil {
			t.Fatalf("second release: %v", err)
		}
	})
}

// A holder whose renewal finds the next generation (its clock ran slow
// and the job was taken over) gives the lease up.
func TestLeaseLostToNewerGeneration(t *testing.T) {
	store := testenv.LocalStore(t)
	t0 := at("2024-01-01 00:00:00")
	clock := newFakeClock(t0)
	o := fakeLeaseOptions(clock, 30*time.Second)
	a, err := AcquireWith(t.Context(), store, "gold", "a", o)
	if err != nil {
		t.Fatal(err)
	}
	// Another runner, with a clock far ahead, takes generation 2.
	ahead := newFakeClock(t0.Add(time.Hour))
	b, err := AcquireWith(t.Context(), store, "gold", "b", fakeLeaseOptions(ahead, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(t.Context())
	clock.Set(t0.Add(10 * time.Second))
	<-a.Context().Done()
	if cause := context.Cause(a.Context()); !errors.Is(cause, ErrLeaseLost) {
		t.Fatalf("cause %v, want ErrLeaseLost", cause)
	}
}

func TestLeaseOptionsValidate(t *testing.T) {
	o := DefaultLeaseOptions()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.TTL = 0
	if o.Validate() == nil {
		t.Error("ttl 0 accepted")
	}
	o = DefaultLeaseOptions()
	o.MaxSkew = -1
	if o.Validate() == nil {
		t.Error("negative skew accepted")
	}
	if _, err := Acquire(t.Context(), testenv.LocalStore(t), "../x", "a", time.Second); err == nil {
		t.Error("job name with a slash accepted")
	}
}
