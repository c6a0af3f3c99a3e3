package receiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers/raw"
)

// idLayout names batches by the receive time of their first request.
const idLayout = "20060102T150405.000000000Z"

// batch is the rows of one future raw object.
type batch struct {
	transport string    // of the first request: "http" or "tcp" (names the object)
	received  time.Time // receive time of the first request (Options.Now)
	opened    time.Time // wall clock with monotonic reading, for FlushInterval
	header    []string  // CSV with a header: the batch's header fields
	// segs are the raw object's bytes: the chunks' arrays, kept as they are
	// (an HTTP body is landed from the array it was read into, never
	// copied into a second one).
	segs     [][]byte
	size     int64 // bytes in segs
	held     int64 // memory budget the chunks took; given back once landed
	rows     int64
	lines    int64 // text lines in segs, the CSV header included
	requests int

	done chan struct{} // closed once the outcome below is set
	m    rawResult
	err  error
}

// rawResult is what the requests of a landed batch are told.
type rawResult struct {
	Object    string // raw object key
	SHA256    string
	Duplicate bool // the same bytes were landed before; Object is that earlier one
}

// name is the original-name field of the batch's raw manifest.
func (b *batch) name(format string) string {
	return b.transport + "-" + b.received.UTC().Format(idLayout) + "." + format
}

// batcher holds one source's pending batches and lands them, one at a time,
// in the order they filled. Its flusher goroutine (run) is started by
// Receiver.Start and returns once a drain has landed everything.
type batcher struct {
	r      *Receiver
	src    *config.Source
	format string // raw object format: csv or ndjson

	kick chan struct{} // wakes the flusher; capacity 1

	mu       sync.Mutex
	open     *batch   // filling; nil when none
	sealed   []*batch // full or due, waiting for the flusher
	pending  int64    // bytes in open, sealed and the batch being landed
	space    chan struct{}
	waiting  int  // add calls waiting for room (TCP back-pressure; tests wait on it)
	draining bool // shutting down: seal at once, return when empty
	done     bool // the flusher returned: nothing more is accepted
}

func newBatcher(r *Receiver, src *config.Source) *batcher {
	format := "ndjson"
	if src.Format == "csv" {
		format = "csv"
	}
	return &batcher{r: r, src: src, format: format, kick: make(chan struct{}, 1), space: make(chan struct{})}
}

func (b *batcher) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// add appends c to the open batch and returns the batch that holds it.
// For HTTP (block false) a full buffer returns ErrFull; for TCP (block
// true) it waits for room until ctx ends. ErrClosed means the receiver is
// shutting down (HTTP) or has stopped flushing (both). The batch keeps c's
// arrays: the caller must not change them afterwards.
func (b *batcher) add(ctx context.Context, c chunk, transport string, block bool) (*batch, error) {
	bt, _, err := b.addAt(ctx, c, transport, block)
	return bt, err
}

// addAt is add that also says at which line of the batch's raw object the
// chunk's data starts (1-based), so that a sender can find the lines bronze
// quarantines in its own request.
func (b *batcher) addAt(ctx context.Context, c chunk, transport string, block bool) (*batch, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.done || (!block && b.r.closing.Load()) {
			return nil, 0, ErrClosed
		}
		size := c.size(b.open == nil || !slices.Equal(b.open.header, c.header))
		if b.pending == 0 || b.pending+size <= b.r.opts.MaxPending {
			break
		}
		if !block {
			return nil, 0, ErrFull
		}
		space := b.space
		b.waiting++
		b.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			b.mu.Lock()
			b.waiting--
			return nil, 0, ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
	}
	if b.open != nil && !slices.Equal(b.open.header, c.header) {
		b.sealLocked() // another CSV header: it starts a batch of its own
	}
	if b.open == nil {
		b.open = &batch{transport: transport, received: b.r.opts.Now(), opened: time.Now(), header: c.header, done: make(chan struct{})}
		b.open.addSeg(c.headerLine)
		if len(c.headerLine) > 0 {
			b.open.lines++
		}
		b.pending += int64(len(c.headerLine))
		b.wake() // the flusher starts the batch's FlushInterval
	}
	bt := b.open
	first := bt.lines + 1
	bt.lines += int64(bytes.Count(c.data, []byte{'\n'}))
	bt.addSeg(c.data)
	bt.held += c.held
	bt.rows += c.rows
	bt.requests++
	b.pending += int64(len(c.data))
	b.r.m.pending.With(b.src.Name).Set(float64(b.pending))
	if bt.size >= b.r.opts.FlushBytes || b.draining {
		b.sealLocked()
	}
	return bt, first, nil
}

// addSeg appends p to the batch's bytes without copying it.
func (bt *batch) addSeg(p []byte) {
	if len(p) > 0 {
		bt.segs = append(bt.segs, p)
		bt.size += int64(len(p))
	}
}

