package brokers

import (
	"context"
	"errors"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/medallion-dev/medallion/internal/testenv"
)

const mqttURL = "tcp://127.0.0.1:1883"

func mqttClient(t *testing.T, id string, clean bool) mqtt.Client {
	t.Helper()
	needTCP(t, "Mosquitto (MQTT)", "127.0.0.1:1883")
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mqttURL).SetClientID(id).SetCleanSession(clean).SetConnectTimeout(5 * time.Second))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to Mosquitto at %s: %v", mqttURL, tok.Error())
	}
	return cl
}

func mqttPublish(t *testing.T, cl mqtt.Client, topic, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		tok := cl.Publish(topic, 1, false, payload(prefix, i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// Messages published before, during and after a crash of the consumer at
// every point of a batch land exactly once. MQTT has no message identity;
// the test's payloads are distinct, which is what recognition by packet
// id and payload hash relies on (see the package comment).
func TestMQTTRestartExactlyOnce(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			st := testenv.LocalStore(t)
			name := randomName(t)
			topic := "medallion/test/" + name
			clientID := "medallion-test-" + name
			o := MQTTOptions{Options: testOptions("meters"), URL: mqttURL, Topic: topic + "/#", QoS: 1, ClientID: clientID}
			t.Cleanup(func() {
				// A clean-session connect under the same id ends the session.
				mqttClient(t, clientID, true).Disconnect(100)
			})
			pub := mqttClient(t, "medallion-pub-"+name, true)
			defer pub.Disconnect(100)

			src, err := NewMQTT(st, o)
			if err != nil {
				t.Fatal(err)
			}
			hook, crashed := crashAt(point, 3)
			src.crash = hook
			if err := src.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			mqttPublish(t, pub, topic+"/a", "q", 0, 60)
			select {
			case <-crashed:
			case <-time.After(30 * time.Second):
				t.Fatalf("the consumer never reached %s three times (stats %+v)", point, src.Stats())
			}
			if err := src.Close(); !errors.Is(err, errCrashed) {
				t.Fatalf("Close after the crash = %v, want the crash", err)
			}

			mqttPublish(t, pub, topic+"/b", "q", 60, 100) // while it is down: queued in the session
			again, err := NewMQTT(st, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			mqttPublish(t, pub, topic+"/a", "q", 100, 130) // after the restart
			waitLanded(t, st, "meters", ids("q", 0, 130), again, time.Second, nil)
			if err := again.Close(); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, st, "meters", ids("q", 0, 130))
			if s := again.Stats(); point == "after-land" && s.Redelivered == 0 {
				t.Fatalf("after a crash between landing and acking nothing was recognised as redelivered (stats %+v)", s)
			}
			t.Logf("first run %+v; restart %+v", src.Stats(), again.Stats())

			// Everything was acknowledged: a third run gets nothing.
			third, err := NewMQTT(st, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := third.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			// A new message marks the end: the session's queued messages
			// (anything unacknowledged) are delivered ahead of it.
			mqttPublish(t, pub, topic+"/a", "q", 130, 131)
			waitLanded(t, st, "meters", ids("q", 0, 131), third, 0, nil)
			if err := third.Close(); err != nil {
				t.Fatal(err)
			}
			if s := third.Stats(); s.Redelivered != 0 {
				t.Fatalf("a run after a clean shutdown got %+v, want only the new message: messages were not acknowledged", s)
			}
			exactlyOnce(t, st, "meters", ids("q", 0, 131))
		})
	}
}

func TestMQTTUnreachable(t *testing.T) {
	src, err := NewMQTT(testenv.LocalStore(t), MQTTOptions{Options: testOptions("x"), URL: "tcp://127.0.0.1:1", Topic: "t", QoS: 1, ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	startDown(t, src, "connect to tcp://127.0.0.1:1")
}

// A connection lost while the source runs: down, then up again through a
// new session, and what was published meanwhile lands (QoS 1, the session
// kept by the broker).
func TestMQTTConnectionLost(t *testing.T) {
	needTCP(t, "Mosquitto (MQTT)", "127.0.0.1:1883")
	proxy := &tcpProxy{target: "127.0.0.1:1883"}
	proxy.start(t)
	defer proxy.stop()
	name := randomName(t)
	topic := "medallion/test/" + name
	clientID := "medallion-test-" + name
	t.Cleanup(func() { mqttClient(t, clientID, true).Disconnect(100) })
	st := testenv.LocalStore(t)
	src, err := NewMQTT(st, MQTTOptions{Options: testOptions("meters"), URL: "tcp://" + proxy.addr, Topic: topic + "/#", QoS: 1, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, true, "")
	pub := mqttClient(t, "medallion-pub-"+name, true)
	defer pub.Disconnect(100)
	proxy.stop()
	down := waitStatus(t, src, false, "connection lost")
	t.Logf("down: %v", down.Err)
	mqttPublish(t, pub, topic+"/a", "m", 0, 10) // queued in the source's session
	proxy.start(t)
	waitStatus(t, src, true, "")
	waitLanded(t, st, "meters", ids("m", 0, 10), src, 0, nil)
}
