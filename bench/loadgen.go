package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// streamMeters is how many meters the load generator simulates. Each
// (meter, second) pair is posted once, so bronze's dedupe on (meter_id,
// timestamp) drops nothing, and event time advances rate/streamMeters
// seconds per second: the posters' batches in flight at once span a few
// seconds of event time, far inside silver's 2 minute watermark.
const streamMeters = 10_000

// eventGen writes energy readings shaped like `medallion generate energy`'s
// lines (the bench's energy pipeline types them), numbered by a sequence:
// event s is meter s%streamMeters at second s/streamMeters after
// energyStart. The pieces are formatted once, so writing a line is a few
// appends: the generator's CPU stays small next to the server's.
type eventGen struct {
	meters [streamMeters][]byte // `","meter_id":"meter-00001","energy_usage":`
	usage  [4096][]byte         // `30.44}` + "\n"
}

func newEventGen() *eventGen {
	g := &eventGen{}
	for m := range g.meters {
		g.meters[m] = fmt.Appendf(nil, `","meter_id":"meter-%05d","energy_usage":`, m+1)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range g.usage {
		v := 5 + r.Float64()*40
		if r.IntN(100) == 0 { // a spike: the derived anomaly flag
			v = 100.01 + r.Float64()*400
		}
		g.usage[i] = append(strconv.AppendFloat(nil, v, 'f', 2, 64), "}\n"...)
	}
	return g
}

// appendBatch appends events seq .. seq+n-1 as NDJSON lines.
func (g *eventGen) appendBatch(dst []byte, seq int64, n int) []byte {
	var ts []byte
	sec := int64(-1)
	for s := seq; s < seq+int64(n); s++ {
		if x := s / streamMeters; x != sec {
			sec = x
			ts = energyStart.Add(time.Duration(x)*time.Second).AppendFormat(ts[:0], "2006-01-02 15:04:05")
		}
		dst = append(dst, `{"timestamp":"`...)
		dst = append(dst, ts...)
		dst = append(dst, g.meters[s%streamMeters]...)
		dst = append(dst, g.usage[(s*7919)%int64(len(g.usage))]...)
	}
	return dst
}

// loadGen posts batches of events to one ingest URL over keep-alive
// connections. The event sequence continues across steps, so no event is
// ever posted twice.
type loadGen struct {
	url     string
	batch   int
	posters int
	client  *http.Client
	gen     *eventGen
	seq     atomic.Int64
	bytes   atomic.Int64 // body bytes acknowledged, all steps
}

func newLoadGen(url string, batch, posters int) *loadGen {
	tr := &http.Transport{MaxIdleConns: posters, MaxIdleConnsPerHost: posters, MaxConnsPerHost: posters,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	return &loadGen{url: url, batch: batch, posters: posters, gen: newEventGen(),
		client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

func (g *loadGen) close() { g.client.CloseIdleConnections() }

// loadCounts is what one step of the generator did.
type loadCounts struct {
	sent     int64 // events posted
	acked    int64 // events answered 2xx (durable in the raw layer)
	rejected int64 // events answered 429 or 503 (back-pressure)
	failed   int64 // events whose post failed otherwise
	lastErr  string
	elapsed  time.Duration // from the first post to the last answer
}

// run posts rate events/s for d: a dispatcher hands a batch to the next
// free poster each time another batch's worth of events is due. When every
// poster is waiting for its answer the dispatcher waits too (the server's
// acknowledgement is the back-pressure) and catches up after, so a server
// that cannot keep up shows as fewer events acknowledged than due.
func (g *loadGen) run(ctx context.Context, rate int, d time.Duration) loadCounts {
	var (
		c    loadCounts
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan int64)
	)
	for range g.posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for seq := range jobs {
				body = g.gen.appendBatch(body[:0], seq, g.batch)
				code, err := g.post(ctx, body)
				mu.Lock()
				c.sent += int64(g.batch)
				switch {
				case err != nil:
					c.failed += int64(g.batch)
					c.lastErr = err.Error()
				case code == http.StatusAccepted || code == http.StatusOK:
					c.acked += int64(g.batch)
					g.bytes.Add(int64(len(body)))
				case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
					c.rejected += int64(g.batch)
					c.lastErr = "HTTP " + strconv.Itoa(code)
				default:
					c.failed += int64(g.batch)
					c.lastErr = "HTTP " + strconv.Itoa(code)
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	var issued int64
dispatch:
	for {
		now := time.Now()
		due := min(int64(float64(rate)*now.Sub(start).Seconds()), int64(float64(rate)*d.Seconds()))
		for issued+int64(g.batch) <= due {
			select {
			case jobs <- g.seq.Add(int64(g.batch)) - int64(g.batch):
				issued += int64(g.batch)
			case <-ctx.Done():
				break dispatch
			}
		}
		if now.Sub(start) >= d {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break dispatch
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	c.elapsed = time.Since(start)
	return c
}

func (g *loadGen) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // drained so the connection is reused
	resp.Body.Close()
	return resp.StatusCode, nil
}
