package brokers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medallion-dev/medallion/internal/testenv"
)

const natsURL = "nats://127.0.0.1:4222"

// natsStream creates a stream of its own for the test on the local
// nats-server and deletes it afterwards.
func natsStream(t *testing.T) (jetstream.JetStream, string, string) {
	t.Helper()
	needTCP(t, "nats-server (JetStream)", "127.0.0.1:4222")
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connect to nats-server at %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := "medallion_test_" + randomName(t)
	subject := "medallion.test." + name
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("create JetStream stream (is nats-server running with -js?): %v", err)
	}
	t.Cleanup(func() {
		if err := js.DeleteStream(context.Background(), name); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return js, name, subject
}

func natsPublish(t *testing.T, js jetstream.JetStream, subject, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		// Two subjects under the filter, and one outside it in between.
		sub := subject + ".a"
		if i%2 == 1 {
			sub = subject + ".b"
		}
		if _, err := js.Publish(context.Background(), sub, payload(prefix, i)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// Messages published before, during and after a crash of the consumer at
// every point of a batch land exactly once.
func TestNATSRestartExactlyOnce(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			st := testenv.LocalStore(t)
			js, stream, subject := natsStream(t)
			o := NATSOptions{Options: testOptions("sensors"), URL: natsURL, Stream: stream, Subject: subject + ".>", Durable: "medallion", AckWait: 2 * time.Second}

			natsPublish(t, js, subject, "n", 0, 60)
			src, err := NewNATS(st, o)
			if err != nil {
				t.Fatal(err)
			}
			hook, crashed := crashAt(point, 3)
			src.crash = hook
			if err := src.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-crashed:
			case <-time.After(30 * time.Second):
				t.Fatalf("the consumer never reached %s three times (stats %+v)", point, src.Stats())
			}
			if err := src.Close(); !errors.Is(err, errCrashed) {
				t.Fatalf("Close after the crash = %v, want the crash", err)
			}

			natsPublish(t, js, subject, "n", 60, 100) // while it is down
			again, err := NewNATS(st, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			natsPublish(t, js, subject, "n", 100, 130) // after the restart
			settled := func() bool {
				ci, err := js.Consumer(context.Background(), stream, "medallion")
				if err != nil {
					t.Fatal(err)
				}
				info := ci.CachedInfo()
				fresh, err := ci.Info(context.Background())
				if err == nil {
					info = fresh
				}
				return info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
			}
			waitLanded(t, st, "sensors", ids("n", 0, 130), again, 500*time.Millisecond, settled)
			if err := again.Close(); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, st, "sensors", ids("n", 0, 130))
			if s := again.Stats(); point == "after-land" && s.Redelivered == 0 {
				t.Fatalf("after a crash between landing and acking nothing was recognised as redelivered (stats %+v)", s)
			}
			t.Logf("first run %+v; restart %+v", src.Stats(), again.Stats())
		})
	}
}

// A missing stream keeps the source down with the command that creates
// it; once the stream exists, the source comes up and consumes.
func TestNATSNoStream(t *testing.T) {
	needTCP(t, "nats-server (JetStream)", "127.0.0.1:4222")
	st := testenv.LocalStore(t)
	stream := "medallion_missing_" + randomName(t)
	subject := "medallion.test." + stream
	o := NATSOptions{Options: testOptions("x"), URL: natsURL, Stream: stream, Subject: subject + ".>", Durable: "d"}
	src, err := NewNATS(st, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatalf("Start on a missing stream = %v, want nil (the source stays down and retries)", err)
	}
	defer src.Close()
	want := fmt.Sprintf("nats stream add %s --subjects %q --storage file --defaults", stream, subject+".>")
	waitStatus(t, src, false, want)

	js := natsJS(t)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: stream, Subjects: []string{subject + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
	waitStatus(t, src, true, "")
	natsPublish(t, js, subject, "m", 0, 10)
	waitLanded(t, st, "x", ids("m", 0, 10), src, 0, nil)
}

// With create: true a missing stream is created, storing the subject.
func TestNATSCreateStream(t *testing.T) {
	needTCP(t, "nats-server (JetStream)", "127.0.0.1:4222")
	st := testenv.LocalStore(t)
	stream := "medallion_create_" + randomName(t)
	subject := "medallion.test." + stream
	js := natsJS(t)
	t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
	src, err := NewNATS(st, NATSOptions{Options: testOptions("x"), URL: natsURL, Stream: stream, Subject: subject + ".>", Durable: "d", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if s := src.Status(); !s.Up {
		t.Fatalf("status after Start with create: true = %+v, want up", s)
	}
	info, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("the stream was not created: %v", err)
	}
	if got := info.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != subject+".>" {
		t.Fatalf("created stream's subjects = %v, want [%s.>]", got, subject)
	}
	natsPublish(t, js, subject, "c", 0, 10)
	waitLanded(t, st, "x", ids("c", 0, 10), src, 0, nil)
}

func TestNATSUnreachable(t *testing.T) {
	src, err := NewNATS(testenv.LocalStore(t), NATSOptions{Options: testOptions("x"), URL: "nats://127.0.0.1:1", Stream: "s", Durable: "d"})
	if err != nil {
		t.Fatal(err)
	}
	startDown(t, src, "connect to nats://127.0.0.1:1")
}

// natsJS is a JetStream client of the test's own.
func natsJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connect to nats-server at %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// tcpProxy forwards a loopback port to target until stopped; start again
// reopens the same port.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection through it.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A connection lost while the source runs: down while nats.go reconnects,
// up again once it has, and consuming.
func TestNATSConnectionLost(t *testing.T) {
	js, stream, subject := natsStream(t)
	proxy := &tcpProxy{target: "127.0.0.1:4222"}
	proxy.start(t)
	defer proxy.stop()
	st := testenv.LocalStore(t)
	src, err := NewNATS(st, NATSOptions{Options: testOptions("x"), URL: "nats://" + proxy.addr, Stream: stream, Subject: subject + ".>", Durable: "d",
		ClientOpts: []nats.Option{nats.ReconnectWait(100 * time.Millisecond), nats.MaxReconnects(-1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, true, "")
	proxy.stop()
	down := waitStatus(t, src, false, "lost")
	t.Logf("down: %v", down.Err)
	proxy.start(t)
	waitStatus(t, src, true, "")
	natsPublish(t, js, subject, "r", 0, 10)
	waitLanded(t, st, "x", ids("r", 0, 10), src, 0, nil)
}
