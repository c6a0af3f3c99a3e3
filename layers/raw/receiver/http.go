package receiver

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// readyKey is the key /readyz asks the lake about. It never exists: an
// answer of "not there" proves the lake is reachable.
const readyKey = "_medallion/readyz"

// readyTimeout bounds the lake check of /readyz.
const readyTimeout = 3 * time.Second

// statusClientGone is the metrics code of a request whose client left
// before its answer (nginx's convention); it is never sent.
const statusClientGone = 499

// IngestResponse is the JSON body of a successful ingest request.
type IngestResponse struct {
	Source string `json:"source"`
	Rows   int64  `json:"rows"` // rows (lines) of this request now durable in the raw layer, bad ones included
	// BadLines of those are not a JSON object (or have another CSV column
	// count): landed all the same, bronze quarantines them with their line.
	BadLines int64 `json:"bad_lines"`
	// FirstLine is the line of Object where this request's first row is:
	// line n of the request (counting its rows, and a CSV header as line 1)
	// is line FirstLine+n-1 of the object, as bronze's quarantine names it.
	FirstLine int64  `json:"first_line,omitempty"`
	Object    string `json:"object,omitempty"` // the raw object holding them (empty for 0 rows)
	SHA256    string `json:"sha256,omitempty"` // of that object
	// Duplicate is true when the batch holding the request had exactly the
	// bytes of an object landed before: the rows are durable in Object,
	// which is that earlier object (answered 200 instead of 202).
	Duplicate bool `json:"duplicate,omitempty"`
}

// errorResponse is the JSON body of every error answer.
type errorResponse struct {
	Error string `json:"error"`
}

// serveIngest is POST /v1/ingest/{source}. The checks run in this order:
// 503 shutting down, 401 token, 404 source, 415 type, 413 size, 429 room,
// 400 framing; then the request waits for its batch to be landed: 202 (or
// 200 for a duplicate) when it is durable, 503 when landing failed.
func (r *Receiver) serveIngest(w http.ResponseWriter, req *http.Request) {
	// The whole body must be in by BodyTimeout, whatever the answer: also
	// a request refused before its body is read, whose rest the server
	// reads and discards to keep the connection.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(r.opts.BodyTimeout))
	source := req.PathValue("source")
	b, known := r.sources[source]
	label := source
	if !known {
		label = ""
	}
	fail := func(code int, msg string) {
		r.m.requests.With(label, strconv.Itoa(code)).Inc()
		writeJSON(w, code, errorResponse{Error: msg})
	}
	kind, enc, ok := r.admit(w, req, b, source, fail)
	if !ok {
		return
	}

	sh := &share{b: r.mem}
	defer sh.release() // what a batch did not take over
	c, err := r.readFramed(w, req, b, kind, enc, sh)
	if err != nil {
		r.failBody(w, fail, source, err)
		return
	}
	if c.rows == 0 {
		r.m.requests.With(label, "200").Inc()
		writeJSON(w, http.StatusOK, IngestResponse{Source: source})
		return
	}

	c.held = sh.detach() // the batch gives it back once landed
	bt, first, err := b.addAt(req.Context(), c, "http", false)
	if err != nil {
		r.mem.give(c.held) // no batch took it
	}
	switch {
	case errors.Is(err, ErrFull):
		r.tooBusy(w, fail, source)
		return
	case err != nil:
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "the ingest endpoint is shutting down; nothing of this request was accepted: retry")
		return
	}
	r.m.rows.With(source, "http").Add(float64(c.rows))
	r.m.bytes.With(source, "http").Add(float64(len(c.data)))

	res, err := bt.wait(req.Context())
	switch {
	case err != nil && req.Context().Err() != nil:
		// The client left: it is not acknowledged, but its rows are in
		// the batch and will be landed (at-least-once).
		r.m.requests.With(label, strconv.Itoa(statusClientGone)).Inc()
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		fail(http.StatusServiceUnavailable, fmt.Sprintf("source %s: the batch holding this request could not be landed in the lake (%v); nothing of it is acknowledged: retry", source, err))
		return
	}
	code := http.StatusAccepted
	if res.Duplicate {
		code = http.StatusOK
	}
	r.m.requests.With(label, strconv.Itoa(code)).Inc()
	if c.headerLine != nil {
		first-- // the request's own header is its line 1
	}
	writeJSON(w, code, IngestResponse{Source: source, Rows: c.rows, BadLines: c.bad, FirstLine: first,
		Object: res.Object, SHA256: res.SHA256, Duplicate: res.Duplicate})
}

