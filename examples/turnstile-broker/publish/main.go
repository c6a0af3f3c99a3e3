// Command publish sends each line of its standard input as one message to
// a NATS JetStream subject, waiting for the server to store each: the
// producer of examples/turnstile-broker.
//
//	medallion generate turnstile --rows 20000 | go run ./examples/turnstile-broker/publish
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", "nats://127.0.0.1:4222", "NATS server")
	subject := flag.String("subject", "turnstiles.lines", "subject to publish to (a stream must store it)")
	flag.Parse()
	n, err := publish(context.Background(), *url, *subject)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "published %d lines to %s\n", n, *subject)
}

// publish sends stdin line by line, keeping up to 256 publishes in
// flight, and fails unless the server stored every message.
func publish(ctx context.Context, url, subject string) (int, error) {
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var acks []jetstream.PubAckFuture
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		f, err := js.PublishAsync(subject, append([]byte(nil), sc.Bytes()...))
		if err != nil {
			return n, fmt.Errorf("line %d: %w", n+1, err)
		}
		acks = append(acks, f)
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("read stdin after line %d: %w", n, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return n, fmt.Errorf("the server did not confirm %d of %d messages within a minute", js.PublishAsyncPending(), n)
	case <-ctx.Done():
		return n, ctx.Err()
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return n, fmt.Errorf("message %d not stored: %w", i+1, err)
		}
	}
	return n, nil
}
