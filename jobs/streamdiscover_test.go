package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

// listCounter counts the keys listings of manifests and of the landing
// index return.
type listCounter struct {
	lake.Store
	mu               sync.Mutex
	manifests, index int
}

func (c *listCounter) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	objs, err := c.Store.List(ctx, prefix, startAfter)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.Contains(prefix, "/_manifest/"):
		c.manifests += len(objs)
	case strings.Contains(prefix, "/_index/"):
		c.index += len(objs)
	}
	return objs, err
}

func (c *listCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manifests, c.index = 0, 0
}

// TestStreamTriggerUsesCursor: the trigger check finds new landings from
// bronze's discovery cursor (listing the index from it minus the grace
// window, no manifest listing), and after a batch forgets the objects the
// cursor has passed.
func TestStreamTriggerUsesCursor(t *testing.T) {
	ctx := context.Background()
	base := testenv.LocalStore(t)
	st := &listCounter{Store: base}
	p, err := config.Parse("medallion.yaml", []byte("lake: file://./lake\nbronze:\n  discovery_grace: 1ms\n  txn_retention: 1h\nsources:\n  m:\n    format: ndjson\n    schema:\n      id: {type: string}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.Open(ctx, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	land := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, _, err := raw.Land(ctx, base, "m", "x.ndjson", "ndjson", strings.NewReader(fmt.Sprintf(`{"id":"%d"}`+"\n", i)), time.Now()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // past the grace window of 1ms
		}
	}
	runBronze := func() {
		t.Helper()
		if _, err := bronze.Run(ctx, bronze.Deps{Env: layers.Env{Store: base, DB: eng.DB(), ScratchDir: t.TempDir()}, DiscoveryGrace: p.Bronze.DiscoveryGrace}, p.Sources["m"]); err != nil {
			t.Fatal(err)
		}
	}
	s := &Stream{Runner: &Runner{Store: st, Pipeline: p}, Log: slog.Default()}
	seen := map[string]bool{}

	land(0, 20)
	fresh, err := s.newManifests(ctx, seen)
	if err != nil || len(fresh) != 20 || st.manifests != 20 {
		t.Fatalf("before bronze has a cursor: %d fresh (%v) listing %d manifests, want 20 from a full listing", len(fresh), err, st.manifests)
	}
	runBronze()
	for _, m := range fresh {
		seen[m.Source+"/"+m.SHA256] = true
	}
	s.settle(ctx, seen)
	if len(seen) != 1 {
		t.Errorf("after the batch seen holds %d objects, want the one the cursor is at", len(seen))
	}

	land(20, 3)
	st.reset()
	fresh, err = s.newManifests(ctx, seen)
	if err != nil || len(fresh) != 3 {
		t.Fatalf("%d fresh (%v), want 3", len(fresh), err)
	}
	if st.manifests != 0 || st.index > 4 {
		t.Errorf("the trigger listed %d manifests and %d index entries, want 0 and at most 4", st.manifests, st.index)
	}
	for _, m := range fresh {
		seen[m.Source+"/"+m.SHA256] = true
	}
	st.reset()
	if fresh, err = s.newManifests(ctx, seen); err != nil || len(fresh) != 0 {
		t.Fatalf("a trigger with nothing new: %d fresh (%v)", len(fresh), err)
	}
	runBronze()
	s.settle(ctx, seen)
	if len(seen) != 1 {
		t.Errorf("after the second batch seen holds %d objects, want 1", len(seen))
	}
}
