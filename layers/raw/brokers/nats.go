package brokers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/internal/redact"
	"github.com/medallion-dev/medallion/lake"
)

// NATSOptions configure a NATS JetStream source: a durable pull consumer on
// a stream (made by the source when Create is set), the consumer created or
// updated by the source.
type NATSOptions struct {
	Options
	URL     string // nats://host:port
	Stream  string // the stream; it must exist unless Create is set
	Subject string // filter subject (wildcards allowed); empty: the whole stream
	Durable string // durable consumer name; one running source per durable
	// AckWait is how long JetStream waits for an ack before redelivering;
	// it must exceed the time to land a batch (default 30s).
	AckWait time.Duration
	// Create makes the stream when it does not exist (file storage, the
	// server's default limits, storing Subject or else <Stream>.>); without
	// it a missing stream keeps the source down with an error giving the
	// nats CLI command that creates it.
	Create bool
	// ClientOpts are extra nats.go options (credentials, TLS, ...).
	ClientOpts []nats.Option
}

// Validate refuses options that cannot work, naming the field.
func (o NATSOptions) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	switch {
	case o.URL == "":
		return fmt.Errorf("source %s: from.nats.url: missing", o.Source)
	case o.Stream == "":
		return fmt.Errorf("source %s: from.nats.stream: missing", o.Source)
	case o.Durable == "":
		return fmt.Errorf("source %s: from.nats.durable: missing (the durable consumer that remembers what was acknowledged)", o.Source)
	case o.AckWait < 0:
		return fmt.Errorf("source %s: from.nats.ack_wait: %s, want more than 0", o.Source, o.AckWait)
	case o.AckWait > 0 && o.AckWait <= o.Batch.MaxWait:
		return fmt.Errorf("source %s: from.nats.ack_wait: %s must exceed batch.max_wait %s, or JetStream redelivers messages still waiting in a batch", o.Source, o.AckWait, o.Batch.MaxWait)
	}
	return nil
}

func (o NATSOptions) ackWait() time.Duration {
	if o.AckWait == 0 {
		return 30 * time.Second
	}
	return o.AckWait
}

// NATS lands the messages of a JetStream durable pull consumer. Messages are
// acknowledged one by one with DoubleAck (the server confirms) after the
// batch holding them is landed.
type NATS struct {
	base
	opts NATSOptions
}

var _ Source = (*NATS)(nil)

