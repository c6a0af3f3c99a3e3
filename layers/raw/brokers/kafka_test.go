package brokers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

func kafkaProduce(t *testing.T, addrs []string, topic, prefix string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Value: payload(prefix, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce to kfake: %v", err)
	}
}

// kafkaMark produces one record to each of the topic's partitions, ids
// prefix-from.. on: consumed, they prove every partition was read up to
// them, so whatever a consumer still had to get is in by then.
func kafkaMark(t *testing.T, addrs []string, topic, prefix string, from, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := 0; p < partitions; p++ {
		recs = append(recs, &kgo.Record{Value: payload(prefix, from+p), Partition: int32(p)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce to kfake: %v", err)
	}
}

// Messages produced before, during and after a crash of the consumer at
// every point of a batch land exactly once.
func TestKafkaRestartExactlyOnce(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			kafkaRestart(t, testenv.LocalStore(t), point)
		})
	}
	t.Run("s3/after-land", func(t *testing.T) {
		t.Parallel()
		st, _, _ := testenv.S3Store(t)
		kafkaRestart(t, st, "after-land")
	})
}

func kafkaRestart(t *testing.T, st lake.Store, point string) {
	const topic, partitions = "clicks", 3
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	o := KafkaOptions{Options: testOptions("clicks"), Brokers: addrs, Topic: topic, Group: "medallion-" + randomName(t)}

	kafkaProduce(t, addrs, topic, "k", 0, 60)
	src, err := NewKafka(st, o)
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

	kafkaProduce(t, addrs, topic, "k", 60, 100) // while it is down
	again, err := NewKafka(st, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	kafkaProduce(t, addrs, topic, "k", 100, 130) // after the restart
	waitLanded(t, st, "clicks", ids("k", 0, 130), again, 500*time.Millisecond, nil)
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, st, "clicks", ids("k", 0, 130))
	if s := again.Stats(); point == "after-land" && s.Redelivered == 0 {
		t.Fatalf("after a crash between landing and committing nothing was recognised as redelivered (stats %+v)", s)
	}
	t.Logf("first run %+v; restart %+v", src.Stats(), again.Stats())

	// Everything is committed: a third consumer lands nothing new.
	third, err := NewKafka(st, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A new record in every partition marks the end: anything redelivered
	// from before the shutdown would land ahead of it.
	kafkaMark(t, addrs, topic, "k", 130, partitions)
	waitLanded(t, st, "clicks", ids("k", 0, 130+partitions), third, 0, nil)
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing landed before the clean shutdown comes again: every landed
	// record's offset was committed, even for a batch whose commit was in
	// flight when Close began.
	if s := third.Stats(); s.Redelivered != 0 {
		t.Fatalf("a consumer after a clean shutdown got %+v, want only the new records: offsets were not committed", s)
	}
	exactlyOnce(t, st, "clicks", ids("k", 0, 130+partitions))
}

func TestKafkaUnreachable(t *testing.T) {
	src, err := NewKafka(testenv.LocalStore(t), KafkaOptions{Options: testOptions("x"), Brokers: []string{"127.0.0.1:1"}, Topic: "t", Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	startDown(t, src, "no broker of [127.0.0.1:1] answers")
}

// A broker down when the source starts: the source reports itself down,
// then connects once the broker is up, and lands what was produced.
func TestKafkaDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // free again: the broker comes up on it later
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	topic := "down-" + randomName(t)
	st := testenv.LocalStore(t)
	src, err := NewKafka(st, KafkaOptions{Options: testOptions("clicks"), Brokers: []string{addr}, Topic: topic, Group: "g-" + randomName(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatalf("Start with the broker down = %v", err)
	}
	defer src.Close()
	waitStatus(t, src, false, "answers")

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatalf("start kfake on port %d: %v", port, err)
	}
	defer c.Close()
	kafkaProduce(t, c.ListenAddrs(), topic, "d", 0, 20)
	waitStatus(t, src, true, "")
	waitLanded(t, st, "clicks", ids("d", 0, 20), src, 0, nil)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, st, "clicks", ids("d", 0, 20))
}

// A topic that does not exist keeps the source down with the command that
// creates it; once it exists, the source connects and consumes.
func TestKafkaNoTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := "missing-" + randomName(t)
	st := testenv.LocalStore(t)
	src, err := NewKafka(st, KafkaOptions{Options: testOptions("clicks"), Brokers: c.ListenAddrs(), Topic: topic, Group: "g-" + randomName(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, false, "kafka-topics.sh --bootstrap-server "+c.ListenAddrs()[0]+" --create --topic "+topic)
	// A producer allowed to create topics creates it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: payload("n", 0)}).FirstErr(); err != nil {
		t.Fatalf("create the topic by producing to it: %v", err)
	}
	kafkaProduce(t, c.ListenAddrs(), topic, "n", 1, 10)
	waitStatus(t, src, true, "")
	waitLanded(t, st, "clicks", ids("n", 0, 10), src, 0, nil)
}

// A broker lost while the source runs: the source reports itself down, and
// up again when the broker is back.
func TestKafkaBrokerLost(t *testing.T) {
	topic := "lost-" + randomName(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	port := c.ListenAddrs()[0]
	st := testenv.LocalStore(t)
	src, err := NewKafka(st, KafkaOptions{Options: testOptions("clicks"), Brokers: []string{port}, Topic: topic, Group: "g-" + randomName(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waitStatus(t, src, true, "")
	kafkaProduce(t, c.ListenAddrs(), topic, "l", 0, 5)
	waitLanded(t, st, "clicks", ids("l", 0, 5), src, 0, nil)
	c.Close()
	down := waitStatus(t, src, false, "answers")
	t.Logf("down: %v", down.Err)

	// A broker back on the same port: up again. (A new kfake cluster is a
	// recreated topic, whose offsets restart at 0: what it holds is not
	// the old broker's data, so only the status is checked.)
	_, p, _ := net.SplitHostPort(port)
	pn, _ := strconv.Atoi(p)
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(pn), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	waitStatus(t, src, true, "")
}
