package brokers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/lake"
)

// Source is a broker consumer landing batches in the raw layer.
type Source interface {
	// Start makes a first attempt to connect and starts the consumer
	// goroutine under ctx; it may be called once. A broker that cannot be
	// reached (or a Kafka topic or NATS stream that does not exist) does
	// not fail Start: the source reports itself down in Status and keeps
	// reconnecting with a backoff, so that the rest of serve keeps working.
	Start(ctx context.Context) error
	// Close stops the consumer: it lands and acknowledges what is buffered
	// (bounded by Options.ShutdownTimeout), disconnects and waits for the
	// goroutine. It returns the error that stopped the consumer early, if
	// any. Close is idempotent; closing a source never started is a no-op.
	Close() error
	// Stats counts what the source did so far; safe to call at any time.
	Stats() Stats
	// Status says whether the source is connected; safe to call at any time.
	Status() Status
}

// Status is a source's connection state.
type Status struct {
	Source string    // the raw source it lands in
	Kind   string    // kafka | nats | mqtt
	Up     bool      // a session is connected and consuming
	Since  time.Time // when Up last changed (zero before the first attempt)
	Err    error     // while down: why the last session or connection attempt failed
}

// Stats counts a source's work since it was created.
type Stats struct {
	Batches     int64 // raw objects landed
	Messages    int64 // messages in those objects
	Bytes       int64 // bytes of those objects
	Redelivered int64 // redelivered messages recognised as already landed and dropped
	Empty       int64 // messages with an empty payload (acknowledged, no line written)
	Collisions  int64 // batches relanded because their bytes equalled an older batch's
}

// Batch says when the buffered messages are cut into one raw object.
type Batch struct {
	MaxMessages int           // cut at this many messages
	MaxBytes    int           // cut before the payloads would exceed this many bytes
	MaxWait     time.Duration // cut when the oldest buffered message has waited this long
}

// DefaultBatch is 1000 messages, 8 MiB or 1 second, whichever comes first.
func DefaultBatch() Batch {
	return Batch{MaxMessages: 1000, MaxBytes: 8 << 20, MaxWait: time.Second}
}

// Options are what every broker source needs.
type Options struct {
	// Source is the raw source the messages land in (sources.<name>).
	Source string
	// Format is the source's format: ndjson (one JSON document per message;
	// a document spread over lines is compacted to one) or csv (one or more
	// rows per message; CSVHeader is written at the top of every object).
	Format string
	// CSVHeader is the header line of csv objects; required for csv.
	CSVHeader string
	// Batch says when a batch is cut.
	Batch Batch
	// ShutdownTimeout bounds the final land-and-acknowledge in Close.
	ShutdownTimeout time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock giving each object's received time; nil is time.Now.
	Now func() time.Time
}

// DefaultOptions returns options for a source with the default batching.
func DefaultOptions(source, format string) Options {
	return Options{Source: source, Format: format, Batch: DefaultBatch(), ShutdownTimeout: 30 * time.Second}
}

// Validate refuses options that cannot work, naming the field.
func (o Options) Validate() error {
	if o.Source == "" {
		return errors.New("source: missing (the raw source the messages land in)")
	}
	switch o.Format {
	case "ndjson":
	case "csv":
		if o.CSVHeader == "" {
			return fmt.Errorf("source %s: csv_header: missing (a broker csv source needs the header line to write above its rows)", o.Source)
		}
	case "json":
		return fmt.Errorf("source %s: format json: a broker source lands one message per line; use ndjson or csv", o.Source)
	default:
		return fmt.Errorf("source %s: format %q: want ndjson or csv", o.Source, o.Format)
	}
	if o.Batch.MaxMessages < 1 {
		return fmt.Errorf("source %s: batch.max_messages: %d, want at least 1", o.Source, o.Batch.MaxMessages)
	}
	if o.Batch.MaxBytes < 1 {
		return fmt.Errorf("source %s: batch.max_bytes: %d, want at least 1", o.Source, o.Batch.MaxBytes)
	}
	if o.Batch.MaxWait <= 0 {
		return fmt.Errorf("source %s: batch.max_wait: %s, want more than 0", o.Source, o.Batch.MaxWait)
	}
	if o.ShutdownTimeout <= 0 {
		return fmt.Errorf("source %s: shutdown_timeout: %s, want more than 0", o.Source, o.ShutdownTimeout)
	}
	return nil
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// errCrashed ends a consumer at a test crash point: it returns at once,
// landing and acknowledging nothing more, like a killed process.
var errCrashed = errors.New("crashed at a test crash point")

// crashHook, set only by tests, is passed each crash point of a consumer
// ("brokers-<kind>-after-intent", "-after-land", "-after-ack"); returning
// errCrashed stops the consumer dead there.
type crashHook = crashpoint.Hook

// lifecycle owns a source's consumer goroutine: started under a child of
// the caller's ctx, cancelled and awaited by close.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // the goroutine's result, set before done closes
}

// start runs fn in the owned goroutine. fn gets a ctx cancelled by close.
func (l *lifecycle) start(ctx context.Context, fn func(ctx context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return errors.New("start: the source was already started or closed")
	}
	l.started = true
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		l.err = fn(ctx)
	}()
	return nil
}

