package bronze

import (
	"context"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
)

// TestRefreshAfterTxnExpiry: the objects a bronze table consumed are found
// by the discovery cursor once their txns expired (txn_retention), so a
// refresh re-types all of them, each row once.
func TestRefreshAfterTxnExpiry(t *testing.T) {
	st := testenv.LocalStore(t)
	e := newEngine(t)
	d := Deps{Env: layers.Env{DB: e.DB()}, DiscoveryGrace: time.Nanosecond, TxnRetention: 20 * time.Millisecond}
	src := discoverSource(t)
	landN(t, st, 0, 3)
	runDiscover(t, st, d, src)
	time.Sleep(50 * time.Millisecond)
	landN(t, st, 3, 1)
	if s := runDiscover(t, st, d, src); s.Objects != 1 {
		t.Fatalf("second run took %d objects, want 1", s.Objects)
	}
	d.Store, d.ScratchDir = st, t.TempDir()
	for range 2 {
		rs, err := Refresh(context.Background(), d, src, Range{})
		if err != nil {
			t.Fatal(err)
		}
		if rs.Objects != 4 || rs.RowsAdded != 4 {
			t.Errorf("refresh: %s, want 4 objects and 4 rows", rs)
		}
		checkOnce(t, st, d, 4)
	}
}