// NewNATS returns a JetStream source landing in store; it connects on Start.
func NewNATS(store lake.Store, o NATSOptions) (*NATS, error) {
	if store == nil {
		return nil, errors.New("no lake store")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	n := &NATS{opts: o}
	n.init(store, o.Options, "nats", n.connect)
	return n, nil
}

type natsSession struct {
	n    *NATS
	nc   *nats.Conn
	cons jetstream.Consumer
	led  *ledger
	// before holds the stream sequences of the ledger's landed batches when
	// the session started: they may be redelivered (after AckWait) at any
	// time in the session (bounded by the ledger: keepIntents batches).
	before map[uint64]bool
	// landed holds the sequences of the last batches landed in this
	// session, which JetStream may redeliver if AckWait passed while they
	// were landed (bounded, oldest forgotten first).
	landed map[uint64]bool
	order  [][]uint64 // landed's batches, oldest first
	buf    []jetstream.Msg
	seqs   map[uint64]bool // sequences in buf
	size   int
	oldest time.Time
}

func (n *NATS) connect(ctx context.Context) (session, error) {
	o := n.opts
	opts := append([]nats.Option{
		nats.Name("medallion " + o.Source), nats.Timeout(10 * time.Second),
		// nats.go reconnects by itself, and a pull waits through it without
		// an error: these keep Status true to the connection meanwhile.
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if c.IsClosed() {
				return // the session closed it: supervise reports that
			}
			if err == nil {
				err = errors.New("disconnected")
			}
			n.setStatus(false, redact.Error(fmt.Errorf("nats source %s: connection to %s lost; reconnecting: %w", o.Source, redact.String(o.URL), err)))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { n.setStatus(true, nil) }),
	}, o.ClientOpts...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("nats source %s: connect to %s: %w", o.Source, redact.String(o.URL), err))
	}
	fail := func(err error) (session, error) {
		nc.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(fmt.Errorf("nats source %s: jetstream: %w", o.Source, err))
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := o.ensureStream(cctx, js); err != nil {
		return fail(err)
	}
	cons, err := js.CreateOrUpdateConsumer(cctx, o.Stream, jetstream.ConsumerConfig{
		Durable:       o.Durable,
		FilterSubject: o.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.ackWait(),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: max(4*o.Batch.MaxMessages, 1000),
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fail(o.missingStream()) // deleted since ensureStream looked
	}
	if err != nil {
		return fail(fmt.Errorf("nats source %s: durable consumer %s on stream %s: %w", o.Source, o.Durable, o.Stream, err))
	}
	led, err := openLedger(ctx, n.store, o.Options, "nats", ledgerKey(o.Source, "nats", o.Stream, o.Durable), &n.stats, n.crash)
	if err != nil {
		return fail(fmt.Errorf("nats source %s: %w", o.Source, err))
	}
	s := &natsSession{n: n, nc: nc, cons: cons, led: led, before: map[uint64]bool{}, landed: map[uint64]bool{}, seqs: map[uint64]bool{}}
	for _, in := range led.intents {
		for _, q := range expand(in.Seqs) {
			s.before[q] = true
		}
	}
	return s.run, nil
}

// streamSubjects are the subjects a created stream stores.
func (o NATSOptions) streamSubjects() []string {
	if o.Subject != "" {
		return []string{o.Subject}
	}
	return []string{o.Stream + ".>"}
}

// ensureStream makes the stream when it is missing and Create is set.
func (o NATSOptions) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.Stream(ctx, o.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats source %s: look up stream %s: %w", o.Source, o.Stream, err)
	}
	if !o.Create {
		return o.missingStream()
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: o.streamSubjects(), Storage: jetstream.FileStorage})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("nats source %s: create stream %s for subjects %s (from.nats.create): %w", o.Source, o.Stream, strings.Join(o.streamSubjects(), " "), err)
	}
	o.logger().Info("created JetStream stream", "source", o.Source, "stream", o.Stream, "subjects", o.streamSubjects())
	return nil
}

// missingStream says what to create, as the nats CLI command that does it.
func (o NATSOptions) missingStream() error {
	return fmt.Errorf("nats source %s: stream %s does not exist on %s: create it with `nats stream add %s --subjects %q --storage file --defaults`, or set from.nats.create: true to let medallion create it",
		o.Source, o.Stream, redact.String(o.URL), o.Stream, strings.Join(o.streamSubjects(), " "))
}

// remember adds a landed batch's sequences to the recognised set.
func (s *natsSession) remember(seqs []uint64) {
	for _, q := range seqs {
		s.landed[q] = true
	}
	s.order = append(s.order, seqs)
	for len(s.order) > keepIntents {
		for _, q := range s.order[0] {
			delete(s.landed, q)
		}
		s.order = s.order[1:]
	}
}

func (s *natsSession) run(ctx context.Context) (err error) {
	o := s.n.opts
	defer func() {
		if !errors.Is(err, errCrashed) && ctx.Err() != nil {
			fctx, cancel := finalContext(ctx, o.Options)
			ferr := s.flush(fctx, true)
			cancel()
			if ferr != nil && err == context.Canceled {
				err = ferr
			}
		}
		s.nc.Close()
	}()
	for {
		wait := o.Batch.MaxWait
		if len(s.buf) > 0 {
			wait = o.Batch.MaxWait - time.Since(s.oldest)
		}
		if wait > 0 {
			fctx, cancel := context.WithTimeout(ctx, max(wait, 50*time.Millisecond))
			err := s.fetch(fctx, o.Batch.MaxMessages-len(s.buf))
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return err
			}
		}
		if err := s.flush(ctx, false); err != nil {
			return err
		}
	}
}

