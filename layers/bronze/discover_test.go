package bronze

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// watchStore counts the keys its listings return and the manifests read,
// and can hide manifests (a landing whose commit is not visible yet).
type watchStore struct {
	lake.Store
	mu        sync.Mutex
	listed    map[string]int // by "_manifest" or "_index"
	manifests int            // manifest Gets
	hidden    map[string]bool
}

func newWatchStore(st lake.Store) *watchStore {
	return &watchStore{Store: st, listed: map[string]int{}, hidden: map[string]bool{}}
}

func (w *watchStore) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	objs, err := w.Store.List(ctx, prefix, startAfter)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, kind := range []string{"/_manifest/", "/_index/"} {
		if strings.Contains(prefix, kind) {
			w.listed[strings.Trim(kind, "/")] += len(objs)
		}
	}
	return objs, err
}

func (w *watchStore) Get(ctx context.Context, key string) (io.ReadCloser, lake.ObjectInfo, error) {
	w.mu.Lock()
	hidden := w.hidden[key]
	if strings.Contains(key, "/_manifest/") {
		w.manifests++
	}
	w.mu.Unlock()
	if hidden {
		return nil, lake.ObjectInfo{}, fmt.Errorf("get %s: %w", key, lake.ErrNotExist)
	}
	return w.Store.Get(ctx, key)
}

func (w *watchStore) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listed, w.manifests = map[string]int{}, 0
}

const discoverYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      id: {type: string, required: true}
      v:  {type: int64}
