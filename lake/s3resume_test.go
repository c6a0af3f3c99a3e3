package lake_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

// resumeFixture is a bucket holding key with size random bytes, reached
// directly and through a fault proxy whose store makes attempts tries.
func resumeFixture(t *testing.T, key string, size, attempts int) (direct, st lake.Store, p *testenv.FaultProxy, body []byte) {
	t.Helper()
	direct, opts, _ := testenv.S3Store(t)
	p = testenv.StartFaultProxy(t, testenv.MinIO(t), 1)
	st = p.S3Store(t, opts.Bucket, attempts)
	body = make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 42))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	if _, err := direct.Put(t.Context(), key, bytes.NewReader(body), int64(size)); err != nil {
		t.Fatal(err)
	}
	return direct, st, p, body
}

// cutOnce is a rule cutting the first GET of key after n body bytes.
func cutOnce(key string, n int) testenv.FaultRule {
	return testenv.FaultRule{Method: "GET", Key: regexp.MustCompile("^" + regexp.QuoteMeta(key) + "$"), Kind: testenv.CutReply, CutAfter: n, Count: 1}
}

func TestS3GetResumesAfterCut(t *testing.T) {
	_, st, p, body := resumeFixture(t, "data/a.parquet", 100_000, 2)
	p.Add(t, cutOnce("data/a.parquet", 12_345))
	rc, info, err := st.Get(t.Context(), "data/a.parquet")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d of %d bytes (identical: %v), err %v; want the whole object once", len(got), len(body), bytes.Equal(got, body), err)
	}
	if info.Size != int64(len(body)) {
		t.Errorf("info.Size = %d, want %d", info.Size, len(body))
	}
	if c := p.Injected(); c[testenv.CutReply] != 1 {
		t.Errorf("injected %v, want one cut", c)
	}
}

// TestS3GetResumesManyCuts: each of several cuts delivers bytes, so the
// attempts (2 here) bound only cuts in a row without progress.
func TestS3GetResumesManyCuts(t *testing.T) {
	_, st, p, body := resumeFixture(t, "k", 64<<10, 2)
	p.Add(t, testenv.FaultRule{Method: "GET", Kind: testenv.CutReply, Count: 6})
	rc, _, err := st.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d of %d bytes (identical: %v) through 6 cuts, err %v", len(got), len(body), bytes.Equal(got, body), err)
	}
	if c := p.Injected(); c[testenv.CutReply] != 6 {
		t.Errorf("injected %v, want 6 cuts", c)
	}
}

func TestS3GetRangeResumesAfterCut(t *testing.T) {
	_, st, p, body := resumeFixture(t, "r", 60_000, 2)
	for _, c := range []struct{ offset, length int64 }{{1000, 50_000}, {5000, -1}, {0, -1}} {
		p.Add(t, cutOnce("r", 777))
		rc, err := st.GetRange(t.Context(), "r", c.offset, c.length)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := body[c.offset:]
		if c.length >= 0 {
			want = want[:c.length]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("GetRange(%d, %d) cut after 777 bytes: read %d of %d bytes (identical: %v), err %v",
				c.offset, c.length, len(got), len(want), bytes.Equal(got, want), err)
		}
	}
	if c := p.Injected(); c[testenv.CutReply] != 3 {
		t.Errorf("injected %v, want 3 cuts", c)
	}
}