// fetch pulls up to want messages until ctx ends.
func (s *natsSession) fetch(ctx context.Context, want int) error {
	o := s.n.opts
	batch, err := s.cons.Fetch(max(want, 1), jetstream.FetchContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("nats source %s: fetch from %s/%s: %w", o.Source, o.Stream, o.Durable, err)
	}
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("nats source %s: message on %s without JetStream metadata: %w", o.Source, m.Subject(), err)
		}
		q := md.Sequence.Stream
		switch {
		case s.before[q] || s.landed[q]:
			// Landed before and not (confirmed) acknowledged: ack now.
			s.n.stats.redelivered.Add(1)
			if err := m.DoubleAck(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("nats source %s: ack landed stream sequence %d: %w", o.Source, q, err)
			}
		case s.seqs[q]:
			// Redelivered while buffered (AckWait passed): keep the first.
		default:
			if len(s.buf) == 0 {
				s.oldest = time.Now()
			}
			s.buf = append(s.buf, m)
			s.seqs[q] = true
			s.size += len(m.Data())
		}
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("nats source %s: fetch from %s/%s: %w", o.Source, o.Stream, o.Durable, err)
	}
	return nil
}

// flush lands due batches (every buffered message when final) and
// acknowledges their messages.
func (s *natsSession) flush(ctx context.Context, final bool) error {
	o := s.n.opts
	for final && len(s.buf) > 0 || o.Batch.due(len(s.buf), s.size, s.oldest, time.Now()) {
		sizes := make([]int, len(s.buf))
		for i, m := range s.buf {
			sizes[i] = len(m.Data())
		}
		k := o.Batch.cut(sizes)
		batch := s.buf[:k]
		payloads := make([][]byte, k)
		seqs := make([]uint64, k)
		for i, m := range batch {
			payloads[i] = m.Data()
			md, _ := m.Metadata() // checked in fetch
			seqs[i] = md.Sequence.Stream
		}
		sorted := slices.Sorted(slices.Values(seqs))
		in := intent{
			Name: fmt.Sprintf("nats:%s:%s:%d-%d", o.Stream, o.Durable, sorted[0], sorted[k-1]),
			Seqs: intervals(sorted),
		}
		if _, err := s.led.land(ctx, in, payloads); err != nil {
			return fmt.Errorf("nats source %s: %w", o.Source, err)
		}
		s.remember(seqs)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(64)
		for i, m := range batch {
			g.Go(func() error {
				if err := m.DoubleAck(gctx); err != nil {
					return fmt.Errorf("nats source %s: ack stream sequence %d after landing %s: %w", o.Source, seqs[i], in.Name, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if err := s.led.at("after-ack"); err != nil {
			return err
		}
		for _, q := range seqs {
			delete(s.seqs, q)
		}
		s.buf = append([]jetstream.Msg(nil), s.buf[k:]...)
		s.size = 0
		for _, m := range s.buf {
			s.size += len(m.Data())
		}
		s.oldest = time.Now()
	}
	return nil
}

// intervals compresses sorted, distinct numbers into closed intervals.
func intervals(sorted []uint64) [][2]uint64 {
	var out [][2]uint64
	for _, q := range sorted {
		if n := len(out); n > 0 && out[n-1][1]+1 == q {
			out[n-1][1] = q
			continue
		}
		out = append(out, [2]uint64{q, q})
	}
	return out
}

// maxLedgerMembers bounds what a damaged ledger can make a source hold.
const maxLedgerMembers = 1 << 24

// expand is the inverse of intervals.
func expand(iv [][2]uint64) []uint64 {
	var out []uint64
	for _, r := range iv {
		for q := r[0]; q <= r[1] && q >= r[0] && len(out) < maxLedgerMembers; q++ {
			out = append(out, q)
		}
	}
	return out
}
