package raw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

var testNow = time.Date(2024, 3, 5, 14, 30, 15, 0, time.UTC)

// aheadInput is n bytes that differ from chunk to chunk, so that a chunk
// hashed twice, skipped or out of order changes the hash.
func aheadInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/hashAheadChunk)
	}
	return b
}

// TestHashAhead: reading through hashAhead returns the source's bytes, and
// after finish its hash is theirs, for sizes around the chunk size and
// beyond the chunks in flight, and for readers returning odd pieces.
func TestHashAhead(t *testing.T) {
	sizes := []int{0, 1, hashAheadChunk - 1, hashAheadChunk, hashAheadChunk + 1, (hashAheadChunks+2)*hashAheadChunk + 7}
	readers := map[string]func(io.Reader) io.Reader{
		"plain": func(r io.Reader) io.Reader { return r },
		"half":  iotest.HalfReader,
		"eof":   iotest.DataErrReader,
	}
	for _, n := range sizes {
		want := aheadInput(n)
		sum := sha256.Sum256(want)
		for name, wrap := range readers {
			h := sha256.New()
			a := newHashAhead(wrap(bytes.NewReader(want)), h)
			var got bytes.Buffer
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{a}, make([]byte, 32<<10+3)); err != nil {
				t.Fatal(err)
			}
			a.finish()
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%d bytes, %s reader: read %d bytes, not the source's", n, name, got.Len())
			}
			if !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Errorf("%d bytes, %s reader: hash differs from the source's", n, name)
			}
		}
	}
}

// TestHashAheadFinishEarly: finish after a failed or partial read stops
// the hasher with what was read hashed.
func TestHashAheadFinishEarly(t *testing.T) {
	data := aheadInput(3*hashAheadChunk + 5)
	h := sha256.New()
	a := newHashAhead(iotest.TimeoutReader(bytes.NewReader(data)), h)
	p := make([]byte, hashAheadChunk+1)
	n, err := a.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(p); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("second read: %v, want the source's error", err)
	}
	a.finish()
	if want := sha256.Sum256(data[:n]); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("after finish the hash is not that of the bytes read")
	}
}

// TestLandHashAhead lands objects by the hash-ahead path on each store:
// the manifest's SHA-256 and size are the object's, a short input fails
// and leaves nothing behind.
func TestLandHashAhead(t *testing.T) {
	defer func(n int64) { hashAheadMin = n }(hashAheadMin)
	hashAheadMin = 0
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := context.Background()
		data := aheadInput(2*hashAheadChunk + 11)
		m, already, err := LandSized(ctx, st, "m", "big.ndjson", "ndjson", bytes.NewReader(data), int64(len(data)), testNow)
		if err != nil || already {
			t.Fatalf("LandSized: already=%v err=%v", already, err)
		}
		sum := sha256.Sum256(data)
		if m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(data)) {
			t.Fatalf("manifest %+v, want sha256 %x, size %d", m, sum, len(data))
		}
		rc, _, err := st.Get(ctx, m.Key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("stored object: %d bytes, %v; want the input", len(got), err)
		}

		_, _, err = LandSized(ctx, st, "short", "short.ndjson", "ndjson", bytes.NewReader(data[:hashAheadChunk+3]), int64(len(data)), testNow)
		if err == nil {
			t.Fatal("LandSized of an input shorter than its size: no error")
		}
		objs, err := st.List(ctx, "raw/short/", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			t.Errorf("lake holds %s after a failed landing", o.Key)
		}
	})
}
