package raw_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

var now = time.Date(2024, 3, 5, 14, 30, 15, 123456789, time.UTC)

func keys(t *testing.T, st lake.Store, prefix string) []string {
	t.Helper()
	objs, err := st.List(context.Background(), prefix, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if !strings.Contains(o.Key, "/_index/") { // landing index entries: see onlyEntry
			out = append(out, o.Key)
		}
	}
	return out
}

// onlyEntry checks that the landing index of source holds exactly one
// entry and that it names m's landing.
func onlyEntry(t *testing.T, st lake.Store, m raw.Manifest) {
	t.Helper()
	es, err := raw.ListIndex(context.Background(), st, m.Source, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !es[0].Lands(m) {
		t.Fatalf("landing index holds %+v, want one entry naming %s", es, m.Key)
	}
}

func TestLandOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := context.Background()
		data := []byte(`{"timestamp":"2024-01-01 00:00:00","meter_id":"meter-001","energy_usage":1.5}` + "\n")
		m, already, err := raw.Land(ctx, st, "meters", "meters.ndjson", "ndjson", bytes.NewReader(data), now)
		if err != nil || already {
			t.Fatalf("first Land: already=%v err=%v", already, err)
		}
		sum := sha256.Sum256(data)
		want := raw.Manifest{Source: "meters", Key: m.Key, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			ReceivedAt: now, Name: "meters.ndjson", Format: "ndjson"}
		if m != want {
			t.Fatalf("manifest %+v, want %+v", m, want)
		}
		if !regexp.MustCompile(`^raw/meters/dt=2024-03-05/20240305T143015\.123456789Z-[0-9a-f]{8}\.ndjson$`).MatchString(m.Key) {
			t.Fatalf("key %q", m.Key)
		}

		m2, already, err := raw.Land(ctx, st, "meters", "copy.ndjson", "ndjson", bytes.NewReader(data), now.Add(time.Hour))
		if err != nil || !already {
			t.Fatalf("second Land: already=%v err=%v", already, err)
		}
		if m2 != m {
			t.Fatalf("second Land returned %+v, want the first manifest %+v", m2, m)
		}
		if got := keys(t, st, "raw/"); len(got) != 2 || got[0] != raw.ManifestKey("meters", m.SHA256) || got[1] != m.Key {
			t.Fatalf("lake holds %v, want one object and one manifest", got)
		}
		onlyEntry(t, st, m)

		shas, err := raw.ListManifests(ctx, st, "meters")
		if err != nil || len(shas) != 1 || shas[0] != m.SHA256 {
			t.Fatalf("ListManifests: %v %v", shas, err)
		}
		rm, err := raw.ReadManifest(ctx, st, "meters", m.SHA256)
		if err != nil || rm != m {
			t.Fatalf("ReadManifest: %+v %v", rm, err)
		}
		rc, err := raw.OpenObject(ctx, st, m)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("object holds %q", got)
		}
		if _, err := raw.ReadManifest(ctx, st, "meters", strings.Repeat("0", 64)); !errors.Is(err, lake.ErrNotExist) {
			t.Fatalf("ReadManifest of unknown bytes: %v, want ErrNotExist", err)
		}

		// Other bytes land separately.
		m3, already, err := raw.Land(ctx, st, "meters", "-", "ndjson", strings.NewReader("other\n"), now)
		if err != nil || already || m3.Key == m.Key || m3.Name != "-" {
			t.Fatalf("other bytes: %+v already=%v err=%v", m3, already, err)
		}
		if ms, err := raw.Manifests(ctx, st, "meters"); err != nil || len(ms) != 2 {
			t.Fatalf("Manifests: %v %v", ms, err)
		}
	})
}

