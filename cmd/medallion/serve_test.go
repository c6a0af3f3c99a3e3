package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// servePipeline is a small energy pipeline in stream mode; {schema} is the
// test's PostgreSQL schema.
const servePipeline = `sources:
  meters:
    format: ndjson
    schema:
      id:           {type: int64, required: true}
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05"}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0}
    dedupe: [id]
silver:
  usage_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 0s
    output: update
    group_by: [meter_id]
    aggregates:
      readings: count(*)
      avg_usage: avg(energy_usage)
gold:
  usage_ma:
    from: usage_1m
    partition_by: [meter_id]
    moving_average: {column: avg_usage, rows: 3}
mirror:
  - table: gold.usage_ma
    to: {schema}.usage_ma
    key: [meter_id, window_start]
stream:
  trigger: 300ms
`

// serveProc is a running `medallion serve`.
type serveProc struct {
	cmd  *exec.Cmd
	base string // http://host:port
	out  *bytes.Buffer
	mu   sync.Mutex // guards out while serve runs
	done chan error
}

// output is what serve printed so far.
func (p *serveProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startServe(t *testing.T, l *testLake, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(medallionBin(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir, cmd.Env = l.dir, l.env
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan error, 1)}
	addrRE := regexp.MustCompile(`medallion serve on (https?://\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case p.base = <-found:
	case err := <-p.done:
		t.Fatalf("serve exited at start: %v\n%s\n%s", err, p.out, errOut.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start\n%s", errOut.String())
	}
	return p
}

// post sends rows id..id+n-1 as one NDJSON request and returns how many
// rows the server acknowledged (0 unless it answered 2xx).
func post(base string, id, n int) int {
	var body strings.Builder
	for i := id; i < id+n; i++ {
		ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&body, `{"id":%d,"timestamp":"%s","meter_id":"m%d","energy_usage":%d.5}`+"\n", i, ts.Format("2006-01-02 15:04:05"), i%3, i%50)
	}
	resp, err := http.Post(base+"/v1/ingest/meters", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0
	}
	var r struct{ Rows int }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0
	}
	return r.Rows
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, base), "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v
		}
	}
	return 0
}

// TestServeStream: events posted continuously to `medallion serve` in stream
// mode appear in gold and in PostgreSQL, the latency histogram fills, and a
// SIGTERM in the middle of ingest loses nothing that was acknowledged.
func TestServeStream(t *testing.T) {
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "serve")
	l := newTestLake(t, "local")
	l.writePipeline(t, `postgres: "`+dsn+`"`+"\n"+strings.ReplaceAll(servePipeline, "{schema}", schema))
	srv := startServe(t, l)

	// Four clients post for a while; every acknowledged row is counted.
	var acked sync.Map // id -> true
	var wg sync.WaitGroup
	stopPosting := make(chan struct{})
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stopPosting:
					return
				default:
				}
				id := (c*100000 + k*10)
				if n := post(srv.base, id, 10); n == 10 {
					for i := id; i < id+10; i++ {
						acked.Store(i, true)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}(c)
	}
	// Posting is under way (not a fixed time: a loaded machine acknowledges
	// slower) once a few hundred rows are acknowledged.
	waitFor(t, "rows acknowledged", func() bool {
		n := 0
		acked.Range(func(any, any) bool { n++; return n < 200 })
		return n >= 200
	})

	// Stream mode makes them visible in gold and PostgreSQL while posting goes on.
	waitFor(t, "rows in PostgreSQL", func() bool {
		var n int
		_ = conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %q.usage_ma`, schema)).Scan(&n)
		return n > 0
	})
	waitFor(t, "the latency histogram", func() bool {
		return metricValue(t, srv.base, `medallion_stream_latency_seconds_count{stage="gold"}`) > 0 &&
			metricValue(t, srv.base, `medallion_stream_latency_seconds_count{stage="postgres"}`) > 0
	})

	if !strings.Contains(metricsText(t, srv.base), `medallion_stream_lag_objects{source="meters"}`) {
		t.Error("stream lag not exported")
	}
	if metricValue(t, srv.base, `medallion_job_runs_total{table="bronze.meters",result="ok"}`) == 0 ||
		metricValue(t, srv.base, `medallion_job_rows_out_total{table="gold.usage_ma",layer="gold"}`) == 0 {
		t.Error("job metrics not exported")
	}

	// SIGTERM while the clients are still posting.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.out)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
	close(stopPosting)
	wg.Wait()

	// After a restart (a plain run), every acknowledged row is in bronze once.
	l.run(t, "run")
	ids := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(l.query(t, "SELECT id FROM bronze.meters")), "\n")[1:] {
		id, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("bad id %q", line)
		}
		ids[id]++
	}
	missing, nAcked := 0, 0
	acked.Range(func(k, _ any) bool {
		nAcked++
		if ids[k.(int)] == 0 {
			missing++
		}
		return true
	})
	for id, n := range ids {
		if n != 1 {
			t.Errorf("id %d is in bronze %d times", id, n)
		}
	}
	if nAcked == 0 || missing > 0 {
		t.Fatalf("%d of %d acknowledged rows missing from bronze", missing, nAcked)
	}
	// And PostgreSQL equals the lake after the final run.
	ref := warehouse.TableRef{Schema: "gold", Name: "usage_ma"}
	pgmirrortest.AssertEqual(t, l.store, ref, warehouse.Latest(), conn, schema, "usage_ma")
}

