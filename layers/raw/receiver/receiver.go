// Package receiver lands rows pushed to medallion over HTTP and TCP in the
// raw layer: the ingest endpoint POST /v1/ingest/{source}, the TCP line
// listener, and the operational endpoints /healthz, /readyz and /metrics
// that medallion serve mounts beside them.
//
// # Batching
//
// Small requests are appended to one pending batch per source and landed
// as ONE raw object (raw.Land, named http-<first receive time>.<ext>) when
// the batch reaches FlushBytes or FlushInterval after its first request,
// whichever comes first. One goroutine per source (the flusher) lands the
// batches of that source one after another, in the order they filled. JSON
// arrays and single objects are rewritten as NDJSON lines, so a json or
// ndjson source gets NDJSON raw objects; a csv source gets CSV objects with
// exactly one header line (requests whose header differs from the batch's
// start a new batch).
//
// # Guarantees (HTTP)
//
// A request gets its 2xx only after raw.Land returned for the batch that
// holds it, that is after the raw object and its manifest are durable in
// the lake. Every acknowledged request is in exactly one raw object: each
// request is appended to exactly one batch, and a batch whose landing is
// retried is retried with the same bytes, which raw's SHA-256 commit
// recognises (a retry after a lost reply finds the earlier manifest).
//
// A request whose batch could not be landed gets 503 (or 500): nothing of it
// counts as acknowledged. The client should retry; if the failed attempt
// did reach the lake after all, the retry lands those rows a second time.
// That is the at-least-once contract of any HTTP ingest without an
// idempotency key. Dedupe in bronze (dedupe: [...]) removes such doubles
// when the rows carry a key.
//
// A batch whose bytes are identical to an object landed earlier (the same
// rows posted again, alone in a flush) is recognised by raw's content
// addressing: nothing new is landed, and the request is answered 200 with
// "duplicate": true and the earlier object. Rows that must count twice need
// something that tells them apart (an id or a timestamp).
//
// A client that disconnects before its answer is not acknowledged, but its
// rows were already in a batch and are landed anyway.
//
// # Guarantees (TCP)
//
// The TCP listener takes one JSON object per line (what an NGINX stream
// proxy forwards). TCP has no per-line acknowledgement: a line is durable
// after the flush that follows it. A line is appended to the source's batch
// once it is complete (ends in '\n', or the sender closed the connection
// after it). When the batch is full the listener stops reading, so the
// sender sees TCP back-pressure rather than lost lines. On shutdown the
// listener stops reading, appends every complete line already read, the
// batch is landed, and only then are the connections closed. Lines are not
// validated (there is nobody to answer): a malformed line is landed as it
// is, counted, and quarantined by bronze with its line number.
//
// # Lifecycle
//
// New checks the options; Start starts one flusher per source; Handler
// serves the endpoints; ListenTCP opens line listeners; Close stops
// accepting (503), lands everything pending, answers every waiting request
// and closes the TCP connections. Close should be called before
// http.Server.Shutdown, whose wait for active handlers then ends as soon
// as their batches are landed.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/lake"
)

// EnvToken is the environment variable holding the ingest bearer token.
// When it is set (non-empty), every ingest request must carry
// "Authorization: Bearer <token>".
const EnvToken = "MEDALLION_INGEST_TOKEN"

// Defaults of Options (the limits are those of serve.http in
// medallion.yaml).
const (
	DefaultMaxBodyBytes  = config.DefaultMaxBodyBytes
	DefaultFlushBytes    = 8 << 20
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultMaxPending    = config.DefaultMaxPendingBytes
	DefaultFlushTimeout  = 2 * time.Minute
	DefaultFlushAttempts = 3
	DefaultMaxBuffered   = config.DefaultMaxBufferedBytes
	DefaultBodyTimeout   = config.DefaultBodyTimeout
)

// Errors a caller can test for with errors.Is.
var (
	// ErrClosed means the receiver is shutting down or was never started.
	ErrClosed = errors.New("receiver: shutting down")
	// ErrFull means a source's pending buffer is full (HTTP 429).
	ErrFull = errors.New("receiver: pending buffer full")
	// errBudget means the receiver-wide memory budget is spent (HTTP 429).
	errBudget = errors.New("receiver: memory budget spent")
)

