package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// minio-go retries a request until its reply's headers arrive, never a body
// cut after that; a cut body would fail the whole read (and the job above
// it). resumingBody adds the missing retry, with this rule (docs/faults.md):
//
//   - After a cut (the connection failed, or the body ended before its
//     Content-Length), the next Read re-issues the GET with a Range starting
//     at the first byte not yet delivered, so every byte reaches the caller
//     exactly once.
//   - Every resume is pinned to the first reply: If-Match with its ETag (and
//     its version ID, on a versioned bucket). An object replaced or deleted in
//     between fails the read with ErrChanged naming the key, never a mix of
//     two versions.
//   - A run of replies cut without delivering a byte is bounded by the
//     store's attempts (S3Options.MaxRetries), with a backoff doubling from
//     resumeBackoffBase up to resumeBackoffMax; a reply that delivers bytes
//     starts the count again, so a long read survives many separate cuts.
//   - A resume request that still fails after minio-go's own retries ends
//     the read; so does ctx, also while waiting to resume.

// resumeBackoffBase is the wait before the first resume after a cut; it
// doubles with each further reply cut without delivering a byte.
const resumeBackoffBase = 50 * time.Millisecond

// resumeBackoffMax bounds the wait before one resume.
const resumeBackoffMax = 2 * time.Second

// resumingBody is the body of one GET (whole object or range) that resumes
// after a cut. It is an io.ReadCloser for one goroutine, like the HTTP body
// it wraps.
type resumingBody struct {
	ctx     context.Context
	s       *S3
	op      string // "get" or "get-range", for errors
	key     string
	etag    string // the first reply's; every resume must match it
	version string // the first reply's version ID, "" on an unversioned bucket
	next    int64  // offset in the object of the next byte to deliver
	end     int64  // offset just past the last byte wanted; -1 when the reply did not say

	body     io.ReadCloser // the current reply's body; nil after a cut
	openedAt int64         // next when body was opened
	streak   int           // replies cut since the last one that delivered a byte, counting that one
	cause    error         // why the last reply was cut
	err      error         // once set, every Read returns it
}

// resumable wraps the body of a GET reply whose first byte is at offset
// start of the object and whose reply described the object as oi.
func (s *S3) resumable(ctx context.Context, op, key string, body io.ReadCloser, oi minio.ObjectInfo, start int64) io.ReadCloser {
	end := int64(-1)
	if oi.Size >= 0 {
		end = start + oi.Size
	}
	version := oi.VersionID
	if version == "null" { // an unversioned object on a bucket with versioning suspended
		version = ""
	}
	return &resumingBody{ctx: ctx, s: s, op: op, key: key, etag: oi.ETag, version: version,
		next: start, end: end, body: body, openedAt: start}
}

// Read delivers the next bytes of the object, resuming after a cut.
func (b *resumingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if b.body == nil {
			if err := b.resume(); err != nil {
				b.err = err
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		b.next += int64(n)
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (b.end < 0 || b.next >= b.end) {
			b.err = io.EOF
			return n, io.EOF
		}
		// A cut: the connection failed or the body ended short.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		_ = b.body.Close()
		b.body = nil
		b.cause = err
		if b.next > b.openedAt {
			b.streak = 1
		} else {
			b.streak++
		}
		if n > 0 {
			return n, nil // the next Read resumes
		}
	}
}

// resume waits out the backoff and re-issues the GET from b.next, pinned to
// the first reply's ETag and version.
func (b *resumingBody) resume() error {
	if err := b.ctx.Err(); err != nil {
		return b.fail(fmt.Errorf("read stopped at byte %d: %w", b.next, err))
	}
	if b.streak >= b.s.attempts || b.etag == "" {
		return b.fail(fmt.Errorf("read cut at byte %d%s after %d attempts: %w", b.next, b.ofSize(), b.streak, b.cause))
	}
	wait := min(resumeBackoffBase<<min(b.streak-1, 16), resumeBackoffMax)
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-b.ctx.Done():
		t.Stop()
		return b.fail(fmt.Errorf("read stopped at byte %d while waiting to resume: %w", b.next, b.ctx.Err()))
	}

	opts := minio.GetObjectOptions{VersionID: b.version}
	if err := opts.SetMatchETag(b.etag); err != nil {
		return b.fail(fmt.Errorf("resume at byte %d: %w", b.next, err))
	}
	var err error
	switch {
	case b.end >= 0:
		err = opts.SetRange(b.next, b.end-1)
	case b.next > 0:
		err = opts.SetRange(b.next, 0)
	}
	if err != nil {
		return b.fail(fmt.Errorf("resume at byte %d: %w", b.next, err))
	}
	body, oi, h, err := b.s.core.GetObject(b.ctx, b.s.bucket, b.s.name(b.key), opts)
	if err != nil {
		return b.resumeFailed(err)
	}
	// If-Match makes the server refuse another version; checking again
	// here keeps a server that ignores it from mixing two versions.
	if oi.ETag != b.etag {
		body.Close()
		return b.fail(fmt.Errorf("%w: replaced after %d bytes were read (etag %s, now %s); read it again", ErrChanged, b.next, b.etag, oi.ETag))
	}
	// A server that ignores Range answers from byte 0: refuse it rather
	// than deliver bytes twice.
	if _, ranged := opts.Header()["Range"]; ranged && !strings.HasPrefix(h.Get("Content-Range"), fmt.Sprintf("bytes %d-", b.next)) {
		body.Close()
		return b.fail(fmt.Errorf("resume at byte %d: the reply covers %q, not the range asked for", b.next, h.Get("Content-Range")))
	}
	b.body, b.openedAt = body, b.next
	return nil
}

// resumeFailed turns the error of a resume request into the read's error:
// a failed If-Match or a missing object means the object changed.
func (b *resumingBody) resumeFailed(err error) error {
	if ctxErr := b.ctx.Err(); ctxErr != nil {
		return b.fail(fmt.Errorf("read stopped at byte %d: %w", b.next, ctxErr))
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch {
		case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == minio.PreconditionFailed:
			return b.fail(fmt.Errorf("%w: replaced after %d bytes were read (etag was %s); read it again", ErrChanged, b.next, b.etag))
		case errors.Is(s3Cause(err), ErrNotExist):
			return b.fail(fmt.Errorf("%w: deleted after %d bytes were read", ErrChanged, b.next))
		}
	}
	return b.fail(fmt.Errorf("resume at byte %d%s after the read was cut (%v): %w", b.next, b.ofSize(), b.cause, s3Cause(err)))
}

// ofSize is " of N" when the end of the read is known.
func (b *resumingBody) ofSize() string {
	if b.end < 0 {
		return ""
	}
	return fmt.Sprintf(" of %d", b.end)
}

func (b *resumingBody) fail(err error) error { return b.s.fail(b.op, b.key, err) }

// Close closes the current reply's body; later Reads fail.
func (b *resumingBody) Close() error {
	if b.err == nil || b.err == io.EOF {
		b.err = b.fail(fs.ErrClosed)
	}
	if b.body == nil {
		return nil
	}
	err := b.body.Close()
	b.body = nil
	return err
}
