package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// TableLease is the name of the lease every runner (`medallion run`,
// `serve`'s scheduler and stream mode) takes before running the job of a
// table: one writer per table, whichever command runs it. It is distinct
// from the scheduler's per-entry leases ("bronze", "silver.x"), which a
// scheduled run holds around its table leases.
func TableLease(t layers.TableRef) string { return "table." + t.String() }

// FenceAppID is the Delta txn appId under which a holder of lease records
// the lease's generation in every commit it makes (delta.WithFence): a
// commit meeting a higher generation is refused, so a holder that stalled
// past its TTL cannot commit after the runner that took over.
func FenceAppID(lease string) string { return "medallion-lease:" + lease }

// leaseRetry is how often a runner waiting for a held table lease asks
// again.
const leaseRetry = 100 * time.Millisecond

// withTableLease runs fn under the lease of table t, fenced by its
// generation. When another runner holds the lease, it waits up to
// r.LeaseWait for it, then returns an error wrapping ErrLeaseHeld naming
// the holder. If the lease is lost while fn runs, the error says so.
func (r *Runner) withTableLease(ctx context.Context, t layers.TableRef, fn func(context.Context) (layers.Result, error)) (layers.Result, error) {
	o, release, err := r.leased(ctx, t, fn)
	release()
	return o, err
}

// leased is withTableLease leaving the release to the caller: release
// (never nil) gives the lease back and must be called once fn's outcome
// no longer needs it (Run first lets the jobs reading t start).
func (r *Runner) leased(ctx context.Context, t layers.TableRef, fn func(context.Context) (layers.Result, error)) (o layers.Result, release func(), err error) {
	held, err := r.acquireTable(ctx, t)
	if err != nil {
		return layers.Result{}, func() {}, err
	}
	release = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.leaseOptions().TTL)
		defer cancel()
		if err := held.Release(rctx); err != nil && r.Log != nil {
			r.Log.Warn("release table lease", "table", t.String(), "err", err)
		}
	}
	name := TableLease(t)
	lctx := delta.WithFence(held.Context(), FenceAppID(name), held.Generation())
	o, err = fn(lctx)
	if cause := context.Cause(held.Context()); errors.Is(cause, ErrLeaseLost) {
		// What the job says (a cancelled context, a fenced commit) is a
		// consequence; the lost lease is what happened.
		return o, release, fmt.Errorf("%w; the job stopped without committing after that (%v)", cause, err)
	}
	if errors.Is(err, delta.ErrFenced) {
		// We hold the lease, yet a table records a newer generation: the
		// lease objects were deleted and generations restarted.
		return o, release, fmt.Errorf("%w (if %s%s/ was deleted, put a lease object with a released record at a generation above the table's fence there)",
			err, LeasePrefix, name)
	}
	return o, release, err
}

// acquireTable takes the lease of table t, waiting up to r.LeaseWait while
// another runner holds it.
func (r *Runner) acquireTable(ctx context.Context, t layers.TableRef) (*Held, error) {
	owner := r.Owner
	if owner == "" {
		r.ownerOnce.Do(func() { r.owner = DefaultOwner() })
		owner = r.owner
	}
	name := TableLease(t)
	deadline := time.Now().Add(r.LeaseWait)
	for {
		held, err := AcquireWith(ctx, r.Store, name, owner, r.leaseOptions())
		if err == nil {
			return held, nil
		}
		if !errors.Is(err, ErrLeaseHeld) {
			return nil, err
		}
		wait := min(leaseRetry, time.Until(deadline))
		if wait <= 0 {
			return nil, fmt.Errorf("%w (waited %s for it; run again once that run is done)", err, r.LeaseWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (r *Runner) leaseOptions() LeaseOptions {
	o := r.Lease
	if o.TTL == 0 {
		o = DefaultLeaseOptions()
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.Log == nil {
		o.Log = r.Log
	}
	return o
}

// WithTableLease runs fn under the lease of table t, fenced by its
// generation, as the runner runs a table's job: what a command that writes
// a table outside a run (`medallion replay`) holds, so that it never
// commits beside a run of the same table.
func (r *Runner) WithTableLease(ctx context.Context, t layers.TableRef, fn func(context.Context) (layers.Result, error)) (layers.Result, error) {
	return r.withTableLease(ctx, t, fn)
}
