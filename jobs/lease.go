package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// Lease errors. Callers drive flow with errors.Is.
var (
	// ErrLeaseHeld means another runner holds the job's lease (or won the
	// race for it): try again later.
	ErrLeaseHeld = errors.New("lease held by another runner")
	// ErrLeaseLost is the cause of a Held's context when the lease could not
	// be renewed before it expired, or another runner took it over.
	ErrLeaseLost = errors.New("lease lost")
	// errLeaseReleased is the cause of a Held's context after Release.
	errLeaseReleased = errors.New("lease released")
)

// LeasePrefix is where lease objects live in the lake:
// _medallion/leases/<job>/<generation, 20 digits>.json.
const LeasePrefix = "_medallion/leases/"

// LeaseOptions tune leases. Get them from DefaultLeaseOptions and change
// what you need; Validate refuses bad values.
type LeaseOptions struct {
	// TTL is how long a lease lasts without renewal. The holder renews every
	// TTL/3; another runner can take the job over only after TTL (plus
	// MaxSkew) without renewal, so it is also how long a crashed runner
	// blocks its job.
	TTL time.Duration
	// MaxSkew is the largest difference between any two runners' clocks.
	// A contender waits this much past a lease's expiry before taking it.
	MaxSkew time.Duration
	// Clock tells time; tests use a fake one.
	Clock Clock
	// Log receives renewal problems; nil discards them.
	Log *slog.Logger
}

// DefaultLeaseOptions returns a 30s TTL, 2s of allowed clock skew and the
// system clock.
func DefaultLeaseOptions() LeaseOptions {
	return LeaseOptions{TTL: 30 * time.Second, MaxSkew: 2 * time.Second, Clock: SystemClock()}
}

// Validate refuses options a lease cannot work with, naming the field.
func (o LeaseOptions) Validate() error {
	switch {
	case o.TTL <= 0:
		return fmt.Errorf("lease ttl must be positive, got %s", o.TTL)
	case o.TTL < 3*time.Millisecond:
		return fmt.Errorf("lease ttl %s is too short to renew at ttl/3", o.TTL)
	case o.MaxSkew < 0:
		return fmt.Errorf("lease max skew must not be negative, got %s", o.MaxSkew)
	case o.Clock == nil:
		return errors.New("lease clock is nil")
	}
	return nil
}

// leaseRecord is the JSON body of one lease generation object.
type leaseRecord struct {
	Job        string    `json:"job"`
	Owner      string    `json:"owner"`
	Generation int64     `json:"generation"`
	Acquired   time.Time `json:"acquired"`
	Expires    time.Time `json:"expires"`
	Released   bool      `json:"released,omitempty"`
}

// Held is a lease this runner holds. Run the job under Context(), which is
// cancelled (cause ErrLeaseLost) as soon as the lease can no longer be
// proven held, and call Release when the job is done.
//
// A Held owns one goroutine, which renews the lease every TTL/3 until
// Release, the loss of the lease, or the cancellation of the context given
// to Acquire.
type Held struct {
	store lake.Store
	o     LeaseOptions
	log   *slog.Logger
	key   string // this generation's object
	next  string // the next generation's object: its existence means we lost

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the renewal goroutine has returned

	mu  sync.Mutex
	rec leaseRecord // rec.Expires: the expiry of the last successful write

	releaseOnce sync.Once
	releaseErr  error
}

// Acquire takes the job's lease for owner (a name unique to this process,
// e.g. host-pid-random) with the given TTL and default options. It returns
// an error wrapping ErrLeaseHeld when another runner holds it.
func Acquire(ctx context.Context, store lake.Store, job, owner string, ttl time.Duration) (*Held, error) {
	o := DefaultLeaseOptions()
	o.TTL = ttl
	return AcquireWith(ctx, store, job, owner, o)
}

