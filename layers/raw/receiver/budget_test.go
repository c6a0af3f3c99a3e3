package receiver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// rowLine is one fixed-width NDJSON row, so a body's length is known
// without building it.
const rowLine = `{"client":%4d,"seq":%7d,"v":0}` + "\n"

var rowLineLen = len(fmt.Sprintf(rowLine, 0, 0))

// rowReader generates rows client/1..n on the fly: a client holds no body
// in memory, so the test's heap is the receiver's.
type rowReader struct {
	client, seq, n int
	buf            []byte
}

func (r *rowReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.seq == r.n {
			return 0, io.EOF
		}
		r.seq++
		r.buf = fmt.Appendf(r.buf[:0], rowLine, r.client, r.seq)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// TestMemoryBudget: 30 concurrent bodies of about 1 MiB each (half with a
// Content-Length, half chunked) against an 8 MiB budget while the lake
// holds every landing: the receiver's held bytes never exceed the budget
// (its own accounting, and the Go heap after a GC), the requests beyond it
// get 429 with Retry-After, and once the lake answers every acknowledged
// row is landed exactly once.
func TestMemoryBudget(t *testing.T) {
	const (
		clients = 30
		rows    = (1 << 20) / 40 // about 1 MiB a body
		budget  = 8 << 20
	)
	st := testenv.LocalStore(t)
	ts := &testStore{Store: st}
	h := start(t, ts, pipeline(t), func(o *Options) {
		o.MaxBodyBytes = 1 << 20
		o.MaxBuffered = budget
		o.MaxPending = 64 << 20
		o.FlushBytes = 64 << 10 // a batch a request
		o.FlushInterval = 10 * time.Millisecond
	})
	ts.hold()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxConnsPerHost: clients, MaxIdleConnsPerHost: clients, ExpectContinueTimeout: time.Minute}}
	var (
		mu       sync.Mutex
		answered int
		rejected int // 429
		cut      int // refused while the body was being sent: the connection was closed under it
		acked    = map[[2]int]int{}
		sum      int64
		wg       sync.WaitGroup
	)
	for c := 1; c <= clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/ingest/meters", &rowReader{client: c, n: rows})
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", ndjsonCT)
			if c%2 == 0 {
				// As curl does for large bodies: the 429 comes before the body is sent.
				req.ContentLength = int64(rows * rowLineLen)
				req.Header.Set("Expect", "100-continue")
			} // else chunked: the receiver takes its budget as bytes arrive
			resp, err := client.Do(req)
			if err != nil {
				if c%2 == 0 {
					t.Errorf("client %d: %v", c, err)
				}
				mu.Lock()
				answered++
				cut++ // a chunked body refused midway: not acknowledged
				mu.Unlock()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			answered++
			switch {
			case resp.StatusCode == http.StatusTooManyRequests:
				rejected++
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("client %d: 429 with Retry-After %q", c, resp.Header.Get("Retry-After"))
				}
			case resp.StatusCode/100 == 2:
				for s := 1; s <= rows; s++ {
					acked[[2]int{c, s}]++
				}
				sum += rows
			default:
				t.Errorf("client %d: %s", c, resp.Status)
			}
		}()
	}
	// Every request is either answered (429) or waiting for its batch.
	// (Framing 1 MiB bodies is slow under -race: a longer wait than waitFor's.)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := rejected + cut
		mu.Unlock()
		in := int(rowsReceived(t, h) / rows)
		if n+in == clients {
			break
		}
		if time.Now().After(deadline) {
			used, _ := h.r.mem.stats()
			t.Fatalf("timed out waiting for every request answered or in a batch: %d refused, %d in batches, of %d; budget used %d", n, in, clients, used)
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	used, peak := h.r.mem.stats()
	t.Logf("%d of %d requests refused with 429, %d cut while sending; budget used %d, peak %d of %d; heap grew %d bytes",
		rejected, clients, cut, used, peak, budget, int64(during.HeapAlloc)-int64(before.HeapAlloc))
	if rejected == 0 {
		t.Errorf("no request was refused: %d bodies of %d bytes were all taken in with a budget of %d", clients, rows*rowLineLen, budget)
	}
	if peak > budget {
		t.Errorf("the receiver held %d bytes of bodies, over its budget of %d", peak, budget)
	}
	// The heap: the budget, plus connection buffers and bookkeeping.
	if grew := int64(during.HeapAlloc) - int64(before.HeapAlloc); grew > budget+4<<20 {
		t.Errorf("the heap grew %d bytes with %d requests held: over the budget of %d (+4 MiB)", grew, clients-rejected, budget)
	}

	ts.release()
	wg.Wait()
	if answered != clients {
		t.Fatalf("%d of %d requests answered", answered, clients)
	}
	checkExactlyOnce(t, st, acked, sum)
	waitFor(t, "the budget to be given back", func() bool { used, _ := h.r.mem.stats(); return used == 0 })
}

var rowsReceivedRE = regexp.MustCompile(`(?m)^medallion_ingest_rows_received_total\{source="meters",transport="http"\} (\d+)$`)

// rowsReceived is the rows taken into batches over HTTP, from /metrics.
func rowsReceived(t *testing.T, h *harness) int64 {
	_, body := h.get(t, "/metrics")
	m := rowsReceivedRE.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestSlowBody: a body that stops arriving gets 408 once BodyTimeout has
// passed, its connection is closed, and the budget it took is given back.
func TestSlowBody(t *testing.T) {
	st := testenv.LocalStore(t)
	h := start(t, st, pipeline(t), func(o *Options) { o.BodyTimeout = 300 * time.Millisecond })
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	const conns = 20
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			first := fmt.Sprintf(rowLine, i, 1)
			fmt.Fprintf(conn, "POST /v1/ingest/meters HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 100000\r\n\r\n%s", ndjsonCT, first)
			// Nothing more is sent. The client gives up after 10 s.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("connection %d: no answer: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("connection %d: %s, want 408", i, resp.Status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("connection %d after 408: %v, want EOF (closed)", i, err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the budget to be given back", func() bool { used, _ := h.r.mem.stats(); return used == 0 })
	if r := h.post(t, "meters", ndjsonCT, fmt.Sprintf(rowLine, 1, 1)); r.code != http.StatusAccepted {
		t.Errorf("a request after the slow ones: %d %s", r.code, r.err)
	}
}
