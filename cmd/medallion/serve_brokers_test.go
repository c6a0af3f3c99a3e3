package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeBrokerDownAtStart: a Kafka broker that is down when serve starts
// does not stop it: HTTP ingest works, /readyz and /metrics say the source
// is down, and once the broker is up the source connects and its messages
// reach bronze.
func TestServeBrokerDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // the broker comes up on it later
	const topic = "late"
	l := newTestLake(t, "local")
	l.writePipeline(t, fmt.Sprintf(`sources:
  readings:
    format: csv
    csv: {columns: [id, v]}
    from: {kafka: {brokers: ["127.0.0.1:%d"], topic: %s, group: medallion-test}}
    batch: {max_wait: 200ms}
    schema:
      id: {type: int64, required: true}
      v:  {type: double}
  meters:
    format: ndjson
    schema:
      id: {type: int64, required: true}
stream:
  trigger: 300ms
`, port, topic))
	srv := startServe(t, l, "--no-ui")
	readyz := func() (int, string) {
		resp, err := http.Get(srv.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := readyz()
	if code != http.StatusOK || !strings.Contains(body, "source readings (kafka): down since ") || !strings.Contains(body, "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("/readyz with the broker down: %d\n%s", code, body)
	}
	if v := metricValue(t, srv.base, `medallion_source_up{source="readings",kind="kafka"}`); v != 0 {
		t.Fatalf("medallion_source_up = %v with the broker down, want 0", v)
	}
	resp, err := http.Post(srv.base+"/v1/ingest/meters", "application/x-ndjson", strings.NewReader(`{"id":1}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("HTTP ingest with a broker down: %d, want 202", resp.StatusCode)
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "%d,%d.5", i, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source up in /readyz", func() bool {
		_, body := readyz()
		return strings.Contains(body, "source readings (kafka): up since ")
	})
	if v := metricValue(t, srv.base, `medallion_source_up{source="readings",kind="kafka"}`); v != 1 {
		t.Fatalf("medallion_source_up = %v with the broker up, want 1", v)
	}
	waitFor(t, "30 messages in bronze", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT count(*) AS n FROM bronze.readings")
		return err == nil && strings.Contains(out, "\n30\n")
	})
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-srv.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.out)
	}
}
