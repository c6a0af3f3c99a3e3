package receiver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tcpAppendBytes is how many bytes of complete lines a connection collects
// before appending them to the batch even while more input is buffered.
const tcpAppendBytes = 256 << 10

// ListenTCP opens a TCP line listener for source on addr (host:port; ":0"
// picks a free port) and returns the address it listens on. Each line is
// one JSON object; lines are batched with the source's HTTP requests (see
// the package documentation for the guarantee). ctx bounds opening the
// listener only; the listener and its connections run until Close. Start
// must have been called; the source must not be a csv source.
func (r *Receiver) ListenTCP(ctx context.Context, source, addr string) (net.Addr, error) {
	b, ok := r.sources[source]
	if !ok {
		return nil, fmt.Errorf("receiver: listen for %s on %s: no such source in the pipeline", source, addr)
	}
	if b.format == "csv" {
		return nil, fmt.Errorf("receiver: listen for %s on %s: the source's format is csv; the TCP listener takes one JSON object per line (use format: ndjson)", source, addr)
	}
	if !r.running.Load() || r.closing.Load() {
		return nil, fmt.Errorf("receiver: listen for %s on %s: %w", source, addr, ErrClosed)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: listen for %s: %w", source, err)
	}
	l := &tcpListener{r: r, b: b, ln: ln, conns: map[net.Conn]bool{}}
	r.mu.Lock()
	if r.closing.Load() {
		r.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("receiver: listen for %s on %s: %w", source, addr, ErrClosed)
	}
	r.listeners = append(r.listeners, l)
	r.mu.Unlock()
	l.wg.Add(1)
	go l.accept()
	r.log.Info("TCP line listener open", "source", source, "addr", ln.Addr().String())
	return ln.Addr(), nil
}

// tcpListener is one listening socket and its connections. Its goroutines
// (the accept loop and one reader per connection) are owned by the
// Receiver: stopReading ends them, close closes the sockets and waits.
type tcpListener struct {
	r  *Receiver
	b  *batcher
	ln net.Listener
	wg sync.WaitGroup // the accept loop and the connection readers

	mu      sync.Mutex
	conns   map[net.Conn]bool // open connections
	stopped bool
}

// accept serves connections until stopReading.
func (l *tcpListener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			stopped := l.stopped
			l.mu.Unlock()
			if stopped || errors.Is(err, net.ErrClosed) {
				return
			}
			l.r.log.Warn("TCP accept failed", "source", l.b.src.Name, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		if l.stopped {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = true
		l.wg.Add(1)
		l.mu.Unlock()
		l.r.m.tcpConns.With(l.b.src.Name).Add(1)
		go l.serve(c)
	}
}

// stopReading closes the listening socket and makes every reader stop at
// once (a read deadline in the past); each reader then appends the complete
// lines it has read and returns. It does not wait.
func (l *tcpListener) stopReading() {
	l.mu.Lock()
	l.stopped = true
	for c := range l.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	l.mu.Unlock()
	_ = l.ln.Close()
}

// waitReaders waits for the accept loop and the readers to return.
func (l *tcpListener) waitReaders() { l.wg.Wait() }

// close closes every connection still open (after the drain landed their
// lines) and waits for the goroutines.
func (l *tcpListener) close() {
	l.stopReading()
	l.wg.Wait()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
		l.r.m.tcpConns.With(l.b.src.Name).Add(-1)
	}
	l.mu.Unlock()
}

