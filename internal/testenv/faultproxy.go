package testenv

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// FaultKind is a kind of fault FaultProxy injects.
type FaultKind string

// The faults a FaultProxy injects. Each is what a real network or server does
// to a client now and then; the ones after the server acted are the ones
// whose outcome a client cannot know.
const (
	// DropReply forwards the request, lets the server act on it, reads its
	// whole reply, then closes the client's connection without answering: a
	// reply lost after the server acted.
	DropReply FaultKind = "drop-reply"
	// ErrorStatus answers Rule.Status (500 or 503) with an S3 error body
	// without forwarding: the server did nothing.
	ErrorStatus FaultKind = "error-status"
	// Latency waits Rule.Delay, then forwards the request normally.
	Latency FaultKind = "latency"
	// CutReply forwards the request, then sends the reply's status, headers
	// and the first half of its body (Rule.CutAfter bytes, if set) and
	// closes the connection: a connection cut mid-body after the server
	// acted. A reply without a body is dropped whole.
	CutReply FaultKind = "cut-reply"
	// CutRequest reads half of the request's body, then closes the
	// connection without forwarding: an upload cut mid-body; the server
	// never sees it.
	CutRequest FaultKind = "cut-request"
)

// FaultRule says which requests get which fault.
type FaultRule struct {
	// Method matches the HTTP method ("PUT", "GET", "HEAD", ...); "" matches
	// any.
	Method string
	// Key matches the request's object path after the bucket (the store's
	// prefix plus the lake key, e.g. "raw/meters/_manifest/<sha>.json"),
	// unanchored; nil matches every request, bucket requests included.
	Key *regexp.Regexp
	// Kind is the fault.
	Kind FaultKind
	// Status is ErrorStatus's answer; 0 means 503.
	Status int
	// Delay is Latency's wait.
	Delay time.Duration
	// CutAfter is how many bytes of the body CutReply relays before it
	// cuts (at most all but the last); 0 means half the body.
	CutAfter int
	// Count bounds how many faults the rule injects; 0 means no bound.
	Count int
	// Probability is the chance that a matching request gets the fault;
	// 0 means always.
	Probability float64
}

// FaultProxy is a loopback HTTP reverse proxy between an S3 client and an S3
// server that injects faults into the requests its rules match. Point a
// store at it with Server().Options(bucket): the requests' signatures still
// hold because the proxy forwards the Host header it received.
//
// Rules are tried in the order they were added; the first whose method and
// key match, whose count is not used up and whose probability draw succeeds
// applies. Requests no rule applies to pass through unchanged.
type FaultProxy struct {
	srv      *httptest.Server
	upstream *url.URL
	rt       *http.Transport
	via      MinIOServer

	mu       sync.Mutex
	rules    []*ruleState
	rnd      *rand.Rand
	injected map[FaultKind]int
	requests int
}

type ruleState struct {
	FaultRule
	fired int
}

// StartFaultProxy starts a proxy in front of upstream on a free loopback
// port; it stops when the test ends. Probabilities are drawn from a
// generator seeded with seed, so a run's faults can be repeated.
func StartFaultProxy(t testing.TB, upstream *MinIOServer, seed uint64) *FaultProxy {
	t.Helper()
	u, err := upstreamURL(upstream)
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{
		upstream: u,
		rt: &http.Transport{
			Proxy:               nil,
			DisableCompression:  true, // bytes pass through as they are
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		rnd:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		injected: map[FaultKind]int{},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.via = *upstream
	p.via.Endpoint = strings.TrimPrefix(p.srv.URL, "http://")
	p.via.Secure = false
	p.via.pid = 0
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.rt.CloseIdleConnections()
	})
	return p
}