// close cancels the goroutine, waits for it and returns its error
// (context.Canceled, the normal way to stop, is not an error).
func (l *lifecycle) close() error {
	l.mu.Lock()
	if !l.started || l.closed {
		l.closed = true
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.cancel()
	l.mu.Unlock()
	<-l.done
	if errors.Is(l.err, context.Canceled) {
		return nil
	}
	return l.err
}

// counters are Stats updated by the consumer goroutine and read by anyone.
type counters struct {
	batches, messages, bytes, redelivered, empty, collisions atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{
		Batches:     c.batches.Load(),
		Messages:    c.messages.Load(),
		Bytes:       c.bytes.Load(),
		Redelivered: c.redelivered.Load(),
		Empty:       c.empty.Load(),
		Collisions:  c.collisions.Load(),
	}
}

// due reports whether a buffer of n messages and size bytes, whose oldest
// message arrived at oldest, must be cut now.
func (b Batch) due(n, size int, oldest, now time.Time) bool {
	return n > 0 && (n >= b.MaxMessages || size >= b.MaxBytes || now.Sub(oldest) >= b.MaxWait)
}

// cut returns how many of the leading messages (sizes in order) go in the
// next batch: at most MaxMessages, and no more than MaxBytes in total
// unless the first message alone is bigger.
func (b Batch) cut(sizes []int) int {
	n, total := 0, 0
	for _, s := range sizes {
		if n == b.MaxMessages || (n > 0 && total+s > b.MaxBytes) {
			break
		}
		n++
		total += s
	}
	return n
}

// finalContext is the context of the last land-and-acknowledge in Close:
// not cancelled with ctx, bounded by the shutdown timeout.
func finalContext(ctx context.Context, o Options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
}

// session is one connection's consumer loop: it returns when the
// connection fails or ctx ends.
type session func(ctx context.Context) error

// connector opens a session: it connects, checks what must exist (a
// stream, a subscription) and reads the ledger.
type connector func(ctx context.Context) (session, error)

// base is what the three broker sources share: the lake they land in, the
// consumer goroutine, the counters and the connection state. Each source
// embeds it and gives it its connector; Start, Close, Stats and Status are
// base's.
type base struct {
	store   lake.Store
	opts    Options
	kind    string
	connect connector
	life    lifecycle
	stats   counters
	crash   crashHook // tests only

	mu     sync.Mutex
	status Status
}

// init sets a source's common part up; o is already validated.
func (b *base) init(store lake.Store, o Options, kind string, connect connector) {
	b.store, b.opts, b.kind, b.connect = store, o, kind, connect
	b.status = Status{Source: o.Source, Kind: kind}
}

// Stats counts what the source did so far.
func (b *base) Stats() Stats { return b.stats.stats() }

// Status says whether the source is connected.
func (b *base) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *base) setStatus(up bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status.Up != up || b.status.Since.IsZero() {
		b.status.Since = time.Now()
	}
	b.status.Up, b.status.Err = up, err
}

// Start makes a first connection attempt, so that a reachable broker is
// consuming when Start returns, then runs the consumer under ctx; a failed
// attempt is logged and retried in the background (see Source).
func (b *base) Start(ctx context.Context) error {
	first, err := b.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		b.setStatus(false, err)
		b.opts.logger().Warn("broker source down at start; reconnecting in the background", "source", b.opts.Source, "kind", b.kind, "err", err)
	} else {
		b.setStatus(true, nil)
	}
	return b.life.start(ctx, func(ctx context.Context) error {
		return b.supervise(ctx, first)
	})
}

// Close lands and acknowledges what is buffered, disconnects and waits.
func (b *base) Close() error { return b.life.close() }

// supervise runs sessions until ctx ends or a test crash point is hit. A
// session that fails (a lost connection, a lake error) is logged and, after
// a backoff, replaced by a new one from connect: everything it had not
// acknowledged is redelivered by the broker and recognised through the
// ledger. first is the session Start connected, or nil.
func (b *base) supervise(ctx context.Context, first session) error {
	log := b.opts.logger()
	s := first
	backoff := 500 * time.Millisecond
	if s == nil {
		backoff = b.wait(ctx, backoff)
	}
	for ctx.Err() == nil {
		var err error
		if s != nil {
			err = s(ctx)
			s = nil
			if ctx.Err() != nil && err != nil && !errors.Is(err, context.Canceled) {
				return err // the final land or acknowledgement failed
			}
		} else {
			s, err = b.connect(ctx)
			if err == nil {
				b.setStatus(true, nil)
				log.Info("broker source connected", "source", b.opts.Source, "kind", b.kind)
				backoff = 500 * time.Millisecond
				continue
			}
		}
		if errors.Is(err, errCrashed) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		b.setStatus(false, err)
		log.Warn("broker session ended; reconnecting", "source", b.opts.Source, "kind", b.kind, "err", err, "backoff", backoff)
		backoff = b.wait(ctx, backoff)
	}
	return ctx.Err()
}

// wait sleeps for backoff (or until ctx ends) and returns the next one.
func (b *base) wait(ctx context.Context, backoff time.Duration) time.Duration {
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return min(2*backoff, 30*time.Second)
}

// randomSuffix names batches that have no broker identity (MQTT).
func randomSuffix() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random batch id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
