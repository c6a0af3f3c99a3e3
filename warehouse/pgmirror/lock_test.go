package pgmirror_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// TestSnapshotUnderLock: mirror A reads the lake at v2 and is held there;
// the lake moves to v3 and mirror B runs. Whichever takes the target's lock
// first, both succeed and the target equals the lake. When A's snapshot was
// taken before the lock, B recorded v3 first and A failed telling the user
// to rebuild (the target "holds version 3 but the lake's latest is 2").
func TestSnapshotUnderLock(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_lock_")
	ref := warehouse.TableRef{Schema: "gold", Name: "l"}
	f := newFixture(t, ref, basicSchema)
	f.commit([]delta.Add{f.file(rows(0, 100, "i"), nil)}, nil, nil)
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: "l", Key: []string{"id"}}
	syncOK(t, f.mirror(dsn), spec)
	f.commit([]delta.Add{f.file(rows(100, 200, "i"), nil)}, nil, nil) // v2

	ps := &pausingStore{Store: f.store, reached: make(chan struct{}), release: make(chan struct{})}
	opts := pgmirror.DefaultOptions()
	a, err := pgmirror.New(dsn, pgmirror.Deps{Store: ps, Engine: f.eng, Cache: &lake.Cache{Dir: t.TempDir()}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { _, errA = a.Sync(ctx, spec) })
	select {
	case <-ps.reached:
	case <-ctx.Done():
		t.Fatal("mirror A never read the lake")
	}

	f.commit([]delta.Add{f.file(rows(200, 300, "i"), nil)}, []delta.Add{f.snap.Files[0]}, nil) // v3
	bDone := make(chan struct{})
	wg.Go(func() {
		defer close(bDone)
		_, errB = f.mirror(dsn).Sync(ctx, spec)
	})
	// Let A go once B has finished or waits for the lock A holds.
	lockKey := "medallion_mirror " + pgx.Identifier{schema, "l"}.Sanitize()
	for waiting := false; !waiting; {
		select {
		case <-bDone:
			waiting = true
		case <-time.After(10 * time.Millisecond):
			q := `SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`
			if err := conn.QueryRow(ctx, q, lockKey).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(ps.release)
	wg.Wait()
	if errA != nil {
		t.Errorf("mirror A: %v", errA)
	}
	if errB != nil {
		t.Errorf("mirror B: %v", errB)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "l")
}