// Options configure a Receiver. Zero values take the defaults above.
type Options struct {
	Store    lake.Store       // required
	Pipeline *config.Pipeline // required: its sources are the ones accepted
	// Token is the bearer token ingest requests must carry (from
	// MEDALLION_INGEST_TOKEN; see EnvToken). Empty: no authentication.
	Token string
	// MaxBodyBytes bounds one request body (and one TCP line); larger gets
	// 413. It must not exceed MaxPending.
	MaxBodyBytes int64
	// FlushBytes: a source's batch is landed once it holds this many bytes.
	FlushBytes int64
	// FlushInterval: a batch is landed at the latest this long after its
	// first request.
	FlushInterval time.Duration
	// MaxPending bounds the bytes a source holds before they are durable
	// (the open batch and those waiting or being landed). A request that
	// would exceed it gets 429 with Retry-After; a TCP listener stops
	// reading until there is room.
	MaxPending int64
	// MaxBuffered bounds the request-body bytes held in memory across all
	// HTTP requests and sources: bodies being read, their framed copies and
	// the batches holding them until they are landed. A request takes its
	// Content-Length (a chunked or gzip body: its bytes as they arrive)
	// before reading; one that does not fit gets 429 with Retry-After. It
	// must be more than twice MaxBodyBytes (a body and its framed copy).
	MaxBuffered int64
	// BodyTimeout bounds the time to receive one request body; a body not
	// complete by then gets 408 and its connection is closed, so slow
	// senders cannot hold connections and budget.
	BodyTimeout time.Duration
	// FlushTimeout bounds one attempt to land a batch.
	FlushTimeout time.Duration
	// FlushAttempts is how many times a batch is tried before its requests
	// get 503.
	FlushAttempts int
	Log           *slog.Logger      // default: discard
	Now           func() time.Time  // receive times; default time.Now
	Metrics       *metrics.Registry // where the receiver's metrics go (and what /metrics serves); default: a private registry
}

// withDefaults fills zero values and refuses bad ones, naming the field.
func (o Options) withDefaults() (Options, error) {
	if o.Store == nil {
		return o, errors.New("receiver: Options.Store is required")
	}
	if o.Pipeline == nil {
		return o, errors.New("receiver: Options.Pipeline is required")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = DefaultFlushBytes
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.FlushTimeout == 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = max(DefaultMaxBuffered, 2*o.MaxBodyBytes+1)
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.FlushAttempts == 0 {
		o.FlushAttempts = DefaultFlushAttempts
	}
	switch {
	case o.MaxBodyBytes < 0:
		return o, fmt.Errorf("receiver: MaxBodyBytes %d: want > 0", o.MaxBodyBytes)
	case o.FlushBytes < 0:
		return o, fmt.Errorf("receiver: FlushBytes %d: want > 0", o.FlushBytes)
	case o.FlushInterval < 0:
		return o, fmt.Errorf("receiver: FlushInterval %s: want > 0", o.FlushInterval)
	case o.MaxPending < o.MaxBodyBytes:
		return o, fmt.Errorf("receiver: MaxPending %d is below MaxBodyBytes %d: one largest request would never fit", o.MaxPending, o.MaxBodyBytes)
	case o.MaxBuffered < 2*o.MaxBodyBytes+1:
		return o, fmt.Errorf("receiver: MaxBuffered %d is not above twice MaxBodyBytes %d: one largest request (its body and its framed copy) would never fit", o.MaxBuffered, o.MaxBodyBytes)
	case o.BodyTimeout < 0:
		return o, fmt.Errorf("receiver: BodyTimeout %s: want > 0", o.BodyTimeout)
	case o.FlushTimeout < 0:
		return o, fmt.Errorf("receiver: FlushTimeout %s: want > 0", o.FlushTimeout)
	case o.FlushAttempts < 0:
		return o, fmt.Errorf("receiver: FlushAttempts %d: want > 0", o.FlushAttempts)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	return o, nil
}

// Receiver accepts rows over HTTP and TCP and lands them in the raw layer.
// Create it with New.
type Receiver struct {
	opts    Options
	log     *slog.Logger
	m       *receiverMetrics
	sources map[string]*batcher

	// stop is canceled by abort, when Close's deadline passes: landing
	// attempts and TCP readers waiting for room give up.
	stop  context.Context
	abort context.CancelFunc

	mu        sync.Mutex
	started   bool
	flushers  sync.WaitGroup // one per source
	drained   chan struct{}  // closed when every flusher has returned
	shutdown  chan struct{}  // closed when shutdown begins
	closeOnce sync.Once
	listeners []*tcpListener

	running atomic.Bool // Start was called
	closing atomic.Bool // shutdown began: new HTTP requests get 503

	// mem is the receiver-wide bound on body bytes held (MaxBuffered).
	mem *budget
}

// New checks the options and builds a receiver for every source of the
// pipeline. Nothing runs until Start.
func New(opts Options) (*Receiver, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		opts:     o,
		log:      o.Log,
		m:        newReceiverMetrics(o.Metrics),
		sources:  map[string]*batcher{},
		drained:  make(chan struct{}),
		shutdown: make(chan struct{}),
	}
	r.mem = &budget{limit: o.MaxBuffered, onSet: func(n int64) { r.m.buffered.Set(float64(n)) }}
	r.stop, r.abort = context.WithCancel(context.Background())
	for _, name := range o.Pipeline.SourceOrder {
		src := o.Pipeline.Sources[name]
		if src == nil {
			continue
		}
		r.sources[name] = newBatcher(r, src)
	}
	return r, nil
}

// Start starts one flusher per source. They run until Close. If ctx is
// canceled first, the receiver begins the same graceful shutdown as Close
// (call Close to wait for it). Start may be called once.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("receiver: started twice")
	}
	if r.closing.Load() {
		return ErrClosed
	}
	r.started = true
	for _, b := range r.sources {
		r.flushers.Add(1)
		go func() {
			defer r.flushers.Done()
			b.run(r.stop)
		}()
	}
	go func() { // returns once the flushers have drained
		r.flushers.Wait()
		close(r.drained)
	}()
	if ctx.Done() != nil {
		go func() { // returns at ctx's end or at shutdown, whichever first
			select {
			case <-ctx.Done():
				r.beginShutdown()
			case <-r.shutdown:
			}
		}()
	}
	r.running.Store(true)
	return nil
}

