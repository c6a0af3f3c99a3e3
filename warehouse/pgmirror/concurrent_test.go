package pgmirror_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// pausingStore pauses the first listing of a Delta log, after the listing
// was taken: the mirror then holds a view of the lake table that another
// mirror overtakes.
type pausingStore struct {
	lake.Store
	once             sync.Once
	reached, release chan struct{}
}

func (s *pausingStore) List(ctx context.Context, prefix, startAfter string) ([]lake.ObjectInfo, error) {
	out, err := s.Store.List(ctx, prefix, startAfter)
	if strings.Contains(prefix, "_delta_log") {
		s.once.Do(func() {
			close(s.reached)
			<-s.release
		})
	}
	return out, err
}

// Two mirrors of one target at once: the one that read the lake table
// first but locked the target second must not meet the newer version the
// other recorded and call the lake table recreated.
func TestConcurrentSyncsOfOneTarget(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "mirror_conc_")
	ref := warehouse.TableRef{Schema: "gold", Name: "usage"}
	f := newFixture(t, ref, basicSchema)
	f.commit([]delta.Add{f.file(rows(0, 100, "i"), nil)}, nil, nil)
	spec := pgmirror.Spec{Source: ref, Schema: schema, Table: "usage", Key: []string{"id"}}

	ps := &pausingStore{Store: f.store, reached: make(chan struct{}), release: make(chan struct{})}
	opts := pgmirror.DefaultOptions()
	slow, err := pgmirror.New(dsn, pgmirror.Deps{Store: ps, Engine: f.eng, Cache: &lake.Cache{Dir: t.TempDir()}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := slow.Sync(context.Background(), spec)
		done <- err
	}()
	<-ps.reached
	f.commit([]delta.Add{f.file(rows(100, 200, "i"), nil)}, nil, nil)
	syncOK(t, f.mirror(dsn), spec)
	close(ps.release)
	if err := <-done; err != nil {
		t.Fatalf("the mirror overtaken by another: %v", err)
	}
	pgmirrortest.AssertEqual(t, f.store, ref, warehouse.Latest(), conn, schema, "usage")
	if v, ok := pgmirrortest.State(t, conn, schema, "usage"); !ok || v != f.snap.Version {
		t.Errorf("state version %d (%v), want %d", v, ok, f.snap.Version)
	}
}
