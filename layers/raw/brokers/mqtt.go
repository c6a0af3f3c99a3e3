package brokers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/medallion-dev/medallion/internal/redact"
	"github.com/medallion-dev/medallion/lake"
)

// MQTTOptions configure an MQTT source: one topic filter read at QoS 1 in a
// persistent session (clean session off), so the broker keeps what arrives
// while the source is down and redelivers what it did not acknowledge.
type MQTTOptions struct {
	Options
	URL      string // tcp://host:1883 (ssl://, ws:// as paho accepts)
	Topic    string // topic filter, wildcards allowed
	QoS      byte   // must be 1: QoS 0 is never redelivered
	ClientID string // fixed: the broker keeps the session under it
	Username string // optional
	Password string // optional; from the environment, never the pipeline file
}

// Validate refuses options that cannot work, naming the field.
func (o MQTTOptions) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	switch {
	case o.URL == "":
		return fmt.Errorf("source %s: from.mqtt.url: missing (e.g. tcp://127.0.0.1:1883)", o.Source)
	case o.Topic == "":
		return fmt.Errorf("source %s: from.mqtt.topic: missing", o.Source)
	case o.ClientID == "":
		return fmt.Errorf("source %s: from.mqtt.client_id: missing (a fixed id, so the broker keeps the session across restarts)", o.Source)
	case o.QoS != 1:
		return fmt.Errorf("source %s: from.mqtt.qos: %d, want 1 (QoS 0 messages are lost on a restart; QoS 2 is not supported)", o.Source, o.QoS)
	}
	return nil
}

// MQTT lands the messages of a topic filter and acknowledges each (PUBACK)
// after the batch holding it is landed. See the package comment for what
// is and is not de-duplicated.
type MQTT struct {
	base
	opts MQTTOptions
}

var _ Source = (*MQTT)(nil)

// NewMQTT returns an MQTT source landing in store; it connects on Start.
func NewMQTT(store lake.Store, o MQTTOptions) (*MQTT, error) {
	if store == nil {
		return nil, errors.New("no lake store")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	q := &MQTT{opts: o}
	q.init(store, o.Options, "mqtt", q.connect)
	return q, nil
}

type mqttSession struct {
	q    *MQTT
	cl   mqtt.Client
	led  *ledger
	in   chan mqtt.Message
	lost chan error
	stop chan struct{} // closed when the session ends: unblocks the handler
	// drop counts, per message id, redeliveries still expected of landed
	// batches: taken from the ledger when the session starts.
	drop   map[string]int
	buf    []mqtt.Message
	size   int
	oldest time.Time
}

// messageID is what recognises a redelivered MQTT message: its packet id
// (kept by the broker when it resends) and a hash of topic and payload.
func messageID(m mqtt.Message) string {
	h := sha256.New()
	h.Write([]byte(m.Topic()))
	h.Write([]byte{0})
	h.Write(m.Payload())
	return strconv.Itoa(int(m.MessageID())) + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (q *MQTT) connect(ctx context.Context) (session, error) {
	o := q.opts
	led, err := openLedger(ctx, q.store, o.Options, "mqtt", ledgerKey(o.Source, "mqtt", o.ClientID), &q.stats, q.crash)
	if err != nil {
		return nil, fmt.Errorf("mqtt source %s: %w", o.Source, err)
	}
	s := &mqttSession{
		q: q, led: led,
		// Unacknowledged QoS 1 messages are bounded by the 16-bit packet
		// id, so with this room the handler never blocks paho's reader
		// (which would stall SUBACK and keepalives before run starts).
		in:   make(chan mqtt.Message, 1<<16),
		lost: make(chan error, 1),
		stop: make(chan struct{}),
		drop: map[string]int{},
	}
	for _, in := range led.intents {
		for _, id := range in.IDs {
			s.drop[id]++
		}
	}
	handler := func(_ mqtt.Client, m mqtt.Message) {
		select {
		case s.in <- m:
		case <-s.stop: // not acknowledged: the broker sends it again
		}
	}
	co := mqtt.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetAutoReconnect(false). // a new session re-reads the ledger
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetDefaultPublishHandler(handler). // resent before Subscribe returns
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case s.lost <- err:
			default:
			}
		})
	s.cl = mqtt.NewClient(co)
	if err := wait(ctx, s.cl.Connect()); err != nil {
		close(s.stop)
		return nil, redact.Error(fmt.Errorf("mqtt source %s: connect to %s as %s: %w", o.Source, redact.String(o.URL), o.ClientID, err), o.Password)
	}
	st := s.cl.Subscribe(o.Topic, o.QoS, handler)
	if err := wait(ctx, st); err != nil {
		s.end()
		return nil, fmt.Errorf("mqtt source %s: subscribe to %s: %w", o.Source, o.Topic, err)
	}
	if granted, ok := st.(*mqtt.SubscribeToken).Result()[o.Topic]; ok && granted != o.QoS {
		s.end()
		return nil, fmt.Errorf("mqtt source %s: subscribe to %s: the broker granted QoS %d, want %d", o.Source, o.Topic, granted, o.QoS)
	}
	return s.run, nil
}