func TestS3DownloadResumesAfterCut(t *testing.T) {
	_, st, p, body := resumeFixture(t, "d/f.parquet", 200_000, 2)
	p.Add(t, cutOnce("d/f.parquet", 150_001))
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := lake.Download(t.Context(), st, "d/f.parquet", "", path); err != nil {
		t.Fatalf("Download with a cut reply: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("downloaded %d of %d bytes (identical: %v), err %v", len(got), len(body), bytes.Equal(got, body), err)
	}
}

// TestS3ResumeRefusesChangedObject: the object is replaced (or deleted)
// between the cut and the resume; the read fails naming the key, and
// delivers nothing of the new object.
func TestS3ResumeRefusesChangedObject(t *testing.T) {
	for _, change := range []string{"replaced", "deleted"} {
		t.Run(change, func(t *testing.T) {
			direct, st, p, body := resumeFixture(t, "c/obj", 30_000, 3)
			p.Add(t, cutOnce("c/obj", 10_000))
			rc, _, err := st.Get(t.Context(), "c/obj")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			first := make([]byte, 10_000)
			if _, err := io.ReadFull(rc, first); err != nil || !bytes.Equal(first, body[:10_000]) {
				t.Fatalf("first 10,000 bytes: %v", err)
			}
			if change == "replaced" {
				other := bytes.Repeat([]byte("x"), len(body))
				if _, err := direct.Put(t.Context(), "c/obj", bytes.NewReader(other), int64(len(other))); err != nil {
					t.Fatal(err)
				}
			} else if err := direct.Delete(t.Context(), "c/obj"); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(rc)
			var lerr *lake.Error
			if !errors.Is(err, lake.ErrChanged) || !errors.As(err, &lerr) || lerr.Key != "c/obj" || !strings.Contains(err.Error(), "/c/obj: ") {
				t.Fatalf("read after the object was %s: %v, want ErrChanged naming c/obj", change, err)
			}
			if len(rest) != 0 {
				t.Errorf("delivered %d bytes after the object was %s", len(rest), change)
			}
			if !strings.Contains(err.Error(), change) {
				t.Errorf("error %q does not say the object was %s", err, change)
			}
		})
	}
}

// TestS3ResumeGivesUp: replies keep being cut; once attempts (3) replies in
// a row deliver nothing the read fails, every byte before the cut delivered
// once.
func TestS3ResumeGivesUp(t *testing.T) {
	_, st, p, body := resumeFixture(t, "g", 8, 3)
	p.Add(t, testenv.FaultRule{Method: "GET", Kind: testenv.CutReply})
	rc, _, err := st.Get(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err == nil || errors.Is(err, lake.ErrChanged) || !strings.Contains(err.Error(), "/g: read cut at byte 7 of 8 after 3 attempts") {
		t.Fatalf("read under endless cuts: %v, want a cut error naming g", err)
	}
	if !bytes.Equal(got, body[:7]) {
		t.Errorf("delivered %v, want %v", got, body[:7])
	}
	// Halves delivered 4, 2, 1 bytes; then 3 replies in a row delivered none.
	if c := p.Injected(); c[testenv.CutReply] != 5 {
		t.Errorf("injected %v, want 5 cuts", c)
	}
}

func TestS3ResumeHonorsCancel(t *testing.T) {
	t.Run("between reads", func(t *testing.T) {
		_, st, p, body := resumeFixture(t, "x", 20_000, 3)
		p.Add(t, cutOnce("x", 5000))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rc, _, err := st.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		first := make([]byte, 5000)
		if _, err := io.ReadFull(rc, first); err != nil || !bytes.Equal(first, body[:5000]) {
			t.Fatalf("first 5,000 bytes: %v", err)
		}
		cancel()
		if n, err := rc.Read(make([]byte, 100)); n != 0 || !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after cancel: %d bytes, %v; want context.Canceled", n, err)
		}
	})
	t.Run("while resuming", func(t *testing.T) {
		_, st, p, _ := resumeFixture(t, "y", 20_000, 3)
		p.Add(t, cutOnce("y", 5000))
		p.Add(t, testenv.FaultRule{Method: "GET", Kind: testenv.Latency, Delay: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rc, _, err := st.Get(ctx, "y")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err = io.ReadAll(rc)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "/y: ") {
			t.Fatalf("read cancelled while resuming: %v, want context.Canceled naming y", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("cancelled read took %s to return", d)
		}
	})
}