// TestServeKafkaSource: a source declared with from: {kafka: ...} is consumed
// by `medallion serve`: messages produced before and while it runs land in
// raw and reach bronze, each once, and SIGTERM commits what was landed.
func TestServeKafkaSource(t *testing.T) {
	const topic = "readings"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	produce := func(from, to int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf(`{"id":%d,"v":%d.5}`, i, i))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	l := newTestLake(t, "local")
	l.writePipeline(t, fmt.Sprintf(`sources:
  readings:
    format: ndjson
    from: {kafka: {brokers: [%q], topic: %s, group: medallion-test}}
    batch: {max_wait: 200ms}
    schema:
      id: {type: int64, required: true}
      v:  {type: double}
stream:
  trigger: 300ms
`, addrs[0], topic))
	produce(0, 50)
	srv := startServe(t, l)
	produce(50, 120)
	count := func() int {
		out := l.query(t, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM bronze.readings")
		row := csvRow(t, out)
		if row["n"] != row["d"] {
			t.Fatalf("duplicates in bronze: %v", row)
		}
		return int(atoi(t, row["n"]))
	}
	waitFor(t, "120 messages in bronze", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT count(*) AS n FROM bronze.readings")
		return err == nil && strings.Contains(out, "\n120")
	})
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-srv.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.out)
	}
	// Offsets were committed: a second serve lands nothing again.
	produce(120, 130)
	srv2 := startServe(t, l)
	waitFor(t, "130 messages in bronze", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT count(*) AS n FROM bronze.readings")
		return err == nil && strings.Contains(out, "\n130")
	})
	_ = srv2.cmd.Process.Signal(syscall.SIGTERM)
	<-srv2.done
	if n := count(); n != 130 {
		t.Fatalf("bronze has %d rows, want 130", n)
	}
}

// TestTwoServesOneLake: two `medallion serve` processes on one MinIO lake,
// scheduled every 2 seconds, one of them killed with SIGKILL half-way:
// every due time of every job ran exactly once (the run history in the
// lake), and bronze holds every acknowledged row once.
func TestTwoServesOneLake(t *testing.T) {
	l := newTestLake(t, "s3")
	l.writePipeline(t, `sources:
  meters:
    format: ndjson
    schema:
      id:        {type: int64, required: true}
      timestamp: {type: timestamp, format: "2006-01-02 15:04:05"}
      meter_id:  {type: string}
silver:
  counts_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 0s
    group_by: [meter_id]
    aggregates: {n: count(*)}
schedule:
  bronze: "@every 2s"
  silver: {after: bronze}
`)
	a, b := startServe(t, l), startServe(t, l)
	defer func() {
		if t.Failed() {
			t.Logf("serve a:\n%s\nserve b:\n%s", a.out, b.out)
		}
	}()
	total := 0
	for round := 0; round < 6; round++ {
		base := a.base
		if round%2 == 1 {
			base = b.base
		}
		total += post(base, round*100, 20)
		time.Sleep(1500 * time.Millisecond)
	}
	// Kill one process outright, whatever it is doing (perhaps holding a
	// job's lease mid-run); the other takes its jobs over once the lease
	// expires, and every acknowledged row still ends up in bronze once.
	_ = a.cmd.Process.Kill()
	<-a.done
	total += post(b.base, 1000, 20)
	waitFor(t, "every acknowledged row in bronze", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT count(*) AS n FROM bronze.meters")
		return err == nil && strings.Contains(out, fmt.Sprintf("\n%d", total))
	})
	if metricValue(t, b.base, `medallion_scheduled_runs_total{job="bronze",result="ok"}`) == 0 {
		t.Error("no scheduled runs in /metrics")
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-b.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, b.out)
	}
	owners := map[string]bool{}
	for _, job := range []string{"bronze", "silver"} {
		runs, err := jobs.ListRuns(context.Background(), l.store, job, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 0 {
			t.Fatalf("no %s runs recorded", job)
		}
		seen := map[time.Time]int{}
		for _, r := range runs {
			if r.Result == jobs.ResultOK {
				seen[r.Due]++
				owners[r.Owner] = true
			}
		}
		for due, n := range seen {
			if n != 1 {
				t.Errorf("%s ran %d times for %s", job, n, due.Format(time.RFC3339))
			}
		}
	}
	if len(owners) < 2 {
		t.Logf("only %d process ran jobs (both may not have been due-first; not an error)", len(owners))
	}
	out := l.query(t, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM bronze.meters")
	if row := csvRow(t, out); row["n"] != row["d"] || atoi(t, row["n"]) != int64(total) {
		t.Fatalf("bronze %v, want %d distinct rows", row, total)
	}
}
