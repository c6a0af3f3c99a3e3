package brokers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// crashPoints are where the restart tests kill a consumer: after the
// intent (nothing landed), after the land (landed, nothing acknowledged),
// after the acknowledgement.
var crashPoints = []string{"after-intent", "after-land", "after-ack"}

// crashAt returns a hook stopping the consumer at the nth time it reaches
// point (of any broker kind), and a channel closed when it did.
func crashAt(point string, nth int) (crashHook, <-chan struct{}) {
	var seen atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	return func(p string) error {
		if !strings.HasSuffix(p, "-"+point) || seen.Add(1) != int64(nth) {
			return nil
		}
		once.Do(func() { close(done) })
		return errCrashed
	}, done
}

// needTCP fails the test at once, saying how to fix it, when nothing
// listens at addr.
func needTCP(t *testing.T, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): run scripts/ensure-brokers.sh, which installs and starts Mosquitto and nats-server", what, addr, err)
	}
	c.Close()
}

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// payload is message i of a test run: a JSON object with a unique id.
func payload(prefix string, i int) []byte {
	return fmt.Appendf(nil, `{"id":"%s-%04d","n":%d}`, prefix, i, i)
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return out
}

// landedIDs counts, per id, the lines of every raw object of source.
func landedIDs(t *testing.T, st lake.Store, source string) map[string]int {
	t.Helper()
	ctx := context.Background()
	ms, err := raw.Manifests(ctx, st, source)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range ms {
		rc, err := raw.OpenObject(ctx, st, m)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var v struct{ ID string }
			if err := json.Unmarshal([]byte(line), &v); err != nil || v.ID == "" {
				t.Fatalf("%s (%s): line %q is not a test message: %v", m.Key, m.Name, line, err)
			}
			got[v.ID]++
		}
		rc.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// waitLanded waits until every id in want landed and the source has been
// quiet (no new batch, no recognised redelivery) for quiet.
func waitLanded(t *testing.T, st lake.Store, source string, want []string, src Source, quiet time.Duration, extra func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last Stats
	lastChange := time.Now()
	for {
		got := landedIDs(t, st, source)
		missing := 0
		for _, id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		s := src.Stats()
		if s != last {
			last, lastChange = s, time.Now()
		}
		if missing == 0 && time.Since(lastChange) >= quiet && (extra == nil || extra()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s %d of %d messages have not landed (stats %+v)", missing, len(want), s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exactlyOnce fails unless every id in want landed exactly once and
// nothing else landed.
func exactlyOnce(t *testing.T, st lake.Store, source string, want []string) {
	t.Helper()
	got := landedIDs(t, st, source)
	var bad []string
	for _, id := range want {
		if got[id] != 1 {
			bad = append(bad, fmt.Sprintf("%s landed %d times", id, got[id]))
		}
		delete(got, id)
	}
	for id, n := range got {
		bad = append(bad, fmt.Sprintf("%s landed %d times but was never published", id, n))
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Fatalf("not exactly once (%d problems):\n%s", len(bad), strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
}

func testOptions(source string) Options {
	o := DefaultOptions(source, "ndjson")
	o.Batch = Batch{MaxMessages: 7, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond}
	o.ShutdownTimeout = 10 * time.Second
	return o
}

func TestBatchCut(t *testing.T) {
	b := Batch{MaxMessages: 3, MaxBytes: 10, MaxWait: time.Second}
	for _, c := range []struct {
		sizes []int
		want  int
	}{
		{nil, 0},
		{[]int{1}, 1},
		{[]int{1, 1, 1, 1}, 3},
		{[]int{4, 4, 4}, 2},
		{[]int{20, 1}, 1}, // one message bigger than MaxBytes still goes alone
		{[]int{5, 5, 1}, 2},
	} {
		if got := b.cut(c.sizes); got != c.want {
			t.Errorf("cut(%v) = %d, want %d", c.sizes, got, c.want)
		}
	}
	now := time.Now()
	if b.due(0, 0, now.Add(-time.Hour), now) || !b.due(1, 1, now.Add(-time.Second), now) || b.due(1, 1, now, now) || !b.due(3, 1, now, now) || !b.due(1, 10, now, now) {
		t.Error("due is wrong")
	}
}

func TestIntervals(t *testing.T) {
	in := []uint64{1, 2, 3, 7, 9, 10}
	iv := intervals(in)
	if want := [][2]uint64{{1, 3}, {7, 7}, {9, 10}}; !slices.Equal(iv, want) {
		t.Fatalf("intervals = %v, want %v", iv, want)
	}
	if got := expand(iv); !slices.Equal(got, in) {
		t.Fatalf("expand = %v, want %v", got, in)
	}
}

func TestEncode(t *testing.T) {
	o := DefaultOptions("s", "ndjson")
	body, n := encode(o, [][]byte{[]byte("{\n \"a\": 1\n}\n"), nil, []byte(`{"b":2}`), []byte("not json\n")})
	if want := "{\"a\":1}\n{\"b\":2}\nnot json\n"; string(body) != want || n != 3 {
		t.Fatalf("ndjson = %q (%d lines), want %q", body, n, want)
	}
	o = DefaultOptions("s", "csv")
	o.CSVHeader = "a,b\n"
	body, n = encode(o, [][]byte{[]byte("1,2\r\n"), []byte("3,4\n5,6")})
	if want := "a,b\n1,2\n3,4\n5,6\n"; string(body) != want || n != 2 {
		t.Fatalf("csv = %q (%d), want %q", body, n, want)
	}
	// A header line sent by the producer, alone or above rows, is dropped.
	body, n = encode(o, [][]byte{[]byte("a,b\r\n"), []byte("a,b   \n7,8"), []byte("a,b,c")})
	if want := "a,b\n7,8\na,b,c\n"; string(body) != want || n != 2 {
		t.Fatalf("csv with header messages = %q (%d), want %q", body, n, want)
	}
}

func TestCSVHeader(t *testing.T) {
	for _, c := range []struct {
		src  config.Source
		want string
	}{
		{config.Source{CSVColumns: []string{"C/A", "UNIT", "SCP"}, CSV: config.CSVOptions{Delimiter: ","}}, "C/A,UNIT,SCP"},
		{config.Source{Schema: []*config.Column{{From: "id"}, {From: "a;b"}, {From: " pad"}, {From: `say "hi"`}}, CSV: config.CSVOptions{Delimiter: ";", Quote: `"`}}, `id;"a;b";" pad";"say ""hi"""`},
	} {
		if got := csvHeader(&c.src); got != c.want {
			t.Errorf("csvHeader = %s, want %s", got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := testOptions("meters")
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no source", func(o *Options) { o.Source = "" }, "source: missing"},
		{"json", func(o *Options) { o.Format = "json" }, "use ndjson or csv"},
		{"csv without header", func(o *Options) { o.Format = "csv" }, "csv_header"},
		{"zero messages", func(o *Options) { o.Batch.MaxMessages = 0 }, "batch.max_messages"},
		{"zero wait", func(o *Options) { o.Batch.MaxWait = 0 }, "batch.max_wait"},
	} {
		o := good
		c.edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", c.name, err, c.want)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (MQTTOptions{Options: good, URL: "tcp://x:1883", Topic: "t", ClientID: "c", QoS: 0}).Validate(); err == nil || !strings.Contains(err.Error(), "from.mqtt.qos") {
		t.Errorf("MQTT QoS 0: %v", err)
	}
	if err := (NATSOptions{Options: good, URL: "nats://x", Stream: "s", Durable: "d", AckWait: 100 * time.Millisecond}).Validate(); err == nil || !strings.Contains(err.Error(), "ack_wait") {
		t.Errorf("NATS ack_wait under max_wait: %v", err)
	}
	if err := (KafkaOptions{Options: good, Brokers: []string{"x:9092"}, Topic: "t"}).Validate(); err == nil || !strings.Contains(err.Error(), "from.kafka.group") {
		t.Errorf("Kafka without group: %v", err)
	}
}

// Two batches with the same bytes both land: the second is relanded with a
// trailing newline, and both are recognised as landed by a fresh ledger.
func TestLedgerCollision(t *testing.T) {
	ctx := context.Background()
	st := testenv.LocalStore(t)
	o := testOptions("beats")
	var c counters
	key := ledgerKey("beats", "test", "a/b")
	if key != "raw/beats/_offsets/test/a%2Fb.json" {
		t.Fatalf("ledger key %q", key)
	}
	led, err := openLedger(ctx, st, o, "test", key, &c, nil)
	if err != nil {
		t.Fatal(err)
	}
	beat := [][]byte{[]byte(`{"status":"ok"}`)}
	for i := range 3 {
		if _, err := led.land(ctx, intent{Name: fmt.Sprintf("b%d", i), First: int64(i), Last: int64(i)}, beat); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.stats(); s.Batches != 3 || s.Collisions != 1 {
		t.Fatalf("stats %+v, want 3 batches and 1 collision (the third starts at the padding after the second's)", s)
	}
	ms, err := raw.Manifests(ctx, st, "beats")
	if err != nil || len(ms) != 3 {
		t.Fatalf("%d manifests (%v), want 3", len(ms), err)
	}
	again, err := openLedger(ctx, st, o, "test", key, &c, nil)
	if err != nil || len(again.intents) != 3 {
		t.Fatalf("reopened ledger keeps %d intents (%v), want 3 landed", len(again.intents), err)
	}
	// A fourth identical batch, by the reopened ledger, probes from zero.
	if _, err := again.land(ctx, intent{Name: "b3"}, beat); err != nil {
		t.Fatal(err)
	}
	if s := c.stats(); s.Batches != 4 || s.Collisions != 4 {
		t.Fatalf("stats %+v, want 4 batches and 4 collisions", s)
	}
	if ms, err := raw.Manifests(ctx, st, "beats"); err != nil || len(ms) != 4 {
		t.Fatalf("%d manifests (%v), want 4", len(ms), err)
	}
}

// An intent whose batch never landed (a crash between the two) is
// forgotten on reopening; one that landed is kept.
func TestLedgerForgetsUnlanded(t *testing.T) {
	ctx := context.Background()
	st := testenv.LocalStore(t)
	o := testOptions("m")
	var c counters
	key := ledgerKey("m", "test", "x")
	hook, crashed := crashAt("after-intent", 2)
	led, err := openLedger(ctx, st, o, "test", key, &c, hook)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.land(ctx, intent{Name: "one"}, [][]byte{payload("m", 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := led.land(ctx, intent{Name: "two"}, [][]byte{payload("m", 2)}); !errors.Is(err, errCrashed) {
		t.Fatalf("second land: %v, want the crash", err)
	}
	<-crashed
	again, err := openLedger(ctx, st, o, "test", key, &c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.intents) != 1 || again.intents[0].Name != "one" {
		t.Fatalf("reopened ledger keeps %+v, want only the landed batch one", again.intents)
	}
}

// waitStatus waits until the source reports itself up (or down with an
// error containing errPart) and returns that status.
func waitStatus(t *testing.T, src Source, up bool, errPart string) Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := src.Status()
		if st.Up == up && (up || st.Err != nil && strings.Contains(st.Err.Error(), errPart)) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the source's status is %+v, want up=%v (error containing %q)", st, up, errPart)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startDown starts src against a broker that is not there: Start succeeds
// and the source reports itself down, saying why.
func startDown(t *testing.T, src Source, errPart string) {
	t.Helper()
	if err := src.Start(context.Background()); err != nil {
		t.Fatalf("Start with the broker down = %v, want nil (the source reconnects in the background)", err)
	}
	t.Cleanup(func() { src.Close() })
	st := waitStatus(t, src, false, errPart)
	if st.Since.IsZero() || st.Kind == "" || st.Source == "" {
		t.Fatalf("status %+v: want the source, kind and since", st)
	}
	t.Logf("down: %v", st.Err)
	if err := src.Close(); err != nil {
		t.Fatalf("Close of a source that never connected = %v", err)
	}
}

// FuzzEncode: whatever the payloads, a batch's bytes start with the CSV
// header (csv), end with a newline when they hold a line, and hold no more
// lines than the header and the payloads (their own newlines included).
func FuzzEncode(f *testing.F) {
	f.Add("a,b", []byte("1,2"), []byte("a,b\n3,4"), []byte(""))
	f.Add("", []byte("{\n\"a\": 1}"), []byte("not json\r\n"), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, header string, p1, p2, p3 []byte) {
		payloads := [][]byte{p1, p2, p3}
		for _, format := range []string{"ndjson", "csv"} {
			o := DefaultOptions("s", format)
			o.CSVHeader = header
			body, lines := encode(o, payloads)
			if lines < 0 || lines > len(payloads) {
				t.Fatalf("%s: %d lines from %d payloads", format, lines, len(payloads))
			}
			if format == "csv" && !strings.HasPrefix(string(body), strings.TrimRight(header, "\r\n")+"\n") {
				t.Fatalf("csv body %q does not start with the header %q", body, header)
			}
			if lines > 0 && body[len(body)-1] != '\n' {
				t.Fatalf("%s body %q does not end with a newline", format, body)
			}
			most := 0
			for _, p := range payloads {
				most += bytes.Count(p, []byte{'\n'}) + 1
			}
			if format == "csv" {
				most += 1 + strings.Count(strings.TrimRight(header, "\r\n"), "\n") // a quoted column name may hold a newline
			}
			if n := bytes.Count(body, []byte{'\n'}); n > most {
				t.Fatalf("%s: %d lines in the body from payloads holding at most %d", format, n, most)
			}
		}
	})
}