`

func discoverSource(t *testing.T) *config.Source {
	t.Helper()
	p, err := config.Parse("medallion.yaml", []byte(discoverYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.Sources["m"]
}

// landN lands n objects of one row each, ids from first.
func landN(t *testing.T, st lake.Store, first, n int) []raw.Manifest {
	t.Helper()
	var out []raw.Manifest
	for i := first; i < first+n; i++ {
		body := fmt.Sprintf(`{"id":"o%04d","v":%d}`+"\n", i, i)
		m, _, err := raw.Land(context.Background(), st, "m", fmt.Sprintf("in%04d.ndjson", i), "ndjson", strings.NewReader(body), received.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func runDiscover(t *testing.T, st lake.Store, d Deps, src *config.Source) Stats {
	t.Helper()
	d.Store = st
	d.ScratchDir = t.TempDir()
	s, err := Run(context.Background(), d, src)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() {
		t.Fatalf("accounting does not hold: %s", s)
	}
	return s
}

// checkOnce checks that bronze.m holds each of ids 0..n-1 exactly once.
func checkOnce(t *testing.T, st lake.Store, d Deps, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(tableCSV(t, st, d.DB, "bronze/m", "id")), "\n")[1:]
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for i := range n {
		if id := fmt.Sprintf("o%04d", i); seen[id] != 1 {
			t.Errorf("bronze holds %s %d times, want once", id, seen[id])
		}
	}
	if len(lines) != n {
		t.Errorf("bronze holds %d rows, want %d", len(lines), n)
	}
}

// TestDiscoveryListsOnlyNew: once bronze has a cursor, a run lists the
// landing index from it (minus the grace window), not every manifest, and
// reads the manifests of the new objects only.
func TestDiscoveryListsOnlyNew(t *testing.T) {
	base := testenv.LocalStore(t)
	w := newWatchStore(base)
	e := newEngine(t)
	d := Deps{Env: layers.Env{DB: e.DB()}, DiscoveryGrace: time.Nanosecond, MaxBatchObjects: 7}
	src := discoverSource(t)
	const n = 40
	landN(t, base, 0, n)
	if s := runDiscover(t, w, d, src); s.Objects != n {
		t.Fatalf("first run took %d objects, want %d", s.Objects, n)
	}
	for round := range 3 {
		landN(t, base, n+2*round, 2)
		w.reset()
		if s := runDiscover(t, w, d, src); s.Objects != 2 {
			t.Fatalf("round %d took %d objects, want 2", round, s.Objects)
		}
		if w.listed["_manifest"] != 0 || w.listed["_index"] > 3 || w.manifests != 2 {
			t.Errorf("round %d listed %d manifests and %d index entries, read %d manifests; want 0, at most 3 (the cursor's own and 2 new), 2",
				round, w.listed["_manifest"], w.listed["_index"], w.manifests)
		}
	}
	w.reset()
	if s := runDiscover(t, w, d, src); s.Objects != 0 || w.listed["_index"] > 1 || w.manifests != 0 {
		t.Errorf("a run with nothing new took %d objects, listed %d index entries, read %d manifests", s.Objects, w.listed["_index"], w.manifests)
	}
	checkOnce(t, base, d, n+6)
}

// TestDiscoveryOutOfOrderLanding: an object whose landing commits after a
// later-stamped one's was consumed (its manifest not yet visible when the
// run listed) is taken by the next run, within the grace window, exactly
// once.
func TestDiscoveryOutOfOrderLanding(t *testing.T) {
	base := testenv.LocalStore(t)
	w := newWatchStore(base)
	e := newEngine(t)
	d := Deps{Env: layers.Env{DB: e.DB()}} // default grace: 15m
	src := discoverSource(t)
	landN(t, base, 0, 3)
	runDiscover(t, w, d, src)
	slow := landN(t, base, 3, 1)[0] // stamped first, committed last
	w.hidden[raw.ManifestKey("m", slow.SHA256)] = true
	landN(t, base, 4, 2)
	if s := runDiscover(t, w, d, src); s.Objects != 2 {
		t.Fatalf("run with a landing in flight took %d objects, want 2", s.Objects)
	}
	delete(w.hidden, raw.ManifestKey("m", slow.SHA256))
	if s := runDiscover(t, w, d, src); s.Objects != 1 {
		t.Fatalf("run after the slow landing committed took %d objects, want 1", s.Objects)
	}
	if s := runDiscover(t, w, d, src); s.Objects != 0 {
		t.Fatalf("run with nothing new took %d objects", s.Objects)
	}
	checkOnce(t, base, d, 6)
}

// TestDiscoveryAfterTxnExpiry: once the txns of old objects have expired,
// neither a rerun nor sending the same bytes again takes them twice (the
// cursor is past them; raw's claim keeps them from landing again).
func TestDiscoveryAfterTxnExpiry(t *testing.T) {
	st := testenv.LocalStore(t)
	e := newEngine(t)
	d := Deps{Env: layers.Env{DB: e.DB()}, DiscoveryGrace: time.Nanosecond, TxnRetention: 20 * time.Millisecond}
	src := discoverSource(t)
	old := landN(t, st, 0, 3)
	runDiscover(t, st, d, src)
	time.Sleep(50 * time.Millisecond)
	landN(t, st, 3, 1)
	if s := runDiscover(t, st, d, src); s.Objects != 1 {
		t.Fatalf("second run took %d objects, want 1", s.Objects)
	}
	opts, _ := d.tableOptions()
	tbl, _ := delta.OpenWith(st, "bronze/m", opts)
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range old {
		if _, ok := snap.TxnVersion(RawAppID("m", m.SHA256)); ok {
			t.Fatalf("txn of %s not expired", m.Key)
		}
	}
	if _, ok := Cursor(snap, "m"); !ok {
		t.Fatal("the cursor expired")
	}
	for range 2 {
		if s := runDiscover(t, st, d, src); s.Objects != 0 {
			t.Fatalf("rerun after expiry took %d objects", s.Objects)
		}
	}
	landN(t, st, 0, 1) // the same bytes again: already landed
	if s := runDiscover(t, st, d, src); s.Objects != 0 {
		t.Fatalf("run after re-sending old bytes took %d objects", s.Objects)
	}
	checkOnce(t, st, d, 4)
}

// TestDiscoveryLegacyLake: objects landed before the landing index existed
// are found by a full listing of manifests while bronze has no cursor;
// after it, new objects are found from the cursor.
func TestDiscoveryLegacyLake(t *testing.T) {
	base := testenv.LocalStore(t)
	w := newWatchStore(base)
	e := newEngine(t)
	d := Deps{Env: layers.Env{DB: e.DB()}, DiscoveryGrace: time.Nanosecond, MaxBatchObjects: 2}
	src := discoverSource(t)
	ctx := context.Background()
	landN(t, base, 0, 5)
	entries, err := raw.ListIndex(ctx, base, "m", time.Time{})
	if err != nil || len(entries) != 5 {
		t.Fatalf("index: %d entries, %v", len(entries), err)
	}
	for _, en := range entries[:3] { // three objects landed by an older version
		if err := base.Delete(ctx, en.Key); err != nil {
			t.Fatal(err)
		}
	}
	if s := runDiscover(t, w, d, src); s.Objects != 5 {
		t.Fatalf("first run took %d objects, want 5", s.Objects)
	}
	if w.listed["_manifest"] != 5 {
		t.Errorf("first run listed %d manifests, want the full listing of 5", w.listed["_manifest"])
	}
	landN(t, base, 5, 2)
	w.reset()
	if s := runDiscover(t, w, d, src); s.Objects != 2 || w.listed["_manifest"] != 0 {
		t.Fatalf("run after the upgrade took %d objects listing %d manifests, want 2 and 0", s.Objects, w.listed["_manifest"])
	}
	checkOnce(t, base, d, 7)
}
