package brokers

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// turnstileLine is message i of a CSV test run: a turnstile reading with a
// unique ENTRIES value; message bad has a count that is not a number.
func turnstileLine(i, bad int) []byte {
	entries := fmt.Sprint(1000 + i)
	if i == bad {
		entries = "lots"
	}
	return fmt.Appendf(nil, "R%03d,59 ST,08/%02d/2026,%02d:%02d:00,%s", i%5, 1+i%28, i%24, i%60, entries)
}

// csvPipeline is a CSV broker source with a declared column list (whose
// order differs from the schema's) and an event time derived from DATE and
// TIME.
func csvPipeline(t *testing.T, from string) *config.Source {
	t.Helper()
	yaml := fmt.Sprintf(`sources:
  turnstiles:
    format: csv
    csv: {columns: [UNIT, STATION, DATE, TIME, ENTRIES]}
    from: %s
    batch: {max_messages: 1000, max_wait: 200ms}
    schema:
      station: {from: STATION, type: string, required: true}
      unit:    {from: UNIT, type: string}
      date:    {from: DATE, type: string, required: true}
      time:    {from: TIME, type: string, required: true}
      entries: {from: ENTRIES, type: int64, required: true}
    derive:
      ts: "strptime(date || ' ' || time, '%%m/%%d/%%Y %%H:%%M:%%S')"
`, from)
	p, err := config.Parse("medallion.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.Sources["turnstiles"]
}

// CSV lines from each broker land under the declared header; bronze types
// them and quarantines the one bad line in 5,000, like a file's, naming its
// line in the raw object.
func TestCSVMessagesToBronze(t *testing.T) {
	const bad = 123
	name := randomName(t)
	cases := []struct {
		broker  string
		n       int // MQTT: Mosquitto keeps 20 messages in flight, so a batch holds 20 per max_wait
		from    func(t *testing.T) string
		publish func(t *testing.T, lines [][]byte)
	}{
		{"kafka", 5000, func(t *testing.T) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "turnstiles"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return fmt.Sprintf("{kafka: {brokers: [%q], topic: turnstiles, group: g-%s}}", c.ListenAddrs()[0], name)
		}, nil},
		{"nats", 5000, func(t *testing.T) string {
			needTCP(t, "nats-server (JetStream)", "127.0.0.1:4222")
			stream := "medallion_csv_" + name
			t.Cleanup(func() { natsJS(t).DeleteStream(context.Background(), stream) })
			return fmt.Sprintf("{nats: {url: %q, stream: %s, subject: csv.%s, durable: d, create: true}}", natsURL, stream, name)
		}, nil},
		{"mqtt", 500, func(t *testing.T) string {
			needTCP(t, "Mosquitto (MQTT)", "127.0.0.1:1883")
			client := "medallion-csv-" + name
			t.Cleanup(func() { mqttClient(t, client, true).Disconnect(100) })
			return fmt.Sprintf("{mqtt: {url: %q, topic: medallion/csv/%s, qos: 1, client_id: %s}}", mqttURL, name, client)
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.broker, func(t *testing.T) {
			src := csvPipeline(t, c.from(t))
			st := testenv.LocalStore(t)
			bs, err := FromConfig(st, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bs.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			waitStatus(t, bs, true, "")
			lines := [][]byte{[]byte("UNIT,STATION,DATE,TIME,ENTRIES")} // a header sent by the producer is not a row
			n := int64(c.n)
			for i := range c.n {
				lines = append(lines, turnstileLine(i, bad))
			}
			publishTo(t, src.Broker, lines)
			deadline := time.Now().Add(60 * time.Second)
			for bs.Stats().Messages < int64(len(lines)) {
				if time.Now().After(deadline) {
					t.Fatalf("after 60s: %+v, want %d messages landed", bs.Stats(), len(lines))
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := bs.Close(); err != nil {
				t.Fatal(err)
			}
			s, q := runBronze(t, st, src)
			if s.Written != n-1 || s.Quarantined != 1 || s.RowsRead != n || len(q) != 1 {
				t.Fatalf("bronze: %s, quarantine %v; want %d written, 1 quarantined", s, q, n-1)
			}
			if got, want := lineOf(t, st, "turnstiles", q[0]), string(turnstileLine(bad, bad)); got != want {
				t.Fatalf("quarantine names line %d of %s: %q, want the bad message %q", q[0].Line, q[0].File, got, want)
			}
		})
	}
}

// publishTo sends each line as one message to the broker b declares.
func publishTo(t *testing.T, b *config.Broker, lines [][]byte) {
	t.Helper()
	ctx := context.Background()
	switch b.Kind {
	case "kafka":
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Brokers...), kgo.DefaultProduceTopic(b.Topic))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for _, l := range lines {
			recs = append(recs, &kgo.Record{Value: l})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	case "nats":
		js := natsJS(t)
		for _, l := range lines {
			if _, err := js.Publish(ctx, b.Subject, l); err != nil {
				t.Fatal(err)
			}
		}
	case "mqtt":
		cl := mqttClient(t, "medallion-pub-"+randomName(t), true)
		defer cl.Disconnect(100)
		for _, l := range lines {
			if tok := cl.Publish(b.Topic, 1, false, l); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	}
}

// runBronze promotes the source's raw objects to bronze and returns its
// stats and the quarantined lines.
func runBronze(t *testing.T, st lake.Store, src *config.Source) (bronze.Stats, []quarantined) {
	t.Helper()
	ctx := context.Background()
	e, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: "1GB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := bronze.Run(ctx, bronze.Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir()}}, src)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() {
		t.Fatalf("bronze accounting does not hold: %s", s)
	}
	return s, readQuarantine(t, st, e)
}

// quarantined is a row of bronze._quarantine: which line of which raw object.
type quarantined struct {
	File string
	Line int64
}

func readQuarantine(t *testing.T, st lake.Store, e *warehouse.Engine) []quarantined {
	t.Helper()
	ctx := context.Background()
	snap, err := delta.Open(st, "bronze/_quarantine").Snapshot(ctx)
	if err != nil {
		t.Fatalf("bronze._quarantine: %v", err)
	}
	cache := &lake.Cache{Dir: t.TempDir()}
	var files []string
	for _, f := range snap.Files {
		p, err := cache.Path(ctx, st, "bronze/_quarantine/"+f.Path, "")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, warehouse.QuoteString(p))
	}
	rows, err := e.DB().QueryContext(ctx, "SELECT source_file, line FROM read_parquet(["+strings.Join(files, ",")+"], union_by_name=true) ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []quarantined
	for rows.Next() {
		var q quarantined
		if err := rows.Scan(&q.File, &q.Line); err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lineOf returns line n (from 1) of the raw object a quarantine row names.
func lineOf(t *testing.T, st lake.Store, source string, q quarantined) string {
	t.Helper()
	ctx := context.Background()
	ms, err := raw.Manifests(ctx, st, source)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Key != q.File && !strings.HasSuffix(q.File, m.Key) {
			continue
		}
		rc, err := raw.OpenObject(ctx, st, m)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		for n := int64(1); sc.Scan(); n++ {
			if n == q.Line {
				return sc.Text()
			}
		}
		t.Fatalf("%s has fewer than %d lines", q.File, q.Line)
	}
	t.Fatalf("quarantine names %s, which is no raw object of %s", q.File, source)
	return ""
}