// reader reads the batch's bytes from the start (one per landing attempt).
func (bt *batch) reader() io.Reader {
	rs := make([]io.Reader, len(bt.segs))
	for i, p := range bt.segs {
		rs[i] = bytes.NewReader(p)
	}
	return io.MultiReader(rs...)
}

// hasRoom reports whether n more bytes would fit now (a cheap check before
// reading a body; add decides).
func (b *batcher) hasRoom(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending == 0 || b.pending+n <= b.r.opts.MaxPending
}

// sealLocked moves the open batch to the flusher's queue.
func (b *batcher) sealLocked() {
	if b.open == nil {
		return
	}
	b.sealed = append(b.sealed, b.open)
	b.open = nil
	b.wake()
}

// drain makes the flusher land everything pending and return.
func (b *batcher) drain() {
	b.mu.Lock()
	b.draining = true
	b.sealLocked()
	b.mu.Unlock()
	b.wake()
}

// run is the flusher: it lands sealed batches in order, seals the open one
// when FlushInterval has passed, and returns once draining and empty.
// ctx is canceled only to abort (Close's deadline passed).
func (b *batcher) run(ctx context.Context) {
	interval := b.r.opts.FlushInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if b.open != nil && (b.draining || time.Since(b.open.opened) >= interval) {
			b.sealLocked()
		}
		if len(b.sealed) > 0 {
			bt := b.sealed[0]
			b.sealed = b.sealed[1:]
			b.mu.Unlock()
			b.flush(ctx, bt)
			continue
		}
		if b.draining {
			b.done = true
			b.mu.Unlock()
			return
		}
		var due <-chan time.Time
		if b.open != nil {
			timer.Reset(interval - time.Since(b.open.opened))
			due = timer.C
		}
		b.mu.Unlock()
		select {
		case <-b.kick:
		case <-due:
		}
		timer.Stop()
	}
}

// flush lands one batch, retrying with the same bytes (raw's content
// addressing makes a retry after a lost reply find the first attempt), then
// answers its requests and frees its room.
func (b *batcher) flush(ctx context.Context, bt *batch) {
	start := time.Now()
	source := b.src.Name
	size := bt.size
	var (
		m   raw.Manifest
		dup bool
		err error
	)
	for attempt := 1; attempt <= b.r.opts.FlushAttempts; attempt++ {
		if attempt > 1 {
			wait := time.Duration(attempt-1) * time.Duration(attempt-1) * 250 * time.Millisecond
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("land %s: aborted at shutdown: %w", bt.name(b.format), ctx.Err())
			break
		}
		actx, cancel := context.WithTimeout(ctx, b.r.opts.FlushTimeout)
		m, dup, err = raw.Land(actx, b.r.opts.Store, source, bt.name(b.format), b.format, bt.reader(), bt.received)
		cancel()
		if err == nil {
			break
		}
		b.r.log.Warn("landing a batch failed", "source", source, "attempt", attempt, "of", b.r.opts.FlushAttempts,
			"rows", bt.rows, "bytes", size, "err", err)
	}
	elapsed := time.Since(start)
	b.r.m.flushSeconds.With(source).Observe(elapsed.Seconds())
	switch {
	case err != nil:
		b.r.m.flushes.With(source, "error").Inc()
		b.r.log.Error("batch not landed; its requests get 503", "source", source, "requests", bt.requests, "rows", bt.rows, "err", err)
		bt.err = err
	case dup:
		b.r.m.flushes.With(source, "duplicate").Inc()
		b.r.log.Info("batch already landed", "source", source, "object", m.Key, "rows", bt.rows)
		bt.m = rawResult{Object: m.Key, SHA256: m.SHA256, Duplicate: true}
	default:
		b.r.m.flushes.With(source, "landed").Inc()
		b.r.m.rowsLanded.With(source).Add(float64(bt.rows))
		b.r.m.bytesLanded.With(source).Add(float64(size))
		b.r.log.Debug("batch landed", "source", source, "object", m.Key, "rows", bt.rows, "requests", bt.requests, "bytes", size, "took", elapsed)
		bt.m = rawResult{Object: m.Key, SHA256: m.SHA256}
	}
	close(bt.done)
	// Nothing reads the bytes once the batch's requests are answered
	// (raw.Land has returned, and a retry is never made after).
	bt.segs = nil
	b.r.mem.give(bt.held)

	b.mu.Lock()
	b.pending -= size
	b.r.m.pending.With(source).Set(float64(b.pending))
	close(b.space) // wake TCP readers waiting for room
	b.space = make(chan struct{})
	b.mu.Unlock()
}

// wait blocks until bt is landed or ctx ends, and returns the outcome.
func (bt *batch) wait(ctx context.Context) (rawResult, error) {
	select {
	case <-bt.done:
		return bt.m, bt.err
	case <-ctx.Done():
		return rawResult{}, ctx.Err()
	}
}