// AcquireWith takes the job's lease: one runner per job at a time, across
// processes and machines that share the lake.
//
// # Design
//
// The lake offers put-if-absent but no compare-and-swap and no conditional
// delete, so a lease is not one object that is rewritten or deleted and
// re-created (two contenders can both delete an expired object and then
// each create "the" lease in turn, and an old holder's late renewal would
// overwrite the new holder's). Instead every acquisition creates a NEW
// object, one per generation:
//
//	_medallion/leases/<job>/00000000000000000007.json  {owner, generation 7, expires}
//
// The highest generation is the lease. To acquire, a runner notes the time
// T, lists the job's generations and reads the highest, g. If it is neither
// released nor expired as of T (expires + MaxSkew < T), it is held. Otherwise
// the runner creates generation g+1 with put-if-absent, so exactly one
// contender wins g+1; the others get ErrLeaseHeld. The winner lists again:
// if a higher generation already exists (it was slow and the lease moved
// on), it has lost too. Only then does it hold the lease, and it deletes
// the generations below its own (never its own, so generation numbers
// never go back).
//
// The holder renews by rewriting only its own generation object with a new
// expiry (taken from the clock before the write) every TTL/3. It believes
// it holds the lease only until the expiry of its last successful write:
// a renewal that completes after that, or finds generation g+2 existing,
// means the lease is lost, and Context() is cancelled with ErrLeaseLost.
// A failed renewal is retried until the expiry; there is no grace.
//
// Why two runners never both believe they hold it: a contender takes over
// generation g only if it started reading after g's last expiry E (plus
// MaxSkew for clock differences). The holder's renewals all complete before
// E, so such a read sees the latest E, and the holder's belief ended at E.
// A late renewal by a dead holder rewrites only generation g, which no
// longer decides anything. Stale contenders that create a deleted low
// generation see the higher one when they list again.
//
// The generation is a fencing token: it only grows. Release marks the
// generation released so the next runner need not wait for the expiry.
// The job's real fence remains the Delta commit (put-if-absent on the log),
// so a run cancelled by a lost lease never commits half its output.
func AcquireWith(ctx context.Context, store lake.Store, job, owner string, o LeaseOptions) (*Held, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkJobName(job); err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, errors.New("lease: empty owner")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := LeasePrefix + job + "/"

	g, err := freeGeneration(ctx, store, dir, job, o)
	if err != nil {
		return nil, err
	}

	now := o.Clock.Now()
	rec := leaseRecord{Job: job, Owner: owner, Generation: g + 1, Acquired: now, Expires: now.Add(o.TTL)}
	key := genKey(dir, rec.Generation)
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", job, err)
	}
	if _, err := store.PutIfAbsent(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		if errors.Is(err, lake.ErrExists) {
			return nil, fmt.Errorf("lease %s: %w (another runner took generation %d)", job, ErrLeaseHeld, rec.Generation)
		}
		// If the create landed despite the error, the object expires
		// after TTL like an abandoned lease.
		return nil, fmt.Errorf("lease %s: create %s: %w", job, key, err)
	}

	// A slow contender can win a low generation that was already deleted;
	// the newest generation decides.
	after, err := listGenerations(ctx, store, dir)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", job, err)
	}
	if len(after) > 0 && after[len(after)-1] > rec.Generation {
		_ = store.Delete(context.WithoutCancel(ctx), key) // garbage below the lease
		return nil, fmt.Errorf("lease %s: %w (generation %d is newer than ours, %d)", job, ErrLeaseHeld, after[len(after)-1], rec.Generation)
	}
	if !o.Clock.Now().Before(rec.Expires) {
		return nil, fmt.Errorf("lease %s: acquiring took longer than the ttl %s: the lake is too slow for it", job, o.TTL)
	}
	for _, old := range after {
		if old < rec.Generation-keptGenerations {
			if err := store.Delete(ctx, genKey(dir, old)); err != nil {
				log.Warn("delete old lease generation", "job", job, "generation", old, "err", err)
			}
		}
	}

	hctx, cancel := context.WithCancelCause(ctx)
	h := &Held{
		store: store, o: o, log: log,
		key: key, next: genKey(dir, rec.Generation+1),
		ctx: hctx, cancel: cancel, done: make(chan struct{}),
		rec: rec,
	}
	go h.renewLoop()
	return h, nil
}

