package brokers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/medallion-dev/medallion/lake"
)

// KafkaOptions configure a Kafka source: a consumer group reading one topic.
type KafkaOptions struct {
	Options
	Brokers []string // seed brokers, host:port
	Topic   string
	Group   string // consumer group id; offsets are committed to it after landing
	// ClientOpts are extra franz-go options (TLS, SASL, ...), applied last.
	ClientOpts []kgo.Opt
}

// Validate refuses options that cannot work, naming the field.
func (o KafkaOptions) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	switch {
	case len(o.Brokers) == 0:
		return fmt.Errorf("source %s: from.kafka.brokers: missing (host:port of at least one broker)", o.Source)
	case o.Topic == "":
		return fmt.Errorf("source %s: from.kafka.topic: missing", o.Source)
	case o.Group == "":
		return fmt.Errorf("source %s: from.kafka.group: missing (the consumer group that holds the committed offsets)", o.Source)
	}
	return nil
}

// Kafka lands the records of a topic, partition by partition: each raw
// object holds a contiguous offset range of one partition, and its offsets
// are committed to the group once it is landed. See the package comment for
// why this is exactly once.
type Kafka struct {
	base
	opts KafkaOptions
}

var _ Source = (*Kafka)(nil)

// NewKafka returns a Kafka source landing in store; it connects on Start.
func NewKafka(store lake.Store, o KafkaOptions) (*Kafka, error) {
	if store == nil {
		return nil, errors.New("no lake store")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	k := &Kafka{opts: o}
	k.init(store, o.Options, "kafka", k.connect)
	return k, nil
}

// kpart is the state of one assigned partition.
type kpart struct {
	led       *ledger // nil until the first records of the assignment arrive
	watermark int64   // records at or below it are landed
	buf       []*kgo.Record
	size      int
	oldest    time.Time
	drop      *kgo.Record // the last record dropped as landed and not yet committed
}

// kafkaSession is one client's life: a group membership and its partitions.
type kafkaSession struct {
	k     *Kafka
	cl    *kgo.Client
	mu    sync.Mutex // guards parts against the rebalance callbacks
	parts map[int32]*kpart

	lastCheck time.Time // of the broker's health (see checkHealth)
}

func (k *Kafka) connect(ctx context.Context) (session, error) {
	s := &kafkaSession{k: k, parts: map[int32]*kpart{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.opts.Brokers...),
		kgo.ConsumerGroup(k.opts.Group),
		kgo.ConsumeTopics(k.opts.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsRevoked(s.forget),
		kgo.OnPartitionsLost(s.forget),
	}
	cl, err := kgo.NewClient(append(opts, k.opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", k.opts.Source, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka source %s: no broker of %v answers: %w", k.opts.Source, k.opts.Brokers, err)
	}
	if err := k.topicExists(pctx, cl); err != nil {
		cl.Close()
		return nil, err
	}
	s.cl = cl
	return s.run, nil
}

// topicExists asks the cluster for the topic's metadata (never creating
// it): a consumer group on a missing topic would wait silently, so the
// source is down instead, saying how to create it.
func (k *Kafka) topicExists(ctx context.Context, cl *kgo.Client) error {
	o := k.opts
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(o.Topic)
	req.Topics = append(req.Topics, t)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafka source %s: metadata of topic %s: %w", o.Source, o.Topic, err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != o.Topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("kafka source %s: topic %s does not exist on %v: create it, e.g. `kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions 3`", o.Source, o.Topic, o.Brokers, o.Brokers[0], o.Topic)
		} else if err != nil {
			return fmt.Errorf("kafka source %s: metadata of topic %s: %w", o.Source, o.Topic, err)
		}
		return nil
	}
	return fmt.Errorf("kafka source %s: the cluster's metadata does not list topic %s", o.Source, o.Topic)
}

// forget drops the state of revoked or lost partitions: their buffered
// records were not committed, so their next owner reads them again, and
// the ledger is read again if they come back.
func (s *kafkaSession) forget(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range lost[s.k.opts.Topic] {
		delete(s.parts, p)
	}
}

func (s *kafkaSession) part(p int32) *kpart {
	s.mu.Lock()
	defer s.mu.Unlock()
	kp := s.parts[p]
	if kp == nil {
		kp = &kpart{watermark: -1}
		s.parts[p] = kp
	}
	return kp
}

func (s *kafkaSession) run(ctx context.Context) (err error) {
	o := s.k.opts
	defer func() {
		if errors.Is(err, errCrashed) {
			// Like a killed process: no commit, no leave; the group
			// notices when the session times out, the test's restart
			// joins as a new member.
			s.cl.CloseAllowingRebalance()
			return
		}
		if ctx.Err() != nil {
			fctx, cancel := finalContext(ctx, o.Options)
			ferr := s.flush(fctx, true)
			cancel()
			if ferr != nil && err == context.Canceled {
				err = ferr
			}
		}
		s.cl.CloseAllowingRebalance()
	}()
	// A batch is landed and committed under work, not ctx: Close cancelling
	// ctx between the land and the commit would leave a landed batch
	// buffered, to be landed again by the final flush (recognised by the
	// ledger, but counted as redelivered and committed late).
	work, stop := lingerContext(ctx, o.ShutdownTimeout)
	defer stop()
	for {
		wait := o.Batch.MaxWait
		now := time.Now()
		s.mu.Lock()
		for _, kp := range s.parts {
			if len(kp.buf) > 0 {
				wait = min(wait, o.Batch.MaxWait-now.Sub(kp.oldest))
			}
		}
		s.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		fetches := s.cl.PollRecords(pctx, o.Batch.MaxMessages)
		cancel()
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("kafka source %s: fetch %s[%d]: %w", o.Source, t, p, err)
			}
		})
		if errors.Is(ferr, kgo.ErrClientClosed) {
			return ferr
		}
		if ferr != nil {
			o.logger().Warn("kafka fetch error", "err", ferr)
		}
		// Records polled as Close began are still buffered (or, if landed
		// before, marked for commit), so that the final flush covers them.
		var perr error
		fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
			if perr == nil && ft.Topic == o.Topic {
				perr = s.add(work, ft.Partition, ft.Records)
			}
		})
		if perr == nil && ctx.Err() == nil {
			perr = s.flush(work, false)
		}
		s.cl.AllowRebalance()
		if perr != nil {
			return perr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.checkHealth(ctx, fetches.NumRecords() > 0)
	}
}

