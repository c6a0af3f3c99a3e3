package testenv

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// faultFixture is a bucket reached directly and through a fault proxy.
func faultFixture(t *testing.T, attempts int) (direct, viaProxy lake.Store, p *FaultProxy) {
	t.Helper()
	direct, opts, _ := S3Store(t)
	p = StartFaultProxy(t, MinIO(t), 1)
	return direct, p.S3Store(t, opts.Bucket, attempts), p
}

func TestFaultProxyPassesThrough(t *testing.T) {
	direct, st, p := faultFixture(t, 0)
	ctx := t.Context()
	if _, err := st.Put(ctx, "a/b.txt", strings.NewReader("hello"), 5); err != nil {
		t.Fatalf("Put through the proxy: %v", err)
	}
	if _, err := st.PutIfAbsent(ctx, "a/b.txt", strings.NewReader("other"), 5); !errors.Is(err, lake.ErrExists) {
		t.Fatalf("PutIfAbsent through the proxy: %v, want ErrExists", err)
	}
	if got := read(t, direct, "a/b.txt"); got != "hello" {
		t.Fatalf("object holds %q", got)
	}
	if objs, err := st.List(ctx, "a/", ""); err != nil || len(objs) != 1 {
		t.Fatalf("List through the proxy: %v %v", objs, err)
	}
	if n := p.Injected().Total(); n != 0 || p.Requests() == 0 {
		t.Fatalf("injected %d faults in %d requests, want 0 in some", n, p.Requests())
	}
}

func TestFaultProxyDropReply(t *testing.T) {
	direct, st, p := faultFixture(t, 1)
	p.Add(t, FaultRule{Method: "PUT", Key: regexp.MustCompile(`^m/`), Kind: DropReply})
	_, err := st.Put(t.Context(), "m/x", strings.NewReader("stored"), 6)
	if err == nil {
		t.Fatal("Put whose reply was dropped succeeded")
	}
	// The server acted although the client saw a failure.
	if got := read(t, direct, "m/x"); got != "stored" {
		t.Fatalf("object holds %q, want the bytes the server stored", got)
	}
	// Other keys and methods pass.
	if _, err := st.Put(t.Context(), "n/x", strings.NewReader("ok"), 2); err != nil {
		t.Fatalf("Put of a key no rule matches: %v", err)
	}
	if got := read(t, st, "m/x"); got != "stored" {
		t.Fatalf("GET through the proxy: %q", got)
	}
	if c := p.Injected(); c[DropReply] != 1 || c.Total() != 1 {
		t.Fatalf("injected %v, want drop-reply=1", c)
	}
}

func TestFaultProxyErrorStatusIsRetried(t *testing.T) {
	direct, st, p := faultFixture(t, 0)
	if _, err := direct.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	p.Add(t, FaultRule{Method: "GET", Kind: ErrorStatus, Status: 500, Count: 1})
	p.Add(t, FaultRule{Method: "GET", Kind: ErrorStatus, Count: 1})
	if got := read(t, st, "k"); got != "v" {
		t.Fatalf("GET after two server errors: %q", got)
	}
	if c := p.Injected(); c[ErrorStatus] != 2 {
		t.Fatalf("injected %v, want error-status=2 (both retried by the client)", c)
	}

	// With one attempt the error reaches the caller, and nothing changed.
	_, one, p1 := faultFixture(t, 1)
	p1.Add(t, FaultRule{Method: "PUT", Kind: ErrorStatus})
	if _, err := one.Put(t.Context(), "k", strings.NewReader("v"), 1); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Put answered 503: %v, want the injected error", err)
	}
}

func TestFaultProxyLatency(t *testing.T) {
	_, st, p := faultFixture(t, 0)
	p.Add(t, FaultRule{Method: "HEAD", Kind: Latency, Delay: 300 * time.Millisecond, Count: 1})
	start := time.Now()
	if _, err := st.Stat(t.Context(), "none"); !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("Stat: %v, want ErrNotExist", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("Stat took %s, want at least the 300ms injected", d)
	}
	if c := p.Injected(); c[Latency] != 1 {
		t.Fatalf("injected %v", c)
	}
}

func TestFaultProxyCuts(t *testing.T) {
	direct, st, p := faultFixture(t, 1)
	body := strings.Repeat("0123456789", 10000)
	if _, err := direct.Put(t.Context(), "big", strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	p.Add(t, FaultRule{Method: "GET", Key: regexp.MustCompile(`^big$`), Kind: CutReply, Count: 1})
	rc, _, err := st.Get(t.Context(), "big")
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Fatalf("read %d of %d bytes of a cut reply without an error", len(got), len(body))
		}
	}
	if got := read(t, st, "big"); got != body {
		t.Fatalf("second GET (rule used up) read %d bytes", len(got))
	}

	p.Add(t, FaultRule{Method: "PUT", Key: regexp.MustCompile(`^up$`), Kind: CutRequest})
	if _, err := st.Put(t.Context(), "up", strings.NewReader(body), int64(len(body))); err == nil {
		t.Fatal("Put cut mid-body succeeded")
	}
	if _, err := direct.Stat(t.Context(), "up"); !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("an upload cut mid-body was stored: %v", err)
	}
	if c := p.Injected(); c[CutReply] != 1 || c[CutRequest] != 1 {
		t.Fatalf("injected %v, want cut-reply=1 cut-request=1", c)
	}
}

func TestFaultProxyProbability(t *testing.T) {
	_, st, p := faultFixture(t, 1)
	p.Add(t, FaultRule{Method: "HEAD", Key: regexp.MustCompile(`^p$`), Kind: ErrorStatus, Probability: 0.5})
	failed := 0
	for range 40 {
		if _, err := st.Stat(t.Context(), "p"); !errors.Is(err, lake.ErrNotExist) {
			failed++
		}
	}
	c := p.Injected()
	if c[ErrorStatus] != failed || failed < 8 || failed > 32 {
		t.Fatalf("%d of 40 requests failed and %v were injected, want about half and equal", failed, c)
	}
	if s := c.String(); s != "error-status="+strconv.Itoa(failed) {
		t.Fatalf("String() = %q", s)
	}
	p.Clear()
	if _, err := st.Stat(t.Context(), "p"); !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("after Clear: %v", err)
	}
}

func read(t *testing.T, st lake.Store, key string) string {
	t.Helper()
	rc, _, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}