// upstreamURL is the server's base URL, with its scheme.
func upstreamURL(s *MinIOServer) (*url.URL, error) {
	ep := s.Endpoint
	if !strings.Contains(ep, "://") {
		scheme := "http://"
		if s.Secure {
			scheme = "https://"
		}
		ep = scheme + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad upstream endpoint %q", s.Endpoint)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Server describes the proxy as an S3 endpoint with the upstream's
// credentials: use its Options for a store and its Env for a subprocess.
func (p *FaultProxy) Server() *MinIOServer {
	s := p.via
	return &s
}

// S3Store opens a store on an existing bucket through the proxy. attempts
// bounds the client's tries per request (0: its default), so a test can make
// a fault outlast the retries.
func (p *FaultProxy) S3Store(t testing.TB, bucket string, attempts int) lake.Store {
	t.Helper()
	opts := p.Server().Options(bucket)
	opts.MaxRetries = attempts
	st, err := lake.NewS3(t.Context(), opts)
	if err != nil {
		t.Fatalf("testenv: S3 store through the fault proxy: %v", err)
	}
	return st
}

// Endpoint is the proxy's host:port.
func (p *FaultProxy) Endpoint() string { return p.via.Endpoint }

// Add appends a rule. A rule with an unknown kind fails the test at once.
func (p *FaultProxy) Add(t testing.TB, r FaultRule) {
	t.Helper()
	switch r.Kind {
	case DropReply, ErrorStatus, Latency, CutReply, CutRequest:
	default:
		t.Fatalf("testenv: fault proxy: unknown fault kind %q", r.Kind)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &ruleState{FaultRule: r})
}

// Clear removes every rule; later requests pass through. The counts stay.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Injected returns how many faults of each kind were injected so far.
func (p *FaultProxy) Injected() FaultCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(FaultCounts, len(p.injected))
	for k, n := range p.injected {
		out[k] = n
	}
	return out
}

// Requests returns how many requests reached the proxy so far.
func (p *FaultProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// FaultCounts is the number of faults injected per kind.
type FaultCounts map[FaultKind]int

// Total is the number of faults of every kind.
func (c FaultCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the counts by kind, e.g. "drop-reply=3 error-status=1".
func (c FaultCounts) String() string {
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[FaultKind(k)]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// pick returns the rule that applies to r, counting its fault, or nil.
func (p *FaultProxy) pick(r *http.Request) *FaultRule {
	key := objectPath(r.URL.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for _, rs := range p.rules {
		if rs.Method != "" && !strings.EqualFold(rs.Method, r.Method) {
			continue
		}
		if rs.Key != nil && !rs.Key.MatchString(key) {
			continue
		}
		if rs.Count > 0 && rs.fired >= rs.Count {
			continue
		}
		if rs.Probability > 0 && rs.Probability < 1 && p.rnd.Float64() >= rs.Probability {
			continue
		}
		rs.fired++
		p.injected[rs.Kind]++
		rule := rs.FaultRule
		return &rule
	}
	return nil
}

// objectPath is the part of a path-style S3 request path after the bucket.
func objectPath(path string) string {
	_, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return rest
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	rule := p.pick(r)
	if rule == nil {
		p.pass(w, r)
		return
	}
	switch rule.Kind {
	case ErrorStatus:
		answerError(w, r, rule.Status)
	case Latency:
		t := time.NewTimer(rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			p.pass(w, r)
		case <-r.Context().Done():
		}
	case DropReply:
		if resp, err := p.forward(r); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // the server finished acting
			resp.Body.Close()
		}
		hangUp(w, nil)
	case CutReply:
		p.cutReply(w, r, rule.CutAfter)
	case CutRequest:
		_, _ = io.CopyN(io.Discard, r.Body, max(r.ContentLength, 0)/2)
		hangUp(w, nil)
	}
}

// forward sends r on to the upstream server as it came, Host header (which
// the request's signature covers) included.
func (p *FaultProxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	out.Host = r.Host
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return p.rt.RoundTrip(out)
}

// hopHeaders belong to one connection and are not forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"}

// pass forwards r and relays the reply unchanged.
func (p *FaultProxy) pass(w http.ResponseWriter, r *http.Request) {
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// cutReply forwards r and relays the status, the headers and the first
// after bytes of the reply's body (0: half of it), then closes the
// connection.
func (p *FaultProxy) cutReply(w http.ResponseWriter, r *http.Request, after int) {
	resp, err := p.forward(r)
	if err != nil {
		hangUp(w, nil)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if len(body) == 0 || r.Method == http.MethodHead {
		hangUp(w, nil)
		return
	}
	hangUp(w, func(bw *bufio.Writer) {
		resp.Header.Del("Transfer-Encoding")
		for _, h := range hopHeaders {
			resp.Header.Del(h)
		}
		fmt.Fprintf(bw, "HTTP/1.1 %s\r\n", resp.Status)
		resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
		_ = resp.Header.Write(bw)
		bw.WriteString("\r\n")
		n := len(body) / 2
		if after > 0 {
			n = min(after, len(body)-1)
		}
		bw.Write(body[:n])
	})
}

// hangUp takes over the client's connection, writes what write writes (if
// anything) and closes it, so the client gets no complete answer.
func hangUp(w http.ResponseWriter, write func(*bufio.Writer)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("testenv: fault proxy: the connection cannot be taken over")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if write != nil {
		write(brw.Writer)
		_ = brw.Flush()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// answerError answers an S3 error of the given status (default 503) the way
// S3 does, so clients treat it as a server error and retry.
func answerError(w http.ResponseWriter, r *http.Request, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	code := "InternalError"
	if status == http.StatusServiceUnavailable {
		code = "SlowDown"
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "fault-proxy")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>injected by the test fault proxy</Message><Resource>%s</Resource><RequestId>fault-proxy</RequestId></Error>`,
		code, r.URL.Path)
}
