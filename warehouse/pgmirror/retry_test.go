package pgmirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetryable(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("upsert: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pg("08006"), true}, // connection_failure
		{pg("08003"), true}, // connection_does_not_exist
		{pg("40001"), true}, // serialization_failure
		{pg("40P01"), true}, // deadlock_detected
		{pg("57P01"), true}, // admin_shutdown
		{pg("57P03"), true}, // cannot_connect_now
		{pg("23505"), false},
		{pg("23502"), false},
		{pg("42P01"), false},
		{pg("42501"), false}, // insufficient_privilege
		{pg("57014"), false}, // query_canceled
		{pg("28P01"), false}, // invalid_password
		{&connLostError{pg("23505")}, false},
		{&connLostError{errors.New("write failed")}, true},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{io.ErrUnexpectedEOF, true},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{errors.New("duckdb: bad file"), false},
		{&IncompatibleError{Reason: "key"}, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	o := Options{MaxAttempts: 5, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		got := o.backoff(n + 1)
		if got > want || got < want*8/10 {
			t.Errorf("backoff(%d) = %s, want %s minus up to 20%%", n+1, got, want)
		}
	}
	if err := (Options{MaxAttempts: 0}).Validate(); err == nil {
		t.Error("MaxAttempts 0 accepted")
	}
}

func TestFitName(t *testing.T) {
	long := "ü" + strings.Repeat("abcdefghij", 6) // 62 bytes
	for _, tc := range []struct{ name, suffix string }{{"usage", "_pkey"}, {long, "_pkey"}, {long, rebuildSuffix}} {
		got := fitName(tc.name, tc.suffix)
		if len(got) > maxIdent || !strings.HasSuffix(got, tc.suffix) || !strings.HasPrefix(tc.name, strings.TrimSuffix(got, tc.suffix)) {
			t.Errorf("fitName(%q, %q) = %q (%d bytes)", tc.name, tc.suffix, got, len(got))
		}
	}
	// The cut falls inside the first ü: it moves before it.
	if got := fitName(strings.Repeat("a", 44)+"üü", rebuildSuffix); got != strings.Repeat("a", 44)+rebuildSuffix || !utf8.ValidString(got) {
		t.Errorf("cut inside a character: %q", got)
	}
}