// keptGenerations is how many generations below its own a new holder
// leaves in place. A local directory's listing is not a snapshot: a
// readdir that runs while one generation is created and the one before it
// deleted can return neither, and a contender that then sees no generation
// at all would create generation 1 again (the fencing token going back).
// With the last few generations kept, a listing misses them all only if
// that many acquisitions happen inside one readdir. Older ones are still
// deleted here, and maintenance prunes the rest by age.
const keptGenerations = 8

// freeGeneration returns the newest generation of job's lease when it
// is free to take over (released, or expired past the allowed clock skew
// when the listing started), 0 when there is none, and an error wrapping
// ErrLeaseHeld naming the holder otherwise.
func freeGeneration(ctx context.Context, store lake.Store, dir, job string, o LeaseOptions) (int64, error) {
	readStart := o.Clock.Now()
	gens, err := listGenerations(ctx, store, dir)
	if err != nil {
		return 0, fmt.Errorf("lease %s: %w", job, err)
	}
	if len(gens) == 0 {
		return 0, nil
	}
	g := gens[len(gens)-1]
	cur, err := readLease(ctx, store, genKey(dir, g))
	if errors.Is(err, lake.ErrNotExist) {
		// Deleted since we listed: only a newer holder deletes.
		return 0, fmt.Errorf("lease %s: %w (generation %d replaced while reading)", job, ErrLeaseHeld, g)
	}
	if err != nil {
		return 0, fmt.Errorf("lease %s: %w", job, err)
	}
	if !cur.Released && !readStart.After(cur.Expires.Add(o.MaxSkew)) {
		return 0, fmt.Errorf("lease %s: %w: %s (generation %d) holds it since %s, renewed until %s",
			job, ErrLeaseHeld, cur.Owner, cur.Generation, cur.Acquired.UTC().Format(time.RFC3339), cur.Expires.UTC().Format(time.RFC3339Nano))
	}
	return g, nil
}

// Context is cancelled when the lease is lost (context.Cause is then an
// error wrapping ErrLeaseLost), when it is released, or when the context
// given to Acquire is.
func (h *Held) Context() context.Context { return h.ctx }

// Generation is the lease's generation number: it grows with every
// acquisition of the job's lease, so it can fence writes.
func (h *Held) Generation() int64 { return h.rec.Generation }

// Owner is the owner the lease was acquired for.
func (h *Held) Owner() string { return h.rec.Owner }

// Expires is the expiry of the last successful renewal.
func (h *Held) Expires() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rec.Expires
}

// Release stops renewing, waits for the renewal goroutine, and marks the
// lease released so the next runner can take it at once. It is idempotent.
// It returns an error wrapping ErrLeaseLost if the lease had been lost.
func (h *Held) Release(ctx context.Context) error {
	h.releaseOnce.Do(func() {
		h.cancel(errLeaseReleased)
		<-h.done
		if cause := context.Cause(h.ctx); errors.Is(cause, ErrLeaseLost) {
			h.releaseErr = cause
			return
		}
		h.mu.Lock()
		rec := h.rec
		h.mu.Unlock()
		rec.Released = true
		rec.Expires = h.o.Clock.Now()
		if err := h.write(ctx, rec); err != nil {
			// The lease then simply expires after its TTL.
			h.releaseErr = fmt.Errorf("lease %s: release: %w", rec.Job, err)
		}
	})
	return h.releaseErr
}