// Close shuts the receiver down gracefully: new requests get 503, the TCP
// listeners stop accepting and reading, every pending batch is landed, every
// waiting request is answered, and the TCP connections are closed. If ctx
// ends first, landing is aborted (requests still waiting get 503) and Close
// returns an error wrapping ctx's once everything has stopped. Close is
// idempotent.
func (r *Receiver) Close(ctx context.Context) error {
	r.beginShutdown()
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	var err error
	if started {
		select {
		case <-r.drained:
		case <-ctx.Done():
			err = fmt.Errorf("receiver: close: %w (landing was abandoned; the requests still waiting got 503)", ctx.Err())
			r.abort()
			<-r.drained
		}
	}
	r.abort()
	r.closeListeners()
	return err
}

// beginShutdown stops accepting and starts the drain, once. TCP readers
// append the lines they have read before the flushers are told to drain,
// so those lines are in the last batches; that ordering is kept by one
// goroutine, owned by the receiver (Close waits for its end through the
// flushers it drains).
func (r *Receiver) beginShutdown() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closing.Store(true)
		close(r.shutdown)
		ls := append([]*tcpListener(nil), r.listeners...)
		r.mu.Unlock()
		for _, l := range ls {
			l.stopReading()
		}
		go func() {
			for _, l := range ls {
				l.waitReaders()
			}
			for _, b := range r.sources {
				b.drain()
			}
		}()
	})
}

// closeListeners closes the TCP connections (after the drain) and waits for
// their goroutines.
func (r *Receiver) closeListeners() {
	r.mu.Lock()
	ls := append([]*tcpListener(nil), r.listeners...)
	r.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
}

// Handler serves the ingest endpoint and the operational endpoints:
//
//	POST /v1/ingest/{source}   rows as NDJSON, a JSON array or object, or CSV
//	GET  /healthz              200 while the process is up
//	GET  /readyz               200 when the lake answers and the receiver accepts; 503 otherwise
//	GET  /metrics              Options.Metrics in the Prometheus text format
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ingest/{source}", r.serveIngest)
	mux.HandleFunc("GET /healthz", r.serveHealthz)
	mux.HandleFunc("GET /readyz", r.serveReadyz)
	mux.Handle("GET /metrics", r.opts.Metrics.Handler())
	return mux
}

// ListenConfigured opens a TCP line listener for every source whose
// pipeline entry sets listen:, and returns their addresses in source order.
// On an error the listeners already opened stay open until Close.
func (r *Receiver) ListenConfigured(ctx context.Context) ([]net.Addr, error) {
	var addrs []net.Addr
	for _, name := range r.opts.Pipeline.SourceOrder {
		src := r.opts.Pipeline.Sources[name]
		if src == nil || src.Listen == "" {
			continue
		}
		a, err := r.ListenTCP(ctx, name, src.Listen)
		if err != nil {
			return addrs, err
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}