// wait waits for a paho token, or ctx.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// end disconnects, keeping the session on the broker.
func (s *mqttSession) end() {
	close(s.stop)
	s.cl.Disconnect(250)
}

func (s *mqttSession) run(ctx context.Context) (err error) {
	o := s.q.opts
	defer func() {
		if !errors.Is(err, errCrashed) && ctx.Err() != nil {
			fctx, cancel := finalContext(ctx, o.Options)
			s.drain()
			ferr := s.flush(fctx, true)
			cancel()
			if ferr != nil && err == context.Canceled {
				err = ferr
			}
		}
		s.end()
	}()
	timer := time.NewTimer(o.Batch.MaxWait)
	defer timer.Stop()
	for {
		wait := o.Batch.MaxWait
		if len(s.buf) > 0 {
			wait = max(o.Batch.MaxWait-time.Since(s.oldest), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.lost:
			return fmt.Errorf("mqtt source %s: connection lost: %w", o.Source, err)
		case m := <-s.in:
			s.add(m)
		case <-timer.C:
		}
		if err := s.flush(ctx, false); err != nil {
			return err
		}
	}
}

// drain buffers what the handler already queued.
func (s *mqttSession) drain() {
	for {
		select {
		case m := <-s.in:
			s.add(m)
		default:
			return
		}
	}
}

func (s *mqttSession) add(m mqtt.Message) {
	if m.Duplicate() {
		if id := messageID(m); s.drop[id] > 0 {
			s.drop[id]--
			s.q.stats.redelivered.Add(1)
			m.Ack()
			return
		}
	}
	if len(s.buf) == 0 {
		s.oldest = time.Now()
	}
	s.buf = append(s.buf, m)
	s.size += len(m.Payload())
}

// flush lands due batches (every buffered message when final) and
// acknowledges their messages.
func (s *mqttSession) flush(ctx context.Context, final bool) error {
	o := s.q.opts
	for final && len(s.buf) > 0 || o.Batch.due(len(s.buf), s.size, s.oldest, time.Now()) {
		sizes := make([]int, len(s.buf))
		for i, m := range s.buf {
			sizes[i] = len(m.Payload())
		}
		k := o.Batch.cut(sizes)
		batch := s.buf[:k]
		payloads := make([][]byte, k)
		ids := make([]string, k)
		for i, m := range batch {
			payloads[i] = m.Payload()
			ids[i] = messageID(m)
		}
		rnd, err := randomSuffix()
		if err != nil {
			return err
		}
		in := intent{Name: fmt.Sprintf("mqtt:%s:%s:%s", o.ClientID, time.Now().UTC().Format("20060102T150405.000000000Z"), rnd), IDs: ids}
		if _, err := s.led.land(ctx, in, payloads); err != nil {
			return fmt.Errorf("mqtt source %s: %w", o.Source, err)
		}
		for _, m := range batch {
			m.Ack()
		}
		if err := s.led.at("after-ack"); err != nil {
			return err
		}
		s.buf = append([]mqtt.Message(nil), s.buf[k:]...)
		s.size = 0
		for _, m := range s.buf {
			s.size += len(m.Payload())
		}
		s.oldest = time.Now()
	}
	return nil
}