// kafkaPingEvery is how often an idle session asks whether a broker still
// answers.
const kafkaPingEvery = 5 * time.Second

// checkHealth keeps Status true to the connection: franz-go reconnects by
// itself and surfaces no error while no broker answers, so an idle session
// pings the cluster now and then, and reports itself down (the session goes
// on, resuming when a broker is back) or up.
func (s *kafkaSession) checkHealth(ctx context.Context, gotRecords bool) {
	if gotRecords {
		s.k.setStatus(true, nil)
		s.lastCheck = time.Now()
		return
	}
	if time.Since(s.lastCheck) < kafkaPingEvery {
		return
	}
	s.lastCheck = time.Now()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.cl.Ping(pctx); err != nil {
		if ctx.Err() == nil {
			s.k.setStatus(false, fmt.Errorf("kafka source %s: no broker of %v answers: %w", s.k.opts.Source, s.k.opts.Brokers, err))
		}
		return
	}
	s.k.setStatus(true, nil)
}

// lingerContext returns a context that is cancelled d after ctx is (or
// when stop is called): work started before a shutdown gets to finish.
func lingerContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stopAfter := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(d, cancel)
	})
	return work, func() {
		stopAfter()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// add buffers the records of one partition, dropping those the ledger
// shows landed.
func (s *kafkaSession) add(ctx context.Context, p int32, recs []*kgo.Record) error {
	kp := s.part(p)
	if kp.led == nil {
		o := s.k.opts
		led, err := openLedger(ctx, s.k.store, o.Options, "kafka", ledgerKey(o.Source, "kafka", o.Topic, strconv.Itoa(int(p))), &s.k.stats, s.k.crash)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", o.Source, err)
		}
		kp.led = led
		for _, in := range led.intents {
			kp.watermark = max(kp.watermark, in.Last)
		}
	}
	for _, r := range recs {
		if r.Offset <= kp.watermark {
			s.k.stats.redelivered.Add(1)
			kp.drop = r
			continue
		}
		if len(kp.buf) > 0 && r.Offset <= kp.buf[len(kp.buf)-1].Offset {
			continue // a fetch retried after a reconnect: already buffered
		}
		if len(kp.buf) == 0 {
			kp.oldest = time.Now()
		}
		kp.buf = append(kp.buf, r)
		kp.size += len(r.Value)
	}
	return nil
}

// flush lands and commits every partition's due batches (all of them when
// final), and commits records dropped as landed.
func (s *kafkaSession) flush(ctx context.Context, final bool) error {
	o := s.k.opts
	s.mu.Lock()
	parts := make(map[int32]*kpart, len(s.parts))
	for p, kp := range s.parts {
		parts[p] = kp
	}
	s.mu.Unlock()
	for p, kp := range parts {
		for final && len(kp.buf) > 0 || o.Batch.due(len(kp.buf), kp.size, kp.oldest, time.Now()) {
			sizes := make([]int, len(kp.buf))
			for i, r := range kp.buf {
				sizes[i] = len(r.Value)
			}
			n := o.Batch.cut(sizes)
			batch := kp.buf[:n]
			first, last := batch[0].Offset, batch[n-1].Offset
			payloads := make([][]byte, n)
			for i, r := range batch {
				payloads[i] = r.Value
			}
			in := intent{Name: fmt.Sprintf("kafka:%s:%d:%d-%d", o.Topic, p, first, last), First: first, Last: last}
			if _, err := kp.led.land(ctx, in, payloads); err != nil {
				return fmt.Errorf("kafka source %s: %w", o.Source, err)
			}
			if err := s.cl.CommitRecords(ctx, batch[n-1]); err != nil {
				return fmt.Errorf("kafka source %s: commit %s[%d] offset %d after landing %s: %w", o.Source, o.Topic, p, last+1, in.Name, err)
			}
			if err := kp.led.at("after-ack"); err != nil {
				return err
			}
			kp.watermark, kp.drop = last, nil
			kp.buf = append([]*kgo.Record(nil), kp.buf[n:]...)
			kp.size = 0
			for _, r := range kp.buf {
				kp.size += len(r.Value)
			}
			kp.oldest = time.Now()
		}
		if kp.drop != nil && len(kp.buf) == 0 {
			if err := s.cl.CommitRecords(ctx, kp.drop); err != nil {
				return fmt.Errorf("kafka source %s: commit %s[%d] past landed offset %d: %w", o.Source, o.Topic, p, kp.drop.Offset, err)
			}
			kp.drop = nil
		}
	}
	return nil
}
