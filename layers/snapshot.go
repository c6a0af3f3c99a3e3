package layers

import (
	"context"
	"errors"

	"github.com/medallion-dev/medallion/lake/delta"
)

// SnapshotOrNil returns the latest snapshot of t, or nil when the table has
// no log yet: a layer run treats a table it has not created as empty.
func SnapshotOrNil(ctx context.Context, t *delta.Table) (*delta.Snapshot, error) {
	s, err := t.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		return nil, nil
	}
	return s, err
}