// serve reads lines from one connection until the sender closes it, an
// error, or stopReading. A connection the sender closed is closed at once;
// one stopped at shutdown stays open until close, after the drain.
func (l *tcpListener) serve(c net.Conn) {
	defer l.wg.Done()
	source := l.b.src.Name
	log := l.r.log.With("source", source, "remote", c.RemoteAddr().String())
	maxBytes := int(l.r.opts.MaxBodyBytes)
	br := bufio.NewReaderSize(c, 64<<10)
	// limit: a chunk never exceeds MaxBodyBytes, so it fits MaxPending.
	tc := &tcpConn{l: l, c: c, source: source, log: log, limit: min(tcpAppendBytes, maxBytes)}
	var partial []byte // a line longer than the reader's buffer, so far
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if partial != nil {
				partial = append(partial, frag...)
				frag, partial = partial, nil
			}
			if len(frag) > maxBytes {
				l.r.m.tcpMalformed.With(source).Inc()
				log.Error("TCP line too long; closing the connection", "line", tc.lineNo+1, "bytes", len(frag), "max", maxBytes)
				tc.appendOut()
				tc.close()
				return
			}
			ok := tc.addLine(frag)
			// Append before a read could block: when nothing more, or
			// only the start of a line, is buffered.
			if ok && (br.Buffered() == 0 || !hasNewline(br)) {
				ok = tc.appendOut()
			}
			if !ok {
				tc.close()
				return
			}
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			partial = append(partial, frag...)
			if len(partial) > maxBytes {
				l.r.m.tcpMalformed.With(source).Inc()
				log.Error("TCP line too long; closing the connection", "line", tc.lineNo+1, "bytes", len(partial), "max", maxBytes)
				tc.appendOut()
				tc.close()
				return
			}
			continue
		}
		// The sender closed (a last line without '\n' is complete), or
		// the read failed or was stopped (a partial line is dropped: it
		// was never complete).
		if errors.Is(err, io.EOF) {
			if partial != nil {
				frag = append(partial, frag...)
			}
			if len(frag) > maxBytes {
				l.r.m.tcpMalformed.With(source).Inc()
				log.Error("TCP line too long; dropped", "line", tc.lineNo+1, "bytes", len(frag), "max", maxBytes)
			} else if len(frag) > 0 && !tc.addLine(frag) {
				tc.close()
				return
			}
			tc.appendOut()
			tc.close()
			return
		}
		tc.appendOut()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // stopped for shutdown: close() closes it after the drain
		}
		log.Warn("TCP read failed", "err", err)
		tc.close()
		return
	}
}

// tcpConn is the state of one connection's serve: the complete lines read
// but not yet appended to the batch, and the line count.
type tcpConn struct {
	l      *tcpListener
	c      net.Conn
	source string
	log    *slog.Logger
	limit  int // bytes of lines appended at once

	out    []byte // complete lines not yet appended
	rows   int64
	lineNo int64
}

// appendOut appends the lines read so far to the batch; false when the
// batch refused them (logged).
func (tc *tcpConn) appendOut() bool {
	l := tc.l
	if tc.rows == 0 {
		tc.out = tc.out[:0]
		return true
	}
	_, err := l.b.add(l.r.stop, chunk{data: bytes.Clone(tc.out), rows: tc.rows}, "tcp", true) // out is reused
	if err != nil {
		tc.log.Error("TCP lines not accepted", "rows", tc.rows, "err", err)
		return false
	}
	l.r.m.rows.With(tc.source, "tcp").Add(float64(tc.rows))
	l.r.m.bytes.With(tc.source, "tcp").Add(float64(len(tc.out)))
	tc.out, tc.rows = tc.out[:0], 0
	return true
}

// addLine adds one line (its end of line and, on the first, a BOM
// trimmed; blank lines skipped), appending first when it would make the
// pending lines exceed limit; false when that append failed.
func (tc *tcpConn) addLine(line []byte) bool {
	tc.lineNo++
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
	if tc.lineNo == 1 {
		line = bytes.TrimPrefix(line, bom)
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return true
	}
	if checkObject(line) != nil {
		tc.l.r.m.tcpMalformed.With(tc.source).Inc() // landed anyway: bronze quarantines it with its line
	}
	if len(tc.out)+len(line)+1 > tc.limit && !tc.appendOut() {
		return false
	}
	tc.out = append(tc.out, line...)
	tc.out = append(tc.out, '\n')
	tc.rows++
	return true
}

// close closes the connection unless close() already did.
func (tc *tcpConn) close() {
	l := tc.l
	l.mu.Lock()
	if l.conns[tc.c] {
		delete(l.conns, tc.c)
		tc.c.Close()
		l.r.m.tcpConns.With(tc.source).Add(-1)
	}
	l.mu.Unlock()
}

// hasNewline reports whether br holds a complete line already.
func hasNewline(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}