// admit runs serveIngest's checks before the body is read, in their
// documented order (503, 401, 404, 415, 413, 429), answering the first
// that fails; ok is false when it answered. b is nil for an unknown source.
func (r *Receiver) admit(w http.ResponseWriter, req *http.Request, b *batcher, source string, fail func(int, string)) (kind bodyKind, enc string, ok bool) {
	known := b != nil
	if !r.running.Load() || r.closing.Load() {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "the ingest endpoint is shutting down (or not started); retry against another instance or later")
		return 0, "", false
	}
	if r.opts.Token != "" && !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="medallion ingest"`)
		fail(http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer $"+EnvToken)
		return 0, "", false
	}
	if !known {
		fail(http.StatusNotFound, fmt.Sprintf("unknown source %q: the pipeline declares %s", source, strings.Join(r.opts.Pipeline.SourceOrder, ", ")))
		return 0, "", false
	}
	ct := req.Header.Get("Content-Type")
	kind, ok = kindFor(ct, b.src.Format)
	if !ok {
		fail(http.StatusUnsupportedMediaType, fmt.Sprintf("source %s (format %s) does not take Content-Type %q: send %s", source, b.src.Format, ct, acceptedTypes(b.src.Format)))
		return 0, "", false
	}
	enc = strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		fail(http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: send gzip or none", enc))
		return 0, "", false
	}
	maxBytes := r.opts.MaxBodyBytes
	if req.ContentLength > maxBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d bytes: split it into smaller requests", req.ContentLength, maxBytes))
		return 0, "", false
	}
	if req.ContentLength > 0 && !b.hasRoom(req.ContentLength) {
		r.tooBusy(w, fail, source)
		return 0, "", false
	}
	return kind, enc, true
}

// tooBusy answers 429 with a Retry-After of about one flush.
func (r *Receiver) tooBusy(w http.ResponseWriter, fail func(int, string), source string) {
	secs := int(math.Ceil(r.opts.FlushInterval.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	fail(http.StatusTooManyRequests, fmt.Sprintf("source %s: the receiver holds as many bytes as it may (%d per source waiting to be landed, %d in memory over all requests); retry after %d s", source, r.opts.MaxPending, r.opts.MaxBuffered, secs))
}

// authorized checks the bearer token in constant time (over SHA-256
// digests, so the token's length does not leak either).
func (r *Receiver) authorized(req *http.Request) bool {
	h := req.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(r.opts.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// readFramed reads the body and frames it, taking from the memory budget
// (into sh) every array it allocates before allocating it. On success sh
// holds exactly the bytes c keeps.
func (r *Receiver) readFramed(w http.ResponseWriter, req *http.Request, b *batcher, kind bodyKind, enc string, sh *share) (chunk, error) {
	body, err := r.readBody(w, req, enc, r.opts.MaxBodyBytes, sh)
	if err != nil {
		return chunk{}, err
	}
	// The body is in: the deadline serveIngest set is lifted, as the
	// server's read that watches for a client leaving must not time out
	// while the request waits for its batch. On every error path it stays,
	// so the server's discard of an unread rest ends by then too.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	// Framing may copy the body (JSON arrays, CSV, NDJSON with blank lines
	// or \r): room for that copy is taken before framing.
	if !sh.grow(int64(len(body)) + 1) {
		return chunk{}, errBudget
	}
	c, err := frame(body, kind, b.src)
	if err != nil {
		return chunk{}, &badFrame{err}
	}
	// From here the batch keeps c's arrays; the body's only when c.data
	// is a part of it.
	keep := int64(cap(c.data)) + int64(cap(c.headerLine))
	if sameArray(c.data, body) {
		keep = int64(cap(body)) + int64(cap(c.headerLine))
	}
	if keep > sh.n && !sh.grow(keep-sh.n) {
		return chunk{}, errBudget
	}
	sh.shrinkTo(keep)
	return c, nil
}

// badFrame is a body whose framing is wrong (400).
type badFrame struct{ err error }

func (e *badFrame) Error() string { return e.err.Error() }

// failBody answers a body that could not be read or framed.
func (r *Receiver) failBody(w http.ResponseWriter, fail func(int, string), source string, err error) {
	var (
		mbe *http.MaxBytesError
		bf  *badFrame
		ne  net.Error
	)
	switch {
	case errors.Is(err, errBudget):
		r.tooBusy(w, fail, source)
	case errors.As(err, &mbe):
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes: split it into smaller requests", r.opts.MaxBodyBytes))
	case errors.As(err, &bf):
		fail(http.StatusBadRequest, fmt.Sprintf("source %s: %v; nothing of this request was accepted", source, bf.err))
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		w.Header().Set("Connection", "close")
		fail(http.StatusRequestTimeout, fmt.Sprintf("the body did not arrive within %s; nothing of this request was accepted: send it faster or in smaller requests", r.opts.BodyTimeout))
	default:
		fail(http.StatusBadRequest, "read body: "+err.Error())
	}
}

// sameArray reports whether a and b end in the same backing array (a is a
// part of b kept without a copy).
func sameArray(a, b []byte) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return false
	}
	return &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

// readBody reads at most maxBytes bytes of body, after gunzipping when enc is
// gzip (both the compressed and the decompressed size are bounded). Every
// array is taken from the budget (into sh) before it is allocated: a body
// of known length needs one array of that size; one of unknown length grows
// by doubling, the old array counted until it is copied. errBudget means
// the budget has no room.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, enc string, maxBytes int64, sh *share) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(w, req.Body, maxBytes)
	if enc == "gzip" {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		rd = &limitReader{r: zr, n: maxBytes}
	} else if n := req.ContentLength; n > 0 && n <= maxBytes {
		if !sh.grow(n) {
			return nil, errBudget
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return readGrowing(rd, maxBytes, sh)
}

// readGrowing reads rd to its end into an array that doubles as needed,
// each array taken from sh before it is allocated.
func readGrowing(rd io.Reader, maxBytes int64, sh *share) ([]byte, error) {
	const first = 32 << 10
	size := min(int64(first), maxBytes+1)
	if !sh.grow(size) {
		return nil, errBudget
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			next := min(2*int64(cap(buf)), maxBytes+1) // +1: a body over the limit is seen as one
			if !sh.grow(next) {
				return nil, errBudget
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			sh.shrinkTo(sh.n - int64(cap(buf)))
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// limitReader fails with *http.MaxBytesError past n bytes.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, &http.MaxBytesError{}
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return 0, &http.MaxBytesError{}
	}
	return n, err
}

// serveHealthz answers 200 while the process can serve HTTP.
func (r *Receiver) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// serveReadyz answers 200 when the receiver accepts requests and the lake
// answers a Stat; 503 otherwise, with the reason.
func (r *Receiver) serveReadyz(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !r.running.Load() || r.closing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: shutting down or not started\n")
		return
	}
	if err := r.Ready(req.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+err.Error()+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// Ready reports whether the lake is reachable: a Stat of a key that does
// not exist must answer "not there" (lake.ErrNotExist) within a few seconds.
func (r *Receiver) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	_, err := r.opts.Store.Stat(ctx, readyKey)
	if err == nil || errors.Is(err, lake.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("lake %s unreachable: %w", r.opts.Store.URL(), err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a write error means the client went away
}
