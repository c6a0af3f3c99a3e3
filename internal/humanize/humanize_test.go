package humanize

import (
	"errors"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", -2048: "-2.0 KiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFirstLine(t *testing.T) {
	if got := FirstLine(errors.New("a: b\nLINE 1: select")); got != "a: b" {
		t.Errorf("FirstLine = %q", got)
	}
	pg := errors.New("connect: failed to connect to `user=postgres database=test`:\n\t127.0.0.1:1 (127.0.0.1): dial error: connection refused\n\t127.0.0.1:1 (127.0.0.1): dial error: connection refused (gave up after 5 attempts)")
	if got, want := FirstLine(pg), "connect: failed to connect to `user=postgres database=test`: 127.0.0.1:1 (127.0.0.1): dial error: connection refused (gave up after 5 attempts)"; got != want {
		t.Errorf("FirstLine(pg error) = %q, want %q", got, want)
	}
	if got := FirstLine(errors.New("x:\n\n")); got != "x" {
		t.Errorf("FirstLine(x:) = %q", got)
	}
	if got := FirstLine(nil); got != "" {
		t.Errorf("FirstLine(nil) = %q", got)
	}
}
