package pgmirror

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Retryable reports whether a failed attempt is worth repeating: the
// failure says nothing about the data, and a new connection a little later
// may well succeed. It sorts PostgreSQL errors by SQLSTATE:
//
//   - class 08 (connection exception), 57P01 admin_shutdown, 57P02
//     crash_shutdown, 57P03 cannot_connect_now: the server went away or is
//     restarting;
//   - 40001 serialization_failure and 40P01 deadlock_detected: the
//     transaction lost a race and can simply run again.
//
// Every other SQLSTATE (a constraint, a type, a permission, a syntax
// error) is permanent: running it again gives the same error. Without a
// SQLSTATE, a lost or refused connection (network errors, EOF, a failed
// dial) is retryable; anything else, including a cancelled context, is not.
//
// Retrying a whole attempt is safe even when the connection died during
// COMMIT: the attempt reads the mirrored version again first, so a commit
// that did happen is not applied twice.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if strings.HasPrefix(pgErr.Code, "08") {
			return true
		}
		switch pgErr.Code {
		case "40001", "40P01", "57P01", "57P02", "57P03":
			return true
		}
		return false
	}
	var lost *connLostError
	if errors.As(err, &lost) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// connLostError marks an error after which the connection was found
// closed: whatever the error says, the server or the network dropped us.
type connLostError struct{ err error }

func (e *connLostError) Error() string { return e.err.Error() + " (connection lost)" }
func (e *connLostError) Unwrap() error { return e.err }

// backoff is the wait after the n-th failed attempt (n from 1): MinBackoff
// doubling up to MaxBackoff, with up to 20% jitter so that runners that
// failed together do not retry together.
func (o Options) backoff(n int) time.Duration {
	d := o.MinBackoff
	for i := 1; i < n && d < o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.MaxBackoff)
	if d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return d
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