func TestManifestJSON(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := context.Background()
	m, _, err := raw.Land(ctx, st, "clicks", "events.csv", "csv", strings.NewReader("a,b\n1,2\n"), now)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := st.Get(ctx, raw.ManifestKey("clicks", m.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got map[string]any
	if err := json.NewDecoder(rc).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"source": "clicks", "key": m.Key, "sha256": m.SHA256, "size": 8.0,
		"received_at": "2024-03-05T14:30:15.123456789Z", "name": "events.csv", "format": "csv",
	}
	if len(got) != len(want) {
		t.Errorf("manifest has %d fields, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("manifest %s = %v, want %v", k, got[k], v)
		}
	}
}

func TestLandConcurrent(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := context.Background()
		data := bytes.Repeat([]byte("meter-001,1.5\n"), 10000)
		const n = 8
		var wg sync.WaitGroup
		ms := make([]raw.Manifest, n)
		already := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ms[i], already[i], errs[i] = raw.Land(ctx, st, "meters", "m.csv", "csv", bytes.NewReader(data), now)
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Land %d: %v", i, errs[i])
			}
			if !already[i] {
				winners++
			}
			if ms[i] != ms[0] {
				t.Errorf("Land %d returned %+v, Land 0 %+v", i, ms[i], ms[0])
			}
		}
		if winners != 1 {
			t.Errorf("%d calls landed the bytes, want exactly 1", winners)
		}
		got := keys(t, st, "raw/")
		if len(got) != 2 || got[1] != ms[0].Key {
			t.Errorf("lake holds %v, want one manifest and the object %s", got, ms[0].Key)
		}
		onlyEntry(t, st, ms[0])
	})
}

// patternReader yields size bytes without holding them in memory.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.left)
	for i := range b[:n] {
		b[i] = byte('a' + (p.left-int64(i))%26)
	}
	p.left -= n
	return int(n), nil
}

func TestLandLargeStream(t *testing.T) {
	// Sequential subtests: the allocation check must not see another test's.
	for _, name := range []string{"local", "s3"} {
		t.Run(name, func(t *testing.T) {
			var st lake.Store
			if name == "local" {
				st = testenv.LocalStore(t)
			} else {
				st, _, _ = testenv.S3Store(t)
			}
			ctx := context.Background()
			const size = 50 << 20
			h := sha256.New()
			io.Copy(h, &patternReader{left: size})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m, already, err := raw.Land(ctx, st, "big", "-", "csv", &patternReader{left: size}, now)
			runtime.ReadMemStats(&after)
			if err != nil || already {
				t.Fatalf("Land: already=%v err=%v", already, err)
			}
			if m.Size != size || m.SHA256 != hex.EncodeToString(h.Sum(nil)) {
				t.Fatalf("manifest %+v", m)
			}
			info, err := st.Stat(ctx, m.Key)
			if err != nil || info.Size != size {
				t.Fatalf("Stat: %+v %v", info, err)
			}
			// Loose check that the stream was not held whole: landing it
			// allocated less than half its size.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
				t.Errorf("landing a %d MiB stream of unknown size allocated %d MiB: it is buffered, not streamed", size>>20, alloc>>20)
			}
		})
	}
}

func TestLandFileAndDir(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.csv", "b\n")
	write("a.csv", "a\n")
	write("sub/c.csv", "c\n")
	write(".hidden.csv", "h\n")
	write(".git/x.csv", "x\n")
	write("dup.csv", "a\n") // same bytes as a.csv

	files, err := raw.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, r)
	}
	if strings.Join(rel, " ") != "a.csv b.csv dup.csv sub/c.csv" {
		t.Fatalf("Files: %v", rel)
	}
	landed, err := raw.LandDir(ctx, st, "clicks", "csv", dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(landed) != 4 || !landed[2].AlreadyLanded || landed[2].Manifest.Key != landed[0].Manifest.Key {
		t.Fatalf("LandDir: %+v", landed)
	}
	if landed[0].Manifest.Name != "a.csv" || !(landed[0].Manifest.Key < landed[1].Manifest.Key && landed[1].Manifest.Key < landed[3].Manifest.Key) {
		t.Errorf("keys do not follow file order: %+v", landed)
	}
	if _, _, err := raw.LandFile(ctx, st, "clicks", "csv", filepath.Join(dir, "missing.csv"), now); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LandFile of a missing file: %v", err)
	}
	if _, _, err := raw.LandFile(ctx, st, "clicks", "csv", dir, now); err == nil {
		t.Errorf("LandFile of a directory: no error")
	}
}

func TestLandRefuses(t *testing.T) {
	st := testenv.LocalStore(t)
	for _, tc := range []struct{ source, format string }{{"", "csv"}, {"a/b", "csv"}, {"..", "csv"}, {"meters", "xml"}} {
		if _, _, err := raw.Land(context.Background(), st, tc.source, "x", tc.format, strings.NewReader("x"), now); err == nil {
			t.Errorf("Land(source %q, format %q): no error", tc.source, tc.format)
		}
	}
}

