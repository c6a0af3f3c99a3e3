package redact

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://user:hunter2@db:5432/x", "postgres://user:xxxxx@db:5432/x"},
		{"postgres://user@db:5432/x", "postgres://user@db:5432/x"},
		{"postgres://db:5432/x", "postgres://db:5432/x"},
		{"postgres://user:hun@ter2@db/x", "postgres://user:xxxxx@db/x"},
		{"postgres://user:hun/ter2@db/x", "postgres://user:xxxxx@db/x"},
		{"connect to `postgres://u:p@h/d` failed: postgres://v:q@h2", "connect to `postgres://u:xxxxx@h/d` failed: postgres://v:xxxxx@h2"},
		{"nats://a:b@127.0.0.1:4222, tcp://c:d@[::1]:1883", "nats://a:xxxxx@127.0.0.1:4222, tcp://c:xxxxx@[::1]:1883"},
		{"host=db user=u password=hunter2 dbname=x", "host=db user=u password=xxxxx dbname=x"},
		{"host=db password='hun ter\\'2' dbname=x", "host=db password=xxxxx dbname=x"},
		{"postgres://u@h/d?sslpassword=k3y&sslmode=require", "postgres://u@h/d?sslpassword=xxxxx&sslmode=require"},
		{"s3://bucket/prefix", "s3://bucket/prefix"},
		{"http://host:9000/a@b", "http://host:xxxxx@b"}, // ambiguous: hide too much rather than too little
		{"no url here", "no url here"},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Fatal("nil error")
	}
	plain := errors.New("plain")
	if Error(plain) != plain {
		t.Error("an error without a password is returned as is")
	}
	err := Error(&wrapped{"dial postgres://u:hunter2@h/d", io.EOF})
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, io.EOF) {
		t.Errorf("got %q, errors.Is(EOF) %v", err, errors.Is(err, io.EOF))
	}
	err = Error(errors.New("lookup s3kr1t@h: no such host"), "s3kr1t", "")
	if err.Error() != "lookup xxxxx@h: no such host" {
		t.Errorf("a known secret: got %q", err)
	}
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