// renewLoop renews at TTL/3 and retries failures until the lease expires.
func (h *Held) renewLoop() {
	defer close(h.done)
	interval := h.o.TTL / 3
	retry := max(interval/4, time.Millisecond)
	next := h.rec.Acquired.Add(interval)
	for {
		h.mu.Lock()
		deadline := h.rec.Expires
		h.mu.Unlock()
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		select {
		case <-h.ctx.Done():
			return
		case <-h.o.Clock.After(wake.Sub(h.o.Clock.Now())):
		}
		if h.ctx.Err() != nil {
			return
		}
		start := h.o.Clock.Now()
		if !start.Before(deadline) {
			h.cancel(fmt.Errorf("%w: %s: not renewed before it expired at %s", ErrLeaseLost, h.rec.Job, deadline.UTC().Format(time.RFC3339Nano)))
			return
		}
		err := h.renewOnce(start, deadline)
		switch {
		case errors.Is(err, ErrLeaseLost):
			h.cancel(err)
			return
		case err != nil:
			if h.ctx.Err() != nil {
				return
			}
			h.log.Warn("lease renewal failed; retrying until it expires", "job", h.rec.Job, "expires", deadline, "err", err)
			next = start.Add(retry)
		default:
			next = start.Add(interval)
		}
	}
}

// renewOnce writes a new expiry, measured from start, to our generation.
func (h *Held) renewOnce(start, deadline time.Time) error {
	h.mu.Lock()
	rec := h.rec
	h.mu.Unlock()
	rec.Expires = start.Add(h.o.TTL)
	ctx, cancel := context.WithTimeout(h.ctx, deadline.Sub(start))
	defer cancel()
	if err := h.write(ctx, rec); err != nil {
		return err
	}
	if done := h.o.Clock.Now(); !done.Before(deadline) {
		return fmt.Errorf("%w: %s: renewal finished at %s, after the expiry %s", ErrLeaseLost, rec.Job, done.UTC().Format(time.RFC3339Nano), deadline.UTC().Format(time.RFC3339Nano))
	}
	switch _, err := h.store.Stat(ctx, h.next); {
	case err == nil:
		return fmt.Errorf("%w: %s: taken over (generation %d exists)", ErrLeaseLost, rec.Job, rec.Generation+1)
	case !errors.Is(err, lake.ErrNotExist):
		return err
	}
	h.mu.Lock()
	h.rec.Expires = rec.Expires
	h.mu.Unlock()
	return nil
}

func (h *Held) write(ctx context.Context, rec leaseRecord) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = h.store.Put(ctx, h.key, bytes.NewReader(body), int64(len(body)))
	return err
}

// listGenerations returns the generation numbers under dir, ascending.
func listGenerations(ctx context.Context, store lake.Store, dir string) ([]int64, error) {
	objs, err := store.List(ctx, dir, "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var gens []int64
	for _, o := range objs {
		name, ok := strings.CutSuffix(path.Base(o.Key), ".json")
		if !ok || path.Dir(o.Key) != strings.TrimSuffix(dir, "/") {
			continue
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil && n > 0 {
			gens = append(gens, n)
		}
	}
	return gens, nil // keys are zero-padded: ascending key order is numeric order
}

func readLease(ctx context.Context, store lake.Store, key string) (leaseRecord, error) {
	rc, _, err := store.Get(ctx, key)
	if err != nil {
		return leaseRecord{}, err
	}
	defer rc.Close()
	// A read cut short is the store's or the network's fault and says
	// nothing about the record: only a record that reads whole and does not
	// parse gets the advice to free the job.
	b, err := io.ReadAll(rc)
	if err != nil {
		return leaseRecord{}, fmt.Errorf("read lease %s: %w", key, err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		// Deleting it would restart the generations below the fences the
		// holders recorded in the tables; a released record frees the job.
		return leaseRecord{}, fmt.Errorf(`read lease %s: damaged record: %w (overwrite it with {"released": true} to free the job)`, key, err)
	}
	return rec, nil
}

func genKey(dir string, gen int64) string {
	return fmt.Sprintf("%s%020d.json", dir, gen)
}

// checkJobName refuses names that would escape their lake prefix.
func checkJobName(job string) error {
	if job == "" || strings.ContainsAny(job, "/\\") || job == "." || job == ".." {
		return fmt.Errorf("bad job name %q: want a layer or table name like bronze.meters", job)
	}
	return nil
}
