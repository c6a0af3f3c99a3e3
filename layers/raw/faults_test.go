package raw_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// manifestKeys matches the requests that commit a landing.
var manifestKeys = regexp.MustCompile(`/_manifest/`)

// readObject returns the bytes of key, failing the test if it is missing.
func readObject(t *testing.T, st lake.Store, key string) []byte {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	return b
}

// checkLanded fails the test unless the stored manifest of data names an
// object holding exactly data.
func checkLanded(t *testing.T, st lake.Store, source string, data []byte) raw.Manifest {
	t.Helper()
	m, err := raw.ReadManifest(context.Background(), st, source, sha(data))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if got := readObject(t, st, m.Key); !bytes.Equal(got, data) {
		t.Fatalf("object %s holds %d bytes, want the %d landed", m.Key, len(got), len(data))
	}
	return m
}

// TestLandLostManifestReply: every reply to a manifest PUT is lost after
// MinIO stored the manifest, and the client's retries run out. The landing
// must learn its outcome by reading the manifest back and keep the object
// it names; a later re-send answers "already landed" with that object
// still there. (Before, the object was removed as an orphan and the source
// was stuck: bronze failed on the missing object forever.)
func TestLandLostManifestReply(t *testing.T) {
	direct, opts, _ := testenv.S3Store(t)
	p := testenv.StartFaultProxy(t, testenv.MinIO(t), 1)
	st := p.S3Store(t, opts.Bucket, 2)
	p.Add(t, testenv.FaultRule{Method: "PUT", Key: manifestKeys, Kind: testenv.DropReply})
	ctx := context.Background()
	data := []byte("meter-001,1.5\nmeter-002,2.5\n")

	m, already, err := raw.Land(ctx, st, "meters", "m.csv", "csv", bytes.NewReader(data), now)
	if err != nil || already {
		t.Fatalf("Land with lost manifest replies: already=%v err=%v; want landed (the manifest read back names its object)", already, err)
	}
	if n := p.Injected()[testenv.DropReply]; n != 2 {
		t.Fatalf("%d replies dropped, want 2 (both attempts)", n)
	}
	if got := checkLanded(t, direct, "meters", data); got != m {
		t.Fatalf("stored manifest %+v, Land returned %+v", got, m)
	}

	p.Clear()
	m2, already, err := raw.Land(ctx, st, "meters", "m.csv", "csv", bytes.NewReader(data), now.Add(time.Minute))
	if err != nil || !already || m2 != m {
		t.Fatalf("re-send: %+v already=%v err=%v, want the first manifest", m2, already, err)
	}
	if got := keys(t, direct, "raw/"); len(got) != 2 {
		t.Fatalf("lake holds %v, want one manifest and one object", got)
	}
}

// TestLandUnknownOutcomeKeepsObject: the manifest PUT's reply is lost and
// reading the manifest back fails too. The outcome stays unknown, so the
// landing fails but keeps its object (a committed manifest names it); once
// the network heals a re-send finds the object whole.
func TestLandUnknownOutcomeKeepsObject(t *testing.T) {
	direct, opts, _ := testenv.S3Store(t)
	p := testenv.StartFaultProxy(t, testenv.MinIO(t), 1)
	st := p.S3Store(t, opts.Bucket, 2)
	p.Add(t, testenv.FaultRule{Method: "PUT", Key: manifestKeys, Kind: testenv.DropReply})
	p.Add(t, testenv.FaultRule{Method: "GET", Key: manifestKeys, Kind: testenv.ErrorStatus})
	ctx := context.Background()
	data := []byte("meter-001,1.5\n")

	_, _, err := raw.Land(ctx, st, "meters", "m.csv", "csv", bytes.NewReader(data), now)
	if err == nil {
		t.Fatal("Land whose outcome cannot be learned succeeded")
	}
	if !strings.Contains(err.Error(), "is kept") {
		t.Errorf("error does not say the object is kept: %v", err)
	}
	m := checkLanded(t, direct, "meters", data)

	p.Clear()
	m2, already, err := raw.Land(ctx, st, "meters", "m.csv", "csv", bytes.NewReader(data), now.Add(time.Minute))
	if err != nil || !already || m2 != m {
		t.Fatalf("re-send: %+v already=%v err=%v, want the stored manifest", m2, already, err)
	}
}

// TestLandRelandsDamagedObject: when the object a manifest names is missing
// or has the wrong size, sending the same bytes again lands it again at the
// manifest's key instead of answering "already landed" over nothing.
func TestLandRelandsDamagedObject(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := context.Background()
		data := bytes.Repeat([]byte(`{"meter_id":"meter-001","energy_usage":1.5}`+"\n"), 100)
		m, _, err := raw.Land(ctx, st, "meters", "m.ndjson", "ndjson", bytes.NewReader(data), now)
		if err != nil {
			t.Fatal(err)
		}
		damage := map[string]func(){
			"deleted": func() {
				if err := st.Delete(ctx, m.Key); err != nil {
					t.Fatal(err)
				}
			},
			"truncated": func() {
				if _, err := st.Put(ctx, m.Key, bytes.NewReader(data[:len(data)/3]), int64(len(data)/3)); err != nil {
					t.Fatal(err)
				}
			},
		}
		for _, name := range []string{"deleted", "truncated"} {
			damage[name]()
			m2, already, err := raw.Land(ctx, st, "meters", "again.ndjson", "ndjson", bytes.NewReader(data), now.Add(time.Hour))
			if err != nil || !already || m2 != m {
				t.Fatalf("%s: re-send: %+v already=%v err=%v, want the first manifest", name, m2, already, err)
			}
			checkLanded(t, st, "meters", data)
			if got := keys(t, st, "raw/"); len(got) != 2 {
				t.Fatalf("%s: lake holds %v, want one manifest and one object", name, got)
			}
			onlyEntry(t, st, m)
		}
	})
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
