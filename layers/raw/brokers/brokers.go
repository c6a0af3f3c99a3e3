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
	// Start connects to the broker, failing if it cannot, and starts the
	// consumer goroutine under ctx. It may be called once.
	Start(ctx context.Context) error
	// Close stops the consumer: it lands and acknowledges what is buffered
	// (bounded by Options.ShutdownTimeout), disconnects and waits for the
	// goroutine. It returns the error that stopped the consumer early, if
	// any. Close is idempotent; closing a source never started is a no-op.
	Close() error
	// Stats counts what the source did so far; safe to call at any time.
	Stats() Stats
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

// checkStore refuses a nil store early, naming what is missing.
func checkStore(store lake.Store) error {
	if store == nil {
		return errors.New("no lake store")
	}
	return nil
}

// supervise runs sessions until ctx ends or a test crash point is hit. A
// session that fails (a lost connection, a lake error) is logged and, after
// a backoff, replaced by a new one from connect: everything it had not
// acknowledged is redelivered by the broker and recognised through the
// ledger. first is the session Start already connected.
func supervise(ctx context.Context, log *slog.Logger, first func(ctx context.Context) error, connect func(ctx context.Context) (func(ctx context.Context) error, error)) error {
	session := first
	backoff := 500 * time.Millisecond
	for {
		var err error
		if session != nil {
			err = session(ctx)
			session = nil
		} else {
			session, err = connect(ctx)
			if err == nil {
				backoff = 500 * time.Millisecond
				continue
			}
		}
		if errors.Is(err, errCrashed) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("broker session ended; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// randomSuffix names batches that have no broker identity (MQTT).
func randomSuffix() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random batch id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