// failingReader fails after some bytes, like a sender that disconnects.
type failingReader struct{ n int }

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(b), f.n)
	f.n -= k
	return k, nil
}

func TestLandFailedReadLeavesNothing(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		_, _, err := raw.Land(context.Background(), st, "meters", "-", "ndjson", &failingReader{n: 1000}, now)
		if err == nil {
			t.Fatal("Land of a failing reader: no error")
		}
		if got := keys(t, st, "raw/"); len(got) != 0 {
			t.Errorf("lake holds %v after a failed landing", got)
		}
	})
}

// TestListIndexLayouts: entries of the per-hour layout (_index/<day>T<hh>/),
// of the day/hour layout (_index/<day>/<hh>/) and of the day/hour/minute
// layout are listed together by stamp, and a listing from an instant
// returns exactly the entries stamped at or after it, also those of the
// older layouts in the same day, hour or minute as the start.
func TestListIndexLayouts(t *testing.T) {
	ctx := t.Context()
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	sha := strings.Repeat("ab", 32)
	// Minutes of the day: hours 1, 5, 9 in the per-hour layout; hour 3
	// written by the day/hour and the minute layouts around minute 20
	// (where the day/hour names sort among the minute directories); the
	// minute layout elsewhere.
	perHour := []int{60 + 7, 5*60 + 7, 9*60 + 7}
	dayHour := []int{3*60 + 19, 3*60 + 20, 3*60 + 21, 3*60 + 40}
	minute := []int{2*60 + 7, 3*60 + 20, 3*60 + 22, 3*60 + 59, 6*60 + 7, 10*60 + 7}
	stamp := func(m int) time.Time {
		return day.Add(time.Duration(m)*time.Minute + 30*time.Second + 123*time.Millisecond)
	}
	var keys []string
	for _, m := range perHour {
		s := raw.StampKey(stamp(m))
		keys = append(keys, raw.IndexDir("m")+s[:11]+"/"+s+"_"+sha+"_h"+s[9:13]+".ndjson")
	}
	for _, m := range dayHour {
		s := raw.StampKey(stamp(m))
		keys = append(keys, raw.IndexDir("m")+s[:8]+"/"+s[9:11]+"/"+s+"_"+sha+"_d"+s[9:13]+".ndjson")
	}
	for _, m := range minute {
		keys = append(keys, raw.IndexKey(raw.Manifest{Source: "m", SHA256: sha, Key: fmt.Sprintf("raw/m/dt=2026-03-04/n%04d.ndjson", m)}, stamp(m)))
	}
	for _, k := range keys {
		if _, err := st.Put(ctx, k, strings.NewReader(""), 0); err != nil {
			t.Fatal(err)
		}
	}
	all := slices.Sorted(slices.Values(slices.Concat(perHour, dayHour, minute)))
	for _, from := range []time.Time{
		{}, stamp(0), stamp(5*60 + 7), stamp(6 * 60).Add(time.Millisecond),
		stamp(3*60 + 20), stamp(3*60 + 20).Add(time.Millisecond), stamp(3 * 60).Add(20*time.Minute - time.Minute),
		stamp(3*60 + 21).Add(-time.Second), stamp(3*60 + 40), stamp(11 * 60),
	} {
		var want []int
		for _, m := range all {
			if !stamp(m).Before(from) {
				want = append(want, m)
			}
		}
		es, err := raw.ListIndex(ctx, st, "m", from)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, e := range es {
			got = append(got, e.Stamp.Hour()*60+e.Stamp.Minute())
		}
		if !slices.Equal(got, want) {
			t.Errorf("from %v: minutes %v, want %v", from, got, want)
		}
	}
	if k := raw.IndexKey(raw.Manifest{Source: "m", SHA256: sha, Key: "raw/m/x.ndjson"}, stamp(3*60+20)); !strings.HasPrefix(k, "raw/m/_index/20260304/03/20260304T0320/20260304T032030.") {
		t.Errorf("index key %s: want the day/hour/minute layout", k)
	}
}
